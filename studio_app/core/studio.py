"""The application, without a window: :class:`Studio`. The CLI, the GUI and the tests drive it alike.

A photo's path is one straight line::

    add / HotFolder -> queue (the photo on screen first) -> Processor.process -> ResultFolder
        -> session entry -> events.document_changed(doc) + events.entry_changed(entry)

and an operator's edit the same line backwards: ``apply(photo, SetBox(...))`` -> Editor ->
ResultFolder.save -> ``document_changed``. Nothing re-reads the disk to learn what just happened.

Threads: one processing thread (owns the processor: models are loaded there), the hot folder's
watcher thread, one thread per export job, and the caller's thread for edits. Events are emitted
on whichever of these did the work (see :mod:`studio_app.core.events`); a Qt layer forwards them to
its UI thread. Every public method may be called from any thread. See ``docs/studio.md``.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from .arrivals import HotFolderMixin
from .cataloging import CatalogMixin
from .editing import EditingMixin
from .edits import Editor
from .events import (BatchProgress, DocumentChanged, EmitterGroup, EntryChanged, Error,
                     JobFinished, ProcessorState, StudioError)  # noqa: F401  (StudioError re-exported)
from .exporting import ExportJob, ExportMixin
from .history import UNDO_BUDGET_BYTES, History
from .photos import collect_photos, pair_shots
from .processor import Cancelled, Processor, ProcessorSpec, describe
from .progress import PROGRESS_INTERVAL_S, Throttle
from .result_folder import ResultFolder
from .session import TRANSIENT, Entry, Session, SessionSaver

HIGH, NORMAL = 0, 1                 # queue priorities


class Studio(EditingMixin, HotFolderMixin, ExportMixin, CatalogMixin):
    """Owns the session, the processing queue, the hot folder, edits with undo, and export jobs.

    ``processor``: a built :class:`Processor`, or a :class:`ProcessorSpec` built on the processing
    thread when :meth:`start` runs (``None``: a default in-process spec). ``session``: an existing
    :class:`Session` (the CLI passes one with ``autosave=False``); by default ``<out>/session.json``
    is opened and kept up to date. ``skip_existing``: photos whose result is up to date are not
    processed again (CLI ``--skip-existing``)."""

    def __init__(self, out_root: str | os.PathLike, processor: Processor | ProcessorSpec | None = None, *,
                 session: Session | None = None, skip_existing: bool = False,
                 progress_interval: float = PROGRESS_INTERVAL_S, undo_budget_bytes: int = UNDO_BUDGET_BYTES,
                 editor_cache: int = 2):
        self.out_root = Path(out_root)
        self.events = EmitterGroup()
        self.session = session if session is not None else Session.open(self.out_root)
        self.skip_existing = skip_existing
        self.progress_interval = progress_interval
        self.history = History(undo_budget_bytes, on_trim=self._history_changed)
        self._spec = processor if isinstance(processor, ProcessorSpec) or processor is None else None
        self.processor: Processor | None = None if self._spec is not None or processor is None else processor
        self._spec = self._spec or (ProcessorSpec() if processor is None else None)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[tuple[int, int, str]] = []      # (priority, sequence, photo key)
        self._seq = 0
        self._focus: str | None = None
        self._running: dict[str, int] = {}               # photo key -> cancel generation at its start
        self._generation = 0                              # cancel() moves it on: the running photos stop
        self._stop = False
        self._reload: ProcessorSpec | None = None
        self._thread: threading.Thread | None = None
        self._done = self._total = 0
        self._editors: "OrderedDict[str, Editor]" = OrderedDict()
        self._editor_cache = max(1, editor_cache)
        self._edit_lock = threading.RLock()
        self._hot = None
        self._unseen = 0
        self._again: set[str] = set()
        self._export: ExportJob | None = None
        self._export_seq = 0
        self._saver = SessionSaver(self.session, self._lock) if session is None else None
        with self._lock:
            for e in self.session.queued():               # queued when the app last stopped
                self._push(e.photo, NORMAL)

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the processing thread (building the processor there). Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="studio-processing", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop watching, cancel processing and exports, free the processor, write the session."""
        self.unwatch()
        if self._export is not None:
            self._export.cancel()
            self._export.wait(timeout)
        with self._lock:
            self._stop = True
            self._wake.notify_all()
            t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout)
        with self._lock:          # photos on other lanes stop at their next cancel check
            self._wake.wait_for(lambda: not self._running, timeout)
        if self.processor is not None:
            _close(self.processor, exiting=True)
            self.processor = None
        if self._saver is not None:
            self._saver.close()
        self._close_catalog()

    def set_processor(self, spec: ProcessorSpec) -> None:
        """Switch engines between two photos (the current one finishes with the old ones);
        ``processor_state`` says ``reloading`` then ``ready`` (or ``failed``: the old one stays)."""
        with self._lock:
            self._reload = spec
            self._wake.notify_all()

    @property
    def spec(self) -> ProcessorSpec | None:
        return self._spec

    def keep_models_loaded(self, seconds: float) -> None:
        """How long the models stay loaded after the Studio closes, for the app's next launch
        (``studio_app.core.resident``; 0: they stop with it). Takes effect at once, no reload."""
        from dataclasses import replace
        with self._lock:
            if isinstance(self._spec, ProcessorSpec):
                self._spec = replace(self._spec, keep_loaded_s=float(seconds))
            if self._reload is not None and isinstance(self._reload, ProcessorSpec):
                self._reload = replace(self._reload, keep_loaded_s=float(seconds))
            if hasattr(self.processor, "keep_loaded_s"):
                self.processor.keep_loaded_s = float(seconds)

    # ---- adding photos -----------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike]) -> tuple[list[Entry], list[str]]:
        """Photos or folders (searched recursively); RAW+JPEG of one shot become one entry. Photos
        without a result are queued; photos already processed are listed with their result.
        Returns (new entries, error lines such as "no photos found in this folder")."""
        photos, errors = collect_photos(paths)
        added = [e for p, raw in pair_shots(photos) if (e := self.add_photo(p, raw)) is not None]
        return added, errors

    def add_photo(self, photo: str | os.PathLike, pair: str | os.PathLike | None = None,
                  force_kind: str | None = None) -> Entry | None:
        """One photo; None when it is already in the session (its pair is recorded)."""
        with self._lock:
            e = self.session.add(photo, pair=pair, force_kind=force_kind)
            if e is not None and e.status == "queued":
                self._push(e.photo, NORMAL)
        if e is not None:
            self._entry_changed(e)
        return e

    def enqueue(self, photo: str | os.PathLike, *, force_kind: str | None = None,
                priority: int = NORMAL, pair: str | os.PathLike | None = None) -> Entry:
        """Process ``photo`` (again), whatever its state: added to the session when new. ``HIGH``
        puts it before the other queued photos. Returns its entry."""
        with self._lock:
            e = self.session.get(photo)
            if e is not None and e.status in TRANSIENT:
                if priority == HIGH and e.status == "queued":
                    self._push(e.photo, HIGH)
                return e
            e = self.session.add(photo, pair=pair, force_kind=force_kind, requeue=True)
            self._push(e.photo, priority)
        self._forget_edits(e)
        self._entry_changed(e)
        return e

    def remove(self, photo: str | os.PathLike) -> bool:
        """Take a photo out of the session (its result folder stays); refused while processing."""
        with self._lock:
            e = self.session.get(photo)
            if e is None or e.photo in self._running:
                return False
            self._queue = [q for q in self._queue if q[2] != e.photo]
            self.session.remove(e.photo)
            copy = replace(e)
        self._forget_edits(e)
        self.events.entry_changed(EntryChanged(copy, removed=True))
        return True

    def entries(self) -> list[Entry]:
        """Copies of the session's entries, in order (safe to read on any thread)."""
        with self._lock:
            return [replace(e) for e in self.session.entries]

    def reprocess(self, photo: str | os.PathLike, force_kind: str | None = None) -> bool:
        """Process a listed photo again (its edits are replaced by the new result; the canvas gets
        ``document_changed(image_changed=True)``). False when it is queued or processing already."""
        e = self.session.get(photo)
        if e is None or e.status in TRANSIENT:
            return False
        self.enqueue(e.photo, force_kind=force_kind, priority=HIGH)
        return True

    def prioritize(self, photo: str | os.PathLike | None) -> None:
        """The photo on screen: processed next when it is queued (None: no preference)."""
        with self._lock:
            self._focus = None if photo is None else str(Path(photo).resolve())

    def _push(self, key: str, priority: int) -> None:
        if self._done >= self._total:
            self._done = self._total = 0
        queued = [q for q in self._queue if q[2] != key]
        if len(queued) == len(self._queue):
            self._total += 1                      # new work (not a change of priority)
        self._seq += 1
        self._queue = queued + [(priority, self._seq, key)]
        self._wake.notify_all()

    # ---- cancel -----------------------------------------------------------------------------------
    def cancel(self) -> list[Entry]:
        """Stop the photo being processed and drop the queued ones (they become ``cancelled``;
        :meth:`requeue_cancelled` brings them back). Finished results are kept."""
        with self._lock:
            self._queue.clear()
            self._generation += 1
            out = self.session.mark_cancelled([e.photo for e in self.session.queued()])
            self._done = self._total = len(self._running)
            self._wake.notify_all()
        for e in out:
            self._entry_changed(e)
        self._progress()
        return out

    def requeue_cancelled(self) -> list[Entry]:
        with self._lock:
            out = self.session.requeue_cancelled()
            for e in out:
                self._push(e.photo, NORMAL)
        for e in out:
            self._entry_changed(e)
        return out

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._queue or self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or processing (tests, the CLI). False on timeout."""
        with self._lock:
            return self._wake.wait_for(lambda: not self._queue and not self._running or self._stop,
                                       timeout)

    # ---- the processing thread ----------------------------------------------------------------------
    def _run(self) -> None:
        """Builds the processor and starts the photos: one at a time on this thread, or up to the
        processor's ``slots`` at once (a cluster), each on its own lane thread."""
        ready = self.processor is not None or self._build(self._spec, "loading")
        while True:
            with self._lock:      # without a processor (it failed to load) photos wait for set_processor
                self._wake.wait_for(lambda: self._stop or self._reload is not None
                                    or (ready and self._queue and len(self._running) < self._slots()))
                if self._stop:
                    return
                spec, self._reload = self._reload, None
                if spec is not None:      # the photos in flight finish with the old processor
                    self._wake.wait_for(lambda: self._stop or not self._running)
            if spec is not None:
                ready = self._build(spec, "reloading" if ready else "loading") or ready
                continue
            job = self._next_job()
            if job is None:
                continue
            if self._slots() > 1:
                threading.Thread(target=self._process_safely, args=job, name="studio-lane", daemon=True).start()
            else:
                self._process_safely(*job)

    def _slots(self) -> int:
        """How many photos the processor takes at once (``slots``; 1 when it does not say)."""
        return max(1, int(getattr(self.processor, "slots", 1) or 1))

    def _process_safely(self, e: Entry, force_kind: str | None, generation: int) -> None:
        try:
            self._process(e, force_kind, generation)
        except Exception as exc:  # a bug must not stop the processing thread
            self._finish(e, _failed(e.photo, f"{e.name}: {type(exc).__name__}: {exc}"), False)

    def _build(self, spec: ProcessorSpec, state: str) -> bool:
        self.events.processor_state(ProcessorState(state))
        try:
            new = spec.build()
        except Exception as exc:  # missing weights, CUDA asked but absent, a bad checkpoint
            what = "the models could not be loaded" if state == "loading" else "the chosen engines could not be loaded"
            self.events.processor_state(ProcessorState("failed", f"{what}: {exc}"))
            return False
        old, self.processor, self._spec = self.processor, new, spec
        if old is not None:
            _close(old)
        self.events.processor_state(ProcessorState("ready", describe(new)))
        return True

    def _next_job(self) -> tuple[Entry, str | None, int] | None:
        with self._lock:
            if not self._queue:
                return None
            pick = self._pick()
            self._queue.remove(pick)
            e = self.session.get(pick[2])
            if e is None or e.status != "queued":
                self._done += 1
                self._wake.notify_all()
                return None
            self._running[e.photo] = self._generation
            self.session.mark_processing(e.photo, "load", 0.0)
        self._entry_changed(e)
        self._progress(e.photo, "load", 0.0)
        return e, e.force_kind, self._running[e.photo]

    def _pick(self):
        """The queued job that goes next: the photo on screen, else by priority and order (lock held)."""
        return next((q for q in self._queue if q[2] == self._focus), None) or min(self._queue)

    def _read_ahead(self) -> None:
        """Tell the processor which photo is likely next, so it reads and decodes it while the
        current one is written (an optional processor method; a guess: the queue may change)."""
        prefetch = getattr(self.processor, "prefetch", None)
        if prefetch is None:
            return
        with self._lock:
            nxt = self._pick()[2] if self._queue else None
        prefetch(nxt)

    def _process(self, e: Entry, force_kind: str | None, generation: int) -> None:
        throttle = Throttle(self.progress_interval)

        def stopped() -> bool:
            return self._stop or self._generation != generation

        def progress(stage: str, frac: float) -> None:
            with self._lock:
                e.stage, e.progress = stage, frac
            if throttle.ready(frac >= 1.0):
                self._progress(e.photo, stage, frac)
                self._entry_changed(e)
        outcome, cancelled = None, False
        try:
            self._read_ahead()
            outcome = self.processor.process(Path(e.photo), self.out_root, force_kind=force_kind,
                                             skip_existing=self.skip_existing, progress=progress,
                                             cancel=stopped)
        except Cancelled:
            cancelled = True
        except Exception as exc:  # a processor that broke (a child process died): this photo fails
            outcome = _failed(e.photo, f"{Path(e.photo).name}: {exc}")
        self._finish(e, outcome, cancelled or stopped() and outcome is None)

    def _finish(self, e: Entry, outcome, cancelled: bool) -> None:
        with self._lock:
            if cancelled:
                self.session.mark_cancelled([e.photo])
            elif outcome.ok:
                self.session.mark_done(e.photo, outcome.folder, outcome.doc)
            else:
                self.session.mark_failed(e.photo, outcome.error or f"{e.name}: no result")
            self._running.pop(e.photo, None)
            self._done = min(self._total, self._done + 1)
        if not cancelled and outcome.ok and not outcome.skipped:
            self._forget_edits(e)
            doc = outcome.doc if outcome.doc is not None else ResultFolder(outcome.folder).try_load()
            if doc is not None:
                doc = self._keep_assignments(Path(outcome.folder), doc)
                from .processing import UNREAD
                card = getattr(outcome, "card", UNREAD)
                doc = self._bind_live(Path(outcome.folder), doc, card, card_read=card != UNREAD)
                self.events.document_changed(DocumentChanged(e.photo, Path(outcome.folder), doc, "processed",
                                                             image_changed=True, mask_changed=True))
        self._entry_changed(e)
        self.events.job_finished(JobFinished(e.photo, outcome, cancelled))
        with self._lock:
            again = e.photo in self._again and not cancelled
            self._again.discard(e.photo)
        if again:
            self.enqueue(e.photo, priority=HIGH)
        self._progress()
        with self._lock:
            self._wake.notify_all()

    def _progress(self, photo: str | None = None, stage: str = "", frac: float = 0.0) -> None:
        with self._lock:
            ev = BatchProgress(self._done, self._total, photo, stage, frac)
        self.events.batch_progress(ev)

    # ---- helpers ---------------------------------------------------------------------------------------
    def _entry_changed(self, e: Entry) -> None:
        # the copy is taken and emitted under the lock: two threads reporting the same entry
        # (the adding thread: queued; the processing thread: processing, error) deliver their
        # copies in the order of the changes, so a listener never ends on a stale state
        with self._lock:
            self.events.entry_changed(EntryChanged(replace(e)))

    def _error(self, message: str, photo: str | None = None) -> None:
        self.events.error(Error(message, photo))


def _close(processor, exiting: bool = False) -> None:
    """Free a processor; ``exiting`` (the Studio closes): one that keeps its models loaded for the
    app's next launch may do so (``IsolatedProcessor.close_for_exit``)."""
    close = getattr(processor, "close_for_exit", None) if exiting else None
    close = close or getattr(processor, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


def _failed(photo: str, message: str):
    from .processing import Outcome
    return Outcome(Path(photo), None, None, error=message)
