"""The processing seam: what :class:`studio_app.core.studio.Studio` needs from a processor, the one
``Cancelled`` type, and :class:`ProcessorSpec` — which processor to build, as a small typed value.

Implementations: ``studio_app.core.processing.Processor`` (the models in this process) and
``studio_app.core.isolated.IsolatedProcessor`` (the models in a child process; the GUI's default);
tests use fakes. ``Cancelled`` is ``ml.types.Cancelled`` — the very class ``ml.pipeline`` raises
(``ml`` cannot import the app; ``ml.types`` imports no torch): every processor raises it when the
caller's ``cancel()`` said stop, and the Studio catches only it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ml.types import Cancelled

__all__ = ["Cancelled", "Processor", "ProcessorSpec", "ProgressFn", "CancelFn", "app_spec", "default_threads"]

ProgressFn = Callable[[str, float], None]     # (stage, fraction of this photo)
CancelFn = Callable[[], bool]


@runtime_checkable
class Processor(Protocol):
    """Turns one photo into a result folder under ``out_root``.

    ``process`` never raises for a bad photo (``Outcome.error`` says why, one line); it raises
    :class:`Cancelled` when ``cancel()`` became true. ``describe()`` is the device / engines line
    shown to the operator; ``close()`` frees the models (a child process, GPU memory)."""

    def process(self, photo: str | os.PathLike, out_root: str | os.PathLike, *,
                force_kind: str | None = None, skip_existing: bool = False,
                progress: ProgressFn | None = None, cancel: CancelFn | None = None): ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def default_threads() -> int:
    """CPU threads for the models when a window shares the machine: all cores but one."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class ProcessorSpec:
    """Which processor to build (replaces the GUI's factory function with attributes stuck on it).

    ``build()`` loads the models (seconds; call it on the thread that will use the processor —
    the Studio does so on its processing thread) and warms them up. ``isolated``: in a child
    process (the GUI's default) or in this process. ``cpu_threads``: None = every core."""
    device: str = "auto"
    pose_engine: str = "blazepose"
    seg_engine: str = "u2netp"
    isolated: bool = False
    weights_dir: str | None = None
    cpu_threads: int | None = None
    keep_loaded_s: float = 0.0     # isolated: the models stay loaded this long after the app closes

    @property
    def engines(self) -> tuple[str, str]:
        return (self.pose_engine, self.seg_engine)

    def _isolated_options(self) -> dict:
        return dict(device=self.device, weights_dir=self.weights_dir, pose_engine=self.pose_engine,
                    seg_engine=self.seg_engine, cpu_threads=self.cpu_threads or default_threads())

    def prestart(self) -> None:
        """Isolated: start the child process now (it loads the models while the caller goes on);
        the next ``build()`` adopts it. In-process: nothing to do ahead of ``build()``."""
        if self.isolated:
            from .isolated import prestart
            prestart(keep_loaded_s=self.keep_loaded_s, **self._isolated_options())

    def build(self) -> Processor:
        if self.isolated:
            from .isolated import IsolatedProcessor
            return IsolatedProcessor(keep_loaded_s=self.keep_loaded_s, **self._isolated_options())
        from ml.device import configure_cpu_threads
        from .processing import Processor as InProcess
        configure_cpu_threads(self.cpu_threads)
        proc = InProcess(device=self.device, weights_dir=self.weights_dir,
                         pose_engine=self.pose_engine, seg_engine=self.seg_engine)
        proc.pipeline.warm_up()
        return proc

    # The GUI called its factory: keep that working until it builds processors through the Studio.
    __call__ = build

    def weights_path(self) -> Path:
        from ml.weights import weights_dir
        return Path(self.weights_dir) if self.weights_dir else Path(weights_dir())


KEEP_LOADED_MIN = 10       # the app's default: models kept loaded 10 minutes after it closes


def app_spec(device: str = "auto", pose_engine: str = "blazepose", seg_engine: str = "u2netp",
             isolated: bool = True, weights_dir: str | None = None,
             keep_loaded_s: float = 0.0) -> ProcessorSpec:
    """The desktop app's processor: by default the models run in a child process (``isolated``),
    so the pipeline's Python never competes with the window for the GIL; one core is left to the
    window. Qt-free, so ``studio-catalog gui`` can start that child before it imports Qt.
    ``keep_loaded_s``: see :mod:`studio_app.core.resident` (the app passes its setting)."""
    return ProcessorSpec(device=device, pose_engine=pose_engine, seg_engine=seg_engine, isolated=isolated,
                         weights_dir=str(weights_dir) if weights_dir else None, cpu_threads=default_threads(),
                         keep_loaded_s=float(keep_loaded_s))


def describe(processor) -> str:
    """The processor's own line, else its pipeline's device, else a neutral name (test doubles)."""
    own = getattr(processor, "describe", None)
    if callable(own):
        return own()
    dev = getattr(getattr(processor, "pipeline", None), "device", None)
    if dev is None:
        return "test processor"
    try:
        from ml.device import describe as describe_device
        return describe_device(dev)
    except Exception:
        return str(dev)
