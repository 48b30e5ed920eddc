"""The Processor in a separate process, behind the same ``process(...)`` call.

Why: the pipeline runs a lot of Python between its native operations (module calls of the traced
pose graph, the crop / swatch logic, the PIL decode), and a Python thread doing that holds the
GIL for up to ``sys.getswitchinterval()`` at a time. The GUI thread must take the GIL again after
every call into Qt (each ``drawText`` of a list row, each slot), so with the pipeline on a thread
in the same process every repaint queues behind it (measured in bench/bench_gui.py
``--profile``). In a child process the GUI process keeps its GIL to itself.

``IsolatedProcessor(device=..., pose_engine=..., seg_engine=...)`` starts the child (multiprocessing
"spawn": safe with Qt and CUDA, works in frozen apps with ``freeze_support``), which loads the
models once and then processes photos on request. Progress messages and cancel cross a pipe and a
shared event. If the child dies (killed, out of memory, a crash in a native library) the photo
being processed fails with a readable message and the next photo starts a fresh child.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from pathlib import Path
from typing import Callable

from ml.types import Cancelled  # noqa: F401  (the one cancel type, re-exported for callers)
from .progress import Throttle

STARTUP_TIMEOUT_S = 600.0


class ChildFailed(RuntimeError):
    """The processing process could not start or stopped unexpectedly."""


def _child_main(conn, cancel_ev, options: dict) -> None:
    """Runs in the child process: build the Processor once, then serve requests until "stop"."""
    try:
        threads = options.pop("cpu_threads", None)
        if threads:
            from ml.device import configure_cpu_threads
            configure_cpu_threads(threads)
        from studio_app.core.processing import Processor
        proc = Processor(**options)
        # the rest once idle (below) or on first use; the segmenter's first call runs meanwhile
        proc.pipeline.warm_up(optional=False, prime=True)
        from ml.device import describe
        conn.send(("ready", describe(proc.pipeline.device), dict(proc.pipeline.engines)))
    except BaseException as exc:  # missing weights, bad checkpoint, CUDA asked but absent
        conn.send(("load_failed", f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)))
        return
    warm = False
    while True:
        try:
            if not warm and not conn.poll(0.25):     # nothing asked yet: load the optional models
                warm = True
                try:
                    proc.pipeline.warm_up()
                except Exception:       # the photo that needs the model reports it (a warning)
                    pass
            msg = conn.recv()
        except (EOFError, OSError):
            return                                   # the parent went away
        if msg[0] == "stop":
            return
        if msg[0] == "prefetch":
            proc.prefetch(msg[1])
            continue
        _, photo, out_root, force_kind, skip_existing = msg
        throttle = Throttle()

        def progress(stage: str, frac: float) -> None:
            if throttle.ready(frac >= 1.0):
                conn.send(("progress", stage, float(frac)))
        try:
            out = proc.process(photo, out_root, force_kind=force_kind, skip_existing=skip_existing,
                               progress=progress, cancel=cancel_ev.is_set)
            conn.send(("done", out))
        except Cancelled:
            conn.send(("cancelled",))
        except BaseException as exc:
            conn.send(("error", f"{Path(photo).name}: {exc}"))


_PRESTARTED: dict[tuple, "IsolatedProcessor"] = {}
_PRESTART_LOCK = threading.Lock()


def prestart(**options) -> None:
    """Start the child for these options now, without waiting for it: the first
    ``IsolatedProcessor(**options)`` adopts it. ``studio-catalog gui`` calls this first thing, with
    the default engines, before it imports Qt, so the child imports torch and loads the models
    while the window is being built; the app calls it again once it has read its settings. One
    child waits at a time: a prestarted child for other options (the operator chose other
    engines) is stopped."""
    with _PRESTART_LOCK:
        key = _options_key(options)
        for other in [k for k in _PRESTARTED if k != key]:
            _PRESTARTED.pop(other).discard()
        if key not in _PRESTARTED:
            _PRESTARTED[key] = IsolatedProcessor(**options, wait=False)


def _options_key(options: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in options.items()))


class IsolatedProcessor:
    """Same ``process`` signature as ``studio_app.core.processing.Processor``; the work happens in
    a child process that keeps its models loaded between photos."""

    def __init__(self, device: str = "auto", weights_dir: str | os.PathLike | None = None,
                 pose_engine: str = "blazepose", seg_engine: str = "u2netp", cpu_threads: int | None = None,
                 *, wait: bool = True):
        opts = {"device": device, "weights_dir": str(weights_dir) if weights_dir else None,
                "pose_engine": pose_engine, "seg_engine": seg_engine, "cpu_threads": cpu_threads}
        self.options = opts
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self._cancel = self._ctx.Event()
        self.device_text = ""
        self.engines: dict[str, str] = {}
        early = None
        if wait:
            with _PRESTART_LOCK:
                early = _PRESTARTED.pop(_options_key(opts), None)
        if early is not None and early._proc is not None:      # adopt the child started at launch
            self._ctx, self._cancel = early._ctx, early._cancel
            self._proc, self._conn = early._proc, early._conn
            early._proc = early._conn = None
            self._wait_ready()
        elif wait:
            self._start()
        else:
            self._spawn()

    # ---- child lifecycle ------------------------------------------------------------------
    def _spawn(self) -> None:
        parent, child = self._ctx.Pipe()
        p = self._ctx.Process(target=_child_main, args=(child, self._cancel, dict(self.options)),
                              name="studio-catalog-processing", daemon=True)
        p.start()
        child.close()
        self._proc, self._conn = p, parent

    def _start(self) -> None:
        self._spawn()
        self._wait_ready()

    def _wait_ready(self) -> None:
        p, parent = self._proc, self._conn
        t0 = time.monotonic()
        while not parent.poll(0.1):
            if not p.is_alive():
                raise ChildFailed(f"the processing process stopped while loading the models "
                                  f"(exit code {p.exitcode})")
            if time.monotonic() - t0 > STARTUP_TIMEOUT_S:
                self.close()
                raise ChildFailed("the models took too long to load")
        msg = parent.recv()
        if msg[0] != "ready":
            self.close()
            raise ChildFailed(msg[1])
        self.device_text, self.engines = msg[1], msg[2]

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def describe(self) -> str:
        return self.device_text

    def discard(self) -> None:
        """Stop a child nobody has used (it may still be loading, so it is not asked politely)."""
        p, conn = self._proc, self._conn
        self._proc = self._conn = None
        if p is None:
            return
        p.terminate()
        p.join(1.0)
        conn.close()

    def close(self, timeout: float = 5.0) -> None:
        p, conn = self._proc, self._conn
        self._proc = self._conn = None
        if p is None:
            return
        self._cancel.set()
        try:
            conn.send(("stop",))
        except (OSError, ValueError):
            pass
        p.join(timeout)
        if p.is_alive():
            p.terminate()
            p.join(2)
        conn.close()

    def __del__(self):
        try:
            self.close(timeout=1.0)
        except Exception:
            pass

    # ---- the Processor interface ----------------------------------------------------------
    def prefetch(self, photo) -> None:
        """The photo likely to come next (read ahead in the child while it writes the current one)."""
        if self.alive:
            try:
                self._conn.send(("prefetch", None if photo is None else str(photo)))
            except (OSError, ValueError):
                pass

    def process(self, photo, out_root, *, force_kind: str | None = None, skip_existing: bool = False,
                progress: Callable[[str, float], None] | None = None,
                cancel: Callable[[], bool] | None = None):
        if not self.alive:
            self.close()
            self._start()                  # the previous child died: a fresh one
        self._cancel.clear()
        if cancel is not None and cancel():
            self._cancel.set()
        conn = self._conn
        conn.send(("process", str(photo), str(out_root), force_kind, skip_existing))
        while True:
            try:
                ready = conn.poll(0.02)
            except (EOFError, OSError):
                ready = False
            if ready:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg is not None:
                    if msg[0] == "progress":
                        if progress is not None:
                            progress(msg[1], msg[2])
                        continue
                    if msg[0] == "done":
                        return msg[1]
                    if msg[0] == "cancelled":
                        raise Cancelled()
                    raise ChildFailed(msg[1])
            if cancel is not None and cancel():
                self._cancel.set()
            if not self._proc.is_alive():
                code = self._proc.exitcode
                self.close()
                raise ChildFailed(f"{Path(photo).name}: the processing process stopped unexpectedly "
                                  f"(exit code {code}); the next photo starts it again")
