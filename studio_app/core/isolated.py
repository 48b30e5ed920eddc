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


class _PipeChannel:
    """The child's side of the pipe to the app that started it (cancel: a shared event)."""

    def __init__(self, conn, cancel_ev):
        self.conn, self.cancel_ev = conn, cancel_ev
        self.poll, self.recv, self.send = conn.poll, conn.recv, conn.send

    def cancelled(self) -> bool:
        return self.cancel_ev.is_set()

    def close(self) -> None:
        self.conn.close()


def _child_main(conn, cancel_ev, options: dict) -> None:
    """Runs in the child process: build the Processor once, then serve requests until "stop".
    Asked to linger (the app closed with "keep models loaded"), it waits for the next launch of the
    app (``studio_app.core.resident``) and serves that one the same way."""
    key = options.pop("resident_key", None)
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
        hello = ("ready", describe(proc.pipeline.device), dict(proc.pipeline.engines))
        conn.send(hello)
    except BaseException as exc:  # missing weights, bad checkpoint, CUDA asked but absent
        conn.send(("load_failed", f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)))
        return
    chan = _PipeChannel(conn, cancel_ev)
    warm = [False]
    while True:
        outcome = _serve(chan, proc, warm)
        if outcome[0] != "linger" or not key:
            return                   # "stop", or the app went away without asking us to stay
        from . import resident
        endpoint = resident.listen(key)
        try:
            chan.send(("lingering", endpoint is not None))
        except (OSError, ValueError):
            pass
        chan.close()
        if endpoint is None:
            return                   # another process already keeps these models
        resident.detach(endpoint)
        adopted = resident.accept(endpoint, outcome[1])    # exits the process when the time is up
        adopted.send(hello[:3] + (os.getpid(),))
        chan = resident.SocketChannel(adopted)


def _serve(chan, proc, warm: list) -> tuple:
    """Process the app's requests until it says "stop" / "linger" or goes away ("gone")."""
    while True:
        try:
            if not warm[0] and not chan.poll(0.25):   # nothing asked yet: load the optional models
                warm[0] = True
                try:
                    proc.pipeline.warm_up()
                except Exception:       # the photo that needs the model reports it (a warning)
                    pass
            msg = chan.recv()
        except (EOFError, OSError):
            return ("gone",)                         # the parent went away
        if msg[0] == "stop":
            return ("stop",)
        if msg[0] == "linger":
            return ("linger", float(msg[1]))
        if msg[0] == "prefetch":
            proc.prefetch(msg[1])
            continue
        if msg[0] != "process":
            continue
        _, photo, out_root, force_kind, skip_existing = msg
        throttle = Throttle()

        def progress(stage: str, frac: float) -> None:
            if throttle.ready(frac >= 1.0):
                chan.send(("progress", stage, float(frac)))
        try:
            answer = ("done", proc.process(photo, out_root, force_kind=force_kind,
                                           skip_existing=skip_existing, progress=progress,
                                           cancel=chan.cancelled))
        except Cancelled:
            answer = ("cancelled",)
        except BaseException as exc:
            answer = ("error", f"{Path(photo).name}: {exc}")
        try:
            chan.send(answer)
        except (OSError, ValueError):
            return ("gone",)


_PRESTARTED: dict[tuple, "IsolatedProcessor"] = {}
_PRESTART_LOCK = threading.Lock()


def prestart(keep_loaded_s: float = 0.0, **options) -> None:
    """Start the child for these options now, without waiting for it: the first
    ``IsolatedProcessor(**options)`` adopts it. ``studio-catalog gui`` calls this first thing, with
    the default engines, before it imports Qt, so the child imports torch and loads the models
    while the window is being built; the app calls it again once it has read its settings. One
    child waits at a time: a prestarted child for other options (the operator chose other
    engines) is stopped. With ``keep_loaded_s`` > 0 a models process kept loaded by the app's
    previous run (``studio_app.core.resident``) is adopted instead, when there is one."""
    with _PRESTART_LOCK:
        key = _options_key(options)
        for other in [k for k in _PRESTARTED if k != key]:
            _PRESTARTED.pop(other).discard()
        if key not in _PRESTARTED:
            _PRESTARTED[key] = IsolatedProcessor(**options, keep_loaded_s=keep_loaded_s, wait=False)


def _options_key(options: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in options.items()))


class IsolatedProcessor:
    """Same ``process`` signature as ``studio_app.core.processing.Processor``; the work happens in
    a child process that keeps its models loaded between photos.

    ``keep_loaded_s`` > 0: the models process may outlive this object -- :meth:`close_for_exit`
    (the app closing) leaves it waiting that long for the app's next launch, which adopts it
    instead of loading the models again (``studio_app.core.resident``)."""

    def __init__(self, device: str = "auto", weights_dir: str | os.PathLike | None = None,
                 pose_engine: str = "blazepose", seg_engine: str = "u2netp", cpu_threads: int | None = None,
                 *, keep_loaded_s: float = 0.0, wait: bool = True):
        opts = {"device": device, "weights_dir": str(weights_dir) if weights_dir else None,
                "pose_engine": pose_engine, "seg_engine": seg_engine, "cpu_threads": cpu_threads}
        self.options = opts
        self.keep_loaded_s = float(keep_loaded_s or 0.0)
        self.resident_key: str | None = None     # set when the child can linger for the next launch
        self.adopted_resident = False            # True: the models were kept loaded by a previous run
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self._cancel = self._ctx.Event()
        self._hello = None
        self.device_text = ""
        self.engines: dict[str, str] = {}
        early = None
        if wait:
            with _PRESTART_LOCK:
                early = _PRESTARTED.pop(_options_key(opts), None)
        if early is not None and early._proc is not None:      # adopt the child started at launch
            self._ctx, self._cancel = early._ctx, early._cancel
            self._proc, self._conn, self._hello = early._proc, early._conn, early._hello
            self.resident_key, self.adopted_resident = early.resident_key, early.adopted_resident
            early._proc = early._conn = None
            self._wait_ready()
        elif self._adopt_resident():
            if wait:
                self._wait_ready()
        elif wait:
            self._start()
        else:
            self._spawn()

    # ---- child lifecycle ------------------------------------------------------------------
    def _key(self) -> str | None:
        """The name a kept-loaded models process has for these options (None: keeping is off,
        or the code / weights cannot be stamped)."""
        if self.keep_loaded_s > 0 and self.resident_key is None:
            try:
                from . import resident
                self.resident_key = resident.key_for(self.options)
            except Exception:
                self.resident_key = None
        return self.resident_key if self.keep_loaded_s > 0 else None

    def _adopt_resident(self) -> bool:
        """Take over the models process a previous run of the app kept loaded, if there is one."""
        if not self._key():
            return False
        from . import resident
        try:
            got = resident.connect(self.resident_key)
        except Exception:              # an unusable runtime folder: start as usual
            return False
        if got is None:
            return False
        conn, hello = got
        self._conn, self._hello = conn, hello[:3]
        self._proc = resident.RemoteProcess(int(hello[3]))
        self._cancel = resident.MessageCancel(conn)
        self.adopted_resident = True
        return True

    def _spawn(self) -> None:
        parent, child = self._ctx.Pipe()
        options = dict(self.options)
        if self._key():
            options["resident_key"] = self.resident_key
        self._cancel = self._ctx.Event()
        self.adopted_resident = False
        p = self._ctx.Process(target=_child_main, args=(child, self._cancel, options),
                              name="studio-catalog-processing", daemon=True)
        p.start()
        child.close()
        self._proc, self._conn, self._hello = p, parent, None

    def _start(self) -> None:
        self._spawn()
        self._wait_ready()

    def _wait_ready(self) -> None:
        p, parent = self._proc, self._conn
        if self._hello is not None:                  # an adopted process said so when it connected
            msg, self._hello = self._hello, None
        else:
            t0 = time.monotonic()
            while not parent.poll(0.1):
                if not p.is_alive():
                    raise ChildFailed(f"the processing process stopped while loading the models "
                                      f"(exit code {p.exitcode})")
                if time.monotonic() - t0 > STARTUP_TIMEOUT_S:
                    self.close()
                    raise ChildFailed("the models took too long to load")
            try:
                msg = parent.recv()
            except (EOFError, OSError):
                p.join(1.0)
                raise ChildFailed(f"the processing process stopped while loading the models "
                                  f"(exit code {p.exitcode})") from None
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

    def close_for_exit(self, timeout: float = 5.0) -> bool:
        """The app is closing: with ``keep_loaded_s`` > 0 the models process stays loaded that
        long for the app's next launch (True); otherwise, or when it cannot, it stops (False)."""
        p, conn = self._proc, self._conn
        if p is None or self.keep_loaded_s <= 0 or not self.resident_key or not p.is_alive():
            self.close(timeout)
            return False
        try:
            conn.send(("linger", self.keep_loaded_s))
            ok = conn.poll(timeout) and conn.recv() == ("lingering", True)
        except (EOFError, OSError, ValueError):
            ok = False
        if not ok:
            self.close(timeout)
            return False
        self._proc = self._conn = None
        conn.close()
        if isinstance(p, mp.process.BaseProcess):
            # not ours to stop any more: multiprocessing would terminate (daemon) or wait for
            # (non-daemon) its children when this process exits
            mp.process._children.discard(p)
        return True

    def __del__(self):
        try:
            self.close(timeout=1.0)
        except Exception:
            pass

    def _lost(self) -> None:
        """The connection broke: the process is gone or going (an adopted one is not our child,
        so its end is seen here rather than through a process handle)."""
        p = self._proc
        if hasattr(p, "lost"):
            p.lost = True
        elif p is not None:
            p.join(1.0)

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
        conn = self._conn
        try:
            conn.send(("process", str(photo), str(out_root), force_kind, skip_existing))
        except (OSError, ValueError):
            self._lost()
        if cancel is not None and cancel():
            self._cancel.set()
        while True:
            try:
                ready = conn.poll(0.02)
            except (EOFError, OSError):
                ready = False
            if ready:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):      # the process is gone (or going)
                    msg = None
                    self._lost()
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
                self._proc.join(1.0)
                code = self._proc.exitcode
                self.close()
                raise ChildFailed(f"{Path(photo).name}: the processing process stopped unexpectedly "
                                  f"(exit code {code}); the next photo starts it again")
