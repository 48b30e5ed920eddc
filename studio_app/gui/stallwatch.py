"""UI-thread stall diagnosis (bench and ``STUDIO_STALLWATCH=1``): a 10 ms heartbeat on the GUI
thread and a watcher thread that, whenever the heartbeat is late, samples what the GUI thread
and every other Python thread are doing (``sys._current_frames``).

It tells apart the two causes of a frozen window:
  * the GUI thread itself is busy (its stack shows a slot / paint / decode), and
  * the GUI thread is ready but cannot run Python because another thread holds the GIL
    (its stack shows it waiting in an innocuous place while a worker runs Python bytecode;
    the watcher's own wake-ups are late by about as much).
Qt-free apart from the heartbeat timer, which the caller starts."""
from __future__ import annotations

import collections
import sys
import threading
import time
import traceback


def _short_stack(frame, limit: int = 6) -> str:
    out = []
    for fs in traceback.extract_stack(frame)[-limit:]:
        out.append(f"{fs.filename.rsplit('/', 2)[-1]}:{fs.lineno} {fs.name}")
    return " < ".join(reversed(out))


class StallWatch:
    def __init__(self, threshold_s: float = 0.03, period_s: float = 0.005):
        self.threshold = threshold_s
        self.period = period_s
        self.main_id = threading.main_thread().ident
        self.beat = time.perf_counter()
        self.samples: collections.Counter[str] = collections.Counter()     # GUI-thread stack -> count
        self.other: collections.Counter[str] = collections.Counter()       # other threads' stacks during stalls
        self.watcher_late: list[float] = []                               # s the watcher woke up late
        self._stop = threading.Event()
        self._t: threading.Thread | None = None
        self.gc_pauses: list[tuple[int, float]] = []                    # (generation, s) of every collection
        self._gc_t0: float | None = None

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self._gc_t0 is not None:
            self.gc_pauses.append((info.get("generation", -1), time.perf_counter() - self._gc_t0))
            self._gc_t0 = None

    def tick(self) -> None:          # call from the GUI thread (10 ms QTimer)
        self.beat = time.perf_counter()

    def start(self) -> None:
        import gc
        gc.callbacks.append(self._gc)
        self._t = threading.Thread(target=self._run, name="stallwatch", daemon=True)
        self._t.start()

    def stop(self) -> None:
        import gc
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        self._stop.set()
        if self._t is not None:
            self._t.join(1)

    def _run(self) -> None:
        nxt = time.perf_counter() + self.period
        while not self._stop.is_set():
            time.sleep(max(0.0, nxt - time.perf_counter()))
            now = time.perf_counter()
            self.watcher_late.append(now - nxt)
            nxt = now + self.period
            if now - self.beat < self.threshold:
                continue
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            f = frames.get(self.main_id)
            if f is not None:
                self.samples[_short_stack(f)] += 1
            for tid, fr in frames.items():
                if tid in (self.main_id, threading.get_ident()):
                    continue
                self.other[f"[{names.get(tid, tid)}] {_short_stack(fr, 4)}"] += 1

    def report(self, top: int = 8) -> str:
        lines = ["GUI thread during stalls (samples, stack innermost first):"]
        lines += [f"  {n:5d}  {s}" for s, n in self.samples.most_common(top)]
        lines.append("other threads during stalls:")
        lines += [f"  {n:5d}  {s}" for s, n in self.other.most_common(top)]
        if self.gc_pauses:
            by_gen = collections.defaultdict(list)
            for g, d in self.gc_pauses:
                by_gen[g].append(d)
            lines.append("garbage collections: " + ", ".join(
                f"gen {g}: {len(v)} x, max {max(v) * 1000:.1f} ms" for g, v in sorted(by_gen.items())))
        if self.watcher_late:
            w = sorted(self.watcher_late)
            lines.append(f"watcher wake-up lateness: median {w[len(w) // 2] * 1000:.1f} ms, "
                         f"99% {w[int(0.99 * (len(w) - 1))] * 1000:.1f} ms, max {w[-1] * 1000:.1f} ms")
        return "\n".join(lines)


class MethodTimer:
    """Wall time of chosen GUI-thread methods (slots, paint events): ``wrap(cls, names)``
    replaces them on the class with a timing wrapper; ``report()`` lists the slowest."""

    def __init__(self):
        self.times: dict[str, list[float]] = collections.defaultdict(list)

    def wrap(self, cls, names) -> None:
        import functools
        for name in names:
            fn = getattr(cls, name)
            key = f"{cls.__name__}.{name}"

            def make(fn=fn, key=key):
                @functools.wraps(fn)
                def timed(*a, **k):
                    t = time.perf_counter()
                    try:
                        return fn(*a, **k)
                    finally:
                        self.times[key].append(time.perf_counter() - t)
                return timed
            setattr(cls, name, make())

    def report(self, top: int = 12) -> str:
        rows = sorted(self.times.items(), key=lambda kv: -max(kv[1]))[:top]
        lines = ["GUI-thread methods (calls, median, max):"]
        for k, v in rows:
            v = sorted(v)
            lines.append(f"  {k:<40} {len(v):6d}  {v[len(v) // 2] * 1000:7.1f} ms  {v[-1] * 1000:7.1f} ms")
        return "\n".join(lines)
