"""The cluster as a :class:`~studio_app.core.processor.Processor`: the Studio drives it like a local one.

``ClusterProcessor.process`` sends one photo's path to a free worker and returns the same ``Outcome``
a local run gives; ``slots`` (one per worker) tells the Studio how many photos to keep in flight, so
the queue, progress, ETA, cancel, ``--skip-existing`` and the one-line failures stay the Studio's.
:class:`ClusterSpec` is the value the GUI hands to ``Studio.set_processor``: it is built on the
Studio's processing thread like a :class:`ProcessorSpec`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio_app.core.processor import ProcessorSpec
from . import ClusterError
from .connect import Connection, connect, last_line
from .pool import WorkerLost, WorkerPool
from .worker import unpack_outcome


def worker_spec(base: ProcessorSpec, gpu: bool) -> ProcessorSpec:
    """What each worker builds: the same engines, in the worker's own process, one thread per CPU slot."""
    return ProcessorSpec(device="cuda" if gpu else "cpu", pose_engine=base.pose_engine, seg_engine=base.seg_engine,
                         isolated=False, weights_dir=None, cpu_threads=None if gpu else 1)


def worker_count(conn: Connection, workers: int | None, gpu: bool) -> int:
    """``workers`` when given, else one per GPU (``gpu``) or per CPU of the cluster."""
    if workers:
        return workers
    return conn.gpus if gpu else conn.cpus


class ClusterProcessor:
    def __init__(self, address: str, *, workers: int | None = None, spec: ProcessorSpec | None = None,
                 connection: Connection | None = None):
        base = spec or ProcessorSpec()
        self.connection = connection or connect(address, workers)
        gpu = base.device == "cuda" or (base.device == "auto" and self.connection.gpus > 0)
        n = worker_count(self.connection, workers, gpu)
        try:
            self.pool = WorkerPool(worker_spec(base, gpu), n, num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)
        except ClusterError:
            self.connection.close()
            raise
        self.address, self.gpu = address, gpu

    @property
    def slots(self) -> int:
        return self.pool.size

    def process(self, photo, out_root, *, force_kind=None, skip_existing=False, progress=None, cancel=None):
        photo, out_root = Path(photo).resolve(), Path(out_root).resolve()
        if progress:
            progress("cluster", 0.0)
        try:
            data = self.pool.call("process", str(photo), str(out_root), force_kind, skip_existing, cancel=cancel)
        except WorkerLost as exc:
            return _failed(photo, f"{photo.name}: {exc}")
        except self.pool.ray.exceptions.RayTaskError as exc:      # a bug in the worker: one line, batch goes on
            return _failed(photo, f"{photo.name}: processing failed on the cluster ({last_line(exc)})")
        if progress:
            progress("done", 1.0)
        return unpack_outcome(data)

    def describe(self) -> str:
        where = "127.0.0.1" if self.address == "local" else self.address
        kind = "GPU" if self.gpu else "CPU"
        return f"Ray cluster at {where}: {self.pool.size} {kind} workers"

    def close(self) -> None:
        self.pool.close()
        self.connection.close()


def _failed(photo: Path, message: str):
    from studio_app.core.processing import Outcome
    return Outcome(photo, None, None, error=message)


@dataclass(frozen=True)
class ClusterSpec:
    """Which cluster to build a processor on (``Studio.set_processor`` builds it on its thread).
    ``base``: the engines and device to use on the workers."""
    address: str
    workers: int | None = None
    base: ProcessorSpec = field(default_factory=ProcessorSpec)

    @property
    def engines(self) -> tuple[str, str]:
        return self.base.engines

    def build(self) -> ClusterProcessor:
        """Connects and waits until every worker has its models (a failure says why, ``ClusterError``)."""
        proc = ClusterProcessor(self.address, workers=self.workers, spec=self.base)
        try:
            proc.pool.wait_ready()
        except ClusterError:
            proc.close()
            raise
        return proc

    def weights_path(self) -> Path:
        return self.base.weights_path()
