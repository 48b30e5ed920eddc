"""The right-hand panel: the photo's kind (with "treat as product/person"), the selected item
(zone, box numbers, swatch chip with hex + colour family, eyedropper, re-run k-means, lock,
delete, fit to garment), the category (the product photo's, or the selected garment's) with its
confidence and a combo to change it, add zone, the garment map's legend, approve/reject, and the
warnings list."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QListWidget,
                               QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from studio_app.core.session import STATUS_LABELS
from . import theme
from .garments_view import GarmentLegend


def _heading(text: str) -> QLabel:
    lb = QLabel(text)
    lb.setObjectName("heading")
    return lb


def sku_text(it) -> str:
    """The item's catalog line: ``SKU TOP-7 · on-model · main image``."""
    if it is None:
        return ""
    if not it.sku:
        return "SKU: not assigned"
    return " · ".join(b for b in (f"SKU {it.sku}", it.view, "main image" if it.main else "") if b)


class Inspector(QWidget):
    zoneSelected = Signal(str)
    flipKind = Signal()
    eyedropper = Signal(bool)
    rerunKmeans = Signal(str)
    lockToggled = Signal(str, bool)
    deleteZone = Signal(str)
    addZone = Signal(str)
    approve = Signal()
    reject = Signal()
    resetMask = Signal()
    fitToGarment = Signal(str)
    categoryChosen = Signal(str, object)      # category name, zone (None: the product photo's)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumWidth(260)
        self.setMaximumWidth(340)
        self.doc = None
        self.zone: str | None = None
        self._category_shown: str | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 6, 12, 12)
        lay.setSpacing(6)

        self.title = QLabel("No photo")
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() + 1.5)
        f.setBold(True)
        self.title.setFont(f)
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.status = QLabel("")
        lay.addWidget(self.status)

        lay.addWidget(_heading("Kind"))
        row = QHBoxLayout()
        self.kind = QLabel("–")
        row.addWidget(self.kind, 1)
        self.flip = QPushButton("Treat as product")
        self.flip.setToolTip("Process this photo again as the other kind")
        self.flip.clicked.connect(lambda: self.flipKind.emit())
        row.addWidget(self.flip)
        lay.addLayout(row)

        lay.addWidget(_heading("Item"))
        self.zones = QComboBox()
        self.zones.currentTextChanged.connect(self._zone_changed)
        lay.addWidget(self.zones)
        self.box_label = QLabel("")
        self.box_label.setObjectName("muted")
        self.box_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.box_label)
        self.sku_label = QLabel("")
        self.sku_label.setToolTip("The product this item belongs to (Products panel: S, Shift+S, W, H)")
        lay.addWidget(self.sku_label)

        sw = QHBoxLayout()
        self.chip = QFrame()
        self.chip.setFixedSize(44, 44)
        self.chip.setFrameShape(QFrame.Box)
        sw.addWidget(self.chip)
        info = QVBoxLayout()
        self.hex = QLabel("")
        self.hex.setTextInteractionFlags(Qt.TextSelectableByMouse)
        fh = self.hex.font()
        fh.setFamily("monospace")
        fh.setBold(True)
        self.hex.setFont(fh)
        self.family = QLabel("")
        self.family.setObjectName("muted")
        info.addWidget(self.hex)
        info.addWidget(self.family)
        sw.addLayout(info, 1)
        lay.addLayout(sw)

        grid = QGridLayout()
        self.pick = QPushButton("Eyedropper")
        self.pick.setCheckable(True)
        self.pick.setToolTip("Click the photo to set the swatch colour (I)")
        self.pick.toggled.connect(self.eyedropper.emit)
        self.kmeans = QPushButton("Re-run k-means")
        self.kmeans.setToolTip("Measure the dominant colour of this item again")
        self.kmeans.clicked.connect(lambda: self.zone and self.rerunKmeans.emit(self.zone))
        self.lock = QCheckBox("Lock box")
        self.lock.setToolTip("A locked box stays where it is when keypoints move")
        self.lock.clicked.connect(lambda on: self.zone and self.lockToggled.emit(self.zone, bool(on)))
        self.delete = QPushButton("Delete zone")
        self.delete.clicked.connect(lambda: self.zone and self.deleteZone.emit(self.zone))
        grid.addWidget(self.pick, 0, 0)
        grid.addWidget(self.kmeans, 0, 1)
        grid.addWidget(self.lock, 1, 0)
        grid.addWidget(self.delete, 1, 1)
        self.fit = QPushButton("Fit to garment")
        self.fit.setToolTip("Set the box to this garment's own pixels in the garment map (Shift+G)")
        self.fit.clicked.connect(lambda: self.zone and self.fitToGarment.emit(self.zone))
        grid.addWidget(self.fit, 2, 0, 1, 2)
        lay.addLayout(grid)
        self._build_category(lay)
        add = QHBoxLayout()
        self.add_combo = QComboBox()
        self.add_btn = QPushButton("Add zone")
        self.add_btn.clicked.connect(lambda: self.add_combo.currentText() and self.addZone.emit(self.add_combo.currentText()))
        add.addWidget(self.add_combo, 1)
        add.addWidget(self.add_btn)
        lay.addLayout(add)
        self.reset_mask = QPushButton("Reset mask to the model's")
        self.reset_mask.clicked.connect(lambda: self.resetMask.emit())
        lay.addWidget(self.reset_mask)

        lay.addWidget(_heading("Garments"))
        self.legend = GarmentLegend()
        lay.addWidget(self.legend)

        lay.addWidget(_heading("Review"))
        rv = QHBoxLayout()
        self.approve_btn = QPushButton("Approve  (A)")
        self.approve_btn.setObjectName("approve")
        self.approve_btn.clicked.connect(lambda: self.approve.emit())
        self.reject_btn = QPushButton("Reject  (R)")
        self.reject_btn.setObjectName("reject")
        self.reject_btn.clicked.connect(lambda: self.reject.emit())
        rv.addWidget(self.approve_btn)
        rv.addWidget(self.reject_btn)
        lay.addLayout(rv)

        lay.addWidget(_heading("Warnings"))
        self.warnings = QListWidget()
        self.warnings.setWordWrap(True)
        self.warnings.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)
        lay.addWidget(self.warnings, 1)
        self.set_document(None)

    def _build_category(self, lay) -> None:
        from studio_app.core.categories import CategoryTableError, load_table
        from studio_app.core.edits_apparel import category_names
        self.category_label = QLabel("")
        self.category_label.setWordWrap(True)
        self.category_label.setToolTip("The product's category: it fills the shop files' Type / "
                                       "Product Category and google_product_category / product_type")
        self.category = QComboBox()
        self.category.setToolTip("Change the category (saved, undoable; used by the next export)")
        try:
            self._category_table = load_table()
        except CategoryTableError:
            self._category_table = {}
        for name in category_names():
            self.category.addItem(self._category_text(name), name)
        self.category.activated.connect(self._category_activated)
        lay.addWidget(_heading("Category"))
        row = QHBoxLayout()
        row.addWidget(self.category, 1)
        row.addWidget(self.category_label, 1)
        lay.addLayout(row)

    def _category_text(self, name: str) -> str:
        return (self._category_table.get(name) or {}).get("label") or name

    def _category_zone(self) -> str | None:
        """Whose category the combo shows: the product photo's (None), else the selected item's."""
        return None if self.doc is None or self.doc.kind == "product" else self.zone

    def _category_activated(self, index: int) -> None:
        name = self.category.itemData(index)
        if self.doc is not None and name and name != self._category_shown:
            self.categoryChosen.emit(name, self._category_zone())

    def _show_category(self) -> None:
        name, text = None, "–"
        if self.doc is not None and self.doc.kind == "product":
            c = self.doc.category
            if c is not None:
                name = c["name"]
                text = "set by hand" if c.get("by_hand") else f"{c['confidence']:.0%} sure"
            else:
                text = "not classified"
        elif self.doc is not None:
            it = self.doc.item(self.zone) if self.zone else None
            if it is not None and it.category:
                name, text = it.category, f"of the {it.zone} item"
            elif it is not None:
                text = "none for this item"
        self._category_shown = name
        self.category_label.setText(text)
        i = self.category.findData(name) if name else -1
        self.category.setCurrentIndex(i)
        self.category.setEnabled(self.doc is not None and (self.doc.kind == "product" or bool(self.zone)))

    # ---- content ----------------------------------------------------------------------------
    def set_document(self, doc, entry=None, zone: str | None = None) -> None:
        self.doc = doc
        has = doc is not None
        for w in (self.flip, self.zones, self.pick, self.kmeans, self.lock, self.delete, self.add_combo,
                  self.add_btn, self.approve_btn, self.reject_btn, self.reset_mask):
            w.setEnabled(has)
        self.warnings.clear()
        self.set_status(entry)
        if entry is not None and entry.status == "error":
            self.warnings.addItem(entry.message)
            self.warnings.item(0).setForeground(QColor(theme.STATUS_COLOURS["error"]))
        if not has:
            self.kind.setText("–")
            self.zones.blockSignals(True)
            self.zones.clear()
            self.zones.blockSignals(False)
            self._show_item(None)
            return
        self.kind.setText(f"{doc.kind}  ({doc.kind_confidence:.0%} sure)" if not doc.kind_override
                          else f"{doc.kind}  (set by hand)")
        if doc.card is not None:       # a barcode card photo: recorded, never exported
            self.kind.setText(f"barcode card {doc.card.get('code') or '(unreadable)'} · not exported")
        self.flip.setText("Treat as person" if doc.kind == "product" else "Treat as product")
        for w in doc.warnings:
            self.warnings.addItem(w)
        if not doc.warnings and entry is not None and entry.status != "error":
            self.warnings.addItem("none")
        zones = [it.zone for it in doc.items]
        self.zones.blockSignals(True)
        self.zones.clear()
        self.zones.addItems(zones)
        if zone in zones:
            self.zones.setCurrentText(zone)
        elif self.zone in zones:
            self.zones.setCurrentText(self.zone)
        self.zones.blockSignals(False)
        from studio_app.core.edits import PERSON_ZONES
        allowed = PERSON_ZONES if doc.kind == "person" else ("product",)
        self.add_combo.clear()
        self.add_combo.addItems([z for z in allowed if z not in zones])
        self.add_btn.setEnabled(self.add_combo.count() > 0)
        self.add_combo.setEnabled(self.add_combo.count() > 0)
        self.reset_mask.setEnabled(doc.model_mask is not None)
        self._show_item(self.zones.currentText() or None)

    def set_status(self, entry) -> None:
        """The photo's name and status, worded and coloured as in the filmstrip (both read the
        session entry: after an export both say Exported)."""
        if entry is None:
            self.title.setText("No photo")
            self.status.setText("")
            return
        self.title.setText(entry.name)
        col = theme.STATUS_COLOURS.get(entry.status, theme.MUTED)
        self.status.setText(f"<span style='color:{col}'>● {STATUS_LABELS.get(entry.status, entry.status)}</span>")

    def _zone_changed(self, zone: str) -> None:
        self._show_item(zone or None)
        if zone:
            self.zoneSelected.emit(zone)

    def select_zone(self, zone: str) -> None:
        if self.zones.findText(zone) >= 0:
            self.zones.setCurrentText(zone)

    def _show_item(self, zone: str | None) -> None:
        self.zone = zone
        it = self.doc.item(zone) if (self.doc is not None and zone) else None
        for w in (self.pick, self.kmeans, self.lock, self.delete):
            w.setEnabled(it is not None)
        from ml.stages.garment_zones import ZONE_CLASSES
        self.fit.setEnabled(it is not None and bool(self.doc.garments) and zone in ZONE_CLASSES)
        self._show_category()
        self.sku_label.setText(sku_text(it))
        if it is None:
            self.box_label.setText("")
            self.hex.setText("")
            self.family.setText("")
            self.chip.setStyleSheet(f"background: {theme.BASE}; border: 1px solid {theme.BORDER};")
            return
        x0, y0, x1, y1 = it.box
        self.box_label.setText(f"x {x0:.0f}–{x1:.0f}, y {y0:.0f}–{y1:.0f}  ({x1 - x0:.0f} × {y1 - y0:.0f} px)")
        self.lock.setChecked(it.locked)
        if it.swatch is not None:
            self.hex.setText(it.swatch.hex)
            self.family.setText(it.swatch.family)
            self.chip.setStyleSheet(f"background: {it.swatch.hex}; border: 1px solid #808080;")
        else:
            self.hex.setText("no swatch" if zone != "full" else "")
            self.family.setText("")
            self.chip.setStyleSheet(f"background: {theme.BASE}; border: 1px dashed {theme.BORDER};")
        self.kmeans.setEnabled(zone != "full")
        self.pick.setEnabled(zone != "full")
