"""Binding shots to SKUs: barcode / QR cards in capture order, and ``{sku}_{view}`` file names.

A photo showing a barcode card (QR, Code 128, EAN-13; read with zxing-cpp) sets the SKU for the
photos that follow it in capture order — EXIF DateTimeOriginal, then the file's time, then its
name — until the next card. The k-th photo after a card gets the product's k-th expected view
(the first is the main image). The card photo is recorded in its document (``"card": {"code",
"format"}``, ``"items": []``) and is never exported. A card whose SKU is not in the catalog creates
the product and says so; a card that is seen but cannot be decoded marks itself and the photos
after it for review (they are left unassigned, never given the previous card's SKU).

A file name such as ``TSHIRT-01_back.jpg`` binds that photo directly when the SKU is known (or the
view is a known view name); it does not end a card's run.

Items already assigned (by hand, in the app) are kept. Qt-free.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from studio_app.core.result import DocumentError, ResultDocument
from studio_app.core.result_folder import ResultFolder
from .model import Assignment, Product, normalise_view, sku_problem
from .service import CatalogService
from .store import Catalog

KNOWN_VIEWS = ("front", "back", "side", "detail", "on-model", "top", "bottom", "inside", "label", "pack")
READ_SIDE = 2000            # long side the card reader looks at (cards fill a good part of the frame)
LIVE_SIDE = 1500            # as photos arrive: a 24-MP JPEG decodes at 1/4 (a card is a third of the frame)
NAME_PATTERN = "{sku}_{view}"


@dataclass(frozen=True)
class CardRead:
    code: str
    format: str
    valid: bool
    error: str = ""


def read_card(rgb: np.ndarray) -> CardRead | None:
    """The barcode on the photo (valid or seen-but-undecodable), or None when there is none."""
    import cv2
    import zxingcpp
    h, w = rgb.shape[:2]
    if max(h, w) > READ_SIDE:
        k = READ_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    formats = zxingcpp.BarcodeFormat.QRCode | zxingcpp.BarcodeFormat.Code128 | zxingcpp.BarcodeFormat.EAN13
    found = zxingcpp.read_barcodes(gray, formats=formats, return_errors=True)
    good = [b for b in found if b.valid and b.text.strip()]
    if good:
        b = good[0]
        return CardRead(b.text.strip(), _format_name(b.format), True)
    if found:
        b = found[0]
        return CardRead(b.text.strip(), _format_name(b.format), False, str(b.error).split(" @ ")[0])
    return None


def _format_name(fmt) -> str:
    import zxingcpp
    names = {zxingcpp.BarcodeFormat.QRCode: "QR", zxingcpp.BarcodeFormat.Code128: "Code128",
             zxingcpp.BarcodeFormat.EAN13: "EAN-13"}
    return names.get(fmt, str(fmt).rsplit(".", 1)[-1])


# ---------------------------------------------------------------------------------------------
# capture order

def capture_key(path: str | os.PathLike) -> tuple:
    """(time, name): EXIF DateTimeOriginal when the photo has it, else the file's modification time."""
    p = Path(path)
    t = _exif_time(p)
    if t is None:
        try:
            t = p.stat().st_mtime
        except OSError:
            t = float("inf")
    return (t, p.name)


def _exif_time(p: Path) -> float | None:
    from PIL import Image
    try:
        with Image.open(p) as im:
            exif = im.getexif()
            raw = exif.get_ifd(0x8769).get(36867) or exif.get(306)        # DateTimeOriginal, DateTime
            sub = exif.get_ifd(0x8769).get(37521)                          # SubSecTimeOriginal
    except Exception:            # not an image PIL knows (RAW), damaged EXIF: use the file time
        return None
    if not raw:
        return None
    try:
        t = _dt.datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S").timestamp()
    except ValueError:
        return None
    if sub and str(sub).strip("\x00 ").isdigit():
        t += float("0." + str(sub).strip("\x00 "))
    return t


def name_binding(stem: str, products: dict[str, Product], pattern: str = NAME_PATTERN) -> tuple[str, str] | None:
    """(sku, view) from a file name such as ``SKU-1_back`` (see the module docstring), else None."""
    rx = re.escape(pattern).replace(r"\{sku\}", r"(?P<sku>.+?)").replace(r"\{view\}", r"(?P<view>[A-Za-z0-9-]+)")
    m = re.fullmatch(rx, stem)
    if not m:
        return None
    sku, view = m.group("sku"), m.group("view").lower()
    if sku_problem(sku) or not (sku in products or view in KNOWN_VIEWS):
        return None
    try:
        return sku, normalise_view(view)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------

@dataclass
class BindReport:
    cards: list[tuple[str, str]] = field(default_factory=list)        # (photo, code)
    assigned: list[Assignment] = field(default_factory=list)
    created: list[str] = field(default_factory=list)                  # SKUs made from cards / names
    review: list[tuple[str, str]] = field(default_factory=list)       # (photo, why)
    messages: list[str] = field(default_factory=list)
    kept: int = 0                                                     # items already assigned: left alone
    changed: list[Path] = field(default_factory=list)                 # documents re-written (cards, review)

    def lines(self) -> list[str]:
        out = [f"card      {p}: {c}" for p, c in self.cards]
        out += [f"new SKU   {s}: not in the shot list, created from a card or file name" for s in self.created]
        out += [f"review    {p}: {w}" for p, w in self.review]
        return out + self.messages


def bind(catalog: Catalog, folders: Iterable[str | os.PathLike], *, cards: bool = True,
         names: str | None = NAME_PATTERN, service: CatalogService | None = None) -> BindReport:
    """Bind a set of results: sorted into capture order, then shot by shot (:class:`Binder`)."""
    binder = Binder(catalog, cards=cards, names=names, service=service)
    rep = BindReport()
    shots = []
    for f in folders:
        f = Path(f)
        try:
            doc = binder.svc.load_document(f)
        except DocumentError as exc:
            rep.messages.append(f"skipped   {f.name}: {exc}")
            continue
        shots.append((capture_key(doc.source.path), f, doc))
    shots.sort(key=lambda s: s[0])
    for key, folder, doc in shots:
        binder.feed(folder, doc, rep, key)
    binder.run.close(rep)
    return rep


class _Products:
    """The catalog's products looked up one SKU at a time (a shot list imported while the hot
    folder runs is seen by the next photo; 10,000 products are never read in full)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def __contains__(self, sku) -> bool:
        return isinstance(sku, str) and self.catalog.product(sku) is not None

    def __getitem__(self, sku: str) -> Product:
        p = self.catalog.product(sku)
        if p is None:
            raise KeyError(sku)
        return p


class Binder:
    """The one binding rule, applied shot by shot in capture order: :func:`bind` feeds it a
    sorted set of results; the Studio feeds it each photo as it finishes (the hot folder, a drop),
    so a card binds the photos that follow it as they arrive. ``run`` is the card in force."""

    def __init__(self, catalog: Catalog, *, cards: bool = True, names: str | None = NAME_PATTERN,
                 service: CatalogService | None = None):
        self.catalog, self.cards, self.names = catalog, cards, names
        self.svc = service or CatalogService(catalog)
        self.products = _Products(catalog)
        self.run = _Run()

    def feed(self, folder: Path, doc: ResultDocument, rep: BindReport, key: tuple | None = None,
             card: CardRead | None = None) -> None:
        """One shot. ``key``: its capture key (a shot taken before the card in force is not bound
        by it); ``card``: what the caller read on the photo already."""
        if card is None and self.cards:
            card = _card_of(folder, doc, rep)
        if card is not None:
            self._card(folder, doc, card, rep, key)
            return
        named = name_binding(Path(doc.source.path).stem, self.products, self.names) if self.names else None
        if named:
            _bind_named(named, folder, doc, self.products, self.catalog, self.svc, rep)
            return
        if key is not None and self.run.key is not None and key < self.run.key:
            rep.messages.append(f"later     {folder.name}: taken before the card {self.run.card_photo}; "
                                "bind it with Products › Bind cards")
            return
        self.run.add(folder, doc, self.products, self.catalog, self.svc, rep)

    def _card(self, folder: Path, doc: ResultDocument, card: CardRead, rep: BindReport, key) -> None:
        self.run.close(rep)
        _record_card(folder, doc, card, rep, self.svc)
        if not card.valid:
            self.run.start(None, folder.name, unreadable=True, key=key)
            return
        if card.code not in self.products:
            why = sku_problem(card.code)
            if why:
                rep.review.append((folder.name, f"card {card.code!r} cannot be a SKU: {why}"))
                self.run.start(None, folder.name, unreadable=True, key=key)
                return
            self.catalog.add_products([Product(card.code, origin="card")], replace=False)
            rep.created.append(card.code)
        self.run.start(card.code, folder.name, key=key)


def read_card_file(path: str | os.PathLike, side: int = READ_SIDE) -> CardRead | None:
    """:func:`read_card` on a photo file. A JPEG is decoded at reduced size (the DCT scaling of its
    decoder: the smallest of 1/2, 1/4, 1/8 whose long side is still ``side``), other formats in
    full. OSError / ImageLoadError when the file cannot be read."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                k = min(1.0, side / max(im.size))
                im.draft("RGB", (max(1, int(im.size[0] * k)), max(1, int(im.size[1] * k))))
                return read_card(np.asarray(im.convert("RGB")))
    except (OSError, ValueError, Image.DecompressionBombError):
        pass                       # not a plain image PIL reads (RAW, ...): the full loader below
    from ml.io import load_image
    return read_card(load_image(path).rgb)


def _card_of(folder: Path, doc: ResultDocument, rep: BindReport) -> CardRead | None:
    if doc.card is not None:
        return CardRead(doc.card["code"], doc.card.get("format", ""), bool(doc.card["code"]))
    from ml.io import ImageLoadError
    try:
        return read_card_file(doc.source.path)
    except (ImageLoadError, OSError) as exc:
        rep.messages.append(f"skipped   {folder.name}: the source photo cannot be read for cards ({exc})")
        return None


def _record_card(folder: Path, doc: ResultDocument, card: CardRead, rep: BindReport, svc: CatalogService) -> None:
    if doc.card is None:
        for it in list(doc.items):
            svc.catalog.assign(folder, it.zone, None)
        doc.card = {"code": card.code if card.valid else "", "format": card.format}
        doc.items = []
        if not card.valid:
            doc.needs_review = True
            doc.warnings.append(f"unreadable barcode card ({card.error or 'cannot decode'}): "
                                "the photos after it are not bound to a SKU")
        svc.save_document(folder, doc)
        rep.changed.append(folder)
    if card.valid:
        rep.cards.append((folder.name, f"{card.format} {card.code}"))
    else:
        rep.review.append((folder.name, f"barcode card cannot be read ({card.error or 'cannot decode'}); "
                                        "the photos after it are left for review"))


def _bind_named(named, folder, doc, products, catalog, svc, rep) -> None:
    sku, view = named
    if sku not in products:
        catalog.add_products([Product(sku, origin="file_name")], replace=False)
        rep.created.append(sku)
    _assign_photo(folder, doc, sku, view, catalog, svc, rep)


def _assign_photo(folder: Path, doc: ResultDocument, sku: str, view: str | None, catalog: Catalog,
                  svc: CatalogService, rep: BindReport) -> None:
    """The photo's product item (``product``, or ``full`` of an on-model shot) goes to ``sku``."""
    target = doc.item("product") or doc.item("full") or (doc.items[0] if doc.items else None)
    if target is None:
        rep.review.append((folder.name, f"no item to bind to {sku}"))
        return
    if catalog.assignment(folder, target.zone) is not None:
        rep.kept += 1
        return
    has_main = any(a.main for a in catalog.assignments(sku=sku))
    res = svc.assign(folder, target.zone, sku, view, main=not has_main)
    rep.assigned.append(res.assignment)


class _Run:
    """The photos after one card."""

    def __init__(self):
        self.sku: str | None = None
        self.card_photo = ""
        self.unreadable = False
        self.count = 0
        self.active = False
        self.key: tuple | None = None            # the card's capture key
        self.members: set = set()                # the photos of this run so far

    def start(self, sku: str | None, photo: str, unreadable: bool = False, key: tuple | None = None) -> None:
        self.sku, self.card_photo, self.unreadable, self.count, self.active = sku, photo, unreadable, 0, True
        self.key = key
        self.members: set = set()

    def close(self, rep: BindReport) -> None:
        if self.active and self.count == 0:
            what = f"card {self.sku}" if self.sku else "the unreadable card"
            rep.messages.append(f"warning   {what} ({self.card_photo}) has no photos after it "
                                "(another card follows, or it is the last photo)")
        self.active = False

    def add(self, folder, doc, products, catalog, svc, rep) -> None:
        if not self.active or folder in self.members:
            return            # before the first card: left unassigned; a photo processed again: counted once
        self.members.add(folder)
        self.count += 1
        if self.unreadable:
            if not doc.needs_review or not any("unreadable barcode card" in w for w in doc.warnings):
                doc.needs_review = True
                doc.warnings.append(f"follows an unreadable barcode card ({self.card_photo}): assign its SKU by hand")
                svc.save_document(folder, doc)
                rep.changed.append(folder)
            rep.review.append((folder.name, f"follows the unreadable card {self.card_photo}"))
            return
        views = products[self.sku].views
        view = views[self.count - 1] if self.count <= len(views) else None
        if doc.kind == "person" and "on-model" in views and not any(
                a.view == "on-model" for a in catalog.assignments(sku=self.sku)):
            view = "on-model"
        _assign_photo(folder, doc, self.sku, view, catalog, svc, rep)
