"""The Studio's hot folder: photos dropped into a watched folder are queued once, when complete.
Qt-free; a part of :class:`studio_app.core.studio.Studio` (a mixin, to keep each file short).

An arrival never decides what is on screen: it emits ``arrival`` with the count of arrivals the
operator has not looked at (``mark_arrivals_seen()`` resets it). A file replaced in the folder
(same name, new content — e.g. a truncated photo copied again, as its error message says) is
processed again; the new result comes with ``document_changed(image_changed=True)``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .events import Arrival, HotFolderState
from .hotfolder import HotFolder
from .session import TRANSIENT


class HotFolderMixin:
    _hot: HotFolder | None = None
    _unseen = 0
    _again: set  # photos replaced in the hot folder while they were being processed

    def watch(self, folder: str | os.PathLike, *, stable_seconds: float = 1.0, pair_window: float = 3.0,
              paused: bool = False, include_existing: bool = True, use_polling: bool = False) -> bool:
        """Watch ``folder`` (instead of the previous one). Photos already there without a result
        are queued too (they arrived while the app was closed). False (and a ``hot_folder`` event
        with the reason) when the folder does not exist."""
        self.unwatch()
        folder = Path(folder)
        if not folder.is_dir():
            self.events.hot_folder(HotFolderState(None, message=f"the hot folder {folder} does not exist"))
            return False
        hot = HotFolder(folder, self._arrived, on_paired=self._late_pair, stable_seconds=stable_seconds,
                        pair_window=pair_window, include_existing=include_existing, use_polling=use_polling)
        if paused:
            hot.pause()
        hot.start()
        self._hot = hot
        self.events.hot_folder(HotFolderState(folder, hot.paused, "; ".join(hot.errors)))
        return True

    def unwatch(self) -> None:
        hot, self._hot = self._hot, None
        if hot is not None:
            hot.stop()
            self.events.hot_folder(HotFolderState(None))

    @property
    def hot_folder(self) -> Path | None:
        return self._hot.folder if self._hot is not None else None

    @property
    def paused(self) -> bool:
        return self._hot is not None and self._hot.paused

    def pause(self) -> None:
        """Keep noticing files but hand nothing over until :meth:`resume`."""
        if self._hot is not None:
            self._hot.pause()
            self.events.hot_folder(HotFolderState(self._hot.folder, True))

    def resume(self) -> None:
        if self._hot is not None:
            self._hot.resume()
            self.events.hot_folder(HotFolderState(self._hot.folder, False))

    @property
    def arrivals_unseen(self) -> int:
        return self._unseen

    def mark_arrivals_seen(self) -> None:
        """The operator looked at the newest arrivals (jumped to them): the counter goes back to 0."""
        with self._lock:
            self._unseen = 0

    # ---- on the watcher thread ----------------------------------------------------------------------
    def _arrived(self, photo: Path, pair: Path | None) -> None:
        key = str(Path(photo).resolve())
        e = self.session.get(key)
        reprocess = False
        if e is None:
            with self._lock:      # the processing thread may take it at once: decide before it can
                e = self.add_photo(photo, pair)
                queued = e is not None and e.status == "queued"
            if not queued:
                return
        elif e.status == "processing":
            with self._lock:           # replaced while it is read: once more when this run ends
                self._again.add(e.photo)
            return
        elif e.status in TRANSIENT or not self._replaced(e):
            if pair is not None and not e.pair:
                self._late_pair(photo, pair)
            return
        else:
            self.enqueue(e.photo, pair=pair)
            reprocess = True
        with self._lock:
            self._unseen += 1
            n = self._unseen
        self.events.arrival(Arrival(e.photo, str(pair) if pair else None, n, reprocess))

    def _replaced(self, e) -> bool:
        """The file's content is not the one its result was made from (or it had no result)."""
        if e.status in ("error", "cancelled"):
            return True
        doc = self.document(e.photo)
        if doc is None:
            return True
        from ml.io import sha256_file
        try:
            return sha256_file(e.photo) != doc.source.sha256
        except OSError:
            return False

    def _late_pair(self, jpeg: Path, raw: Path) -> None:
        with self._lock:
            self.session.set_pair(jpeg, raw)
            e = self.session.get(jpeg)
        if e is not None:
            self._entry_changed(e)
