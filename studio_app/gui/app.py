"""``studio-catalog gui`` / ``studio-catalog-gui``: start the desktop app.

    studio-catalog-gui [PHOTO ...] [--hot-folder DIR] [--out DIR] [--device auto|cpu|cuda]

Settings (hot folder, output folder, preset, engines) are remembered with QSettings in the
platform's configuration folder. The models run in a child process driven by the worker thread
(``--in-process``: on the worker thread itself); export runs on a helper thread. The Qt event
loop is driven by qasync when it is installed. The window builds the Qt-free ``Studio`` that does
the work (``studio_app.core.studio``)."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog

from .config import engine_settings, keep_loaded_minutes, processor_spec

ORGANIZATION, APPLICATION = "StudioCatalog", "Studio Catalog"      # where QSettings keeps the settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio-catalog-gui", description="Studio Catalog desktop app")
    p.add_argument("photos", nargs="*", help="photos or folders to open at start")
    p.add_argument("--hot-folder", default=None, help="watch this folder for new photos")
    p.add_argument("--out", default=None, help="results folder")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the models run")
    p.add_argument("--first-run", action="store_true", help="show the first-run dialog again")
    p.add_argument("--in-process", action="store_true",
                   help="run the models on a thread of the app instead of a separate process (debugging)")
    return p


def make_app(argv: list[str]) -> QApplication:
    app = QApplication.instance() or QApplication(["studio-catalog"] + argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("studio-catalog")   # resources/studio-catalog.desktop (taskbar icon, Wayland app id)
    from studio_app import __version__
    app.setApplicationVersion(__version__)
    try:
        from studio_app.core.paths import icon_path
        if icon_path().exists():
            app.setWindowIcon(QIcon(str(icon_path())))
    except Exception:
        pass
    from . import theme
    theme.apply(app)
    return app


def first_run(settings: QSettings, hot: str, out: str, parent=None) -> bool:
    """Show the first-run dialog; on Start store the hot folder, output folder and default preset
    in ``settings`` (the platform's configuration location for ``QSettings()``). False: cancelled."""
    from .first_run import FirstRunDialog
    dlg = FirstRunDialog(parent, hot=hot, out=out, preset=settings.value("preset", "", str))
    if dlg.exec() != QDialog.Accepted:
        return False
    store_first_run(settings, *dlg.values())
    return True


def store_first_run(settings: QSettings, hot: str, out: str, preset: str) -> None:
    settings.setValue("hot_folder", hot)
    settings.setValue("out_root", out)
    settings.setValue("preset", preset)
    settings.setValue("first_run_done", True)
    settings.sync()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    settings = QSettings()
    pose, seg = engine_settings(settings)
    spec = processor_spec(args.device, pose, seg, isolated=not args.in_process,
                          keep_loaded_s=60.0 * keep_loaded_minutes(settings))
    spec.prestart()          # the models load in the child while the window is built
    app = make_app(argv)
    out = args.out or settings.value("out_root", "", str)
    hot = args.hot_folder if args.hot_folder is not None else settings.value("hot_folder", "", str)
    if args.first_run or not out:
        if not first_run(settings, hot or "", out or str(Path.home() / "StudioCatalog")):
            return 1
        hot = settings.value("hot_folder", "", str)
        out = settings.value("out_root", "", str)
    settings.setValue("out_root", out)
    from .main_window import MainWindow
    win = MainWindow(out, processor=spec, hot_folder=hot or None, settings=settings, device=args.device)
    win.show()
    if args.photos:
        win.add_paths(args.photos)
    try:
        import qasync
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        done = asyncio.Event()
        app.aboutToQuit.connect(done.set)
        with loop:
            loop.run_until_complete(done.wait())
        return 0
    except ImportError:
        return int(app.exec())
    finally:
        win.shutdown()


if __name__ == "__main__":
    sys.exit(main())
