"""The operator's session: the photos of this shift, in order, with their status.

Qt-free. Saved atomically to ``<out>/session.json`` after every change, so that a restart
shows the same queue. The result documents stay the source of truth for everything about a
photo's result (review status, needs-review reasons); the session only remembers *which*
photos belong to the shift, where their results are, and transient states (queued, error).

Statuses shown to the operator::

    queued -> processing -> ready | needs_review -> approved | rejected -> exported
                         \\-> error (message)        cancelled (batch stopped; can be queued again)
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import atomic
from .result import DocumentError, ResultDocument, result_path
from .result_folder import ResultFolder

SESSION_NAME = "session.json"
SESSION_VERSION = 1

STATUSES = ("queued", "processing", "ready", "needs_review", "approved", "rejected", "exported",
            "error", "cancelled")
STATUS_LABELS = {
    "queued": "Queued", "processing": "Processing", "ready": "Ready",
    "needs_review": "Needs review", "approved": "Approved", "rejected": "Rejected",
    "exported": "Exported", "error": "Error", "cancelled": "Cancelled",
}
TRANSIENT = ("queued", "processing")


@dataclass
class Entry:
    photo: str                       # absolute path of the photo that is processed
    status: str = "queued"
    folder: str | None = None        # result folder (absolute) once processed
    message: str = ""                # error message, or the needs-review reason(s)
    pair: str | None = None          # RAW of the same shot (source reference)
    force_kind: str | None = None    # re-process as this kind ("treat as product/person")
    progress: float = 0.0
    stage: str = ""
    kind: str | None = None

    @property
    def name(self) -> str:
        return Path(self.photo).name

    def apply_document(self, doc: ResultDocument) -> None:
        self.kind = doc.kind
        st = doc.status
        if st == "pending":
            self.status = "needs_review" if doc.needs_review else "ready"
        else:
            self.status = st
        self.message = "; ".join(doc.warnings) if doc.needs_review else ""
        self.progress = 1.0
        self.stage = ""


def _key(p: str | os.PathLike) -> str:
    return str(Path(p).resolve())


class Session:
    def __init__(self, out_root: str | os.PathLike, autosave: bool = True):
        self.out_root = Path(out_root)
        self.path = self.out_root / SESSION_NAME
        self.entries: list[Entry] = []
        self.autosave = autosave
        self._index: dict[str, Entry] = {}

    # ---- persistence ------------------------------------------------------------------
    @classmethod
    def open(cls, out_root: str | os.PathLike, autosave: bool = True) -> "Session":
        """Load ``session.json`` when present (unreadable -> a fresh session, file kept aside).

        Photos that were queued or processing when the app stopped come back as queued."""
        s = cls(out_root, autosave=autosave)
        if s.path.exists():
            try:
                data = json.loads(s.path.read_text(encoding="utf-8"))
                for d in data.get("entries", []):
                    e = Entry(**{k: v for k, v in d.items() if k in Entry.__dataclass_fields__})
                    if e.status not in STATUSES:
                        e.status = "queued"
                    if e.status == "processing":
                        e.status, e.progress, e.stage = "queued", 0.0, ""
                    s._append(e)
                s.refresh_from_documents()
            except (OSError, ValueError, TypeError) as exc:
                aside = s.path.with_name(SESSION_NAME + ".unreadable")
                try:
                    os.replace(s.path, aside)
                except OSError:
                    pass
                s.load_error = f"the saved session could not be read ({exc}); it was moved to {aside.name}"
        return s

    load_error: str | None = None

    def data(self) -> dict:
        """What ``save`` writes (cheap; a caller may write it on another thread with ``write``)."""
        return {"version": SESSION_VERSION,
                "entries": [{k: v for k, v in asdict(e).items() if k not in ("progress", "stage")}
                            for e in self.entries]}

    def write(self, data: dict) -> None:
        self.out_root.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.path, data)

    def save(self) -> None:
        self.write(self.data())

    on_change = None     # optional callback instead of saving at once (the GUI saves off its thread)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
        elif self.autosave:
            self.save()

    # ---- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def get(self, photo: str | os.PathLike) -> Entry | None:
        return self._index.get(_key(photo))

    def index_of(self, photo: str | os.PathLike) -> int:
        e = self.get(photo)
        return -1 if e is None else self.entries.index(e)

    def queued(self) -> list[Entry]:
        return [e for e in self.entries if e.status == "queued"]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for e in self.entries:
            out[e.status] += 1
        return out

    def has_result(self, photo: str | os.PathLike) -> bool:
        """True when the photo already has a result document in the output folder."""
        e = self.get(photo)
        if e is not None and e.folder and result_path(e.folder).exists():
            return True
        return find_result(photo, self.out_root) is not None

    # ---- changes ------------------------------------------------------------------------
    def _append(self, e: Entry) -> None:
        e.photo = _key(e.photo)
        self.entries.append(e)
        self._index[e.photo] = e
        if e.pair:
            self._index.setdefault(_key(e.pair), e)

    def add(self, photo: str | os.PathLike, pair: str | os.PathLike | None = None,
            force_kind: str | None = None, requeue: bool = False) -> Entry | None:
        """Add a photo to the queue. Returns the entry when it was (re)queued, None when the
        photo is already in the session (and ``requeue`` is False)."""
        existing = self.get(photo)
        if existing is not None:
            if pair and not existing.pair:
                self.set_pair(existing.photo, pair)
            if not requeue:
                return None
            existing.status, existing.progress, existing.stage, existing.message = "queued", 0.0, "", ""
            if force_kind is not None:
                existing.force_kind = force_kind
            self._changed()
            return existing
        e = Entry(photo=str(photo), pair=_key(pair) if pair else None, force_kind=force_kind)
        folder = find_result(photo, self.out_root)
        if folder is not None and not requeue:
            e.folder = str(folder)
            try:
                e.apply_document(ResultFolder(folder).load())
            except DocumentError as exc:
                e.status, e.message = "error", str(exc)
        self._append(e)
        self._changed()
        return e

    def set_pair(self, photo: str | os.PathLike, raw: str | os.PathLike) -> None:
        e = self.get(photo)
        if e is None:
            return
        e.pair = _key(raw)
        self._index.setdefault(e.pair, e)
        self._changed()

    def remove(self, photo: str | os.PathLike) -> None:
        e = self.get(photo)
        if e is None:
            return
        self.entries.remove(e)
        self._index = {k: v for k, v in self._index.items() if v is not e}
        self._changed()

    def mark_processing(self, photo, stage: str = "", frac: float = 0.0) -> Entry | None:
        e = self.get(photo)
        if e is None:
            return None
        new = e.status != "processing"
        e.status, e.stage, e.progress = "processing", stage, frac
        if new:
            self._changed()
        return e

    def mark_done(self, photo, folder: str | os.PathLike, doc: ResultDocument | None = None) -> Entry | None:
        e = self.get(photo)
        if e is None:
            return None
        e.folder = str(Path(folder).resolve())
        try:
            e.apply_document(doc if doc is not None else ResultFolder(folder).load())
        except DocumentError as exc:
            e.status, e.message = "error", str(exc)
        e.force_kind = None
        self._changed()
        return e

    def mark_failed(self, photo, message: str) -> Entry | None:
        e = self.get(photo)
        if e is None:
            return None
        e.status, e.message, e.progress, e.stage = "error", message, 0.0, ""
        self._changed()
        return e

    def mark_cancelled(self, photos=None) -> list[Entry]:
        """The batch was stopped: queued/processing photos (or the given ones) become cancelled."""
        keys = None if photos is None else {_key(p) for p in photos}
        out = []
        for e in self.entries:
            if e.status in TRANSIENT and (keys is None or e.photo in keys):
                e.status, e.progress, e.stage = "cancelled", 0.0, ""
                out.append(e)
        if out:
            self._changed()
        return out

    def requeue_cancelled(self) -> list[Entry]:
        out = []
        for e in self.entries:
            if e.status == "cancelled":
                e.status = "queued"
                out.append(e)
        if out:
            self._changed()
        return out

    def refresh(self, photo) -> Entry | None:
        """Re-read the photo's result document (after an edit, an approval, an export)."""
        e = self.get(photo)
        if e is None or not e.folder:
            return e
        try:
            e.apply_document(ResultFolder(e.folder).load())
        except DocumentError as exc:
            e.status, e.message = "error", str(exc)
        self._changed()
        return e

    def refresh_from_documents(self) -> None:
        for e in self.entries:
            if e.folder and e.status not in TRANSIENT and e.status != "cancelled":
                try:
                    e.apply_document(ResultFolder(e.folder).load())
                except DocumentError as exc:
                    e.status, e.message = "error", str(exc)


def find_result(photo: str | os.PathLike, out_root: str | os.PathLike) -> Path | None:
    """The result folder of ``photo`` under ``out_root`` whose document names this photo as its
    source; None when there is none yet (``ResultFolder.find``)."""
    rf = ResultFolder.find(photo, out_root)
    return rf.path if rf is not None else None


def arrived_while_closed(hot_folder: str | os.PathLike, session: Session) -> list[Path]:
    """Photos sitting in the hot folder with no result yet (they arrived while the app was closed).

    RAW photos whose JPEG of the same shot is there are not listed (the JPEG is processed)."""
    from .photos import is_photo_name, pair_shots
    folder = Path(hot_folder)
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_photo_name(p))
    return [p for p, _ in pair_shots(files) if session.get(p) is None and not session.has_result(p)]


class SessionSaver:
    """Writes ``session.json`` on its own thread, at most every ``delay`` s (never on the caller's)."""

    def __init__(self, session: Session, lock, delay: float = 0.2):
        self.session, self.lock, self.delay = session, lock, delay
        self._dirty = threading.Event()
        self._closed = False
        session.on_change = self._dirty.set
        self._thread = threading.Thread(target=self._run, name="session-save", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._dirty.wait()
            if self._closed:
                break
            time.sleep(self.delay)           # changes in a burst: one write
            self.flush()

    def flush(self) -> None:
        self._dirty.clear()
        with self.lock:
            data = self.session.data()
        try:
            self.session.write(data)
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        self._dirty.set()
        self._thread.join(2)
        self.flush()
