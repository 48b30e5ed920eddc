"""The queue: one row per photo with thumbnail, name, status (colour chip), per-photo progress,
and a second line with the needs-review reason or the error message (full text as tooltip).
The rows come from :class:`studio_app.gui.filmstrip_model.FilmstripModel`; this is the view."""
from __future__ import annotations

import collections

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate

from studio_app.core.session import STATUS_LABELS
from . import theme
from .filmstrip_model import PHOTO_ROLE, ROW_ROLE, THUMB, FilmstripModel, ReviewFilter

ROW_H = 76


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
        row = index.data(ROW_ROLE)          # one call into the model (each call takes the GIL back)
        if row is None:
            return
        pm = row.thumb
        key = (r.width(), r.height(), selected, row.status,
               round(float(row.progress), 2) if row.status == "processing" else 0, row.name, row.kind, row.detail, row.sku,
               pm.cacheKey() if isinstance(pm, QPixmap) else 0, option.font.key())
        cached = self._cache.get(key)
        if cached is None:
            dpr = p.device().devicePixelRatioF() if p.device() is not None else 1.0
            cached = QPixmap(QSize(round(r.width() * dpr), round(r.height() * dpr)))
            cached.setDevicePixelRatio(dpr)
            cp = QPainter(cached)
            o = type(option)(option)
            o.rect = QRect(0, 0, r.width(), r.height())
            self._paint_row(cp, o, row)
            cp.end()
            self._cache[key] = cached
            if len(self._cache) > self.CACHE_ROWS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        p.drawPixmap(r.topLeft(), cached)

    def _paint_row(self, p: QPainter, option, row) -> None:
        p.save()
        r = option.rect
        selected = bool(option.state & QStyle.State_Selected)
        p.fillRect(r, QColor("#3a4654") if selected else QColor(theme.BASE))
        p.setPen(QColor("#333333"))
        p.drawLine(r.bottomLeft(), r.bottomRight())
        status = row.status or "queued"
        col = QColor(theme.STATUS_COLOURS.get(status, theme.MUTED))
        p.fillRect(QRect(r.left(), r.top(), 4, r.height()), col)
        # thumbnail
        tr = QRect(r.left() + 10, r.top() + (r.height() - THUMB) // 2, THUMB, THUMB)
        pm = row.thumb
        p.fillRect(tr, QColor("#1e1e1e"))
        if isinstance(pm, QPixmap) and not pm.isNull():
            s = pm.size().scaled(tr.size(), Qt.KeepAspectRatio)
            target = QRect(tr.left() + (tr.width() - s.width()) // 2, tr.top() + (tr.height() - s.height()) // 2,
                           s.width(), s.height())
            p.drawPixmap(target, pm)
        x = tr.right() + 10
        w = r.right() - x - 8
        fm = QFontMetrics(option.font)
        name = row.name
        p.setPen(QColor(theme.TEXT))
        f = option.font
        f.setBold(True)
        p.setFont(f)
        p.drawText(QRect(x, r.top() + 6, w, fm.height()), Qt.AlignLeft | Qt.AlignVCenter,
                   QFontMetrics(f).elidedText(name, Qt.ElideMiddle, w))
        f.setBold(False)
        p.setFont(f)
        label = STATUS_LABELS.get(status, status)
        kind = row.kind
        if kind and status not in ("queued", "processing", "error"):
            label += f" · {kind}"

        frac = row.progress
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
            detail = row.detail or (f"SKU {row.sku}" if row.sku and status not in ("queued", "error") else "")
            if detail:
                p.setPen(QColor(theme.STATUS_COLOURS["error"] if status == "error" else theme.MUTED))
                p.drawText(QRect(x, y3, w, fm.height()), Qt.AlignLeft | Qt.AlignVCenter,
                           fm.elidedText(detail, Qt.ElideRight, w))
        p.restore()


class Filmstrip(QListView):
    """The list of photos: a view over :class:`FilmstripModel` through :class:`ReviewFilter`.
    ``currentPhotoChanged(photo or None)`` when the operator (or the window) picks another row."""
    currentPhotoChanged = Signal(object)

    def __init__(self, model: FilmstripModel | None = None, parent=None):
        super().__init__(parent)
        self.source = model or FilmstripModel(self)
        self.proxy = ReviewFilter(self)
        self.proxy.setSourceModel(self.source)
        self.setModel(self.proxy)
        self.setItemDelegate(FilmstripDelegate(self))
        self.setUniformItemSizes(True)
        self.setSelectionMode(QListView.ExtendedSelection)     # Shift/Ctrl-click: several photos
        self.setMinimumWidth(250)
        self.setMouseTracking(True)
        self.selectionModel().currentChanged.connect(lambda cur, prev: self.currentPhotoChanged.emit(self.current_photo()))

    # rows as the operator sees them (the filter applied)
    def count(self) -> int:
        return self.proxy.rowCount()

    def currentRow(self) -> int:
        ix = self.currentIndex()
        return ix.row() if ix.isValid() else -1

    def setCurrentRow(self, row: int) -> None:
        if 0 <= row < self.proxy.rowCount():
            self.setCurrentIndex(self.proxy.index(row, 0))

    def photo_at(self, row: int) -> str | None:
        ix = self.proxy.index(row, 0)
        return ix.data(PHOTO_ROLE) if ix.isValid() else None

    def current_photo(self) -> str | None:
        ix = self.currentIndex()
        return ix.data(PHOTO_ROLE) if ix.isValid() else None

    def row_of(self, photo: str | None) -> int:
        src = self.source.row_of(photo)
        return -1 if src < 0 else self.proxy.mapFromSource(self.source.index(src)).row()

    def select_photo(self, photo: str | None) -> bool:
        row = self.row_of(photo)
        if row < 0:
            return False
        self.setCurrentRow(row)
        return True

    def tooltip_for(self, photo: str) -> str:
        row = self.source.row_of(photo)
        return self.source.index(row).data(Qt.ToolTipRole) if row >= 0 else ""

    def selected_photos(self) -> list[str]:
        """The selected photos in filmstrip order (the photo on screen when nothing else is selected)."""
        rows = sorted(ix.row() for ix in self.selectionModel().selectedRows())
        photos = [p for p in (self.photo_at(r) for r in rows) if p]
        cur = self.current_photo()
        return photos or ([cur] if cur else [])

    def set_review_only(self, on: bool) -> None:
        self.proxy.set_review_only(on)

    def set_photo_filter(self, photos) -> None:
        """Show only these photos (a SKU's, from the product panel); None shows all."""
        self.proxy.set_photos(photos)

    def shutdown(self) -> None:
        self.source.shutdown()
