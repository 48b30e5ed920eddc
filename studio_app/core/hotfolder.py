"""Hot folder: notice photos that the tethering software (or a person) drops into a folder,
and hand each one over exactly once, when it is complete. Qt-free; callbacks run on the
watcher's own thread (the GUI bridges them to signals).

How a file is judged complete (see the project's Qt-stack research notes):

* names that are still being written or are not photos are ignored: hidden files,
  ``~`` files, ``.part``/``.tmp``/``.crdownload``/``.download``/``.partial``, sidecars
  (``.xmp``, ``.thm``), anything the loader cannot read (``ml.io.DECODERS``: a ``.gif`` is taken,
  a ``.heic`` is not while no decoder is installed);
* a file renamed *into* its final name (tmp-then-rename) is complete at the next poll;
* otherwise it is complete once its size and mtime have not changed for
  ``stable_seconds`` (``closed_grace`` after the writer closed it, from inotify);
* a JPEG that does not yet end with the end-of-image marker waits up to
  ``4 * stable_seconds`` more, then is released anyway (the processor reports it).

RAW+JPEG pairs of one shot (same stem, arriving within ``pair_window`` seconds) are
handed over once: the JPEG is processed, the RAW is kept as the pair's source reference.
A RAW with no JPEG partner after ``pair_window`` is handed over alone.

While paused, files are still tracked but nothing is handed over; ``resume()`` releases
whatever completed meanwhile.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ml.io import JPEG_EXTENSIONS as JPEG_EXTS, RAW_EXTENSIONS as RAW_EXTS, SUPPORTED_EXTENSIONS as PHOTO_EXTS  # noqa: F401
from .photos import TEMP_SUFFIXES, is_jpeg, is_photo_name, is_raw, shot_key  # noqa: F401  (the one home of both rules)

ReadyFn = Callable[[Path, "Path | None"], None]     # (photo to process, RAW partner or None)
PairedFn = Callable[[Path, Path], None]             # (already handed-over JPEG, its late RAW)


def is_ignored(path: str | os.PathLike) -> bool:
    """True for names that are not (yet) photos the loader reads: temp/partial, hidden, ~, sidecars,
    unsupported types (``studio_app.core.photos.is_photo_name``)."""
    return not is_photo_name(path)


def jpeg_looks_complete(path: Path) -> bool:
    """A JPEG ends with FF D9 (some cameras pad a few bytes after it)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            n = f.tell()
            if n < 4:
                return False
            f.seek(max(0, n - 64))
            tail = f.read()
        return b"\xff\xd9" in tail
    except OSError:
        return False


@dataclass
class _Track:
    size: int = -1
    mtime: float = -1.0
    since: float = 0.0            # when (size, mtime) was last seen to change
    first_seen: float = 0.0
    closed: bool = False          # the writer closed it
    renamed: bool = False         # renamed into its final name: complete by definition
    complete_at: float | None = None   # when it was judged complete (waiting for pause/pairing)
    signature: tuple | None = None


@dataclass
class _Emitted:
    signature: tuple
    at: float
    pair: Path | None = None


class StabilityTracker:
    """The completion logic, without threads or watchdog: feed it events and ``poll(now)``.

    ``poll`` returns the list of (photo, raw_partner) to hand over now. Deterministic,
    so it is tested with a fake clock.
    """

    def __init__(self, stable_seconds: float = 1.0, closed_grace: float = 0.5,
                 pair_window: float = 3.0, validate: bool = True):
        self.stable_seconds = stable_seconds
        self.closed_grace = closed_grace
        self.pair_window = pair_window
        self.validate = validate
        self.paused = False
        self._tracks: dict[Path, _Track] = {}
        self._emitted: dict[Path, _Emitted] = {}
        self._late_pairs: list[tuple[Path, Path]] = []

    # ---- events -------------------------------------------------------------------------
    def touch(self, path: Path, now: float, closed: bool = False, renamed: bool = False) -> None:
        path = Path(path)
        if is_ignored(path):
            return
        tr = self._tracks.get(path)
        if tr is None:
            tr = self._tracks[path] = _Track(since=now, first_seen=now)
        # events arrive in order: a write after a close means the writer is back
        tr.closed = closed or renamed
        tr.renamed = renamed

    def forget(self, path: Path) -> None:
        self._tracks.pop(Path(path), None)

    @property
    def pending(self) -> list[Path]:
        return sorted(self._tracks)

    def take_late_pairs(self) -> list[tuple[Path, Path]]:
        out, self._late_pairs = self._late_pairs, []
        return out

    # ---- the decision -------------------------------------------------------------------
    def poll(self, now: float) -> list[tuple[Path, Path | None]]:
        for path, tr in list(self._tracks.items()):
            try:
                st = path.stat()
            except FileNotFoundError:
                del self._tracks[path]           # renamed away / deleted while being written
                continue
            except OSError:
                continue
            if (st.st_size, st.st_mtime) != (tr.size, tr.mtime):
                tr.size, tr.mtime, tr.since = st.st_size, st.st_mtime, now
                tr.complete_at = None
                continue
            if tr.complete_at is not None or tr.size <= 0:
                continue
            quiet = now - tr.since
            need = 0.0 if tr.renamed else (self.closed_grace if tr.closed else self.stable_seconds)
            if quiet < need:
                continue
            if (self.validate and is_jpeg(path) and not jpeg_looks_complete(path)
                    and quiet < need + 4 * self.stable_seconds):
                continue
            tr.complete_at = now
            tr.signature = (tr.size, tr.mtime)
        return self._release(now)

    def _release(self, now: float) -> list[tuple[Path, Path | None]]:
        out: list[tuple[Path, Path | None]] = []
        complete = {p: tr for p, tr in self._tracks.items() if tr.complete_at is not None}
        for path, tr in sorted(complete.items()):
            if path not in self._tracks:
                continue                          # consumed as the RAW partner of a JPEG above
            prev = self._emitted.get(path)
            if prev is not None and prev.signature == tr.signature:
                del self._tracks[path]           # seen again (e.g. metadata touch): already handed over
                continue
            if is_raw(path):
                jpeg = self._partner_jpeg(path)
                if jpeg is not None and jpeg in self._emitted and now - self._emitted[jpeg].at <= self.pair_window + self.stable_seconds * 2:
                    # the JPEG of this shot was already handed over: attach the RAW as its source
                    if self._emitted[jpeg].pair is None:
                        self._emitted[jpeg].pair = path
                        self._late_pairs.append((jpeg, path))
                    self._emitted[path] = _Emitted(tr.signature, now, jpeg)
                    del self._tracks[path]
                    continue
                if jpeg is not None and jpeg in self._tracks:
                    continue                      # its JPEG is still arriving: wait for it
                if now - tr.complete_at < self.pair_window:
                    continue                      # give the JPEG of the shot a chance to arrive
                if self.paused:
                    continue
                self._emit(path, None, tr, now, out)
            else:
                if self.paused:
                    continue
                raw = self._partner_raw(path)
                self._emit(path, raw, tr, now, out)
                if raw is not None:
                    self._emitted[raw] = _Emitted(self._raw_sig(raw), now, path)
                    self._tracks.pop(raw, None)
        return out

    def _emit(self, path: Path, pair: Path | None, tr: _Track, now: float, out: list) -> None:
        self._emitted[path] = _Emitted(tr.signature, now, pair)
        del self._tracks[path]
        out.append((path, pair))

    def _raw_sig(self, raw: Path) -> tuple:
        tr = self._tracks.get(raw)
        if tr is not None and tr.signature:
            return tr.signature
        try:
            st = raw.stat()
            return (st.st_size, st.st_mtime)
        except OSError:
            return (-1, -1)

    def _partner_raw(self, jpeg: Path) -> Path | None:
        """A RAW with the same stem that is tracked (arriving) or arrived recently."""
        for cand in list(self._tracks) + list(self._emitted):
            if shot_key(cand) == shot_key(jpeg) and is_raw(cand):
                tr = self._tracks.get(cand)
                if tr is not None:
                    return cand
                # a RAW already handed over (alone, or with another JPEG): not paired again
                return None
        return None

    def _partner_jpeg(self, raw: Path) -> Path | None:
        for cand in list(self._tracks) + list(self._emitted):
            if shot_key(cand) == shot_key(raw) and is_jpeg(cand):
                return cand
        return None


class HotFolder:
    """Watches one folder (not recursive: tethering folders are flat) with watchdog.

    ``on_ready(photo, raw_partner)`` is called on the watcher thread, once per shot.
    ``on_paired(jpeg, raw)`` when a RAW arrives after its JPEG was already handed over.
    ``include_existing``: photos already in the folder at start are handed over too (the
    caller filters those that already have results: "arrived while the app was closed").
    """

    def __init__(self, folder: str | os.PathLike, on_ready: ReadyFn, *, on_paired: PairedFn | None = None,
                 stable_seconds: float = 1.0, closed_grace: float = 0.5, pair_window: float = 3.0,
                 poll_interval: float = 0.1, rescan_interval: float = 2.0, use_polling: bool = False,
                 include_existing: bool = True):
        self.folder = Path(folder)
        self.on_ready = on_ready
        self.on_paired = on_paired
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.use_polling = use_polling
        self.include_existing = include_existing
        self.tracker = StabilityTracker(stable_seconds, closed_grace, pair_window)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self.errors: list[str] = []

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        if not self.folder.is_dir():
            raise FileNotFoundError(f"the hot folder {self.folder} does not exist")
        self._stop.clear()
        self._start_observer()
        if self.include_existing:
            self._rescan()
        else:
            # existing files are known, not new
            now = time.monotonic()
            for p in self._list():
                st = p.stat()
                self.tracker._emitted[p] = _Emitted((st.st_size, st.st_mtime), now)
        self._thread = threading.Thread(target=self._run, name="hotfolder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=2)
            except Exception:
                pass
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def paused(self) -> bool:
        return self.tracker.paused

    def pause(self) -> None:
        with self._lock:
            self.tracker.paused = True

    def resume(self) -> None:
        with self._lock:
            self.tracker.paused = False
        self._poll_once()

    # ---- internals ------------------------------------------------------------------------
    def _start_observer(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            if self.use_polling:
                from watchdog.observers.polling import PollingObserver as Obs
            else:
                from watchdog.observers import Observer as Obs
        except ImportError as exc:            # the periodic rescan still finds files
            self.errors.append(f"watchdog unavailable ({exc}); scanning the folder every {self.rescan_interval:g} s")
            return
        hf = self

        class Handler(FileSystemEventHandler):
            def on_created(self, event):
                if not event.is_directory:
                    hf._event(event.src_path)

            def on_modified(self, event):
                if not event.is_directory:
                    hf._event(event.src_path)

            def on_closed(self, event):
                if not event.is_directory:
                    hf._event(event.src_path, closed=True)

            def on_moved(self, event):
                if not event.is_directory:
                    with hf._lock:
                        hf.tracker.forget(Path(os.fsdecode(event.src_path)))
                    hf._event(event.dest_path, renamed=True)

        obs = Obs()
        obs.schedule(Handler(), str(self.folder), recursive=False)
        obs.daemon = True
        obs.start()
        self._observer = obs

    def _event(self, raw_path, closed: bool = False, renamed: bool = False) -> None:
        p = Path(os.fsdecode(raw_path))
        if p.parent != self.folder:
            return
        with self._lock:
            self.tracker.touch(p, time.monotonic(), closed=closed, renamed=renamed)

    def _list(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.iterdir() if p.is_file() and not is_ignored(p))
        except OSError as exc:
            self.errors.append(f"cannot read the hot folder: {exc}")
            return []

    def _rescan(self) -> None:
        now = time.monotonic()
        with self._lock:
            for p in self._list():
                if p not in self.tracker._tracks:
                    em = self.tracker._emitted.get(p)
                    if em is not None:
                        try:
                            st = p.stat()
                        except OSError:
                            continue
                        if (st.st_size, st.st_mtime) == em.signature:
                            continue
                    self.tracker.touch(p, now)

    def _poll_once(self) -> None:
        with self._lock:
            ready = self.tracker.poll(time.monotonic())
            late = self.tracker.take_late_pairs()
        for photo, pair in ready:
            try:
                self.on_ready(photo, pair)
            except Exception as exc:  # a callback bug must not kill the watcher
                self.errors.append(f"hot-folder callback failed for {photo.name}: {exc}")
        if self.on_paired is not None:
            for jpeg, raw in late:
                try:
                    self.on_paired(jpeg, raw)
                except Exception as exc:
                    self.errors.append(f"hot-folder pairing callback failed: {exc}")

    def _run(self) -> None:
        last_scan = time.monotonic()
        while not self._stop.wait(self.poll_interval):
            now = time.monotonic()
            if now - last_scan >= self.rescan_interval:
                self._rescan()
                last_scan = now
            self._poll_once()
