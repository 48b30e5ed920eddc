"""What the studio operator notices (issue 17), driven through the real window (pytest-qt):
hot-folder arrivals never take the view away or drop a drag in progress, a badge counts them and
End jumps to the newest; a replaced file is processed again and shown with its new pixels (also
Ctrl+R); the status reads the same in the inspector and the filmstrip; Open catalog folder after
an export; File › Open starts in a useful folder; a filter for the photos that need review.
No model weights needed: a fast stand-in processor and result folders written like real ones."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from gui_helpers import FakeProcessor, jpeg_bytes, make_product_result, make_window
from studio_app.core.history import AddZone
from studio_app.core.result import load
from studio_app.gui.filmstrip_model import STATUS_ROLE

pytestmark = pytest.mark.gui


def arrive(qtbot, w, hot: Path, name: str, colour=(200, 40, 40)) -> str:
    """A photo lands in the hot folder (tmp name, then rename); wait until its result is there and
    the window has handled the events that came with it."""
    part = hot / (name + ".part")
    part.write_bytes(jpeg_bytes(colour=colour))
    os.replace(part, hot / name)
    key = str((hot / name).resolve())
    qtbot.waitUntil(lambda: (e := w.session.get(key)) is not None and e.status == "ready", timeout=10000)
    qtbot.waitUntil(lambda: w.filmstrip.row_of(key) >= 0 and w.view.model.entry(key).status == "ready", timeout=5000)
    qtbot.wait(200)
    return key


def pixel(w) -> tuple[int, int, int]:
    c = w.canvas.photo_item.pixmap().toImage().pixelColor(5, 5)
    return c.red(), c.green(), c.blue()


def test_box_drag_survives_an_arrival_and_end_jumps_to_the_newest(qtbot, tmp_path):
    folder = make_product_result(tmp_path, "bag", review="pending")
    hot = tmp_path / "hot"
    hot.mkdir()
    w = make_window(qtbot, tmp_path, FakeProcessor(), hot_folder=hot, hot_stable_seconds=0.3)
    try:
        w.add_paths([str(tmp_path / "photos")])
        qtbot.waitUntil(lambda: w.canvas.doc is not None and "product" in w.canvas.boxes, timeout=10000)
        shown = w.view.current_photo()
        b0 = load(folder).item("product").box
        vp = w.canvas.viewport()
        corner = w.canvas.mapFromScene(QPointF(b0[2], b0[3]))
        QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, corner)
        QTest.mouseMove(vp, corner - QPoint(20, 15))
        assert w.canvas.interacting
        new = arrive(qtbot, w, hot, "new.jpg")            # finishes while the corner is held
        assert w.view.current_photo() == shown and w.canvas.photo == shown
        assert w.status.arrivals.isVisible() and w.status.arrivals.text().startswith("1 new")
        end = corner - QPoint(40, 30)
        QTest.mouseMove(vp, end)
        QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, end)
        qtbot.waitUntil(lambda: load(folder).item("product").locked, timeout=5000)
        b1 = load(folder).item("product").box
        assert b1[0] == pytest.approx(b0[0], abs=1) and b1[2] < b0[2] - 10 and b1[3] < b0[3] - 10
        # the photo was edited: the next arrival does not take it away either
        newer = arrive(qtbot, w, hot, "newer.jpg", colour=(40, 200, 40))
        assert w.view.current_photo() == shown
        assert w.status.arrivals.text().startswith("2 new")
        QTest.keyClick(w, Qt.Key_End)
        assert w.view.current_photo() == newer != new
        assert w.studio.arrivals_unseen == 0 and not w.status.arrivals.isVisible()
    finally:
        w.shutdown()


def test_new_results_followed_only_while_the_operator_is_idle(qtbot, tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    w = make_window(qtbot, tmp_path, FakeProcessor(), hot_folder=hot, hot_stable_seconds=0.3)
    try:
        a = arrive(qtbot, w, hot, "a.jpg")
        qtbot.waitUntil(lambda: w.view.current_photo() == a and w.canvas.doc is not None, timeout=5000)
        b = arrive(qtbot, w, hot, "b.jpg")
        qtbot.waitUntil(lambda: w.view.current_photo() == b, timeout=5000)    # idle: the view follows
        assert w.studio.arrivals_unseen == 0 and not w.status.arrivals.isVisible()   # and they were seen
        box = QMessageBox(w)
        box.setText("a dialog the operator is reading")
        box.open()
        qtbot.waitUntil(lambda: QApplication.activeModalWidget() is box, timeout=3000)
        arrive(qtbot, w, hot, "c.jpg")
        assert w.view.current_photo() == b                                     # a dialog open: it stays
        assert w.status.arrivals.text().startswith("1 new")
        box.close()
        qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.photo == b, timeout=5000)
        assert w.view.apply(AddZone("product"))                                # the operator edits b
        qtbot.waitUntil(lambda: "product" in w.canvas.boxes, timeout=5000)
        arrive(qtbot, w, hot, "d.jpg")
        assert w.view.current_photo() == b and "product" in w.canvas.boxes
    finally:
        w.shutdown()


def test_replaced_file_in_hot_folder_is_processed_again_and_shown_anew(qtbot, tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    fake = FakeProcessor()
    w = make_window(qtbot, tmp_path, fake, hot_folder=hot, hot_stable_seconds=0.3)
    try:
        shot = arrive(qtbot, w, hot, "shot.jpg", colour=(220, 30, 30))   # BGR: blue-ish on screen
        qtbot.waitUntil(lambda: w.canvas.photo == shot and w.canvas.doc is not None, timeout=5000)
        qtbot.waitUntil(lambda: w.view.model.thumbnail_key(shot) != 0, timeout=5000)
        thumb0, px0 = w.view.model.thumbnail_key(shot), pixel(w)
        part = hot / "shot.jpg.part"                                   # copied again, as the error says
        part.write_bytes(jpeg_bytes(w=80, h=60, colour=(30, 30, 220)))
        os.replace(part, hot / "shot.jpg")
        qtbot.waitUntil(lambda: fake.calls.count("shot.jpg") == 2, timeout=10000)
        qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.doc.source.width == 80, timeout=5000)
        qtbot.waitUntil(lambda: pixel(w) != px0, timeout=5000)
        assert pixel(w)[0] > 150 and px0[2] > 150                     # the new pixels, not the old ones
        qtbot.waitUntil(lambda: w.view.model.thumbnail_key(shot) not in (0, thumb0), timeout=5000)
    finally:
        w.shutdown()


def test_ctrl_r_reloads_the_photo_and_its_thumbnail(qtbot, tmp_path):
    photo = tmp_path / "in" / "p.jpg"
    photo.parent.mkdir()
    photo.write_bytes(jpeg_bytes(colour=(220, 30, 30)))
    fake = FakeProcessor()
    w = make_window(qtbot, tmp_path, fake)
    try:
        w.add_paths([str(photo)])
        qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.photo_item is not None, timeout=10000)
        qtbot.waitUntil(lambda: w.view.model.thumbnail_key(str(photo.resolve())) != 0, timeout=5000)
        thumb0, px0 = w.view.model.thumbnail_key(str(photo.resolve())), pixel(w)
        photo.write_bytes(jpeg_bytes(colour=(30, 30, 220)))
        QTest.keyClick(w, Qt.Key_R, Qt.ControlModifier)
        qtbot.waitUntil(lambda: fake.calls.count("p.jpg") == 2, timeout=10000)
        qtbot.waitUntil(lambda: pixel(w) != px0 and pixel(w)[0] > 150, timeout=5000)
        qtbot.waitUntil(lambda: w.view.model.thumbnail_key(str(photo.resolve())) not in (0, thumb0), timeout=5000)
    finally:
        w.shutdown()


def test_after_export_both_say_exported_and_the_catalog_folder_opens(qtbot, tmp_path):
    make_product_result(tmp_path, "shoe")
    opened = []
    w = make_window(qtbot, tmp_path, FakeProcessor(), open_url=lambda url: opened.append(url.toLocalFile()) or True)
    try:
        w.add_paths([str(tmp_path / "photos")])
        qtbot.waitUntil(lambda: w.canvas.doc is not None, timeout=10000)
        photo = w.view.current_photo()
        assert "Approved" in w.inspector.status.text()
        assert not w.a_open_catalog.isEnabled()
        catalog = tmp_path / "catalog"
        with qtbot.waitSignal(w.exportFinished, timeout=60000) as blk:
            assert w.start_export([e.folder for e in w.session], "generic", str(catalog), True)
        assert blk.args[0].ok
        qtbot.waitUntil(lambda: "Exported" in w.inspector.status.text(), timeout=5000)
        row = w.filmstrip.proxy.index(w.filmstrip.row_of(photo), 0)
        assert row.data(STATUS_ROLE) == "exported" and "Exported" in w.filmstrip.tooltip_for(photo)
        assert w.a_open_catalog.isEnabled()
        w.a_open_catalog.trigger()
        assert opened == [str(catalog)]
    finally:
        w.shutdown()


def test_file_open_starts_in_the_hot_folder_then_the_last_folder(qtbot, tmp_path, monkeypatch):
    hot = tmp_path / "hot"
    hot.mkdir()
    asked = []

    def fake_dialog(parent, title, start, filters):
        asked.append((start, filters))
        return [], ""
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", fake_dialog)
    w = make_window(qtbot, tmp_path, FakeProcessor(), hot_folder=hot)
    try:
        w.a_open.trigger()
        assert asked[-1][0] == str(hot) and "*.jpg" in asked[-1][1] and "*.heic" not in asked[-1][1]
        shots = tmp_path / "shoot-2"
        shots.mkdir()
        w.settings.setValue("last_dir", str(shots))
        w.a_open.trigger()
        assert asked[-1][0] == str(shots)
    finally:
        w.shutdown()


def test_filter_shows_only_photos_that_need_review(qtbot, tmp_path):
    make_product_result(tmp_path, "a_done", review="approved")
    make_product_result(tmp_path, "b_check", colour=(90, 60, 200), review="pending", warnings=("mask touches the edge",))
    make_product_result(tmp_path, "c_fine", colour=(150, 60, 200), review="pending")
    w = make_window(qtbot, tmp_path, FakeProcessor())
    try:
        w.add_paths([str(tmp_path / "photos")])
        qtbot.waitUntil(lambda: w.filmstrip.count() == 3, timeout=10000)
        w.a_review_only.trigger()
        assert w.filmstrip.count() == 1 and Path(w.filmstrip.photo_at(0)).name == "b_check.jpg"
        w.a_review_only.trigger()
        assert w.filmstrip.count() == 3
    finally:
        w.shutdown()
