"""Typed events of the application service (:class:`studio_app.core.studio.Studio`). Qt-free.

An :class:`EmitterGroup` holds one :class:`Emitter` per event name (napari's model, not its code)::

    studio.events.document_changed.connect(on_doc)      # on_doc(ev: DocumentChanged)
    studio.events.connect_all(bridge.forward)           # every event, one callback

Emitting calls the callbacks **synchronously on the emitting thread**, in connection order. The
Studio emits from its processing thread, the hot-folder thread, an export thread and the caller's
thread (edits). A Qt layer therefore forwards each event to its UI thread with a queued signal
(``Signal(object)`` emitted from the callback) and never touches widgets inside the callback.

A callback that raises does not stop the others nor the emitter: the exception is reported on the
group's ``error`` emitter (a failing ``error`` callback is printed to stderr instead).

Every payload is a frozen dataclass carrying the new state (an :class:`Entry` copy, the
:class:`ResultDocument`), so a listener never has to read the disk to learn what just happened.
The documents are shared, not copied: listeners must treat them as read-only.
"""
from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .result import ResultDocument
from .session import Entry

Callback = Callable[[Any], None]


class StudioError(RuntimeError):
    """A request the Studio cannot honour now (the message is for the operator)."""


# ---- payloads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryChanged:
    """A photo's session entry changed (status, progress, stage, message, pair, folder). ``entry``
    is a copy taken at emit time; ``removed`` is True when it left the session."""
    entry: Entry
    removed: bool = False


@dataclass(frozen=True)
class DocumentChanged:
    """A result document was written. ``reason``: ``processed`` (a new result: reload the photo
    itself when ``image_changed``), ``edit``, ``undo``, ``redo``, ``review`` or ``exported``.
    ``mask_changed``: the mask file was rewritten (``mask`` holds it when the writer had it)."""
    photo: str
    folder: Path
    doc: ResultDocument
    reason: str
    image_changed: bool = False
    mask_changed: bool = False
    mask: Any = None                 # numpy uint8 (H, W) or None


@dataclass(frozen=True)
class BatchProgress:
    """The processing queue: ``done`` of ``total`` photos of the current batch, the photo being
    processed (None when idle) with its stage and fraction. Throttled (``Studio.progress_interval``)
    except at a photo's start and end. ``fraction`` is of the whole batch, 0..1."""
    done: int
    total: int
    photo: str | None = None
    stage: str = ""
    photo_fraction: float = 0.0

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, (self.done + self.photo_fraction) / self.total)

    @property
    def busy(self) -> bool:
        return self.done < self.total


@dataclass(frozen=True)
class JobFinished:
    """One processing job ended: ``outcome`` is the processor's :class:`Outcome` (ok, error,
    skipped, timings) or None when it was ``cancelled``."""
    photo: str
    outcome: Any = None
    cancelled: bool = False


@dataclass(frozen=True)
class ExportProgress:
    """An export job moved: result ``index`` of ``total`` is ``name``. When ``finished``: ``report``
    (:class:`ExportReport`, ``report.cancelled`` after a cancel) or ``error`` (a message)."""
    job: int
    index: int
    total: int
    name: str = ""
    finished: bool = False
    report: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Arrival:
    """The hot folder handed over a photo (``pair``: its RAW). ``unseen``: arrivals the operator has
    not looked at yet (``Studio.mark_arrivals_seen()`` resets it) — the GUI's badge; it never moves
    the view by itself. ``reprocess``: the file replaced one already known (new content)."""
    photo: str
    pair: str | None
    unseen: int
    reprocess: bool = False


@dataclass(frozen=True)
class HistoryChanged:
    """The undo history of ``photo`` changed: what Edit › Undo / Redo would do now."""
    photo: str
    can_undo: bool
    can_redo: bool
    undo_text: str = ""
    redo_text: str = ""


@dataclass(frozen=True)
class ProcessorState:
    """The processor: ``loading`` | ``ready`` (``text`` = device / engines) | ``failed`` (``text`` =
    why; photos stay queued) | ``reloading``."""
    state: str
    text: str = ""


@dataclass(frozen=True)
class HotFolderState:
    """The hot folder: ``folder`` (None: not watching), ``paused``, ``message`` (a problem to show)."""
    folder: Path | None
    paused: bool = False
    message: str = ""


@dataclass(frozen=True)
class Error:
    """Something the operator should read (``photo`` when it is about one photo). Not a crash."""
    message: str
    photo: str | None = None


@dataclass(frozen=True)
class CatalogChanged:
    """Products or assignments changed (``studio.catalog``). ``skus``: the products touched (re-read
    their panel rows with ``studio.products_panel()``); ``reason``: assign, products, delete, bind,
    rebuild; ``message``: a line for the status bar (e.g. "card SKU X created a new product")."""
    skus: tuple = ()
    reason: str = "assign"
    message: str = ""


EVENTS: dict[str, type] = {
    "entry_changed": EntryChanged, "document_changed": DocumentChanged,
    "batch_progress": BatchProgress, "job_finished": JobFinished, "export_progress": ExportProgress,
    "arrival": Arrival, "history_changed": HistoryChanged, "processor_state": ProcessorState,
    "hot_folder": HotFolderState, "error": Error, "catalog_changed": CatalogChanged,
}


# ---- emitters --------------------------------------------------------------------------------------
class Emitter:
    """One named event: ``connect(cb)``, ``disconnect(cb)``, ``emit(payload)`` (or call it)."""

    def __init__(self, name: str, payload_type: type | None = None, on_failure: Callable | None = None):
        self.name = name
        self.payload_type = payload_type
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._on_failure = on_failure

    def connect(self, callback: Callback) -> Callback:
        with self._lock:
            if callback not in self._callbacks:
                self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Remove one callback (all when None); an unknown callback is ignored."""
        with self._lock:
            if callback is None:
                self._callbacks.clear()
            elif callback in self._callbacks:
                self._callbacks.remove(callback)

    @property
    def callbacks(self) -> tuple[Callback, ...]:
        with self._lock:
            return tuple(self._callbacks)

    def emit(self, payload: Any) -> None:
        if self.payload_type is not None and not isinstance(payload, self.payload_type):
            raise TypeError(f"{self.name} carries {self.payload_type.__name__}, not {type(payload).__name__}")
        for cb in self.callbacks:
            try:
                cb(payload)
            except Exception as exc:  # a listener's bug must not stop the processing thread
                self._failed(cb, exc)

    __call__ = emit

    def _failed(self, cb: Callback, exc: Exception) -> None:
        if self._on_failure is not None and self.name != "error":
            self._on_failure(Error(f"a listener of {self.name} failed: {type(exc).__name__}: {exc}"))
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


@dataclass
class EmitterGroup:
    """The named emitters of one model; ``group.<name>`` is an :class:`Emitter`."""
    names: dict[str, type] = field(default_factory=lambda: dict(EVENTS))

    def __post_init__(self):
        self._emitters = {n: Emitter(n, t, on_failure=self._report) for n, t in self.names.items()}

    def _report(self, err: Error) -> None:
        self._emitters["error"].emit(err)

    def __getattr__(self, name: str) -> Emitter:
        try:
            return self.__dict__["_emitters"][name]
        except KeyError:
            raise AttributeError(f"no event named {name!r}") from None

    def __iter__(self):
        return iter(self._emitters.values())

    def connect_all(self, callback: Callable[[str, Any], None]) -> None:
        """``callback(name, payload)`` for every event (what a Qt bridge forwards)."""
        for em in self._emitters.values():
            em.connect(_Named(em.name, callback))

    def disconnect_all(self, callback: Callable[[str, Any], None]) -> None:
        for em in self._emitters.values():
            em.disconnect(_Named(em.name, callback))


@dataclass(frozen=True)
class _Named:
    name: str
    callback: Callable[[str, Any], None]

    def __call__(self, payload: Any) -> None:
        self.callback(self.name, payload)
