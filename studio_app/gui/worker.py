"""Background processing: one QThread owns the Processor (models loaded once, on the GPU when
there is one) and works through a bounded job queue. The GUI thread never runs inference.

The worker accepts any object with ``process(photo, out_root, *, force_kind, progress, cancel)
-> Outcome`` (the real ``studio_app.core.processing.Processor``, or a test double), or a
factory that builds one on the worker thread (so loading models never blocks the window).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot


@dataclass
class Job:
    photo: str
    out_root: str
    force_kind: str | None = None


_STOP = object()
_RELOAD = object()


def _close(processor) -> None:
    close = getattr(processor, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


class ProcessingWorker(QObject):
    """Lives on its own QThread. Signals arrive in the GUI thread (queued connections)."""

    ready = Signal(str)                     # device / engine description, once models are loaded
    load_failed = Signal(str)               # the processor could not be built (message)
    started = Signal(str)                   # photo
    progress = Signal(str, str, float)      # photo, stage, fraction of this photo
    finished = Signal(str, str)             # photo, result folder
    failed = Signal(str, str)               # photo, message
    cancelled = Signal(str)                 # photo whose processing was stopped
    idle = Signal()                         # the queue ran empty
    reloading = Signal()                    # a new engine choice is being loaded
    reload_failed = Signal(str)             # it could not be loaded (message); the old engines stay

    def __init__(self, processor=None, factory: Callable[[], object] | None = None, maxsize: int = 4):
        super().__init__()
        if processor is None and factory is None:
            raise ValueError("give a processor or a factory")
        self.processor = processor
        self.factory = factory
        self.jobs: queue.Queue = queue.Queue(maxsize=maxsize)
        self._cancel = threading.Event()
        self._current: str | None = None
        self._progress_every = 0.05        # s: throttle progress signals (keeps the GUI thread calm)
        self._reload_lock = threading.Lock()
        self._reload_factory: Callable[[], object] | None = None

    # ---- called from the GUI thread -----------------------------------------------------------
    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full (the caller keeps it and retries later)."""
        try:
            self.jobs.put_nowait(job)
            return True
        except queue.Full:
            return False

    @property
    def free_slots(self) -> int:
        return max(0, self.jobs.maxsize - self.jobs.qsize())

    @property
    def current(self) -> str | None:
        return self._current

    def cancel(self) -> list[Job]:
        """Stop the photo being processed and drop the queued ones (returned)."""
        dropped = []
        while True:
            try:
                j = self.jobs.get_nowait()
            except queue.Empty:
                break
            if j is _STOP:
                self.jobs.put_nowait(j)
                break
            if j is not _RELOAD:
                dropped.append(j)
        if self._current is not None:
            self._cancel.set()
        return dropped

    def stop(self) -> None:
        self.cancel()
        self.jobs.put(_STOP)

    def reload(self, factory: Callable[[], object]) -> None:
        """Build a new processor with ``factory`` on the worker thread, between two photos (the one
        being processed finishes with the old engines). ``ready`` follows, or ``reload_failed``
        (the previous processor is kept)."""
        with self._reload_lock:
            self._reload_factory = factory
        try:
            self.jobs.put_nowait(_RELOAD)          # wakes an idle worker; a busy one checks anyway
        except queue.Full:
            pass

    # ---- runs on the worker thread -------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        if self.processor is None:
            try:
                self.processor = self.factory()
                warm = getattr(getattr(self.processor, "pipeline", None), "warm_up", None)
                if warm is not None:
                    warm()
            except Exception as exc:  # missing weights, CUDA asked but absent, ...
                self.load_failed.emit(f"the models could not be loaded: {exc}")
                return
        self.ready.emit(self.describe())
        try:
            while True:
                self._maybe_reload()
                job = self.jobs.get()
                if job is _STOP:
                    break
                if job is _RELOAD:
                    continue
                self._maybe_reload()
                self._run_job(job)
                if self.jobs.empty():
                    self.idle.emit()
        finally:
            _close(self.processor)

    def _maybe_reload(self) -> None:
        with self._reload_lock:
            factory, self._reload_factory = self._reload_factory, None
        if factory is None:
            return
        self.reloading.emit()
        try:
            new = factory()
            warm = getattr(getattr(new, "pipeline", None), "warm_up", None)
            if warm is not None:
                warm()
        except Exception as exc:
            self.reload_failed.emit(f"the chosen engines could not be loaded: {exc}")
            self.ready.emit(self.describe())
            return
        old, self.processor, self.factory = self.processor, new, factory
        _close(old)
        self.ready.emit(self.describe())

    def describe(self) -> str:
        own = getattr(self.processor, "describe", None)
        if callable(own):
            return own()
        pipe = getattr(self.processor, "pipeline", None)
        dev = getattr(pipe, "device", None)
        if dev is None:
            return "test processor"
        try:
            from ml.device import describe
            return describe(dev)
        except Exception:
            return str(dev)

    def _run_job(self, job: Job) -> None:
        self._cancel.clear()
        self._current = job.photo
        self.started.emit(job.photo)
        last = [0.0]

        def progress(stage: str, frac: float) -> None:
            now = time.monotonic()
            if now - last[0] >= self._progress_every or frac >= 1.0:
                last[0] = now
                self.progress.emit(job.photo, stage, float(frac))

        try:
            outcome = self.processor.process(Path(job.photo), Path(job.out_root), force_kind=job.force_kind,
                                             progress=progress, cancel=self._cancel.is_set)
        except Exception as exc:
            if self._cancel.is_set() or type(exc).__name__ == "Cancelled":
                self.cancelled.emit(job.photo)
            else:
                self.failed.emit(job.photo, f"{Path(job.photo).name}: {exc}")
            self._current = None
            return
        self._current = None
        if outcome.error is not None or outcome.folder is None:
            self.failed.emit(job.photo, outcome.error or f"{Path(job.photo).name}: no result")
        else:
            self.finished.emit(job.photo, str(outcome.folder))


class WorkerThread(QObject):
    """Owns the QThread + worker pair; ``start()`` once, ``shutdown()`` at exit."""

    def __init__(self, worker: ProcessingWorker, parent=None):
        super().__init__(parent)
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("processing")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        if self.thread.isRunning():
            self.worker.stop()
            self.thread.quit()
            self.thread.wait(timeout_ms)
