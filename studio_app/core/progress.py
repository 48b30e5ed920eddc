"""Progress throttling and Ctrl+C cancel: shared by the CLI commands and the Studio (the GUI gets
throttled events from the Studio). Qt-free."""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

PROGRESS_INTERVAL_S = 0.05        # at most 20 progress updates a second reach a listener


class Throttle:
    """``ready(final=False)``: True at most once per ``interval`` seconds, and always when ``final``."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._last = float("-inf")

    def ready(self, final: bool = False) -> bool:
        now = self.clock()
        if final or now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def reset(self) -> None:
        self._last = float("-inf")


@contextmanager
def sigint_cancels(on_cancel: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """Within the block the first Ctrl+C sets the yielded event (and calls ``on_cancel``): the
    running command finishes the current item and stops cleanly; a second Ctrl+C interrupts at
    once (KeyboardInterrupt). Off the main thread signals cannot be caught: the event is only set
    by the caller then."""
    ev = threading.Event()

    def handler(signum, frame):
        if ev.is_set():
            raise KeyboardInterrupt
        ev.set()
        if on_cancel is not None:
            on_cancel()
    try:
        old = signal.signal(signal.SIGINT, handler)
    except ValueError:           # not the main thread
        old = None
    try:
        yield ev
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
