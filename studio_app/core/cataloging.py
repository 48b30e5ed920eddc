"""The Studio's catalog of goods: products, shot lists and assignments (a mixin of
:class:`studio_app.core.studio.Studio`). Qt-free.

``studio.catalog`` is ``<out>/catalog.sqlite`` (:class:`studio_app.core.catalog.Catalog`), the one
home of assignments; every change also re-writes the documents it touches (through the live editor
of a photo that is open) and is announced with ``catalog_changed`` plus ``document_changed(reason=
"catalog")`` per document. The product panel reads ``studio.products_panel()``.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog, CatalogError, CatalogService, Product, ProductStatus, shotlist
from .catalog.service import fill_categories, filled_line, item_category
from .events import CatalogChanged, DocumentChanged, Error
from .result import DocumentError, ResultDocument
from .result_folder import ResultFolder


@dataclass(frozen=True)
class Shooting:
    """The card in force while photos arrive: ``sku`` (None: the card could not be read, the
    photos after it go to review) and the card photo's name."""
    sku: str | None
    card: str


class CatalogMixin:
    _catalog: Catalog | None = None
    _catalog_lock = threading.Lock()
    _binder = None                      # the live card binder (processing thread only)
    live_cards = True                   # processed photos are checked for barcode cards

    @property
    def catalog(self) -> Catalog:
        with self._catalog_lock:
            if self._catalog is None:
                self._catalog = Catalog.open(self.out_root)
            return self._catalog

    def _catalog_service(self) -> CatalogService:
        return CatalogService(self.catalog, load=self._doc_for_folder, save=self._save_for_folder)

    # documents go through the live editor when the photo is open, so an edit never overwrites them
    def _entry_for_folder(self, folder: Path):
        key = Path(folder).resolve()
        for e in self.session:
            if e.folder and Path(e.folder).resolve() == key:
                return e
        return None

    def _doc_for_folder(self, folder: Path) -> ResultDocument:
        e = self._entry_for_folder(folder)
        with self._edit_lock:
            ed = self._editors.get(e.photo) if e is not None else None
            return ed.doc if ed is not None else ResultFolder(folder).load()

    def _save_for_folder(self, folder: Path, doc: ResultDocument) -> None:
        with self._edit_lock:
            ResultFolder(folder).save(doc)
            e = self._entry_for_folder(folder)
            if e is not None and e.photo in self._editors:
                self._editors[e.photo].doc = doc

    def _folder_of(self, photo: str | os.PathLike) -> Path:
        e = self.session.get(photo)
        if e is not None and e.folder:
            return Path(e.folder)
        p = Path(photo)
        if (p / "result.json").is_file():
            return p
        raise CatalogError(f"{p.name} has no result yet; assign it once it is processed")

    # ---- operator intents ----------------------------------------------------------------------
    def assign(self, photo: str | os.PathLike, zone: str, sku: str | None, view: str | None = None,
               main: bool = False, *, create: bool = False):
        """Item ``zone`` of ``photo`` belongs to ``sku`` (None: unassign), as ``view``; ``main``: the
        product's main image. ``create``: an unknown SKU becomes a new product. CatalogError (show
        ``str(exc)``; nothing changed) for an unknown SKU, zone or a card photo."""
        res = self._catalog_service().assign(self._folder_of(photo), zone, sku, view, main, create=create)
        self._announce(res.documents, (sku,) if sku else (), "assign",
                       f"new product {sku}" if res.created else "")
        return res.assignment

    def assign_photos(self, photos, sku: str, view: str | None = None, *, create: bool = False) -> int:
        """Multi-select: every item of each photo goes to ``sku``. Returns the number of items."""
        n = 0
        for ph in photos:
            doc = self._doc_for_folder(self._folder_of(ph))
            for it in doc.items:
                self.assign(ph, it.zone, sku, view, create=create)
                n += 1
        return n

    def add_product(self, product: Product) -> None:
        self.catalog.add_products([product])
        self.events.catalog_changed(CatalogChanged((product.sku,), "products"))

    def delete_product(self, sku: str) -> int:
        """Remove a product; its images become unassigned. Returns how many documents changed."""
        docs = self._catalog_service().delete_product(sku)
        self._announce(docs, (sku,), "delete")
        return len(docs)

    def _category_edited(self, before: ResultDocument, after: ResultDocument) -> None:
        """An operator's category choice (``SetCategory``, its undo/redo) reaches the catalog: the
        product of an assigned item whose catalog category came from this photo (it was the item's
        old category, or empty) takes the new one, so the next export's shop files follow it. A
        category the studio gave (its shot list's word) is kept: it wins in the shop files."""
        changed = []
        for it in after.items:
            if not it.sku:
                continue
            old, new = item_category(before, it.zone), item_category(after, it.zone)
            try:
                if new and old != new and self.catalog.follow_category(it.sku, new, old or ""):
                    changed.append(it.sku)
            except (CatalogError, OSError, sqlite3.Error) as exc:     # the edit itself is saved
                self.events.error(Error(f"the catalog did not take the new category of {it.sku}: {exc}"))
        if changed:
            self.events.catalog_changed(CatalogChanged(tuple(changed), "products",
                                                       f"category of {', '.join(changed)} set by hand"))

    def import_shot_list(self, path: str | os.PathLike) -> shotlist.ShotList:
        """Read the whole file first (ShotListError names every bad row; nothing imported), then add
        or update its products in one transaction."""
        sl = shotlist.read(path)
        self.catalog.add_products(sl.products)
        skus = tuple(p.sku for p in sl.products)
        filled = filled_line(fill_categories(self.catalog, self._doc_for_folder, skus))
        if filled:
            sl.notes.append(filled)
        self.events.catalog_changed(CatalogChanged(skus, "products", "; ".join(
            [f"{len(sl.products)} products from {Path(path).name}", *([filled] if filled else [])])))
        return sl

    def bind_cards(self, *, cards: bool = True, names: str | None = "{sku}_{view}"):
        """Barcode cards and ``{sku}_{view}`` file names bind the session's results to SKUs (see
        :mod:`studio_app.core.catalog.binding`). Returns the BindReport (lines for the operator)."""
        from .catalog.binding import bind
        folders = [Path(e.folder) for e in self.session if e.folder and e.status not in ("queued", "processing")]
        rep = bind(self.catalog, folders, cards=cards, names=names, service=self._catalog_service())
        self._announce_bind(rep, "bind", f"{len(rep.assigned)} photos bound, {len(rep.cards)} cards, "
                                         f"{len(rep.review)} for review")
        return rep

    def products_panel(self, *, sku_contains: str = "", status: str | None = None, limit: int | None = None,
                       offset: int = 0, skus=None) -> list[ProductStatus]:
        """The product panel's rows (one page with ``limit``/``offset``; ``skus``: only these)."""
        return self.catalog.panel(sku_contains=sku_contains, status=status, limit=limit, offset=offset, skus=skus)

    def sku_labels(self) -> dict[str, str]:
        """Photo -> the SKUs its items belong to ("TOP-7, TRS-9"), for the session's photos: one
        query (the filmstrip's rows). Empty while the output folder has no catalog."""
        if self._catalog is None and not Catalog.exists(self.out_root):
            return {}
        photos = self._photos_by_folder()
        out: dict[str, list[str]] = {}
        for a in self.catalog.assignments():
            photo = photos.get(os.path.abspath(self.catalog.folder(a.folder)))
            if photo is not None:
                out.setdefault(photo, []).append(a.sku)
        return {p: ", ".join(dict.fromkeys(skus)) for p, skus in out.items()}

    def photos_of(self, sku: str) -> set[str]:
        """The session's photos with at least one item assigned to ``sku`` (the filmstrip's SKU filter)."""
        photos = self._photos_by_folder()
        found = (photos.get(os.path.abspath(self.catalog.folder(a.folder))) for a in self.catalog.assignments(sku=sku))
        return {p for p in found if p is not None}

    def _photos_by_folder(self) -> dict[str, str]:
        """Result folder (absolute, as written: no file-system calls) -> the session's photo."""
        return {os.path.abspath(e.folder): e.photo for e in self.session if e.folder}

    def _announce(self, docs, skus: tuple, reason: str, message: str = "") -> None:
        """Documents re-written, then the catalog change; products of ``skus`` that have no category
        take their photos' (:func:`fill_categories`), and the message says so."""
        if reason != "delete" and skus:
            filled = filled_line(fill_categories(self.catalog, self._doc_for_folder, [s for s in skus if s]))
            message = "; ".join(m for m in (message, filled) if m)
        for folder, doc in docs:
            e = self._entry_for_folder(folder)
            photo = e.photo if e is not None else str(folder)
            self.events.document_changed(DocumentChanged(photo, Path(folder), doc, "catalog"))
        self.events.catalog_changed(CatalogChanged(tuple(skus), reason, message))

    def _catalog_assignments(self, folder: Path):
        """``doc -> None`` that writes the catalog's assignments of ``folder`` into a document (an
        undone or redone edit keeps the SKUs assigned since), or None without a catalog."""
        if self._catalog is None and not Catalog.exists(self.out_root):
            return None
        try:
            rows = {a.zone: a for a in self.catalog.assignments(folder=folder)}
        except (CatalogError, OSError, ValueError) as exc:
            self._error(f"{folder.name}: the catalog assignments could not be read: {exc}")
            return None
        from .catalog.service import mirror_into
        return lambda doc: mirror_into(doc, rows)

    def _keep_assignments(self, folder: Path, doc: ResultDocument) -> ResultDocument:
        """A photo processed again keeps its items' SKUs: the catalog writes them back."""
        if self._catalog is None and not Catalog.exists(self.out_root):
            return doc
        try:
            done = CatalogService(self.catalog).mirror(folder)
        except (CatalogError, OSError, ValueError) as exc:
            self._error(f"{folder.name}: the catalog assignments could not be written back: {exc}")
            return doc
        return done[1] if done else doc

    # ---- barcode cards as photos arrive ------------------------------------------------------------
    @property
    def shooting(self) -> Shooting | None:
        run = self._binder.run if self._binder is not None else None
        return Shooting(run.sku, run.card_photo) if run is not None and run.active else None

    def _bind_live(self, folder: Path, doc: ResultDocument, card=None, *, card_read: bool = False) -> ResultDocument:
        """A photo just processed (the hot folder, a drop, Open): a barcode card sets the SKU of the
        photos that follow it; a photo after a card is bound to it (:class:`Binder`, the same rule
        as ``bind_cards``). ``card``: what the processor read on the photo's working copy
        (``card_read``: the built-in processors do); otherwise the file is read here. Runs on the
        processing thread; touches the catalog only when a card was seen."""
        from ml.io import ImageLoadError
        from .catalog.binding import LIVE_SIDE, BindReport, Binder, capture_key, read_card_file
        if not self.live_cards or doc.card is not None:
            return doc
        if not card_read:
            try:
                card = read_card_file(doc.source.path, LIVE_SIDE)
            except (OSError, ValueError, ImageLoadError) as exc:
                self._error(f"{folder.name}: not checked for a barcode card ({exc})")
                card = None
        if card is None and self.shooting is None:
            return doc
        if self._binder is None:
            self._binder = Binder(self.catalog, cards=False, service=self._catalog_service())
        rep = BindReport()
        try:
            self._binder.feed(folder, doc, rep, capture_key(doc.source.path), card=card)
        except (CatalogError, DocumentError, OSError) as exc:
            self._error(f"{folder.name}: not bound to a SKU ({exc})")
            return doc
        self._announce_bind(rep, "card" if card is not None else "bind")
        return self._doc_for_folder(folder)

    def _announce_bind(self, rep, reason: str, message: str | None = None) -> None:
        touched = dict.fromkeys([*rep.changed, *(self.catalog.folder(a.folder) for a in rep.assigned)])
        docs = [(f, self._doc_for_folder(f)) for f in touched]
        lines = ([f"shooting {s.sku}" if s.sku else f"unreadable card {s.card}: the next photos go to review"
                  for s in [self.shooting] if s is not None and reason == "card"]
                 + [f"new product {c} (card not in the shot list)" for c in rep.created]
                 + [f"{Path(self.catalog.folder(a.folder)).name} → {a.sku}" + (f" ({a.view})" if a.view else "")
                    for a in rep.assigned] + [w for _p, w in rep.review][:1])
        skus = tuple(sorted({a.sku for a in rep.assigned} | set(rep.created)
                            | ({self.shooting.sku} if self.shooting and self.shooting.sku else set())))
        self._announce(docs, skus, reason, "; ".join(lines) if message is None else message)

    def _close_catalog(self) -> None:
        with self._catalog_lock:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None
