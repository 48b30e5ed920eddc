"""End-to-end self-test of the desktop app, as an operator would use it.

    python -m studio_app.gui.selftest OUT PHOTO        # from a source checkout
    StudioCatalog --self-test OUT                      # the installed bundle (bundled sample photo)

It creates the QApplication and the real main window (shown on screen), waits until the
window is exposed, adds ``PHOTO`` through the same path as File > Open / drag-and-drop
(``MainWindow.add_paths`` -> session -> worker thread -> ``Processor``), waits for the result,
exports it with the ``generic`` marketplace preset (``studio_app.core.export``) into
``OUT/catalog``, saves a screenshot of the window to ``OUT/selftest.png`` and the timings to
``OUT/selftest.txt``. Exit status 0 on success; on any failure the reason goes to stderr and
the exit status is 1.

The self-test never touches the user's settings: it keeps its own settings file in ``OUT``.
Any dialog the app would show during the run (a model that fails to load, an error) is closed
and counted as a failure, so the test can never hang waiting for a click.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

_T_IMPORT = time.monotonic()


class SelfTestError(RuntimeError):
    pass


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc; elsewhere None)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        fields = stat[stat.rindex(")") + 2:].split()
        start_ticks = int(fields[19])           # field 22 of stat(5), after pid and comm
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _started_at() -> float:
    """monotonic() value at process start (best estimate)."""
    age = process_age()
    return time.monotonic() - age if age is not None else _T_IMPORT


def _wait(app, pred, timeout: float, what: str, failures: list[str]) -> None:
    from PySide6.QtCore import QEventLoop
    end = time.monotonic() + timeout
    while not pred():
        if failures:
            raise SelfTestError(failures[0])
        if time.monotonic() > end:
            raise SelfTestError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents(QEventLoop.AllEvents, 50)
        time.sleep(0.01)
    if failures:
        raise SelfTestError(failures[0])


def _screenshot(win, path: Path) -> str:
    """A grab of the window from the screen (what the display server shows); falls back to
    rendering the widget where the platform cannot read the screen back (offscreen)."""
    pix = None
    screen = win.screen()
    if screen is not None:
        pix = screen.grabWindow(win.winId())
        if pix.isNull() or pix.width() < 50:
            pix = None
    how = "screen"
    if pix is None:
        pix = win.grab()
        how = "widget"
    if pix.isNull() or not pix.save(str(path), "PNG"):
        raise SelfTestError(f"could not save the screenshot to {path}")
    return f"{how} grab {pix.width()}x{pix.height()}"


def run_self_test(out: Path, photo: Path, *, device: str = "auto", timeout: float = 600.0,
                  keep_loaded_s: float = 0.0) -> int:
    """Run the self-test (see the module docstring). Returns the exit status (0 = passed)."""
    t_start = _started_at()
    out = Path(out).resolve()
    photo = Path(photo).resolve()
    win = None
    app = None
    lines: list[str] = []
    try:
        if not photo.is_file():
            raise SelfTestError(f"the test photo {photo} does not exist")
        out.mkdir(parents=True, exist_ok=True)
        from studio_app.core.processor import app_spec
        spec = app_spec(device, keep_loaded_s=keep_loaded_s)
        spec.prestart()                    # as `studio-catalog gui` does, before Qt is imported
        from PySide6.QtCore import QSettings, QTimer
        from PySide6.QtWidgets import QApplication

        from .app import make_app
        from .main_window import MainWindow
        app = make_app([])
        settings = QSettings(str(out / "selftest-settings.ini"), QSettings.IniFormat)
        failures: list[str] = []

        def close_dialogs() -> None:
            # a modal dialog during the self-test is an error the operator would have seen
            w = QApplication.activeModalWidget()
            if w is not None and w is not win:
                text = getattr(w, "text", lambda: "")() or w.windowTitle()
                failures.append(f"the app showed a dialog: {text}")
                w.close()
        guard = QTimer()
        guard.setInterval(100)
        guard.timeout.connect(close_dialogs)
        guard.start()

        win = MainWindow(out / "results", processor=spec, settings=settings, preset="generic")
        loaded: dict[str, object] = {}

        def state(name: str, text: str) -> None:
            if name == "ready":
                loaded.setdefault("ready", (time.monotonic(), text))
            elif name == "failed":
                failures.append(text)
        win.processorState.connect(state)
        win.show()
        win.raise_()
        win.activateWindow()
        _wait(app, lambda: win.windowHandle() is not None and win.windowHandle().isExposed(), 60,
              "the main window to appear on screen", failures)
        t_window = time.monotonic()

        key = str(photo)
        if win.add_photo(key) is None and win.session.get(key) is None:
            raise SelfTestError(f"the app did not queue {photo.name}")
        t_added = time.monotonic()

        def entry():
            return win.session.get(key)

        _wait(app, lambda: entry() is not None and entry().status not in ("queued", "processing"), timeout,
              f"{photo.name} to be processed", failures)
        t_done = time.monotonic()
        e = entry()
        if e.status == "error" or not e.folder:
            raise SelfTestError(f"processing {photo.name} failed: {e.message or e.status}")
        folder = Path(e.folder)
        if not (folder / "result.json").is_file():
            raise SelfTestError(f"no result document in {folder}")
        # the result is on screen (the window follows the photo that just finished)
        _wait(app, lambda: win.canvas.doc is not None, 30, "the result to be shown", failures)
        t_shown = time.monotonic()
        for _ in range(10):
            app.processEvents()
            time.sleep(0.02)

        from studio_app.core.export import export
        t = time.monotonic()
        report = export([folder], "generic", out / "catalog", only_approved=False)
        t_export = time.monotonic() - t
        if not report.ok or report.documents_exported != 1 or not report.written:
            raise SelfTestError("export failed: " + ("; ".join(report.failure_lines()[:5]) or report.summary()))
        written = [out / "catalog" / w for w in report.written]
        images = [w for w in written if w.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")]
        missing = [str(w) for w in written if not w.is_file()]
        if missing or not images:
            raise SelfTestError(f"exported files missing: {missing or 'no image written'}")

        # the About box lists every bundled model, verified
        from ml.weights import status
        models = status()
        bad = [r["id"] for r in models if not r["verified"]]
        if bad:
            raise SelfTestError(f"models not verified: {', '.join(bad)}")
        about = win.about_text()
        absent = [r["id"] for r in models if r["id"] not in about]
        if absent:
            raise SelfTestError(f"Help > About does not list: {', '.join(absent)}")

        shot = _screenshot(win, out / "selftest.png")
        t_ready = loaded.get("ready", (None, "?"))
        from studio_app import __version__
        from PySide6.QtGui import QGuiApplication
        doc_kind = win.canvas.doc.kind
        lines = [
            f"studio-catalog {__version__} self-test passed",
            f"platform: {QGuiApplication.platformName()}",
            f"device: {t_ready[1]}",
            f"models_kept_loaded_by_previous_run: {getattr(win.studio.processor, 'adopted_resident', False)}",
            f"startup_to_window_s: {t_window - t_start:.2f}",
            f"models_loaded_s: {(t_ready[0] - t_start) if t_ready[0] else float('nan'):.2f}",
            f"first_photo_processed_s: {t_done - t_start:.2f}",
            f"first_result_shown_s: {t_shown - t_start:.2f}",
            f"photo_processing_s: {t_done - t_added:.2f}",
            f"export_s: {t_export:.2f}",
            f"photo: {photo.name} -> {doc_kind}, {len(win.canvas.doc.items)} item(s)",
            f"exported: {', '.join(sorted(str(w.relative_to(out)) for w in images))}",
            f"screenshot: {shot}",
            f"models: {', '.join(r['id'] + ' (' + r['licence'] + ')' for r in models)}",
            f"settings: {QSettings().fileName()}",
        ]
        (out / "selftest.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        guard.stop()
        return 0
    except Exception as exc:
        msg = str(exc) if isinstance(exc, SelfTestError) else traceback.format_exc()
        print(f"self-test FAILED: {msg}", file=sys.stderr, flush=True)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "selftest.txt").write_text(f"self-test FAILED: {msg}\n" + "\n".join(lines), encoding="utf-8")
        except OSError:
            pass
        return 1
    finally:
        if win is not None:
            try:
                win.close()          # closeEvent -> shutdown: worker thread stopped, session saved
                win.shutdown()
            except Exception:
                pass
        if app is not None:
            app.processEvents()


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m studio_app.gui.selftest",
                                 description="start the app, process one photo, export it, screenshot")
    ap.add_argument("out", help="folder for the results, catalog, screenshot and timings")
    ap.add_argument("photo", nargs="?", default=None, help="photo to process (default: the bundled sample)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for processing the photo")
    ap.add_argument("--keep-loaded", type=float, default=0.0, metavar="SECONDS",
                    help="keep the models loaded this long after the test (the next run adopts them); "
                         "default 0: they stop with it")
    args = ap.parse_args(argv)
    photo = args.photo
    if photo is None:
        from studio_app.core.paths import resources_dir
        photo = resources_dir() / "samples" / "sample_mug.jpg"
    return run_self_test(Path(args.out), Path(photo), device=args.device, timeout=args.timeout,
                         keep_loaded_s=args.keep_loaded)


if __name__ == "__main__":
    sys.exit(main())
