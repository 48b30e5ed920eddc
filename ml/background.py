"""Background threads that the interpreter lets finish at exit.

The pipeline starts short-lived daemon threads for work that overlaps the photo in hand: the
full-resolution decode (:mod:`ml.io`), the next photo's read-ahead in a batch, priming a
network's kernels. A daemon thread still inside native code (libjpeg, OpenCV, oneDNN) when the
interpreter shuts down can take the whole process down with it ("terminate called without an
active exception", exit status 134) -- a script that processes photos and returns while the
next photo is being read ahead ended that way. Threads started here are waited for (at most
:data:`EXIT_WAIT_S` in all) before the interpreter tears down; they stay daemon threads, so
the wait is bounded and never blocks exit for good.
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Callable

EXIT_WAIT_S = 10.0

_running: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
_lock = threading.Lock()


def start(target: Callable[..., object], name: str, *args) -> threading.Thread:
    """Start ``target(*args)`` on a daemon thread that exit waits for."""
    t = threading.Thread(target=target, args=args, name=name, daemon=True)
    with _lock:
        _running.add(t)
    t.start()
    return t


def wait_all(timeout: float = EXIT_WAIT_S) -> bool:
    """Wait for every thread started here (threads they start included); False on time-out."""
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            alive = [t for t in _running if t.is_alive() and t is not threading.current_thread()]
        if not alive:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        alive[0].join(left)


atexit.register(wait_all)
