"""The 11 garment classes and the one mapping from Clothing Co-Parsing (CCP) labels to them.

``CLASSES`` is the order of the garment map's pixel values everywhere (network output,
``garments.png``, the result document). ``dress`` = any one-piece (dress, romper, jumpsuit,
swimwear, bodysuit-as-worn-alone is still a top in CCP's usage, see below).

CCP -> class table (CCP names from its ``labels.json``; anything not named is background):

=============  =====================================================================
class          CCP labels
=============  =====================================================================
skin           skin
hair           hair
headwear       hat
top            blazer blouse bodysuit bra cape cardigan coat hoodie jacket jumper
               shirt suit sweater sweatshirt t-shirt top vest
bottom         jeans leggings pants shorts skirt panties
dress          dress romper swimwear intimate
legwear        socks stockings tights
shoes          boots clogs flats heels loafers pumps sandals shoes sneakers wedges
bag            bag purse wallet
accessory      accessories belt bracelet earrings glasses gloves necklace ring scarf
               sunglasses tie watch
=============  =====================================================================

Scarf and tie go to ``accessory`` (they are sold as accessories, and a scarf over a coat must
not stretch the ``top`` swatch); leggings are ``bottom`` (worn as trousers in CCP).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES: tuple[str, ...] = ("background", "skin", "hair", "headwear", "top", "bottom", "dress",
                            "legwear", "shoes", "bag", "accessory")
CLASS_INDEX = {n: i for i, n in enumerate(CLASSES)}

CCP_TO_CLASS: dict[str, str] = {
    "skin": "skin", "hair": "hair", "hat": "headwear",
    **{n: "top" for n in ("blazer", "blouse", "bodysuit", "bra", "cape", "cardigan", "coat", "hoodie",
                          "jacket", "jumper", "shirt", "suit", "sweater", "sweatshirt", "t-shirt",
                          "top", "vest")},
    **{n: "bottom" for n in ("jeans", "leggings", "pants", "shorts", "skirt", "panties")},
    **{n: "dress" for n in ("dress", "romper", "swimwear", "intimate")},
    **{n: "legwear" for n in ("socks", "stockings", "tights")},
    **{n: "shoes" for n in ("boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes",
                            "sneakers", "wedges")},
    **{n: "bag" for n in ("bag", "purse", "wallet")},
    **{n: "accessory" for n in ("accessories", "belt", "bracelet", "earrings", "glasses", "gloves",
                                "necklace", "ring", "scarf", "sunglasses", "tie", "watch")},
}

# Metrics: the classes the mIoU target is defined over.
MIOU_CLASSES: tuple[str, ...] = ("skin", "hair", "top", "bottom", "dress", "shoes")


def ccp_lookup(label_names: list[str]) -> np.ndarray:
    """A 256-entry uint8 table: CCP pixel value -> class index (unknown / null -> background)."""
    lut = np.zeros(256, np.uint8)
    for i, name in enumerate(label_names):
        lut[i] = CLASS_INDEX[CCP_TO_CLASS.get(name, "background")]
    return lut


def read_ccp_lookup(ccp_dir: str | Path) -> np.ndarray:
    """The lookup table for a CCP folder (its ``labels.json``); a clear error if it is not one."""
    p = Path(ccp_dir) / "labels.json"
    try:
        names = json.loads(p.read_text(encoding="utf-8"))["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{p} is not a CCP labels.json ({exc})") from exc
    return ccp_lookup(list(names))


def ccp_pairs(ccp_dir: str | Path) -> list[tuple[Path, Path]]:
    """(photo, label png) pairs of a CCP folder (``photos/NNNN.jpg`` + ``labels/NNNN.png``)."""
    d = Path(ccp_dir)
    pairs = [(p, d / "labels" / (p.stem + ".png")) for p in sorted((d / "photos").glob("*.jpg"))]
    pairs = [(a, b) for a, b in pairs if b.is_file()]
    if not pairs:
        raise ValueError(f"{d} holds no CCP photos with labels (photos/*.jpg + labels/*.png)")
    return pairs


def product_negatives(products_dir: str | Path, split: str = "train") -> list[Path]:
    """Product photos (no person) of one split whose licence tier is ``permissive``."""
    d = Path(products_dir)
    try:
        files = json.loads((d / "manifest.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{d}/manifest.json is not a product manifest ({exc})") from exc
    return [d / f["file"] for f in files
            if f.get("split") == split and f.get("licence_tier") == "permissive"
            and not f.get("on_model") and (d / f["file"]).is_file()]
