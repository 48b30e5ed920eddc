"""The photo view: zoom (wheel, +/-), pan (drag with the middle button, or Space + left drag),
fit / 1:1, drop target for files and folders, and the editable overlays of the current result.

Scene units are pixels of the oriented source photo. The photo itself is shown from a copy
decoded on a pool thread at display size (<= DISPLAY_MAX_SIDE), so the GUI thread never
decodes a full-size photo."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView

from .decode import decode_scaled
from .garments_view import GarmentLayer, load_display_map
from .overlays import BoxItem, BrushCursor, MaskItem, Skeleton, mask_overlay_image

DISPLAY_MAX_SIDE = 2560
ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 16.0


class _LoadSignals(QObject):
    done = Signal(str, str, object, object, object)   # token, photo, QImage | None, _MaskData | None,
                                                     # garments_view.DisplayMap | None


class _MaskData:
    """The mask as read by the loader: the source-size array (kept for edits) and its tinted
    display-size overlay image, made on the loader thread."""

    def __init__(self, array: np.ndarray, overlay: QImage | None, scale: float):
        self.array, self.overlay, self.scale = array, overlay, scale


def decode_display_image(photo: str, max_side: int = DISPLAY_MAX_SIDE) -> QImage | None:
    """The photo decoded at display size (OpenCV's reduced decoding, without the GIL; else
    QImageReader; RAW and anything neither reads via the project's loader). Any thread."""
    img = decode_scaled(photo, max_side)
    r = QImageReader(photo)
    r.setAutoTransform(True)
    full = r.size()
    if img is None and full.isValid() and full.width() > 0:
        # autoTransform may swap w/h (EXIF rotation); scale by the long side either way
        s = max_side / max(full.width(), full.height())
        if s < 1:
            r.setScaledSize(QSize(max(1, round(full.width() * s)), max(1, round(full.height() * s))))
        q = r.read()
        if not q.isNull():
            img = q.convertToFormat(QImage.Format_RGB32)
    if img is None:
        try:
            from studio_app.core.edits import load_rgb
            rgb = np.ascontiguousarray(load_rgb(photo))
            import cv2
            h, w = rgb.shape[:2]
            s = min(1.0, max_side / max(h, w))
            if s < 1:
                rgb = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            h, w = rgb.shape[:2]
            img = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).convertToFormat(QImage.Format_RGB32)
        except Exception:
            img = None
    return img


def _file_signature(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class _LoadJob(QRunnable):
    """Off the GUI thread: decode the photo at display size (unless the caller already has it),
    read mask.png and build its tinted overlay at display size, read a person's garment map and
    shrink it to display size."""

    def __init__(self, token: str, photo: str, mask_path: str | None, img: QImage | None,
                 signals: _LoadSignals, doc=None, folder: str | None = None):
        super().__init__()
        self.token, self.photo, self.mask_path, self.img, self.signals = token, photo, mask_path, img, signals
        self.doc, self.folder = doc, folder

    def run(self) -> None:
        img = self.img if self.img is not None else decode_display_image(self.photo)
        mask = None
        if img is not None and self.mask_path and Path(self.mask_path).exists():
            import cv2
            arr = cv2.imread(self.mask_path, cv2.IMREAD_GRAYSCALE)
            if arr is not None:
                scale = img.width() / max(1, arr.shape[1])
                mask = _MaskData(arr, mask_overlay_image(arr, min(1.0, scale)), scale)
        garments = None
        if img is not None and self.folder and self.doc is not None:
            garments = load_display_map(self.folder, self.doc, img.width() / max(1, self.doc.source.width))
        self.signals.done.emit(self.token, self.photo, img, mask, garments)


class Canvas(QGraphicsView):
    filesDropped = Signal(list)                  # [path str] (files and folders)
    keypointMoved = Signal(str, float, float)    # name, x, y (source pixels)
    boxChanged = Signal(str, list)               # zone, [x0, y0, x1, y1]
    zoneSelected = Signal(str)
    maskStroke = Signal(list, float, bool)       # [(x, y)], radius (source px), add
    colourPicked = Signal(float, float)          # eyedropper point (source px)
    zoomChanged = Signal(float)
    shown = Signal(str)                          # photo whose image + overlays are on screen
    interactionEnded = Signal()                  # the mouse button that dragged / brushed went up

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        # a few dozen items: no BSP index (the index keeps asking the Python items for their
        # boundingRect, each call a trip through the GIL)
        self.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        self.setAcceptDrops(True)
        self.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.NoDrag)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QColor("#262626"))
        self.photo_item: QGraphicsPixmapItem | None = None
        self.mask_item: MaskItem | None = None
        self.skeleton: Skeleton | None = None
        self.boxes: dict[str, BoxItem] = {}
        self.brush = BrushCursor()
        self.scene().addItem(self.brush)
        self.garments = GarmentLayer(self.scene())     # the garment map (kept across edits)
        self.mode = "select"                     # select | brush_add | brush_erase | eyedropper
        self.brush_radius = 20.0                 # source pixels
        self.aspect: float | None = None         # aspect lock for box resizing
        self.show_mask = True
        self.photo: str | None = None
        self.doc = None
        self.display_scale = 1.0
        self.selected_zone: str | None = None
        self._fit = True
        self._space = False
        self._panning: QPointF | None = None
        self._stroke: list[tuple[float, float]] | None = None
        self._held = False                       # a mouse button is down on the photo (drag, brush)
        self._token = 0
        self._pending_doc = None
        self._image: QImage | None = None        # display-size decode of the photo on screen
        self._image_sig: tuple | None = None     # (mtime, size) of the file it was decoded from
        self._mask_array: np.ndarray | None = None
        self._signals = _LoadSignals()
        self._signals.done.connect(self._loaded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._hint = QGraphicsSimpleTextItem("Drop photos or a folder here\nor choose a hot folder (File menu)")
        self._hint.setBrush(QColor("#8c8c8c"))
        f = self._hint.font()
        f.setPointSize(14)
        self._hint.setFont(f)
        self.scene().addItem(self._hint)

    # ---- showing a photo and its result --------------------------------------------------------
    @property
    def interacting(self) -> bool:
        """The operator is dragging a keypoint or box, brushing or panning right now."""
        return self._held or self._stroke is not None or self._panning is not None

    def show_photo(self, photo: str | None, doc=None, folder: str | None = None, reload: bool = False) -> None:
        """Show ``photo`` with the overlays of ``doc``. Decoding the photo, reading mask.png and
        tinting it happen on a loader thread; the GUI thread only wraps ready images.
        ``reload``: the file on disk changed (processed again): decode it again."""
        if photo is None:
            self.clear()
            return
        self._token += 1
        self._pending_doc = (doc, folder)
        mask_path = str(Path(folder) / doc.mask) if (doc is not None and folder) else None
        sig = _file_signature(photo)
        same = photo == self.photo and self._image is not None and not (reload and sig != self._image_sig)
        if not same and photo == self.photo:
            self.photo = None                    # new pixels (the file changed): they replace the old pixmap
        if not same:
            self._image_sig = sig
        if same and mask_path is None:
            self._pool.clear()
            self.garments.clear()
            self.set_document(doc, folder)
            self.shown.emit(photo)
            return
        self._pool.start(_LoadJob(str(self._token), photo, mask_path, self._image if same else None,
                                  self._signals, doc, folder))

    def _loaded(self, token: str, photo: str, img, mask, garments=None) -> None:
        if token != str(self._token):
            return                              # the operator moved on meanwhile
        doc, folder = self._pending_doc
        if photo == self.photo and img is self._image and self.photo_item is not None:
            # the same photo again (re-processed / reloaded): keep the pixmap, new overlays
            self._clear_overlays()
            self._set_mask_data(mask)
            self.garments.set_map(garments)
            self._build_overlays(doc, mask)
            self.doc = doc
            self.shown.emit(photo)
            return
        self._clear_items()
        self.photo = photo
        self._image = img
        self._hint.setVisible(False)
        if img is None:
            self._hint.setText(f"{Path(photo).name} cannot be shown\n(the reason is under Warnings, on the right)")
            self._hint.setVisible(True)
            self.scene().setSceneRect(self._hint.boundingRect().adjusted(-40, -40, 40, 40))
            self.fit()
            self.doc = None
            self.shown.emit(photo)
            return
        src_w = doc.source.width if doc is not None else img.width()
        self.display_scale = img.width() / max(1, src_w)
        self.photo_item = QGraphicsPixmapItem(QPixmap.fromImage(img))
        self.photo_item.setTransformationMode(Qt.SmoothTransformation)
        self.photo_item.setScale(1.0 / self.display_scale)
        self.photo_item.setZValue(0)
        # rendered once per zoom level, then blitted: overlay edits, the brush cursor and list
        # updates do not rescale the photo again
        self.photo_item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.scene().addItem(self.photo_item)
        self.scene().setSceneRect(QRectF(0, 0, img.width() / self.display_scale, img.height() / self.display_scale))
        self._set_mask_data(mask)
        self.garments.set_map(garments)
        self._build_overlays(doc, mask)
        self.doc = doc
        self.fit()
        self.shown.emit(photo)

    def _set_mask_data(self, mask) -> None:
        self._mask_array = None if mask is None else mask.array

    def set_document(self, doc, folder: str | None = None, mask: np.ndarray | None = None) -> None:
        """Rebuild the overlays of the photo on screen (after an edit / undo). The mask layer is
        rebuilt only when ``mask`` is a different array from the one shown (a mask edit or its
        undo); otherwise the shown layer is kept: no disk read, no re-tinting."""
        self.doc = doc
        keep_mask = (doc is not None and self.mask_item is not None
                     and (mask is None or mask is self._mask_array))
        if keep_mask:
            self._clear_overlays(keep_mask=True)
            self._build_overlays(doc, None)
            return
        data = None
        if mask is not None:
            data = _MaskData(mask, None, self.display_scale)
        elif doc is not None and folder:
            from studio_app.core.result_folder import ResultFolder
            try:
                arr = ResultFolder(folder).read_mask(doc)
            except Exception:  # DocumentError: an unreadable mask is shown as none
                arr = None
            data = None if arr is None else _MaskData(arr, None, self.display_scale)
        self._clear_overlays()
        self._set_mask_data(data)
        self._build_overlays(doc, data)

    def shutdown(self) -> None:
        """Drop queued loads and wait for a running one. Call before the canvas is destroyed:
        the pool's destructor would otherwise wait for a Python job while holding the GIL."""
        self._token += 1
        self._pool.clear()
        self._pool.waitForDone(10000)

    DROP_HINT = "Drop photos or a folder here\nor choose a hot folder (File menu)"

    def clear(self, hint: str | None = None) -> None:
        self._token += 1
        self._clear_items()
        self.photo = None
        self._image = None
        self._mask_array = None
        self.doc = None
        self._hint.setText(hint or self.DROP_HINT)
        self._hint.setVisible(True)
        self.scene().setSceneRect(self._hint.boundingRect())
        self.fit()

    def _clear_overlays(self, keep_mask: bool = False) -> None:
        sc = self.scene()
        if self.mask_item is not None and not keep_mask:
            sc.removeItem(self.mask_item)
            self.mask_item = None
        if self.skeleton is not None:
            for it in self.skeleton.items.values():
                sc.removeItem(it)
            for ln, _, _ in self.skeleton.lines:
                sc.removeItem(ln)
            self.skeleton = None
        for b in self.boxes.values():
            sc.removeItem(b)
        self.boxes = {}

    def _clear_items(self) -> None:
        self._clear_overlays()
        self.garments.clear()
        if self.photo_item is not None:
            self.scene().removeItem(self.photo_item)
            self.photo_item = None

    def _build_overlays(self, doc, mask) -> None:
        if doc is None:
            return
        bounds = QRectF(0, 0, doc.source.width, doc.source.height)
        if mask is not None and mask.array.shape[:2] == (doc.source.height, doc.source.width):
            self.mask_item = MaskItem(mask.overlay if mask.overlay is not None else mask.array,
                                      min(1.0, self.display_scale))
            self.mask_item.setVisible(self.show_mask)
            self.scene().addItem(self.mask_item)
        for it in doc.items:
            b = BoxItem(it.zone, it.box, it.locked, on_changed=self._box_changed, on_select=self._select_zone,
                        aspect=self.aspect, bounds=bounds)
            b.set_selected_zone(it.zone == self.selected_zone)
            self.scene().addItem(b)
            self.boxes[it.zone] = b
        if doc.kind == "person" and doc.keypoints:
            self.skeleton = Skeleton(self.scene(), doc.keypoints, on_moved=self._kp_moved)
        if self.mode != "select":
            self.set_mode(self.mode)

    def _kp_moved(self, name: str, x: float, y: float) -> None:
        self.keypointMoved.emit(name, x, y)

    def _box_changed(self, zone: str, box: list) -> None:
        self.boxChanged.emit(zone, [float(v) for v in box])

    def _select_zone(self, zone: str) -> None:
        self.select_zone(zone)
        self.zoneSelected.emit(zone)

    def select_zone(self, zone: str | None) -> None:
        self.selected_zone = zone
        for z, b in self.boxes.items():
            b.set_selected_zone(z == zone)

    def set_aspect(self, aspect: float | None) -> None:
        self.aspect = aspect
        for b in self.boxes.values():
            b.aspect = aspect

    def set_garments_visible(self, on: bool) -> None:
        self.garments.set_visible(on)

    def set_mask_visible(self, on: bool) -> None:
        self.show_mask = on
        if self.mask_item is not None:
            self.mask_item.setVisible(on)

    # ---- zoom -------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def _set_zoom(self, z: float) -> None:
        z = max(MIN_ZOOM, min(MAX_ZOOM, z))
        f = z / self.zoom
        self.scale(f, f)
        self.zoomChanged.emit(self.zoom)

    def zoom_in(self) -> None:
        self._fit = False
        self._set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self._fit = False
        self._set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        """1:1 = one screen pixel per photo pixel."""
        self._fit = False
        self._set_zoom(1.0)

    def fit(self) -> None:
        self._fit = True
        r = self.scene().sceneRect()
        if r.isEmpty():
            return
        if self.photo_item is None:
            # only the hint text: shown at its own size, centred (never blown up)
            self.resetTransform()
            self.centerOn(r.center())
            self.zoomChanged.emit(0.0)          # no photo: no zoom to show
            return
        self.resetTransform()
        self.fitInView(r, Qt.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def wheelEvent(self, event):
        d = event.angleDelta().y()
        if d == 0:
            return
        self._fit = False
        self._set_zoom(self.zoom * (ZOOM_STEP ** (d / 120.0)))
        event.accept()

    # ---- mouse: pan, brush, eyedropper -----------------------------------------------------------
    def keyPressEvent(self, event):
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._update_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.brush.setVisible(False)
        interactive = mode == "select"
        for b in self.boxes.values():
            b.setAcceptedMouseButtons(Qt.AllButtons if interactive else Qt.NoButton)
        if self.skeleton is not None:
            for k in self.skeleton.items.values():
                k.setAcceptedMouseButtons(Qt.AllButtons if interactive else Qt.NoButton)
        self._update_cursor()

    def _update_cursor(self) -> None:
        if self.mode in ("brush_add", "brush_erase"):
            self.viewport().setCursor(Qt.BlankCursor)
        elif self.mode == "eyedropper":
            self.viewport().setCursor(Qt.CrossCursor)
        else:
            self.viewport().unsetCursor()

    def set_brush_radius(self, r: float) -> None:
        self.brush_radius = max(1.0, min(2000.0, r))

    def mousePressEvent(self, event):
        if event.button() in (Qt.LeftButton, Qt.MiddleButton):
            self._held = True
        if event.button() == Qt.MiddleButton or (event.button() == Qt.LeftButton and self._space):
            self._panning = event.position()
            self.viewport().setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.LeftButton and self.doc is not None:
            sp = self.mapToScene(event.position().toPoint())
            if self.mode in ("brush_add", "brush_erase"):
                self._stroke = [(sp.x(), sp.y())]
                if self.mask_item is not None:
                    self.mask_item.setVisible(True)
                    self.mask_item.paint_stroke(sp, sp, self.brush_radius, self.mode == "brush_add")
                event.accept()
                return
            if self.mode == "eyedropper":
                self.colourPicked.emit(sp.x(), sp.y())
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._panning is not None:
            d = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            event.accept()
            return
        sp = self.mapToScene(event.position().toPoint())
        if self.mode in ("brush_add", "brush_erase"):
            self.brush.setVisible(True)
            self.brush.place(sp, self.brush_radius, self.mode == "brush_add")
            if self._stroke is not None:
                last = QPointF(*self._stroke[-1])
                self._stroke.append((sp.x(), sp.y()))
                if self.mask_item is not None:
                    self.mask_item.paint_stroke(last, sp, self.brush_radius, self.mode == "brush_add")
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        try:
            self._release(event)
        finally:
            if event.button() in (Qt.LeftButton, Qt.MiddleButton) and self._held:
                self._held = False
                self.interactionEnded.emit()

    def _release(self, event):
        if self._panning is not None and event.button() in (Qt.MiddleButton, Qt.LeftButton):
            self._panning = None
            self._update_cursor()
            if self._space:
                self.viewport().setCursor(Qt.OpenHandCursor)
            event.accept()
            return
        if self._stroke is not None and event.button() == Qt.LeftButton:
            pts, self._stroke = self._stroke, None
            self.maskStroke.emit(pts, float(self.brush_radius), self.mode == "brush_add")
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event):
        self.brush.setVisible(False)
        super().leaveEvent(event)

    # ---- drop target ---------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.filesDropped.emit(paths)
        else:
            event.ignore()
