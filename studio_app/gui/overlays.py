"""Editable overlays on the photo (scene units = pixels of the oriented source photo):
skeleton with draggable keypoints, crop boxes moved/resized with handles (optional aspect
lock), the mask as a tinted semi-transparent layer, and the round brush cursor.

Items never edit the document themselves: on release they call the canvas back with the new
value; the window turns that into an undoable, saved edit and rebuilds the overlays."""
from __future__ import annotations

import sys

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QCursor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsLineItem, QGraphicsPixmapItem,
                               QGraphicsRectItem, QGraphicsSimpleTextItem)

from . import theme

# 23-point skeleton: COCO-17 limbs + the feet (ankle -> heel / big toe / small toe)
SKELETON = [
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
    ("left_eye", "right_eye"), ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
    ("left_ankle", "left_heel"), ("left_ankle", "left_big_toe"), ("left_big_toe", "left_small_toe"),
    ("right_ankle", "right_heel"), ("right_ankle", "right_big_toe"), ("right_big_toe", "right_small_toe"),
]
KP_RADIUS = 5.0          # screen pixels
HANDLE = 9.0             # screen pixels
LOW_SCORE = 0.3


def _view_scale(item: QGraphicsItem) -> float:
    sc = item.scene()
    if sc is None or not sc.views():
        return 1.0
    return max(1e-6, sc.views()[0].transform().m11())


def _side(name: str) -> str:
    return "left" if name.startswith("left") else ("right" if name.startswith("right") else "centre")


class KeypointItem(QGraphicsEllipseItem):
    """A keypoint: a constant-size dot, draggable. ``on_moved(name, x, y)`` on release."""

    COLOURS = {"left": QColor("#5fd35f"), "right": QColor("#ff8c42"), "centre": QColor("#f5f5f5")}

    def __init__(self, name: str, x: float, y: float, score: float, on_moved=None, on_drag=None):
        r = KP_RADIUS
        super().__init__(-r, -r, 2 * r, 2 * r)
        self.name = name
        self.score = score
        self.on_moved = on_moved
        self.on_drag = on_drag
        self._press_pos: QPointF | None = None
        self.setPos(x, y)
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemSendsGeometryChanges
                      | QGraphicsItem.ItemIgnoresTransformations)
        self.setZValue(30)
        col = QColor(self.COLOURS[_side(name)])
        if score < LOW_SCORE:
            col.setAlpha(110)
        self.setBrush(QBrush(col))
        self.setPen(QPen(QColor(0, 0, 0, 200), 1.5))
        self.setCursor(QCursor(Qt.SizeAllCursor))
        self.setAcceptHoverEvents(True)
        self.setToolTip(f"{name.replace('_', ' ')} (score {score:.2f})")

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionHasChanged and self.on_drag is not None:
            self.on_drag(self)
        return super().itemChange(change, value)

    def mousePressEvent(self, event):
        self._press_pos = QPointF(self.pos())
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        if self._press_pos is not None and self.pos() != self._press_pos and self.on_moved is not None:
            self.on_moved(self.name, float(self.pos().x()), float(self.pos().y()))
        self._press_pos = None

    def hoverEnterEvent(self, event):
        self.setPen(QPen(QColor("#ffffff"), 2.5))
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event):
        self.setPen(QPen(QColor(0, 0, 0, 200), 1.5))
        super().hoverLeaveEvent(event)


class Skeleton:
    """Keypoints + limb lines; lines follow a keypoint while it is dragged."""

    def __init__(self, scene, keypoints, on_moved):
        self.items: dict[str, KeypointItem] = {}
        self.lines: list[tuple[QGraphicsLineItem, str, str]] = []
        for k in keypoints:
            if k.score <= 0.0:
                continue      # the model did not provide this point: its position is meaningless
            it = KeypointItem(k.name, k.x, k.y, k.score, on_moved=on_moved, on_drag=self._dragged)
            scene.addItem(it)
            self.items[k.name] = it
        for a, b in SKELETON:
            if a in self.items and b in self.items:
                ln = QGraphicsLineItem()
                low = min(self.items[a].score, self.items[b].score) < LOW_SCORE
                col = QColor(self.items[a].COLOURS[_side(a) if _side(a) == _side(b) else "centre"])
                col.setAlpha(90 if low else 210)
                pen = QPen(col, 2.0)
                pen.setCosmetic(True)
                if low:
                    pen.setStyle(Qt.DashLine)
                ln.setPen(pen)
                ln.setZValue(25)
                scene.addItem(ln)
                self.lines.append((ln, a, b))
        self._update_lines()

    def _dragged(self, _item) -> None:
        self._update_lines()

    def _update_lines(self) -> None:
        for ln, a, b in self.lines:
            ln.setLine(self.items[a].pos().x(), self.items[a].pos().y(),
                       self.items[b].pos().x(), self.items[b].pos().y())

    def set_visible(self, on: bool) -> None:
        for it in self.items.values():
            it.setVisible(on)
        for ln, _, _ in self.lines:
            ln.setVisible(on)


class BoxItem(QGraphicsRectItem):
    """A crop box in scene (photo-pixel) coordinates. Drag the body to move, a corner handle to
    resize (keeping ``aspect`` = w/h when set). ``on_changed(zone, [x0, y0, x1, y1])`` on release."""

    def __init__(self, zone: str, box, locked: bool = False, on_changed=None, on_select=None,
                 aspect: float | None = None, bounds: QRectF | None = None):
        x0, y0, x1, y1 = box
        super().__init__(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.zone = zone
        self.locked = locked
        self.on_changed = on_changed
        self.on_select = on_select
        self.aspect = aspect
        self.bounds = bounds
        self.colour = QColor(theme.ZONE_COLOURS.get(zone, "#ffffff"))
        self.selected_zone = False
        self._drag: str | None = None
        self._press_scene: QPointF | None = None
        self._press_rect: QRectF | None = None
        self.setZValue(20 if zone != "full" else 15)
        self.setAcceptHoverEvents(True)
        self._apply_pen()
        self.label = QGraphicsSimpleTextItem(self._label_text(), self)
        self.label.setFlag(QGraphicsItem.ItemIgnoresTransformations)
        self.label.setBrush(QBrush(self.colour))
        self._place_label()

    def _label_text(self) -> str:
        return self.zone + ("  (locked)" if self.locked else "")

    def _apply_pen(self) -> None:
        pen = QPen(self.colour, 3.0 if self.selected_zone else 2.0)
        pen.setCosmetic(True)
        if self.zone == "full":
            pen.setStyle(Qt.DashLine)
        self.setPen(pen)

    def set_selected_zone(self, on: bool) -> None:
        self.selected_zone = on
        self._apply_pen()
        self.update()

    def _place_label(self) -> None:
        r = self.rect()
        s = _view_scale(self) if self.scene() else 1.0
        self.label.setPos(r.left() + 4 / s, r.top() + 2 / s)

    def box(self) -> list[float]:
        r = self.rect()
        return [r.left(), r.top(), r.right(), r.bottom()]

    # ---- hit testing -------------------------------------------------------------------------
    def _corner_at(self, pos: QPointF) -> str | None:
        r = self.rect()
        tol = HANDLE / _view_scale(self)
        for name, c in (("tl", r.topLeft()), ("tr", r.topRight()), ("bl", r.bottomLeft()), ("br", r.bottomRight())):
            if abs(pos.x() - c.x()) <= tol and abs(pos.y() - c.y()) <= tol:
                return name
        return None

    def _on_edge(self, pos: QPointF) -> bool:
        r = self.rect()
        tol = HANDLE / _view_scale(self)
        inside = r.adjusted(-tol, -tol, tol, tol).contains(pos)
        core = r.adjusted(tol, tol, -tol, -tol).contains(pos)
        return inside and not core

    def shape(self):
        from PySide6.QtGui import QPainterPath
        # grab on the frame and the handles only, so keypoints and boxes underneath stay reachable
        r = self.rect()
        tol = HANDLE / _view_scale(self)
        outer, inner = QPainterPath(), QPainterPath()
        outer.addRect(r.adjusted(-tol, -tol, tol, tol))
        inner.addRect(r.adjusted(tol, tol, -tol, -tol))
        return outer.subtracted(inner)

    def boundingRect(self) -> QRectF:
        tol = HANDLE / _view_scale(self) + 2
        return self.rect().adjusted(-tol, -tol, tol, tol)

    def hoverMoveEvent(self, event):
        c = self._corner_at(event.pos())
        if c in ("tl", "br"):
            self.setCursor(Qt.SizeFDiagCursor)
        elif c in ("tr", "bl"):
            self.setCursor(Qt.SizeBDiagCursor)
        else:
            self.setCursor(Qt.SizeAllCursor)
        super().hoverMoveEvent(event)

    # ---- dragging ----------------------------------------------------------------------------
    def mousePressEvent(self, event):
        if event.button() != Qt.LeftButton:
            return super().mousePressEvent(event)
        if self.on_select is not None:
            self.on_select(self.zone)
        self._drag = self._corner_at(event.pos()) or "move"
        self._press_scene = event.scenePos()
        self._press_rect = QRectF(self.rect())
        event.accept()

    def mouseMoveEvent(self, event):
        if self._drag is None:
            return super().mouseMoveEvent(event)
        d = event.scenePos() - self._press_scene
        r = QRectF(self._press_rect)
        if self._drag == "move":
            r.translate(d)
            if self.bounds is not None:
                dx = max(self.bounds.left() - r.left(), 0) + min(self.bounds.right() - r.right(), 0)
                dy = max(self.bounds.top() - r.top(), 0) + min(self.bounds.bottom() - r.bottom(), 0)
                r.translate(dx, dy)
        else:
            r = self._resized(r, d)
        self.prepareGeometryChange()
        self.setRect(r)
        self._place_label()
        event.accept()

    def _resized(self, r: QRectF, d: QPointF) -> QRectF:
        left, top, right, bottom = r.left(), r.top(), r.right(), r.bottom()
        if "l" in self._drag:
            left += d.x()
        else:
            right += d.x()
        if "t" in self._drag:
            top += d.y()
        else:
            bottom += d.y()
        if self.bounds is not None:
            b = self.bounds
            left, right = max(b.left(), left), min(b.right(), right)
            top, bottom = max(b.top(), top), min(b.bottom(), bottom)
        min_side = 8.0
        if right - left < min_side:
            if "l" in self._drag:
                left = right - min_side
            else:
                right = left + min_side
        if bottom - top < min_side:
            if "t" in self._drag:
                top = bottom - min_side
            else:
                bottom = top + min_side
        if self.aspect:
            w, h = right - left, bottom - top
            # follow the dominant drag direction, adjust the other side to the aspect
            if abs(d.x()) >= abs(d.y()):
                h = w / self.aspect
            else:
                w = h * self.aspect
            if "l" in self._drag:
                left = right - w
            else:
                right = left + w
            if "t" in self._drag:
                top = bottom - h
            else:
                bottom = top + h
        return QRectF(QPointF(left, top), QPointF(right, bottom))

    def mouseReleaseEvent(self, event):
        if self._drag is None:
            return super().mouseReleaseEvent(event)
        changed = self.rect() != self._press_rect
        self._drag = None
        event.accept()
        if changed and self.on_changed is not None:
            self.on_changed(self.zone, self.box())

    def paint(self, painter: QPainter, option, widget=None):
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.setPen(self.pen())
        painter.setBrush(Qt.NoBrush)
        painter.drawRect(self.rect())
        s = _view_scale(self)
        h = (HANDLE - 2) / s
        painter.setPen(QPen(QColor(0, 0, 0, 200), 0))
        painter.setBrush(QBrush(self.colour))
        r = self.rect()
        for c in (r.topLeft(), r.topRight(), r.bottomLeft(), r.bottomRight()):
            painter.drawRect(QRectF(c.x() - h / 2, c.y() - h / 2, h, h))


def _tint_lut(tint) -> np.ndarray:
    """(1, 256, 4) uint8 table: mask value -> premultiplied ARGB32 pixel in memory byte order
    (B, G, R, A on little-endian machines): background (<= 127) dimmed with ``tint``, subject
    transparent."""
    r, g, b, a = (int(v) for v in tint)
    lut = np.zeros((1, 256, 4), np.uint8)
    lut[0, :128] = (b * a // 255, g * a // 255, r * a // 255, a)
    if sys.byteorder == "big":
        lut = lut[..., ::-1].copy()
    return lut


def mask_to_image(mask: np.ndarray, tint=theme.MASK_TINT) -> QImage:
    """uint8 mask (255 = subject) -> premultiplied ARGB QImage: the *background* is dimmed with
    ``tint``, the subject is left untouched (its colours stay true for judging). OpenCV does the
    table look-up (it releases the GIL, numpy fancy indexing would not); any thread."""
    import cv2
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    h, w = mask.shape[:2]
    argb = cv2.LUT(cv2.merge([mask, mask, mask, mask]), _tint_lut(tint))
    img = QImage(argb.data, w, h, 4 * w, QImage.Format_ARGB32_Premultiplied)
    return img.copy()


def display_mask(mask: np.ndarray, display_scale: float) -> np.ndarray:
    """The source-size mask at display resolution (nearest neighbour keeps it binary)."""
    if display_scale >= 1.0:
        return mask
    import cv2
    h, w = mask.shape[:2]
    return cv2.resize(mask, (max(1, round(w * display_scale)), max(1, round(h * display_scale))),
                      interpolation=cv2.INTER_NEAREST)


def mask_overlay_image(mask: np.ndarray, display_scale: float, tint=theme.MASK_TINT) -> QImage:
    """Resize + tint: what a MaskItem shows. Built on the loader thread, never on the GUI thread
    for a newly shown photo."""
    return mask_to_image(display_mask(mask, display_scale), tint)


class MaskItem(QGraphicsPixmapItem):
    """The mask, tinted, at display resolution, scaled to cover the photo. Brush strokes paint into
    the displayed image at once (live feedback); the real edit happens on release.

    ``mask`` is either the source-size uint8 mask or an already tinted display-size QImage
    (``mask_overlay_image``, prepared off the GUI thread)."""

    def __init__(self, mask, display_scale: float, tint=theme.MASK_TINT):
        super().__init__()
        self.tint = QColor(*tint)
        self.display_scale = display_scale       # display pixels per source pixel
        self.image = mask if isinstance(mask, QImage) else mask_overlay_image(mask, display_scale, tint)
        self.setPixmap(QPixmap.fromImage(self.image))
        self.setScale(1.0 / display_scale)
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.setTransformationMode(Qt.FastTransformation)

    def paint_stroke(self, a: QPointF, b: QPointF, radius: float, add: bool) -> None:
        s = self.display_scale
        p = QPainter(self.image)
        p.setCompositionMode(QPainter.CompositionMode_Source)
        col = QColor(0, 0, 0, 0) if add else self.tint     # add = reveal the subject
        pen = QPen(col, max(1.0, 2 * radius * s), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
        p.setPen(pen)
        p.drawLine(QPointF(a.x() * s, a.y() * s), QPointF(b.x() * s, b.y() * s))
        p.end()
        self.setPixmap(QPixmap.fromImage(self.image))


class BrushCursor(QGraphicsEllipseItem):
    def __init__(self):
        super().__init__()
        pen = QPen(QColor(255, 255, 255, 220), 1.5)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setZValue(100)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.setVisible(False)

    def place(self, pos: QPointF, radius: float, add: bool) -> None:
        pen = self.pen()
        pen.setColor(QColor(255, 255, 255, 220) if add else QColor(255, 120, 120, 220))
        self.setPen(pen)
        self.setRect(QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius))
