"""What the window reads from its settings to build the Studio's processor: the chosen engines and
the :class:`ProcessorSpec` for them. Its own module so ``app`` (start-up) and ``main_window`` both
use it without importing each other."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from studio_app.core.processor import KEEP_LOADED_MIN, app_spec


def engine_settings(settings: QSettings) -> tuple[str, str]:
    """The keypoint and segmentation engines chosen in Settings (built-in ones by default)."""
    from studio_app.core.engines import BUILTIN_POSE, BUILTIN_SEG
    return (settings.value("pose_engine", BUILTIN_POSE, str) or BUILTIN_POSE,
            settings.value("seg_engine", BUILTIN_SEG, str) or BUILTIN_SEG)


processor_spec = app_spec      # the app's processor (studio_app.core.processor.app_spec)


def keep_loaded_minutes(settings: QSettings) -> int:
    """Settings › "Keep the models loaded after closing": minutes (0 = they stop with the app)."""
    try:
        return max(0, min(240, int(settings.value("keep_models_min", KEEP_LOADED_MIN))))
    except (TypeError, ValueError):
        return KEEP_LOADED_MIN
