"""The system libraries the Qt GUI needs on Linux (``installer/qt-system-packages.txt``, the one
list), and the check ``studio-catalog gui`` runs before starting Qt: when the xcb platform plugin
could not load, Qt aborts with "Could not load the Qt platform plugin xcb"; instead we print the
exact ``apt-get install`` line that ``installer/setup.sh`` prints. Qt-free; no side effects."""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

LIST = Path(__file__).resolve().parents[2] / "installer" / "qt-system-packages.txt"


def packages(path: Path | None = None) -> list[tuple[str, str]]:
    """(Debian package, library file or "-") in the list's order; empty when the list is absent
    (an installed bundle carries its own Qt libraries)."""
    try:
        text = (path or LIST).read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2:
            out.append((parts[0], parts[1]))
    return out


def apt_line(path: Path | None = None) -> str:
    """The install command for every package of the list (the same line setup.sh prints)."""
    return "sudo apt-get install -y --no-install-recommends " + " ".join(p for p, _ in packages(path))


def _loadable(lib: str) -> bool:
    try:
        ctypes.CDLL(lib)
        return True
    except OSError:
        return False


def missing_libraries(path: Path | None = None, env=None) -> list[str]:
    """Libraries of the list that cannot be loaded, when Qt would use the xcb plugin on Linux;
    empty elsewhere (another platform plugin, macOS, Windows, a bundle without the list)."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return []
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return []
    if not platform and env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
        return []
    return [lib for _, lib in packages(path) if lib != "-" and not _loadable(lib)]


def gui_preflight_message(path: Path | None = None, env=None) -> str | None:
    """What to tell the operator instead of a Qt stack trace; None when nothing is missing."""
    missing = missing_libraries(path, env)
    if not missing:
        return None
    return ("error: the desktop app cannot start: system libraries for Qt are missing "
            f"({', '.join(missing)}).\nInstall them with:\n  {apt_line(path)}\n"
            "(installer/setup.sh does this when it runs as root or with sudo.)")
