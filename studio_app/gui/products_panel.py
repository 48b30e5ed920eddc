"""The product panel (a dock): the catalog's SKUs with their completeness ("3/5 · missing back,
detail"), filtered by SKU text and by status; import a shot list, create a product; assign the
photos selected in the filmstrip, or the item selected on the photo (the top of an on-model shot to
one SKU, the trousers to another) to the selected SKU; set an item's view; mark the product's main
image; show only the selected SKU's photos in the filmstrip; the SKU being shot (the last barcode
card the hot folder brought).

Every request is a Studio intent (``assign``, ``assign_photos``, ``import_shot_list``,
``add_product``) run on one helper thread (they read and write result documents); the list
changes only when the Studio's ``catalog_changed`` event comes (:meth:`on_catalog_changed`).
Shortcuts live on the window's Products menu (:mod:`actions`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QGridLayout, QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QListView, QMessageBox, QPushButton, QVBoxLayout,
                               QWidget)

from studio_app.core.catalog import CatalogError, Product, parse_views
from studio_app.core.catalog.binding import KNOWN_VIEWS
from .products_model import SKU_ROLE, STATUS_FILTERS, ProductsModel

AUTO_VIEW = "(next missing view)"
SHOT_LIST_FILTER = "Shot lists (*.csv *.xlsx *.xlsm *.txt);;All files (*)"


class ProductsPanel(QDockWidget):
    message = Signal(str, int)            # status-bar text, milliseconds (from any thread)
    problem = Signal(str, str)            # title, text of a refusal worth a box (a shot list's bad rows)

    def __init__(self, studio, view, parent=None):
        super().__init__("Products", parent)
        self.setObjectName("products-dock")
        self.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.studio, self.view = studio, view
        self._want: str | None = None          # a product just created: selected when its event comes
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="catalog")
        self.model = ProductsModel(studio, self)
        self._build()
        self.box: QMessageBox | None = None
        self.problem.connect(self._show_problem, Qt.QueuedConnection)
        self._filter_timer = QTimer(self, singleShot=True, interval=150, timeout=self._apply_filter)
        # the status counts (one grouped query, ~45 ms at 10,000 products under load): once per burst
        self._counts_timer = QTimer(self, singleShot=True, interval=300, timeout=self._show_counts)
        # the filmstrip rows' SKUs: one query per burst of catalog changes or newly listed photos
        self._labels_timer = QTimer(self, singleShot=True, interval=300, timeout=self.refresh_labels)
        self.model.reload()
        self._show_counts()
        self._product_changed()
        self.refresh_labels()
        self.show_shooting(studio.shooting)

    def _build(self) -> None:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(8, 4, 8, 8)
        self.shooting = QLabel("")
        self.shooting.setObjectName("heading")
        self.shooting.setWordWrap(True)
        lay.addWidget(self.shooting)
        self.filter = QLineEdit(placeholderText="Filter SKUs (Ctrl+K)", clearButtonEnabled=True)
        self.filter.textChanged.connect(lambda _t: self._filter_timer.start())
        self.status = QComboBox()
        for text, value in STATUS_FILTERS:
            self.status.addItem(text, value)
        self.status.currentIndexChanged.connect(lambda _i: self._apply_filter())
        row = QHBoxLayout()
        row.addWidget(self.filter, 3)
        row.addWidget(self.status, 2)
        lay.addLayout(row)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setUniformItemSizes(True)
        self.list.setAlternatingRowColors(True)
        self.list.selectionModel().currentChanged.connect(lambda *_: self._product_changed())
        lay.addWidget(self.list, 1)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setObjectName("muted")
        lay.addWidget(self.details)
        grid = QGridLayout()
        self.view_combo = QComboBox(editable=True)
        self.view_combo.setToolTip("The view given to what you assign: the product's next missing view, or pick one")
        grid.addWidget(QLabel("View"), 0, 0)
        grid.addWidget(self.view_combo, 0, 1, 1, 2)
        self.b_photos = self._button(grid, 1, 0, "Assign photos", "S", self.assign_photos)
        self.b_item = self._button(grid, 1, 1, "Assign item", "Shift+S", self.assign_item)
        self.b_main = self._button(grid, 1, 2, "Main image", "H", self.set_main)
        self.b_import = self._button(grid, 2, 0, "Import…", "Ctrl+Shift+I", self.import_dialog)
        self.b_new = self._button(grid, 2, 1, "New…", "Ctrl+N", self.new_product_dialog)
        self.b_view = self._button(grid, 2, 2, "Set view", "W", self.set_view)
        lay.addLayout(grid)
        self.only_sku = QCheckBox("Filmstrip: only this SKU (Shift+F)")
        self.only_sku.toggled.connect(lambda _on: self.refresh_filmstrip_filter())
        lay.addWidget(self.only_sku)
        self.setWidget(w)
        self._fill_views(None)

    @staticmethod
    def _button(grid, r, c, text, key, slot) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(f"{text} ({key})")
        b.clicked.connect(lambda: slot())
        grid.addWidget(b, r, c)
        return b

    # ---- the list ---------------------------------------------------------------------------------
    def _apply_filter(self) -> None:
        keep = self.selected_sku()
        self.model.set_filter(self.filter.text(), self.status.currentData())
        self._show_counts()
        self.select_sku(keep) or self._product_changed()

    def _show_counts(self) -> None:
        counts = self.studio.catalog.panel_counts(sku_contains=self.filter.text().strip())
        total = sum(counts.values())
        for i, (text, value) in enumerate(STATUS_FILTERS):
            self.status.setItemText(i, f"{text} ({total if value is None else counts.get(value, 0)})")

    def selected_sku(self) -> str | None:
        ix = self.list.currentIndex()
        return ix.data(SKU_ROLE) if ix.isValid() else None

    def selected_product(self):
        return self.model.product_at(self.list.currentIndex().row())

    def select_sku(self, sku: str | None) -> bool:
        row = self.model.row_of(sku)
        if row < 0:
            return False
        self.list.selectionModel().setCurrentIndex(self.model.index(row), QItemSelectionModel.ClearAndSelect)
        return True

    def row_text(self, sku: str) -> str:
        """The completeness line the operator reads for ``sku`` ('' when it is not listed)."""
        p = self.model.product_at(self.model.row_of(sku))
        return p.completeness() if p is not None else ""

    def _product_changed(self) -> None:
        p = self.selected_product()
        self._fill_views(p)
        if p is None:
            self.details.setText("Import a shot list (Ctrl+Shift+I) or create a product (Ctrl+N)"
                                 if not self.model.rowCount() else "")
        else:
            bits = [p.name, p.colour, p.category and f"category: {p.category}",
                    f"{p.images} image(s)" + (" · main set" if p.has_main else "")]
            self.details.setText(" · ".join(b for b in bits if b))
        self.refresh_filmstrip_filter()

    def _fill_views(self, p) -> None:
        current = self.view_combo.currentText()
        self.view_combo.clear()
        self.view_combo.addItem(AUTO_VIEW)
        for v in dict.fromkeys([*(p.expected if p else ()), *KNOWN_VIEWS]):
            self.view_combo.addItem(v)
        if current and current != AUTO_VIEW and self.view_combo.findText(current) >= 0:
            self.view_combo.setCurrentText(current)

    def focus_filter(self) -> None:
        self.filter.setFocus()
        self.filter.selectAll()

    # ---- Studio events ------------------------------------------------------------------------------
    def on_catalog_changed(self, ev) -> None:
        keep = self.selected_sku()
        self.model.catalog_changed(ev)
        for t in (self._counts_timer, self._labels_timer):
            if not t.isActive():
                t.start()
        want, self._want = (self._want, None) if self._want in ev.skus else (None, self._want)
        if want or (keep and self.selected_sku() != keep):
            self.select_sku(want or keep)
        self._product_changed()
        if ev.reason == "card":
            self.show_shooting(self.studio.shooting)
            self.select_sku(self.studio.shooting.sku) if self.studio.shooting else None
        if ev.message:
            self.message.emit(ev.message, 6000)

    def show_shooting(self, shooting) -> None:
        """The SKU being shot (set by the last barcode card), or why nothing is bound now."""
        self.shooting.setVisible(shooting is not None)
        if shooting is not None:
            self.shooting.setText(f"Shooting: {shooting.sku}" if shooting.sku else
                                  f"Shooting: ? — unreadable card {shooting.card}; next photos go to review")

    def entries_listed(self) -> None:
        """Photos were listed or finished: their SKUs reach the filmstrip with the next refresh."""
        if not self._labels_timer.isActive():
            self._labels_timer.start()

    def refresh_labels(self) -> None:
        self.view.model.set_skus(self.studio.sku_labels())

    def refresh_filmstrip_filter(self) -> None:
        sku = self.selected_sku() if self.only_sku.isChecked() else None
        self.view.filmstrip.set_photo_filter(None if sku is None else self.studio.photos_of(sku))

    # ---- operator intents -----------------------------------------------------------------------------
    def _view_for(self, p, k: int = 0) -> str | None:
        """The chosen view; with 'next missing view' the product's k-th missing expected view."""
        text = self.view_combo.currentText().strip()
        if text and text != AUTO_VIEW:
            return text
        missing = list(p.missing) if p is not None else []
        return missing[k] if k < len(missing) else None

    def _need_sku(self) -> str | None:
        sku = self.selected_sku()
        if sku is None:
            self.message.emit("choose a product in the Products panel first (Ctrl+K to find it)", 5000)
        return sku

    def _run(self, fn, done: str = "", box: str = "") -> None:
        """``fn`` on the helper thread; ``done`` (``{r}``: its result) goes to the status bar, a
        refusal too, or into a message box titled ``box``."""
        def job():
            try:
                r = fn()
            except (CatalogError, OSError, ValueError) as exc:     # ShotListError, DocumentError: for the operator
                if box:
                    self.problem.emit(box, str(exc))
                else:
                    self._emit(str(exc), 8000)
                return
            except Exception as exc:          # never lost silently on the helper thread
                self._emit(f"the catalog request failed: {type(exc).__name__}: {exc}", 10000)
                return
            if done:
                self._emit(done.format(r=r), 4000)
        self._pool.submit(job)

    def _show_problem(self, title: str, text: str) -> None:
        self.box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, self)
        self.box.open()

    def _emit(self, text: str, ms: int) -> None:
        try:
            self.message.emit(text, ms)
        except RuntimeError:          # the window closed meanwhile
            pass

    def assign_photos(self) -> None:
        """The photos selected in the filmstrip go to the selected SKU (each its next missing view)."""
        sku, p = self._need_sku(), self.selected_product()
        photos = self.view.filmstrip.selected_photos()
        if sku is None or not photos:
            return
        views = [self._view_for(p, k) for k in range(len(photos))]

        def job():
            return sum(self.studio.assign_photos([ph], sku, v) for ph, v in zip(photos, views))
        self._run(job, f"{len(photos)} photo(s) assigned to {sku}")

    def _item(self):
        doc, zone = self.view.canvas.doc, self.view.inspector.zone
        photo = self.view.current_photo()
        it = doc.item(zone) if doc is not None and zone else None
        if it is None or photo is None:
            self.message.emit("choose an item on the photo first (click its box)", 5000)
            return None, None
        return photo, it

    def assign_item(self) -> None:
        """The item selected on the photo goes to the selected SKU (on-model shots: ``on-model``)."""
        sku, p = self._need_sku(), self.selected_product()
        photo, it = self._item()
        if sku is None or it is None:
            return
        view = self._view_for(p)
        if self.view_combo.currentText() == AUTO_VIEW and self.view.canvas.doc.kind == "person" \
                and (p is None or "on-model" in p.expected or not p.expected):
            view = "on-model"
        zone = it.zone
        self._run(lambda: self.studio.assign(photo, zone, sku, view), f"{zone} → {sku}" + (f" ({view})" if view else ""))

    def set_view(self) -> None:
        """The selected item keeps its SKU (else takes the selected one) and gets the chosen view."""
        photo, it = self._item()
        if it is None:
            return
        sku = it.sku or self._need_sku()
        view = self.view_combo.currentText().strip()
        if sku is None:
            return
        if not view or view == AUTO_VIEW:
            self.message.emit("pick a view in the Products panel's View box first", 5000)
            return
        zone, main = it.zone, it.main
        self._run(lambda: self.studio.assign(photo, zone, sku, view, main), f"{zone}: view {view}")

    def set_main(self) -> None:
        """The selected item becomes its product's main image."""
        photo, it = self._item()
        if it is None:
            return
        sku = it.sku or self._need_sku()
        if sku is None:
            return
        zone, view = it.zone, it.view or self._view_for(self.selected_product())
        self._run(lambda: self.studio.assign(photo, zone, sku, view, True), f"main image of {sku}: {zone}")

    def bind_cards(self) -> None:
        """Barcode cards and ``{sku}_{view}`` names bind the session's photos (in capture order)."""
        self._run(lambda: len(self.studio.bind_cards().assigned), "{r} photo(s) bound by cards and file names")

    def import_shot_list(self, path: str) -> None:
        self._run(lambda: self.studio.import_shot_list(path), box="Shot list not imported")

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a shot list", str(Path.home()), SHOT_LIST_FILTER)
        if path:
            self.import_shot_list(path)

    def new_product(self, sku: str, views: str = "") -> None:
        sku = sku.strip()

        def job():
            if self.studio.catalog.product(sku) is not None:
                raise CatalogError(f"product {sku} exists already")
            self.studio.add_product(Product(sku, views=parse_views(views), origin="manual"))
        self._want = sku
        self._run(job, f"new product {sku}")

    def new_product_dialog(self) -> None:
        text, ok = QInputDialog.getText(self, "New product", "SKU, then the expected views (e.g. TEE-01 front back detail):",
                                        text=self.filter.text().strip())
        if ok and text.strip():
            sku, _, views = text.strip().partition(" ")
            self.new_product(sku, views)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
