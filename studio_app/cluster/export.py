"""``studio-catalog export --cluster``: the export images rendered by cluster workers.

The exporter (``studio_app.core.export.exporter.export``) still plans the names, runs pre-flight,
writes every file atomically and keeps its record; only the rendering of the images that are not
already in the catalog moves to the workers (``encoding.encode_items``, the same code as a local
export, so the bytes are the same). Documents are sent a few ahead of the one being written.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ml.types import Cancelled
from .connect import connect, last_line
from .pool import WorkerLost, WorkerPool

AHEAD_PER_WORKER = 2


class ClusterRenderer:
    """A ``RenderFn`` (see the exporter) backed by a worker pool without models."""

    def __init__(self, address: str, *, workers: int | None = None):
        self.connection = connect(address, workers)
        try:
            self.pool = WorkerPool(None, workers or self.connection.cpus)
        except Exception:
            self.connection.close()
            raise
        self._stop = threading.Event()

    def describe(self) -> str:
        return f"Ray cluster at {self.connection.address}: {self.pool.size} workers"

    def __call__(self, jobs: list, preset):
        size = self.pool.size
        self._stop.clear()
        with ThreadPoolExecutor(size, thread_name_prefix="cluster-render") as ex:
            pending: deque = deque()
            todo = iter(jobs)

            def fill() -> None:
                while len(pending) < size * AHEAD_PER_WORKER:
                    job = next(todo, None)
                    if job is None:
                        return
                    folder, doc, indices = job
                    pending.append(ex.submit(self._render, str(folder.resolve()), doc.to_dict(), indices, preset)
                                   if indices else None)
            try:
                fill()
                while pending:
                    f = pending.popleft()
                    fill()
                    yield {} if f is None else f.result()
            finally:
                self._stop.set()              # waiting calls give up; running renders finish on their worker
                for f in pending:
                    if f is not None:
                        f.cancel()

    def _render(self, folder: str, doc: dict, indices: list[int], preset) -> dict:
        try:
            return self.pool.call("render", folder, doc, indices, preset, cancel=self._stop.is_set)
        except WorkerLost as exc:
            return {"error": f"the images were not rendered: {exc}"}
        except Cancelled:
            return {"error": "cancelled"}
        except self.pool.ray.exceptions.RayTaskError as exc:     # a bug in the worker: this result fails
            return {"error": f"rendering failed on the cluster ({last_line(exc)})"}

    def close(self) -> None:
        self.pool.close()
        self.connection.close()
