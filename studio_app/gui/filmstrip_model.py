"""The filmstrip's data: one row per photo of the session, fed only by the Studio's
``entry_changed`` events (``EntryChanged`` carries a copy of the entry), plus thumbnails decoded on
a loader thread. :class:`ReviewFilter` shows only the photos that need review.

Rows are keyed by the photo's resolved path (``Entry.photo``). A row's data changes only when the
entry says something new, so a batch's progress repaints one row at a time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import (QAbstractListModel, QModelIndex, QObject, QRunnable, QSize, QSortFilterProxyModel, Qt,
                            QThreadPool, Signal)
from PySide6.QtGui import QImage, QImageReader, QPixmap

from studio_app.core.session import STATUS_LABELS, Entry
from .decode import decode_scaled

PHOTO_ROLE = Qt.UserRole
STATUS_ROLE = Qt.UserRole + 1
DETAIL_ROLE = Qt.UserRole + 2
PROGRESS_ROLE = Qt.UserRole + 3
THUMB_ROLE = Qt.UserRole + 4
KIND_ROLE = Qt.UserRole + 5
ROW_ROLE = Qt.UserRole + 6        # RowLook: everything the delegate draws, in one call


class RowLook(NamedTuple):
    name: str
    status: str
    progress: float
    kind: str
    detail: str
    thumb: object                 # QPixmap or None
    sku: str = ""                 # the products its items belong to ("TOP-7, TRS-9")


THUMB = 64
REVIEW_STATUSES = ("needs_review", "error")      # what "only photos to review" keeps


class _ThumbSignals(QObject):
    done = Signal(str, int, QImage)          # photo, generation, image


class _ThumbJob(QRunnable):
    def __init__(self, path: str, generation: int, signals: _ThumbSignals):
        super().__init__()
        self.path, self.generation, self.signals = path, generation, signals

    def run(self) -> None:
        img = decode_scaled(self.path, THUMB * 2)
        if img is None:                             # what OpenCV cannot read (some RAW, odd formats)
            r = QImageReader(self.path)
            r.setAutoTransform(True)
            size = r.size()
            if size.isValid() and size.width() > 0:
                s = THUMB * 2 / max(size.width(), size.height())
                if s < 1:
                    r.setScaledSize(QSize(max(1, round(size.width() * s)), max(1, round(size.height() * s))))
            img = r.read()
        if not img.isNull():
            self.signals.done.emit(self.path, self.generation, img)


def detail_of(e: Entry) -> str:
    """The row's second line: why it needs review / failed, the stage, or its RAW partner."""
    detail = e.message if e.status in ("error", "needs_review") else (e.stage if e.status == "processing" else "")
    if e.pair and e.status not in ("error", "needs_review"):
        detail = detail or f"+ {Path(e.pair).name}"
    return detail or ""


def tooltip_of(e: Entry) -> str:
    tip = f"{e.photo}\n{STATUS_LABELS.get(e.status, e.status)}"
    if e.message:
        tip += "\n" + e.message.replace("; ", "\n")
    if e.pair:
        tip += f"\nRAW of this shot: {e.pair}"
    return tip


class FilmstripModel(QAbstractListModel):
    """Photos in the order they were added. Feed it ``entry_changed`` payloads with
    :meth:`entry_changed`; call :meth:`reload_thumbnail` when a photo's file changed."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._photos: list[str] = []
        self._row: dict[str, int] = {}
        self._entries: dict[str, Entry] = {}
        self._thumbs: dict[str, QPixmap] = {}
        self._gen: dict[str, int] = {}
        self._sigs: dict[str, tuple | None] = {}     # photo -> (mtime, size) of the decoded file
        self._skus: dict[str, str] = {}              # photo -> its SKUs (the product panel keeps them)
        self._signals = _ThumbSignals()
        self._signals.done.connect(self._thumb_ready)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    # ---- Qt model API -----------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._photos)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._photos):
            return None
        photo = self._photos[index.row()]
        e = self._entries[photo]
        if role == ROW_ROLE:
            return RowLook(e.name, e.status, e.progress or 0.0, e.kind or "", detail_of(e), self._thumbs.get(photo),
                           self._skus.get(photo, ""))
        if role == Qt.DisplayRole:
            return e.name
        if role == PHOTO_ROLE:
            return photo
        if role == STATUS_ROLE:
            return e.status
        if role == PROGRESS_ROLE:
            return e.progress
        if role == KIND_ROLE:
            return e.kind or ""
        if role == DETAIL_ROLE:
            return detail_of(e)
        if role == THUMB_ROLE:
            return self._thumbs.get(photo)
        if role == Qt.ToolTipRole:
            return tooltip_of(e)
        return None

    # ---- fed by the Studio --------------------------------------------------------------------
    def entry_changed(self, ev) -> None:
        """An ``EntryChanged`` payload: add, update or remove the photo's row."""
        e = ev.entry
        row = self._row.get(e.photo)
        if ev.removed:
            if row is not None:
                self._remove(row)
            return
        if row is None:
            row = len(self._photos)
            self.beginInsertRows(QModelIndex(), row, row)
            self._photos.append(e.photo)
            self._row[e.photo] = row
            self._entries[e.photo] = e
            self.endInsertRows()
            self.reload_thumbnail(e.photo)
            return
        old = self._entries[e.photo]
        self._entries[e.photo] = e
        if _look(old) != _look(e):
            ix = self.index(row)
            self.dataChanged.emit(ix, ix)

    def _remove(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        photo = self._photos.pop(row)
        self._entries.pop(photo, None)
        self._thumbs.pop(photo, None)
        self._sigs.pop(photo, None)
        self._row = {p: i for i, p in enumerate(self._photos)}
        self.endRemoveRows()

    def reload_thumbnail(self, photo: str) -> None:
        """Decode the photo's thumbnail again when its file changed since the last decode."""
        try:
            st = os.stat(photo)
            sig = (st.st_mtime_ns, st.st_size)
        except OSError:
            sig = None
        if sig is not None and self._sigs.get(photo) == sig:
            return
        self._sigs[photo] = sig
        gen = self._gen.get(photo, 0) + 1
        self._gen[photo] = gen
        self._pool.start(_ThumbJob(photo, gen, self._signals))

    def _thumb_ready(self, photo: str, gen: int, img: QImage) -> None:
        row = self._row.get(photo)
        if row is None or gen != self._gen.get(photo):
            return
        self._thumbs[photo] = QPixmap.fromImage(img)
        ix = self.index(row)
        self.dataChanged.emit(ix, ix, [THUMB_ROLE])

    def set_skus(self, labels: dict[str, str]) -> None:
        """Photo -> the SKUs of its items (from ``studio.sku_labels()``); repaints the rows that changed."""
        old, self._skus = self._skus, dict(labels)
        for photo in set(old) | set(labels):
            if old.get(photo) != labels.get(photo) and (row := self._row.get(photo)) is not None:
                ix = self.index(row)
                self.dataChanged.emit(ix, ix)

    def sku_of(self, photo: str) -> str:
        return self._skus.get(photo, "")

    # ---- queries -------------------------------------------------------------------------------
    def row_of(self, photo: str | None) -> int:
        return self._row.get(photo, -1) if photo else -1

    def photo_at(self, row: int) -> str | None:
        return self._photos[row] if 0 <= row < len(self._photos) else None

    def entry(self, photo: str | None) -> Entry | None:
        return self._entries.get(photo) if photo else None

    def thumbnail_key(self, photo: str) -> int:
        pm = self._thumbs.get(photo)
        return 0 if pm is None else pm.cacheKey()

    def shutdown(self) -> None:
        """Drop queued thumbnails and wait for a running one."""
        self._pool.clear()
        self._pool.waitForDone(10000)


def _look(e: Entry) -> tuple:
    return (e.status, round(e.progress or 0.0, 2), e.kind, e.message, e.stage if e.status == "processing" else "",
            e.pair, e.name)


class ReviewFilter(QSortFilterProxyModel):
    """Only the photos that need the operator (needs review, failed) when ``review_only``; only
    the photos of one SKU when ``photos`` is set (the product panel's filter)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.review_only = False
        self.photos: frozenset | None = None          # only these photos (a SKU's), None: all

    def set_photos(self, photos) -> None:
        photos = None if photos is None else frozenset(photos)
        if photos != self.photos:
            self.photos = photos
            self.invalidateFilter()

    def set_review_only(self, on: bool) -> None:
        self.review_only = bool(on)
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:
        ix = self.sourceModel().index(row, 0, parent)
        if self.photos is not None and ix.data(PHOTO_ROLE) not in self.photos:
            return False
        return not self.review_only or ix.data(STATUS_ROLE) in REVIEW_STATUSES
