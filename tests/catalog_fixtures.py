"""A studio shoot for the catalog tests and the export benchmark: real dev photos (copied, with
chosen capture times), generated barcode / QR card photos composited onto a real studio
background, result documents built by hand (see tests/test_export.py) and a shot list."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.conftest import DEV
from tests.test_export import person_doc, product_doc

CARD_BACKGROUND = "products/magento_luma/mb02-gray-0.jpg"


def symbol(kind: str, code: str) -> Image.Image:
    """A barcode symbol: ``qr`` (segno), ``code128`` or ``ean13`` (python-barcode)."""
    if kind == "qr":
        import segno
        buf = io.BytesIO()
        segno.make(code, error="m", micro=False).save(buf, kind="png", scale=7, border=4)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    import barcode
    from barcode.writer import ImageWriter
    cls = barcode.get_barcode_class(kind)
    return cls(code, writer=ImageWriter()).render(
        {"module_width": 0.25, "module_height": 10, "dpi": 300, "font_size": 0, "quiet_zone": 4}).convert("RGB")


def card_photo(path: Path, kind: str, code: str, *, damage: bool = False, angle: float = 5.0,
               taken: str | None = None) -> Path:
    """A card held in front of the studio backdrop: the symbol on a white card with a printed
    label, slightly rotated, pasted onto a real photo. ``damage``: the middle of a QR symbol is
    scribbled over (finder patterns intact: the reader sees a code it cannot decode).
    ``taken``: EXIF DateTimeOriginal ("2026:05:01 10:00:00")."""
    bg = Image.open(DEV / CARD_BACKGROUND).convert("RGB")
    sym = symbol(kind, code)
    if damage:
        a = np.asarray(sym).copy()
        h, w = a.shape[:2]
        rng = np.random.default_rng(1)
        y0, y1, x0, x1 = int(h * .35), int(h * .70), int(w * .35), int(w * .70)
        a[y0:y1, x0:x1] = np.where(rng.random((y1 - y0, x1 - x0, 1)) < 0.5, 0, 255)
        sym = Image.fromarray(a)
    card = Image.new("RGB", (sym.width + 60, sym.height + 90), "white")
    card.paste(sym, (30, 30))
    ImageDraw.Draw(card).text((30, sym.height + 45), f"SKU {code}", fill=(20, 20, 20))
    scale = min(1.0, 0.7 * bg.width / card.width)
    card = card.resize((round(card.width * scale), round(card.height * scale)), Image.LANCZOS)
    rgba = card.convert("RGBA").rotate(angle, expand=True, resample=Image.BICUBIC)
    x, y = (bg.width - rgba.width) // 2, (bg.height - rgba.height) // 2
    bg.paste(rgba, (x, y), rgba)
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {}
    if taken:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[36867] = taken
        kw["exif"] = exif
    bg.save(path, "JPEG", quality=90, **kw)
    return path


def copy_photo(rel: str, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEV / rel, dst)
    return dst


def set_time(path: Path, t: float) -> None:
    os.utime(path, (t, t))


def shoot(root: Path, plan: list[tuple[str, str]], t0: float = 1_700_000_000.0) -> list[Path]:
    """Photos in capture order (file times one minute apart; names deliberately not in that order)
    and their result documents under ``root/results``. ``plan``: (kind, what) with kind ``product``
    / ``person`` (what: a dev path), ``card`` (what: "qr:CODE", "code128:CODE", "ean13:CODE",
    "bad:CODE"), or ``named`` ("dev path|file stem")."""
    photos = root / "photos"
    results = root / "results"
    folders = []
    for i, (kind, what) in enumerate(plan):
        stem = f"{chr(ord('z') - i % 26)}{i:03d}"
        if kind == "card":
            sym, code = what.split(":", 1)
            p = card_photo(photos / f"{stem}_card.jpg", "qr" if sym == "bad" else sym, code, damage=sym == "bad")
            f = product_doc(p, results, status="approved")
        elif kind == "named":
            rel, name = what.split("|")
            p = copy_photo(rel, photos / f"{name}.jpg")
            f = product_doc(p, results, status="approved")
        elif kind == "product":
            p = copy_photo(what, photos / f"{stem}{Path(what).suffix}")
            f = product_doc(p, results, status="approved")
        else:          # person_doc finds the ground-truth labels by the photo's own name
            p = copy_photo(what, photos / stem / Path(what).name)
            f = person_doc(p, results, status="approved").rename(results / stem)
        set_time(p, t0 + 60 * i)
        folders.append(f)
    return folders
