"""Export dialog (approved results through a preset: files appear, progress shown, cancel works),
first-run dialog (choices stored in the platform's settings location, isolated here), and the
toolbar at the smallest supported window size. No model weights needed: results are written by
the real result writer from synthetic product photos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QPushButton, QToolButton

from gui_helpers import FakeProcessor, make_product_result
from studio_app.gui.main_window import MainWindow

pytestmark = pytest.mark.gui


def window(qtbot, tmp_path, **kw) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(tmp_path / "out", processor=FakeProcessor(), settings=settings, **kw)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    with qtbot.waitExposed(w):
        w.show()
    photos = tmp_path / "photos"
    if photos.is_dir():            # photos whose results exist: listed with their review state
        n = sum(1 for _ in photos.glob("*.jpg"))
        w.add_paths([str(photos)])
        qtbot.waitUntil(lambda: w.filmstrip.count() == n, timeout=10000)
    return w


def _results(tmp_path, n: int, unapproved: int = 0) -> list[Path]:
    # different photos (identical ones would be exported once: the exporter de-duplicates)
    folders = [make_product_result(tmp_path, f"shoe_{i:02d}", colour=(30 + 20 * i, 60, 200)) for i in range(n)]
    folders += [make_product_result(tmp_path, f"bag_{i:02d}", colour=(200, 60 + 20 * i, 30), review="pending")
                for i in range(unapproved)]
    return folders


def test_export_dialog_exports_approved_with_progress(qtbot, tmp_path, monkeypatch):
    _results(tmp_path, 3, unapproved=1)
    w = window(qtbot, tmp_path)
    try:
        assert len(w.session) == 4 and w.studio.processor.calls == []     # results exist: not processed
        w.export_dialog()
        dlg = w.exports.dialog
        qtbot.waitExposed(dlg)
        assert "3" in dlg.summary.text() and "1 not approved" in dlg.summary.text()
        # the first export proposes a catalog folder beside the results (no empty field to fill)
        assert Path(dlg.out.text()) == tmp_path / "out" / "catalog"
        assert dlg.preset.findData("generic") >= 0
        dlg.preset.setCurrentIndex(dlg.preset.findData("generic"))
        catalog = tmp_path / "catalog"
        dlg.out.setText(str(catalog))
        seen = []
        with qtbot.waitSignal(w.exportFinished, timeout=60000) as blk:
            dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok).click()
            assert w.exporting or blk.signal_triggered
            pd = w.exports.progress_dialog
            assert pd.isVisible() or blk.signal_triggered
            w.exports.progress.connect(lambda i, n, name: seen.append((i, n, name, pd.labelText())))
        rep = blk.args[0]
        assert rep.ok and not rep.cancelled, rep.failure_lines()
        assert rep.documents_exported == 3, (rep.documents_total, rep.skipped, rep.errors, rep.unchanged)
        files = sorted(p.name for p in catalog.rglob("*") if p.is_file())
        assert sum(f.endswith(".jpg") for f in files) == 3, files
        assert not any("bag_" in f for f in files)
        # the exported images are what the preset asks for: square, >= 500x500, on white
        img = cv2.imread(str(next(catalog.rglob("*.jpg"))))
        assert img.shape[0] == img.shape[1] >= 500 and img[5, 5].min() >= 250
        # progress was shown per result, with its name
        assert [s[1] for s in seen] == [3] * len(seen) and len(seen) >= 2
        assert any("shoe_" in s[3] and "of 3" in s[3] for s in seen)
        assert not w.exports.progress_dialog.isVisible()
        assert "exported 3 of 3" in w.statusBar().currentMessage()
        # the session knows they were exported; the setting remembers the folder
        assert w.session.counts()["exported"] == 3
        assert w.settings.value("export_dir") == str(catalog)
    finally:
        w.shutdown()


def test_export_cancel_stops_early_and_says_so(qtbot, tmp_path, monkeypatch):
    folders = _results(tmp_path, 6)
    # full-size studio photos take a second or more per image; these tiny ones would finish
    # before the click arrives, so each document is made to take 0.3 s
    import time
    from studio_app.core.export import exporter
    real = exporter._export_document

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(exporter, "_export_document", slow)
    w = window(qtbot, tmp_path)
    try:
        catalog = tmp_path / "catalog"
        assert w.start_export([str(f) for f in folders], "generic", str(catalog), True)
        assert not w.start_export([str(f) for f in folders], "generic", str(catalog), True)   # one at a time

        def cancel_now(i, n, name):
            if not w.exports.job.cancelled:
                btn = w.exports.progress_dialog.findChild(QPushButton)
                assert btn.text() == "Cancel export"
                btn.click()
        w.exports.progress.connect(cancel_now)
        with qtbot.waitSignal(w.exportFinished, timeout=60000) as blk:
            pass
        rep = blk.args[0]
        assert rep.cancelled and rep.documents_exported < 6
        assert "cancelled" in w.statusBar().currentMessage()
        assert not w.exporting
        # every file that was written is complete (atomic writes): each reads back as an image
        for f in catalog.rglob("*.jpg"):
            assert cv2.imread(str(f)) is not None
        # running again completes the catalog
        w.exports.progress.disconnect(cancel_now)
        with qtbot.waitSignal(w.exportFinished, timeout=60000) as blk:
            assert w.start_export([str(f) for f in folders], "generic", str(catalog), True)
        assert blk.args[0].ok, blk.args[0].failure_lines()
        assert sum(1 for _ in catalog.rglob("*.jpg")) == 6
    finally:
        w.shutdown()


def test_export_with_nothing_approved_says_so(qtbot, tmp_path):
    make_product_result(tmp_path, "pending_one", review="pending")
    w = window(qtbot, tmp_path)
    try:
        w.export_dialog()
        dlg = w.exports.dialog
        assert dlg.summary.text().startswith("<b>0</b>")
        dlg.out.setText(str(tmp_path / "catalog"))
        dlg.accept()
        assert "nothing to export" in w.statusBar().currentMessage()
        assert not w.exporting and not (tmp_path / "catalog").exists()
    finally:
        w.shutdown()


# ---- first run --------------------------------------------------------------------------------
@pytest.fixture
def isolated_settings(tmp_path):
    """QSettings() (the platform's standard location, as the app uses it) redirected to tmp."""
    from PySide6.QtCore import QCoreApplication
    QStandardPaths.setTestModeEnabled(True)
    old = (QCoreApplication.organizationName(), QCoreApplication.applicationName())
    QCoreApplication.setOrganizationName("StudioCatalogTest")
    QCoreApplication.setApplicationName("Studio Catalog")
    cfg = tmp_path / "config"
    for fmt in (QSettings.NativeFormat, QSettings.IniFormat):
        QSettings.setPath(fmt, QSettings.UserScope, str(cfg))
    yield cfg
    QCoreApplication.setOrganizationName(old[0])
    QCoreApplication.setApplicationName(old[1])
    QStandardPaths.setTestModeEnabled(False)


def test_first_run_saves_choices_in_the_settings_location(qtbot, tmp_path, isolated_settings, monkeypatch):
    from studio_app.gui import app as gui_app
    from studio_app.gui.first_run import FirstRunDialog
    hot = tmp_path / "tether"
    hot.mkdir()
    out = tmp_path / "results"
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))

    def drive(dlg: FirstRunDialog):
        qtbot.addWidget(dlg)
        assert "GPU" in dlg.gpu.text()
        dlg.hot.setText(str(tmp_path / "missing"))       # a hot folder that does not exist: refused
        dlg.out.setText(str(out))
        dlg._accept()
        assert dlg.result() == 0 and "does not exist" in warnings[-1]
        dlg.out.setText("")                               # no output folder: refused
        dlg.hot.setText(str(hot))
        dlg._accept()
        assert "output folder" in warnings[-1]
        dlg.out.setText(str(out))
        i = dlg.preset.findData("amazon")
        assert i >= 0
        dlg.preset.setCurrentIndex(i)
        dlg._accept()
        return 1

    monkeypatch.setattr(FirstRunDialog, "exec", lambda self: drive(self))
    settings = QSettings()
    assert Path(settings.fileName()).is_relative_to(isolated_settings)
    assert gui_app.first_run(settings, "", str(Path.home() / "StudioCatalog"))
    # read back through a fresh QSettings, as the next start does
    again = QSettings()
    assert again.value("hot_folder") == str(hot)
    assert again.value("out_root") == str(out)
    assert again.value("preset") == "amazon"
    assert Path(again.fileName()).is_file() and Path(again.fileName()).is_relative_to(isolated_settings)

    # cancel: nothing stored
    monkeypatch.setattr(FirstRunDialog, "exec", lambda self: 0)
    s2 = QSettings()
    s2.clear()
    assert not gui_app.first_run(s2, "", "")
    assert QSettings().value("out_root") is None


# ---- toolbar at the smallest supported size ----------------------------------------------------
@pytest.mark.parametrize("width", [1280, 1400, 1920])
def test_toolbar_fits_with_preset_selector(qtbot, tmp_path, width):
    w = window(qtbot, tmp_path)
    try:
        w.resize(width, 800)
        qtbot.waitUntil(lambda: w.width() == width, timeout=3000)
        qtbot.wait(50)
        tb = w.toolbar
        combo = w.preset_combo
        assert combo.isVisible() and w.preset_label.isVisible()
        g = combo.geometry()
        assert g.right() <= tb.width() and g.width() >= 150
        # no action pushed into the overflow menu: every toolbar button is on screen
        ext = [b for b in tb.findChildren(QToolButton) if b.objectName() == "qt_toolbar_ext_button"]
        assert not any(b.isVisible() for b in ext)
        for a in tb.actions():
            if a.isSeparator() or tb.widgetForAction(a) is None:
                continue
            assert tb.widgetForAction(a).isVisible(), a.text()
        # the labels stay put when an undoable edit changes the Undo action's text
        from studio_app.core.events import HistoryChanged
        from studio_app.gui.actions import show_history
        show_history(w, HistoryChanged("x.jpg", True, False, "Move the left knee"))
        assert w.tb_undo.text() == "Undo" and "left knee" in w.tb_undo.toolTip()
    finally:
        w.shutdown()


class _KeepingProcessor(FakeProcessor):
    """A processor that can keep its models loaded after the app closes (as IsolatedProcessor)."""

    def __init__(self):
        super().__init__()
        self.keep_loaded_s = 600.0
        self.closed_how: list[str] = []

    def close(self):
        self.closed_how.append("close")

    def close_for_exit(self):
        self.closed_how.append(f"exit, kept {self.keep_loaded_s:g} s")
        return self.keep_loaded_s > 0


def test_settings_keep_models_loaded_after_closing(qtbot, tmp_path):
    """Settings › Keep models loaded after closing: shows the stored minutes (10 by default),
    stores the new value, and the app's close uses it at once (no restart, no model reload)."""
    proc = _KeepingProcessor()
    w = window(qtbot, tmp_path)
    w.studio.processor = proc
    w.settings_dialog()
    dlg = w._settings_dlg
    qtbot.waitExposed(dlg)
    assert dlg.keep.value() == 10 and dlg.keep.suffix() == " min"
    dlg.keep.setValue(0)
    assert "stop with the app" in dlg.keep.text()
    dlg.accept()
    assert int(w.settings.value("keep_models_min")) == 0
    assert proc.keep_loaded_s == 0
    w.settings_dialog()
    assert w._settings_dlg.keep.value() == 0                  # the stored value is shown again
    w._settings_dlg.keep.setValue(25)
    w._settings_dlg.accept()
    assert proc.keep_loaded_s == 25 * 60
    w.shutdown()
    assert proc.closed_how == ["exit, kept 1500 s"]           # the app's close, not a plain close
