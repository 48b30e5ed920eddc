"""A fixed set of :class:`~studio_app.cluster.worker.PhotoWorker` actors, shared by threads.

``call(method, *args)`` takes a free worker, runs one task on it and gives the worker back. A
worker that dies (killed, out of memory, its node lost) is replaced, and the task is retried once on
another worker; a task that loses a worker twice raises :class:`WorkerLost` (the caller reports the
photo by name). The driver never dies with a worker. Cancel: the caller's ``cancel()`` is polled
while waiting; the task already running on a worker finishes there (its writes are atomic).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

from ml.types import Cancelled
from . import ClusterError, require_ray
from .connect import last_line
from .worker import PhotoWorker

POLL_S = 0.2
ATTEMPTS = 2               # the first worker, then one other


class WorkerLost(RuntimeError):
    """The task's worker died on every attempt."""


class WorkerPool:
    def __init__(self, spec, size: int, *, num_cpus: float = 1, num_gpus: float = 0):
        if size < 1:
            raise ClusterError("the cluster has no free CPU or GPU slot for a worker")
        self.ray = require_ray()
        self._actor_cls = self.ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(PhotoWorker)
        self.spec, self.size = spec, size
        self._free: "queue.Queue" = queue.Queue()
        self._lock = threading.Lock()
        self._actors: list = []
        self.replaced = 0
        for _ in range(size):
            self._free.put(self._new_actor())

    def _new_actor(self):
        actor = self._actor_cls.remote(self.spec)
        actor.ready.remote()                  # the models load now, not with the first photo
        with self._lock:
            self._actors.append(actor)
        return actor

    def wait_ready(self, timeout: float | None = None) -> list[dict]:
        """Block until every worker has loaded its models; their pid and node (tests, the benchmark).
        A worker that fails to start raises ClusterError with the reason."""
        with self._lock:
            actors = list(self._actors)
        try:
            return self.ray.get([a.ready.remote() for a in actors], timeout=timeout)
        except Exception as exc:
            raise ClusterError(f"the cluster workers could not start: {last_line(exc)}") from exc

    def call(self, method: str, *args, cancel: Callable[[], bool] | None = None):
        for attempt in range(ATTEMPTS):
            actor = self._take(cancel)
            ref = getattr(actor, method).remote(*args)
            try:
                result = self._wait(ref, cancel)
            except Cancelled:
                threading.Thread(target=self._give_back_when_done, args=(actor, ref), daemon=True).start()
                raise
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnavailableError):
                self._replace(actor)
                continue
            self._free.put(actor)
            return result
        raise WorkerLost("the cluster worker processing it died twice (killed or out of memory); not retried again")

    def _take(self, cancel):
        while True:
            if cancel is not None and cancel():
                raise Cancelled()
            try:
                return self._free.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def _wait(self, ref, cancel):
        while True:
            done, _ = self.ray.wait([ref], timeout=POLL_S)
            if done:
                return self.ray.get(ref)
            if cancel is not None and cancel():
                raise Cancelled()

    def _give_back_when_done(self, actor, ref) -> None:
        try:
            self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnavailableError):
            self._replace(actor)
            return
        except Exception:
            pass
        self._free.put(actor)

    def _replace(self, dead) -> None:
        with self._lock:
            if dead in self._actors:
                self._actors.remove(dead)
            self.replaced += 1
        try:
            self.ray.kill(dead, no_restart=True)
        except Exception:
            pass
        self._free.put(self._new_actor())

    def worker_pids(self, timeout: float = 120) -> list[int]:
        return [r["pid"] for r in self.wait_ready(timeout)]

    def close(self) -> None:
        with self._lock:
            actors, self._actors = list(self._actors), []
        for a in actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:
                pass
