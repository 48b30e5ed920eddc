"""Where the app's own files are: the repository checkout, or a PyInstaller bundle.

Nothing here is machine-specific: the bundle launcher sets STUDIO_CATALOG_RESOURCES /
STUDIO_CATALOG_WEIGHTS to folders inside the bundle; a checkout uses its own folders;
user data goes to the platform's standard locations (platformdirs).
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "studio-catalog"
_REPO = Path(__file__).resolve().parents[2]


def resources_dir() -> Path:
    env = os.environ.get("STUDIO_CATALOG_RESOURCES")
    return Path(env) if env else _REPO / "resources"


def presets_dir() -> Path:
    return resources_dir() / "presets"


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_presets_dir() -> Path:
    env = os.environ.get("STUDIO_CATALOG_PRESETS")
    return Path(env) if env else user_config_dir() / "presets"


def icon_path(size: int | None = None) -> Path:
    name = "studio-catalog-256.png" if size and size <= 256 else "studio-catalog.png"
    return resources_dir() / "icons" / name


def unique_paths(paths) -> list[Path]:
    """The paths in their order, each file or folder once (compared by resolved location)."""
    seen: set[Path] = set()
    out: list[Path] = []
    for p in paths:
        k = Path(p).resolve()
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out
