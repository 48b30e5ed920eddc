"""Assignments kept in step: the catalog database is their home, each result document mirrors its
items' ``sku``/``view``/``main``. Every change goes database first, then the documents it touches
(atomic writes); :func:`rebuild` goes the other way (documents + shot list -> database).

Used by the Studio (``studio.assign``), the CLI (``studio-catalog catalog ...``) and the card
binder. Qt-free.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from studio_app.core.result import DocumentError, ResultDocument
from studio_app.core.result_folder import ResultFolder
from .model import Assignment, CatalogError, Product, check_sku
from .store import Catalog

# How a caller supplies the current document of a folder and stores a changed one (the Studio
# routes these through its live editors so that an open photo is never overwritten with old data).
LoadFn = Callable[[Path], ResultDocument]
SaveFn = Callable[[Path, ResultDocument], None]


def _load(folder: Path) -> ResultDocument:
    return ResultFolder(folder).load()


def _save(folder: Path, doc: ResultDocument) -> None:
    ResultFolder(folder).save(doc)


def mirror_into(doc: ResultDocument, rows: dict[str, Assignment]) -> bool:
    """Write the assignments (zone -> row) into ``doc``'s items. True when something changed."""
    changed = False
    for it in doc.items:
        a = rows.get(it.zone)
        want = (a.sku, a.view, a.main) if a else (None, None, False)
        if (it.sku, it.view, it.main) != want:
            it.sku, it.view, it.main = want
            changed = True
    return changed


@dataclass
class AssignResult:
    assignment: Assignment
    documents: list[tuple[Path, ResultDocument]] = field(default_factory=list)   # documents re-written
    created: Product | None = None            # a product made on the fly


class CatalogService:
    def __init__(self, catalog: Catalog, load: LoadFn = _load, save: SaveFn = _save):
        self.catalog = catalog
        self.load_document = load
        self.save_document = save

    def assign(self, folder: str | os.PathLike, zone: str, sku: str | None, view: str | None = None,
               main: bool = False, *, create: bool = False, origin: str = "manual") -> AssignResult:
        """Assign one item. ``create``: an unknown SKU becomes a new product (else CatalogError)."""
        folder = Path(folder)
        doc = self.load_document(folder)
        if doc.card is not None:
            raise CatalogError(f"{folder.name} is a barcode card photo; it has no items to assign")
        if doc.item(zone) is None:
            zones = ", ".join(it.zone for it in doc.items) or "none"
            raise CatalogError(f"{folder.name} has no {zone!r} item (items: {zones})")
        created = None
        if sku is not None:
            check_sku(sku)
            if create and self.catalog.product(sku) is None:
                created = Product(sku, origin=origin)
                self.catalog.add_products([created])
        old_main = self._current_main(sku) if main and sku else None
        a = self.catalog.assign(folder, zone, sku, view, main)
        touched = {self.catalog.key(folder)}
        if old_main and old_main.folder not in touched:
            touched.add(old_main.folder)
        docs = [self.mirror(self.catalog.folder(k)) for k in sorted(touched)]
        return AssignResult(a, [d for d in docs if d is not None], created)

    def _current_main(self, sku: str) -> Assignment | None:
        return next((a for a in self.catalog.assignments(sku=sku) if a.main), None)

    def mirror(self, folder: Path) -> tuple[Path, ResultDocument] | None:
        """Bring ``folder``'s document in line with the database; returns it when re-written."""
        rows = {a.zone: a for a in self.catalog.assignments(folder=folder)}
        doc = self.load_document(folder)
        if mirror_into(doc, rows):
            self.save_document(folder, doc)
            return folder, doc
        return None

    def delete_product(self, sku: str) -> list[tuple[Path, ResultDocument]]:
        gone = self.catalog.delete_product(sku)
        out = []
        for k in sorted({a.folder for a in gone}):
            try:
                r = self.mirror(self.catalog.folder(k))
            except (DocumentError, OSError):
                continue              # a vanished result: nothing to mirror into
            if r:
                out.append(r)
        return out


def category_name(doc: ResultDocument, it) -> str | None:
    """The category an item is framed and listed by: the photo's for a product, else the item's."""
    cat = doc.category if it.zone == "product" else None
    return cat["name"] if cat else it.category


def item_category(doc: ResultDocument, zone: str) -> str | None:
    """:func:`category_name` of item ``zone`` as a product's category (``other`` is none)."""
    it = doc.item(zone)
    name = category_name(doc, it) if it is not None else None
    return name if name and name != "other" else None


def fill_categories(catalog: Catalog, load: LoadFn = _load, skus: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Products without a category (a shot list with no category column or an empty cell, a card
    or an on-the-fly product) take the category of their classified photos: the most frequent
    one among their items. Never overwrites a category the studio gave. Returns (sku, category)
    for each product filled in."""
    from collections import Counter
    filled = []
    for sku in catalog.uncategorised(skus):
        votes: Counter = Counter()
        for a in catalog.assignments(sku=sku):
            try:
                name = item_category(load(catalog.folder(a.folder)), a.zone)
            except (DocumentError, OSError):
                continue
            if name:
                votes[name] += 1
        if votes:
            best = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            if catalog.fill_category(sku, best):
                filled.append((sku, best))
    return filled


def filled_line(filled: list[tuple[str, str]]) -> str:
    """The operator's line for :func:`fill_categories` ('' when nothing was filled in)."""
    if not filled:
        return ""
    shown = ", ".join(f"{s} {c}" for s, c in filled[:5]) + (f" and {len(filled) - 5} more" if len(filled) > 5 else "")
    return f"category from the photos for {len(filled)} product(s): {shown}"


def rebuild(catalog: Catalog, folders: Iterable[str | os.PathLike], products: Iterable[Product] = ()) -> list[str]:
    """Recreate the database from result documents and shot-list products. Returns warnings
    (unreadable documents, SKUs found only in documents)."""
    known = {p.sku: p for p in products}
    rows: list[Assignment] = []
    warnings: list[str] = []
    for f in folders:
        try:
            doc = ResultFolder(f).load()
        except DocumentError as exc:
            warnings.append(f"{Path(f).name}: skipped ({exc})")
            continue
        for it in doc.items:
            if not it.sku:
                continue
            if it.sku not in known:
                known[it.sku] = Product(it.sku, origin="document")
                warnings.append(f"{Path(f).name}: SKU {it.sku} is not in the shot list; added it")
            rows.append(Assignment(catalog.key(f), it.zone, it.sku, it.view, it.main))
    catalog.replace_all(known.values(), rows)
    return warnings
