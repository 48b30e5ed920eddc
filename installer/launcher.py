"""Entry point of the bundled application (PyInstaller).

With no arguments (a double-click) it starts the desktop app. With a CLI sub-command
(`process`, `export`, `models`, ...) it behaves like the `studio-catalog` command.
`--self-test OUT` starts the real window, processes the bundled sample photo, exports it
with the generic preset into OUT, and exits 0 on success (used by installer/build.sh).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

CLI_COMMANDS = {"process", "export", "models", "train", "eval", "--help", "-h", "--version"}


def _bundle_root() -> Path:
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))


def main() -> int:
    root = _bundle_root()
    # The models travel inside the bundle: never download anything at run time.
    if (root / "weights" / "manifest.json").is_file():
        os.environ.setdefault("STUDIO_CATALOG_WEIGHTS", str(root / "weights"))
    os.environ.setdefault("STUDIO_CATALOG_RESOURCES", str(root / "resources"))
    argv = sys.argv[1:]
    if argv and argv[0] == "--self-test":
        from studio_app.gui.selftest import run_self_test
        out = argv[1] if len(argv) > 1 else "selftest-out"
        return run_self_test(Path(out), root / "resources" / "samples" / "sample_mug.jpg")
    if argv and argv[0] in CLI_COMMANDS:
        from studio_app.cli import main as cli_main
        return cli_main(argv)
    from studio_app.gui.app import main as gui_main
    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
