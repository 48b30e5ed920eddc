"""The queue: one row per photo with thumbnail, name, status (colour chip), per-photo progress,
and a second line with the needs-review reason or the error message (full text as tooltip)."""
from __future__ import annotations

import collections
from pathlib import Path

from PySide6.QtCore import QObject, QRect, QRectF, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle, QStyledItemDelegate

from studio_app.core.session import STATUS_LABELS, Entry
from . import theme

PHOTO_ROLE = Qt.UserRole
STATUS_ROLE = Qt.UserRole + 1
DETAIL_ROLE = Qt.UserRole + 2
PROGRESS_ROLE = Qt.UserRole + 3
THUMB_ROLE = Qt.UserRole + 4
KIND_ROLE = Qt.UserRole + 5
THUMB = 64
ROW_H = 76


class _ThumbSignals(QObject):
    done = Signal(str, QImage)


class _ThumbJob(QRunnable):
    def __init__(self, path: str, signals: _ThumbSignals):
        super().__init__()
        self.path, self.signals = path, signals

    def run(self) -> None:
        r = QImageReader(self.path)
        r.setAutoTransform(True)
        size = r.size()
        if size.isValid() and size.width() > 0:
            s = THUMB * 2 / max(size.width(), size.height())
            if s < 1:
                r.setScaledSize(QSize(max(1, round(size.width() * s)), max(1, round(size.height() * s))))
        img = r.read()
        if img.isNull():
            return
        self.signals.done.emit(self.path, img)


class FilmstripDelegate(QStyledItemDelegate):
    """Rows are drawn once into a pixmap per distinct look (status, progress step, texts,
    thumbnail, selection, width) and blitted afterwards: a repaint of the whole list while a batch
    runs costs one drawPixmap per row instead of some twenty Qt calls (each of which has to take
    the GIL back)."""

    CACHE_ROWS = 400

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cache: collections.OrderedDict = collections.OrderedDict()

    def sizeHint(self, option, index) -> QSize:
        return QSize(260, ROW_H)

    def paint(self, p: QPainter, option, index) -> None:
        r = option.rect
        selected = bool(option.state & QStyle.State_Selected)
        status = index.data(STATUS_ROLE) or "queued"
        pm = index.data(THUMB_ROLE)
        frac = index.data(PROGRESS_ROLE) or 0.0
        key = (r.width(), r.height(), selected, status, round(float(frac), 2) if status == "processing" else 0,
               index.data(Qt.DisplayRole) or "", index.data(KIND_ROLE) or "", index.data(DETAIL_ROLE) or "",
               pm.cacheKey() if isinstance(pm, QPixmap) else 0, option.font.key())
        cached = self._cache.get(key)
        if cached is None:
            dpr = p.device().devicePixelRatioF() if p.device() is not None else 1.0
            cached = QPixmap(QSize(round(r.width() * dpr), round(r.height() * dpr)))
            cached.setDevicePixelRatio(dpr)
            cp = QPainter(cached)
            o = type(option)(option)
            o.rect = QRect(0, 0, r.width(), r.height())
            self._paint_row(cp, o, index)
            cp.end()
            self._cache[key] = cached
            if len(self._cache) > self.CACHE_ROWS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        p.drawPixmap(r.topLeft(), cached)

    def _paint_row(self, p: QPainter, option, index) -> None:
        p.save()
        r = option.rect
        selected = bool(option.state & QStyle.State_Selected)
        p.fillRect(r, QColor("#3a4654") if selected else QColor(theme.BASE))
        p.setPen(QColor("#333333"))
        p.drawLine(r.bottomLeft(), r.bottomRight())
        status = index.data(STATUS_ROLE) or "queued"
        col = QColor(theme.STATUS_COLOURS.get(status, theme.MUTED))
        p.fillRect(QRect(r.left(), r.top(), 4, r.height()), col)
        # thumbnail
        tr = QRect(r.left() + 10, r.top() + (r.height() - THUMB) // 2, THUMB, THUMB)
        pm = index.data(THUMB_ROLE)
        p.fillRect(tr, QColor("#1e1e1e"))
        if isinstance(pm, QPixmap) and not pm.isNull():
            s = pm.size().scaled(tr.size(), Qt.KeepAspectRatio)
            target = QRect(tr.left() + (tr.width() - s.width()) // 2, tr.top() + (tr.height() - s.height()) // 2,
                           s.width(), s.height())
            p.drawPixmap(target, pm)
        x = tr.right() + 10
        w = r.right() - x - 8
        fm = QFontMetrics(option.font)
        name = index.data(Qt.DisplayRole) or ""
        p.setPen(QColor(theme.TEXT))
        f = option.font
        f.setBold(True)
        p.setFont(f)
        p.drawText(QRect(x, r.top() + 6, w, fm.height()), Qt.AlignLeft | Qt.AlignVCenter,
                   QFontMetrics(f).elidedText(name, Qt.ElideMiddle, w))
        f.setBold(False)
        p.setFont(f)
        label = STATUS_LABELS.get(status, status)
        kind = index.data(KIND_ROLE)
        if kind and status not in ("queued", "processing", "error"):
            label += f" · {kind}"
        frac = index.data(PROGRESS_ROLE) or 0.0
        y2 = r.top() + 8 + fm.height()
        chip = QRectF(x, y2 + 4, 8, 8)
        p.setBrush(col)
        p.setPen(Qt.NoPen)
        p.drawEllipse(chip)
        p.setPen(col)
        p.drawText(QRect(x + 14, y2, w - 14, fm.height()), Qt.AlignLeft | Qt.AlignVCenter, label)
        y3 = y2 + fm.height() + 3
        if status == "processing":
            bar = QRect(x, y3 + 4, w, 6)
            p.fillRect(bar, QColor("#1e1e1e"))
            p.fillRect(QRect(bar.left(), bar.top(), int(bar.width() * max(0.0, min(1.0, frac))), bar.height()), col)
        else:
            detail = index.data(DETAIL_ROLE) or ""
            if detail:
                p.setPen(QColor(theme.STATUS_COLOURS["error"] if status == "error" else theme.MUTED))
                p.drawText(QRect(x, y3, w, fm.height()), Qt.AlignLeft | Qt.AlignVCenter,
                           fm.elidedText(detail, Qt.ElideRight, w))
        p.restore()


def _set(it: QListWidgetItem, role, value) -> None:
    """setData only when the value changed: every setData repaints the row."""
    if it.data(role) != value:
        it.setData(role, value)


class Filmstrip(QListWidget):
    """Rows keyed by the photo's absolute path."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(FilmstripDelegate(self))
        self.setUniformItemSizes(True)
        self.setSelectionMode(QListWidget.SingleSelection)
        self.setMinimumWidth(250)
        self.setMouseTracking(True)
        self._rows: dict[str, QListWidgetItem] = {}
        self._thumbs = _ThumbSignals()
        self._thumbs.done.connect(self._thumb_ready)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def item_for(self, photo: str) -> QListWidgetItem | None:
        return self._rows.get(photo)

    def photo_at(self, row: int) -> str | None:
        it = self.item(row)
        return None if it is None else it.data(PHOTO_ROLE)

    def current_photo(self) -> str | None:
        it = self.currentItem()
        return None if it is None else it.data(PHOTO_ROLE)

    def upsert(self, e: Entry) -> QListWidgetItem:
        it = self._rows.get(e.photo)
        if it is None:
            it = QListWidgetItem(Path(e.photo).name)
            it.setData(PHOTO_ROLE, e.photo)
            self.addItem(it)
            self._rows[e.photo] = it
            self._pool.start(_ThumbJob(e.photo, self._thumbs))
        _set(it, STATUS_ROLE, e.status)
        _set(it, PROGRESS_ROLE, e.progress)
        _set(it, KIND_ROLE, e.kind or "")
        detail = e.message if e.status in ("error", "needs_review") else (e.stage if e.status == "processing" else "")
        if e.pair and e.status not in ("error", "needs_review"):
            detail = detail or f"+ {Path(e.pair).name}"
        _set(it, DETAIL_ROLE, detail or "")
        tip = f"{e.photo}\n{STATUS_LABELS.get(e.status, e.status)}"
        if e.message:
            tip += "\n" + e.message.replace("; ", "\n")
        if e.pair:
            tip += f"\nRAW of this shot: {e.pair}"
        if it.toolTip() != tip:
            it.setToolTip(tip)
        return it

    def set_progress(self, photo: str, stage: str, frac: float) -> None:
        it = self._rows.get(photo)
        if it is not None:
            it.setData(STATUS_ROLE, "processing")
            it.setData(PROGRESS_ROLE, frac)

    def _thumb_ready(self, path: str, img: QImage) -> None:
        it = self._rows.get(path)
        if it is not None:
            it.setData(THUMB_ROLE, QPixmap.fromImage(img))

    def shutdown(self) -> None:
        """Drop queued thumbnails and wait for a running one (see ``Canvas.shutdown``)."""
        self._pool.clear()
        self._pool.waitForDone(10000)

    def remove(self, photo: str) -> None:
        it = self._rows.pop(photo, None)
        if it is not None:
            self.takeItem(self.row(it))
