"""Entry point of the bundled application (PyInstaller).

With no arguments (a double-click) it starts the desktop app. With a CLI sub-command
(`process`, `export`, `models`, ...) it behaves like the `studio-catalog` command.
`gui [ARGS]` is the desktop app too (like `studio-catalog gui`). `--self-test OUT [PHOTO]`
starts the real window, processes the bundled sample photo (or PHOTO), exports it with the
generic preset into OUT, and exits 0 on success (used by installer/build.sh).

The bundle has two executables built from this file: `StudioCatalog` (windowed: no console
on Windows, the one the desktop entry / Start menu / Dock starts) and `studio-catalog`
(console: for the CLI sub-commands in a terminal, where Windows needs a console program).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

CLI_COMMANDS = {"process", "export", "models", "train", "eval", "--help", "-h", "--version"}
SELF_TEST = "--self-test"


def _bundle_root() -> Path:
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()     # data-loader workers of `train` re-enter the frozen exe
    root = _bundle_root()
    # The models travel inside the bundle: never download anything at run time.
    if (root / "weights" / "manifest.json").is_file():
        os.environ.setdefault("STUDIO_CATALOG_WEIGHTS", str(root / "weights"))
    os.environ.setdefault("STUDIO_CATALOG_RESOURCES", str(root / "resources"))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == SELF_TEST:
        from studio_app.gui.selftest import run_self_test
        out = argv[1] if len(argv) > 1 else "selftest-out"
        photo = Path(argv[2]) if len(argv) > 2 else root / "resources" / "samples" / "sample_mug.jpg"
        return run_self_test(Path(out), photo)
    if argv and argv[0] in CLI_COMMANDS:
        from studio_app.cli import main as cli_main
        return int(cli_main(argv) or 0)
    if argv and argv[0] == "gui":
        argv = argv[1:]
    from studio_app.gui.app import main as gui_main
    return int(gui_main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
