"""What the window reads from its settings to build the Studio's processor: the chosen engines and
the :class:`ProcessorSpec` for them. Its own module so ``app`` (start-up) and ``main_window`` both
use it without importing each other."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from studio_app.core.processor import ProcessorSpec, default_threads


def engine_settings(settings: QSettings) -> tuple[str, str]:
    """The keypoint and segmentation engines chosen in Settings (built-in ones by default)."""
    from studio_app.core.engines import BUILTIN_POSE, BUILTIN_SEG
    return (settings.value("pose_engine", BUILTIN_POSE, str) or BUILTIN_POSE,
            settings.value("seg_engine", BUILTIN_SEG, str) or BUILTIN_SEG)


def processor_spec(device: str = "auto", pose_engine: str = "blazepose", seg_engine: str = "u2netp",
                   isolated: bool = True, weights_dir: str | None = None) -> ProcessorSpec:
    """The app's processor: by default the models run in a child process (``isolated``), so the
    pipeline's Python never competes with the window for the GIL; one core is left to the window."""
    return ProcessorSpec(device=device, pose_engine=pose_engine, seg_engine=seg_engine, isolated=isolated,
                         weights_dir=str(weights_dir) if weights_dir else None, cpu_threads=default_threads())
