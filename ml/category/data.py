"""The product-category photos (``train/products``) and the cached cut-out masks.

``manifest.json`` lists every photo with its ``class``, ``split`` (train/dev, split by
product) and ``licence_tier``; the weights we ship are trained on the ``permissive`` tier
only (:func:`records` with ``tiers=("permissive",)``), the other tiers serve for checks.
Garments worn by a person (``on_model``) are not part of the 14-way task and are skipped.

The U2-Net-p salient-object mask of each photo is computed once and cached as a PNG at a
reduced size (:data:`MASK_SIDE`) under ``<cache>/masks/``; the feature cache (see
:mod:`ml.category.features`) is built from photo + mask.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from ml.category import CLASSES

MASK_SIDE = 640          # long side of the cached masks (and of the image the segmenter sees)
PERMISSIVE = ("permissive",)
ALL_TIERS = ("permissive", "copyleft", "third_party_content")


@dataclass(frozen=True)
class Record:
    path: Path           # the photo
    rel: str             # its path relative to the data root (cache key)
    label: int           # index into CLASSES
    split: str
    tier: str
    product_id: str


def records(root: str | Path, *, splits: Iterable[str] = ("train", "dev"),
            tiers: Iterable[str] = PERMISSIVE) -> list[Record]:
    """The photos of ``root``'s manifest in the given splits and licence tiers (on-model
    photos excluded), in manifest order. A missing or malformed manifest raises ValueError."""
    root = Path(root)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise ValueError(f"{root} holds no manifest.json: is it the train/products folder?")
    try:
        files = json.loads(mpath.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, OSError) as exc:
        raise ValueError(f"{mpath} cannot be read as a product-category manifest: {exc}") from exc
    splits, tiers = set(splits), set(tiers)
    out = []
    for f in files:
        if f.get("on_model") or f.get("split") not in splits or f.get("licence_tier") not in tiers:
            continue
        if f.get("class") not in CLASSES:
            continue
        out.append(Record(root / f["file"], f["file"], CLASSES.index(f["class"]), f["split"],
                          f["licence_tier"], f.get("product_id", f["file"])))
    return out


def balanced(recs: list[Record], per_class: int | None, seed: int = 0,
             dev_per_class: int | None = None) -> list[Record]:
    """At most ``per_class`` training (``dev_per_class`` dev) photos per class, a seeded random
    choice (the first N of one seeded shuffle, so a larger N extends a smaller one), then
    everything interleaved class by class so that an interrupted feature cache is balanced."""
    import random
    rng = random.Random(seed)
    groups: dict[tuple[str, int], list[Record]] = {}
    for r in recs:
        groups.setdefault((r.split, r.label), []).append(r)
    for (split, _lab), g in groups.items():
        rng.shuffle(g)
        cap = per_class if split == "train" else dev_per_class
        if cap:
            del g[cap:]
    out: list[Record] = []
    queues = [groups[k] for k in sorted(groups, key=lambda k: (k[0] != "train", k[1]))]
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def read_rgb(path: str | Path) -> np.ndarray:
    """The photo as HxWx3 uint8 RGB (EXIF orientation applied by the project's loader)."""
    from ml.io import load_image
    return load_image(path).rgb


def reduced(rgb: np.ndarray, side: int = MASK_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    if s >= 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def mask_path(cache: Path, rec: Record) -> Path:
    return cache / "masks" / (rec.rel + ".png")


def compute_mask(segmenter, small: np.ndarray) -> np.ndarray:
    """uint8 0/255 product mask at ``small``'s size, as the pipeline computes it."""
    from ml.stages.segment import refine_mask
    prob = segmenter.predict(small)
    return refine_mask(prob, (small.shape[1], small.shape[0]), guide=small)


def cache_masks(recs: list[Record], cache: Path, segmenter,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Compute and store the mask of every record that has none yet; returns how many were
    computed. Safe to interrupt (each PNG is written atomically) and to run again."""
    from ml.atomic import write_bytes
    done = 0
    for i, rec in enumerate(recs):
        p = mask_path(cache, rec)
        if not p.is_file():
            small = reduced(read_rgb(rec.path))
            ok, png = cv2.imencode(".png", compute_mask(segmenter, small))
            if not ok:
                raise RuntimeError(f"could not encode the mask of {rec.rel}")
            p.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(p, png.tobytes())
            done += 1
        if progress is not None:
            progress(i + 1, len(recs))
    return done


def load_mask(cache: Path, rec: Record) -> np.ndarray:
    m = cv2.imread(str(mask_path(cache, rec)), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise FileNotFoundError(f"no cached mask for {rec.rel}; run the mask step first")
    return m
