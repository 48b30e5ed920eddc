"""The garment map on screen (issue 12): one tint per garment class over the photo, a toggle
per class and a legend, and the whole layer shown / hidden with ``G``.

The map travels like the mask: the canvas's loader thread reads ``garments.png`` (through
``ResultFolder.read_garments``) and shrinks it to display size once per shown photo
(:func:`load_display_map`); the GUI thread keeps that small label map and only swaps its
colour table when the operator toggles a class (:func:`tinted_pixmap`). Edits never change the map,
so redrawing after an edit neither reads the disk nor re-tints. ``PALETTE`` is the one home of
the class colours (overlay and legend)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap, qRgba
from PySide6.QtWidgets import QCheckBox, QGraphicsPixmapItem, QGridLayout, QLabel, QVBoxLayout, QWidget

from ml.garments.labels import CLASSES
from .overlays import display_mask

# class -> (colour, label); background has none (never tinted)
PALETTE: dict[str, tuple[str, str]] = {
    "skin": ("#f4a582", "Skin"), "hair": ("#8c510a", "Hair"), "headwear": ("#fee08b", "Headwear"),
    "top": ("#3288bd", "Top"), "bottom": ("#66c2a5", "Bottom"), "dress": ("#d53e4f", "Dress"),
    "legwear": ("#9e0142", "Legwear"), "shoes": ("#f46d43", "Shoes"), "bag": ("#5e4fa2", "Bag"),
    "accessory": ("#e6f598", "Accessory"),
}
ALPHA = 140            # of 255: the garment stays readable under its tint
Z_VALUE = 12           # above the mask (10), below the boxes (15/20) and keypoints


class DisplayMap:
    """A garment map at display size (uint8 class indices) and the classes present in it."""

    def __init__(self, labels: np.ndarray, scale: float):
        self.labels = np.ascontiguousarray(labels, dtype=np.uint8)
        self.scale = scale                     # display pixels per source pixel
        found = np.flatnonzero(np.bincount(self.labels.ravel(), minlength=len(CLASSES)))
        self.present = {CLASSES[i] for i in found if 0 < i < len(CLASSES)}


def load_display_map(folder: str, doc, display_scale: float) -> DisplayMap | None:
    """Loader thread: the document's garment map at display size; None when it has none or it
    cannot be read (the photo is shown without the layer)."""
    from studio_app.core.result import DocumentError
    from studio_app.core.result_folder import ResultFolder
    if doc is None or not getattr(doc, "garments", None):
        return None
    try:
        labels = ResultFolder(folder).read_garments(doc)
    except (DocumentError, OSError):
        return None
    if labels is None:
        return None
    s = min(1.0, display_scale)
    return DisplayMap(display_mask(labels, s), s)


def colour_table(hidden: set[str] = frozenset()) -> list[int]:
    """256 ARGB entries, one per class index (background and hidden classes clear)."""
    table = [0] * 256
    for i, name in enumerate(CLASSES):
        if name in PALETTE and name not in hidden:
            h = PALETTE[name][0].lstrip("#")
            table[i] = qRgba(int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), ALPHA)
    return table


def tinted_pixmap(labels: np.ndarray, hidden: set[str] = frozenset()) -> QPixmap:
    """The tinted layer of a display-size label map: the map is shown as an indexed image whose
    colour table is the palette, so a class toggle changes 256 entries, not a pass of numpy over
    the pixels (measured 28 ms against 108 ms for a 2560 x 1707 map on the loaded 2-core box)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    h, w = labels.shape
    img = QImage(labels.data, w, h, w, QImage.Format_Indexed8)    # a view of ``labels``...
    img.setColorTable(colour_table(set(hidden)))
    return QPixmap.fromImage(img)                                   # ...copied here, while alive


class GarmentLayer:
    """The garment overlay of the photo on screen (one pixmap item in the canvas's scene)."""

    def __init__(self, scene):
        self.scene = scene
        self.item: QGraphicsPixmapItem | None = None
        self.map: DisplayMap | None = None
        self.visible = False
        self.hidden: set[str] = set()

    @property
    def present(self) -> set[str] | None:
        """Classes in the shown map; None when the photo on screen has no garment map."""
        return None if self.map is None else set(self.map.present)

    def set_map(self, dmap: DisplayMap | None) -> None:
        self.clear()
        self.map = dmap
        if dmap is None:
            return
        self.item = QGraphicsPixmapItem()
        self.item.setScale(1.0 / dmap.scale)
        self.item.setZValue(Z_VALUE)
        self.item.setAcceptedMouseButtons(Qt.NoButton)
        self.item.setTransformationMode(Qt.FastTransformation)
        self.item.setVisible(self.visible)
        self.scene.addItem(self.item)
        if self.visible:
            self._retint()

    def _retint(self) -> None:
        if self.item is not None and self.map is not None:
            self.item.setPixmap(tinted_pixmap(self.map.labels, self.hidden))

    def clear(self) -> None:
        if self.item is not None:
            self.scene.removeItem(self.item)
        self.item, self.map = None, None

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        if self.item is not None:
            if on and self.item.pixmap().isNull():
                self._retint()                  # tinted on first show only
            self.item.setVisible(self.visible)

    def set_class_visible(self, name: str, on: bool) -> None:
        (self.hidden.discard if on else self.hidden.add)(name)
        if self.visible:
            self._retint()
        elif self.item is not None:
            self.item.setPixmap(QPixmap())      # re-tinted when shown


class GarmentLegend(QWidget):
    """Inspector section: "Show garment map (G)" and one checkbox per class with its colour.
    Classes not in the photo's map are greyed out."""
    visibleToggled = Signal(bool)
    classToggled = Signal(str, bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.show_box = QCheckBox("Show garment map  (G)")
        self.show_box.setToolTip("Tint each garment class over the photo (G)")
        self.show_box.toggled.connect(self.visibleToggled.emit)
        lay.addWidget(self.show_box)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(0)
        self.boxes: dict[str, QCheckBox] = {}
        for i, (name, (colour, label)) in enumerate(PALETTE.items()):
            cb = QCheckBox(label)
            cb.setChecked(True)
            cb.setStyleSheet(f"QCheckBox::indicator:checked {{ background: {colour}; border: 1px solid #808080; }}"
                             f"QCheckBox::indicator:unchecked {{ border: 1px solid {colour}; }}")
            cb.setToolTip(f"Show / hide the {label.lower()} tint")
            cb.toggled.connect(lambda on, n=name: self.classToggled.emit(n, bool(on)))
            grid.addWidget(cb, i // 2, i % 2)
            self.boxes[name] = cb
        lay.addLayout(grid)
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.set_present(None)

    def set_shown(self, on: bool) -> None:
        """Follow the View menu's action without echoing back."""
        self.show_box.blockSignals(True)
        self.show_box.setChecked(bool(on))
        self.show_box.blockSignals(False)

    def set_present(self, present: set[str] | None) -> None:
        """The classes of the photo on screen (None: it has no garment map)."""
        self.show_box.setEnabled(present is not None)
        for name, cb in self.boxes.items():
            cb.setEnabled(present is not None and name in present)
        self.note.setText("" if present is not None else "no garment map (person photos only)")
