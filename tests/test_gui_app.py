"""The desktop app, driven through its real widgets (pytest-qt). Offscreen and under Xvfb.

End-to-end tests use the real Processor on real dev photos (skipped where data/weights are
absent); pure-widget tests (hot folder, cancel) use a fast stand-in with the same signature."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtTest import QTest

from conftest import dev_file, require_weights
from gui_helpers import FakeProcessor, drag, drop_files, jpeg_bytes, make_window
from studio_app.core.result import load, save
from studio_app.gui.main_window import MainWindow

pytestmark = pytest.mark.gui

PERSON = "persons/ccp/photos/0002.jpg"
PRODUCT = "products/magento_luma/mb02-blue-0.jpg"
WEIGHTS = ("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")


@pytest.fixture(scope="module")
def real_processor():
    require_weights(*WEIGHTS)
    import torch
    torch.set_num_threads(1)
    from studio_app.core.processing import Processor
    return Processor(device="auto")


@pytest.fixture(scope="module")
def processed(real_processor, tmp_path_factory):
    """Person + product processed once by the real processor (edit tests copy these)."""
    out = tmp_path_factory.mktemp("processed")
    res = {}
    for key, rel in (("person", PERSON), ("product", PRODUCT)):
        o = real_processor.process(dev_file(rel), out)
        assert o.ok, o.error
        res[key] = o.folder
    return res


def close(w: MainWindow) -> None:
    w.shutdown()


def open_result(qtbot, tmp_path, folder: Path, processor=None) -> MainWindow:
    """A window whose out folder holds a copy of an existing result; the photo is on screen."""
    out = tmp_path / "out"
    shutil.copytree(folder, out / folder.name)
    w = make_window(qtbot, tmp_path, processor or FakeProcessor())
    doc = load(out / folder.name)
    assert w.add_photo(doc.source.path)
    e = w.session.get(doc.source.path)
    assert e.status in ("ready", "needs_review"), e
    qtbot.waitUntil(lambda: w.filmstrip.count() == 1, timeout=5000)
    w.filmstrip.setCurrentRow(0)
    qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.photo_item is not None, timeout=10000)
    return w


def status_of(w, photo) -> str:
    e = w.session.get(photo)
    return e.status if e else "?"


# ---- end to end: drop photos, real processor -------------------------------------------------------
def test_drop_person_and_product_get_results(qtbot, tmp_path, real_processor):
    person, product = dev_file(PERSON), dev_file(PRODUCT)
    w = make_window(qtbot, tmp_path, real_processor)
    try:
        drop_files(w.canvas.viewport(), [person, product])
        qtbot.waitUntil(lambda: w.filmstrip.count() == 2, timeout=5000)
        qtbot.waitUntil(lambda: all(status_of(w, p) in ("ready", "needs_review") for p in (person, product)),
                        timeout=120000)
        pe, pr = w.session.get(person), w.session.get(product)
        assert pe.kind == "person" and pr.kind == "product"
        assert (Path(pe.folder) / "result.json").exists() and (Path(pr.folder) / "product.jpg").exists()
        # the first finished photo was brought on screen with its overlays
        qtbot.waitUntil(lambda: w.canvas.doc is not None, timeout=10000)
        w.filmstrip.setCurrentRow(0)
        qtbot.waitUntil(lambda: w.canvas.skeleton is not None, timeout=10000)
        provided = [k for k in w.canvas.doc.keypoints if k.score > 0]
        assert len(w.canvas.skeleton.items) == len(provided) >= 17
        assert {"top", "full"} <= set(w.canvas.boxes)
        w.filmstrip.setCurrentRow(1)
        qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.doc.kind == "product", timeout=10000)
        assert w.canvas.skeleton is None and set(w.canvas.boxes) == {"product"}
        assert w.canvas.mask_item is not None
        # the session is saved next to the results
        sp = tmp_path / "out" / "session.json"
        qtbot.waitUntil(lambda: sp.exists() and len(json.loads(sp.read_text())["entries"]) == 2, timeout=3000)
    finally:
        close(w)


def test_corrupt_photo_shows_error_while_others_complete(qtbot, tmp_path, real_processor):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    product = dev_file(PRODUCT)
    w = make_window(qtbot, tmp_path, real_processor)
    try:
        w.add_paths([str(bad), str(product)])
        qtbot.waitUntil(lambda: status_of(w, product) in ("ready", "needs_review"), timeout=120000)
        assert status_of(w, bad) == "error"
        e = w.session.get(bad)
        assert "broken.jpg" in e.message
        why = e.message.split(":")[-1].strip()[:20]
        qtbot.waitUntil(lambda: why in w.filmstrip.tooltip_for(e.photo), timeout=5000)
        assert "broken.jpg" in w.filmstrip.tooltip_for(e.photo)
    finally:
        close(w)


# ---- editing ---------------------------------------------------------------------------------------
def _kp_viewport_pos(w, name):
    it = w.canvas.skeleton.items[name]
    return w.canvas.mapFromScene(it.scenePos())


def _without_garment_map(folder: Path, tmp_path: Path) -> Path:
    """A copy of a result as an older version wrote it (no garment map): keypoint edits re-frame
    the zones from the keypoints then (with a map a zone stays on its garment, see
    test_studio_apparel.py)."""
    dst = tmp_path / "nomap" / folder.name
    shutil.copytree(folder, dst)
    doc = load(dst)
    doc.garments = None
    save(doc, dst)
    return dst


def test_drag_keypoint_moves_dependent_box_but_not_locked_one(qtbot, tmp_path, processed):
    w = open_result(qtbot, tmp_path, _without_garment_map(processed["person"], tmp_path))
    try:
        folder = Path(w.current_folder())
        before = load(folder)
        shoes0, full0 = list(before.item("shoes").box), list(before.item("full").box)
        # lock the full box first (through the inspector, as an operator would)
        w.inspector.select_zone("full")
        w.inspector.lock.click()
        qtbot.waitUntil(lambda: load(folder).item("full").locked, timeout=5000)
        vp = w.canvas.viewport()
        start = _kp_viewport_pos(w, "left_ankle")
        end = start + QPointF(0, 60).toPoint()
        drag(vp, start, end)
        qtbot.waitUntil(lambda: load(folder).keypoint("left_ankle").y > before.keypoint("left_ankle").y + 5,
                        timeout=5000)
        after = load(folder)
        dy = after.keypoint("left_ankle").y - before.keypoint("left_ankle").y
        assert dy == pytest.approx(60 / w.canvas.zoom, rel=0.15)
        assert after.item("shoes").box != shoes0         # the dependent box followed
        assert after.item("full").box == full0           # the locked one did not
        # the overlay on screen shows the new box
        qtbot.waitUntil(lambda: w.canvas.boxes["shoes"].box() == pytest.approx(after.item("shoes").box, abs=0.01),
                        timeout=3000)
        # undo restores exactly, redo again
        w.a_undo.trigger()
        assert load(folder).keypoint("left_ankle").y == before.keypoint("left_ankle").y
        assert load(folder).item("shoes").box == shoes0
        w.a_redo.trigger()
        assert load(folder).to_dict() == after.to_dict()
    finally:
        close(w)


def test_drag_box_corner_sets_and_locks_it(qtbot, tmp_path, processed):
    w = open_result(qtbot, tmp_path, processed["product"])
    try:
        folder = Path(w.current_folder())
        b0 = load(folder).item("product").box
        box = w.canvas.boxes["product"]
        corner = w.canvas.mapFromScene(QPointF(b0[2], b0[3]))
        drag(w.canvas.viewport(), corner, corner - QPointF(40, 30).toPoint())
        qtbot.waitUntil(lambda: load(folder).item("product").locked, timeout=5000)
        b1 = load(folder).item("product").box
        assert b1[0] == pytest.approx(b0[0], abs=1) and b1[2] < b0[2] - 10 and b1[3] < b0[3] - 10
        assert box is not None
    finally:
        close(w)


def test_brush_changes_mask_png_and_undo_redo_restore_exactly(qtbot, tmp_path, processed):
    w = open_result(qtbot, tmp_path, processed["product"])
    try:
        folder = Path(w.current_folder())
        mask0 = cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE)
        w.set_tool("brush_add")
        w.canvas.set_brush_radius(30)
        vp = w.canvas.viewport()
        a = w.canvas.mapFromScene(QPointF(40, 40))           # a corner of the photo: background
        b = w.canvas.mapFromScene(QPointF(200, 60))
        drag(vp, a, b)
        qtbot.waitUntil(lambda: load(folder).model_mask is not None, timeout=5000)
        mask1 = cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE)
        assert (mask1 > 127).sum() > (mask0 > 127).sum() + 1000
        assert mask1[50, 120] == 255
        assert np.array_equal(cv2.imread(str(folder / "model_mask.png"), cv2.IMREAD_GRAYSCALE), mask0)
        # erase part of it again
        w.set_tool("brush_erase")
        drag(vp, b, b)
        qtbot.waitUntil(lambda: cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE)[60, 200] == 0, timeout=5000)
        mask2 = cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE)
        QTest.keyClick(w, Qt.Key_Z, Qt.ControlModifier)
        assert np.array_equal(cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE), mask1)
        QTest.keyClick(w, Qt.Key_Z, Qt.ControlModifier)
        assert np.array_equal(cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE), mask0)
        QTest.keyClick(w, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
        QTest.keyClick(w, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
        assert np.array_equal(cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE), mask2)
        # reset to the model's mask
        w.inspector.reset_mask.click()
        qtbot.waitUntil(lambda: np.array_equal(cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE), mask0),
                        timeout=5000)
    finally:
        close(w)


def test_eyedropper_sets_swatch_with_family(qtbot, tmp_path, processed):
    w = open_result(qtbot, tmp_path, processed["product"])
    try:
        folder = Path(w.current_folder())
        w.inspector.select_zone("product")
        w.set_tool("eyedropper")
        QTest.mouseClick(w.canvas.viewport(), Qt.LeftButton, Qt.NoModifier, w.canvas.mapFromScene(QPointF(10, 10)))
        qtbot.waitUntil(lambda: load(folder).item("product").swatch.family == "white", timeout=5000)
        assert w.inspector.hex.text() == load(folder).item("product").swatch.hex
    finally:
        close(w)


def test_approve_with_keyboard_moves_to_next(qtbot, tmp_path, processed):
    out = tmp_path / "out"
    for f in processed.values():
        shutil.copytree(f, out / f.name)
    w = make_window(qtbot, tmp_path, FakeProcessor())
    try:
        docs = [load(out / f.name) for f in processed.values()]
        for d in docs:
            w.add_photo(d.source.path)
        qtbot.waitUntil(lambda: w.filmstrip.count() == 2, timeout=5000)
        w.filmstrip.setCurrentRow(0)
        qtbot.waitUntil(lambda: w.canvas.doc is not None, timeout=10000)
        w.filmstrip.setFocus()
        QTest.keyClick(w.filmstrip, Qt.Key_A)
        assert load(out / list(processed.values())[0].name).status == "approved"
        assert w.filmstrip.currentRow() == 1
        QTest.keyClick(w.filmstrip, Qt.Key_R)
        assert load(out / list(processed.values())[1].name).status == "rejected"
        assert status_of(w, docs[0].source.path) == "approved" and status_of(w, docs[1].source.path) == "rejected"
        QTest.keyClick(w.filmstrip, Qt.Key_K)
        assert w.filmstrip.currentRow() == 0
        QTest.keyClick(w.filmstrip, Qt.Key_J)
        assert w.filmstrip.currentRow() == 1
    finally:
        close(w)


# ---- hot folder, pairing, pause, cancel (fast stand-in processor) ------------------------------------------
def test_hot_folder_slow_write_rename_pair_temp_pause(qtbot, tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    fake = FakeProcessor()
    w = make_window(qtbot, tmp_path, fake, hot_folder=hot, hot_stable_seconds=0.5, hot_pair_window=1.0)
    try:
        data = jpeg_bytes()
        with open(hot / "slow.jpg", "wb") as f:          # written slowly, in chunks
            step = len(data) // 4 + 1
            for i in range(4):
                f.write(data[i * step:(i + 1) * step])
                f.flush()
                qtbot.wait(200)
        (hot / "moved.jpg.part").write_bytes(data)      # tmp name, then rename
        qtbot.wait(200)
        os.replace(hot / "moved.jpg.part", hot / "moved.jpg")
        (hot / "IMG_5.CR3").write_bytes(b"raw" * 5000)   # RAW + JPEG of one shot
        (hot / "IMG_5.xmp").write_text("<x/>")
        (hot / "~tmp.jpg").write_bytes(data)
        (hot / "x.crdownload").write_bytes(data)
        qtbot.wait(200)
        (hot / "IMG_5.JPG").write_bytes(data)
        qtbot.waitUntil(lambda: len(fake.calls) >= 3 and not w.studio.busy, timeout=10000)
        qtbot.wait(1500)
        assert sorted(fake.calls) == ["IMG_5.JPG", "moved.jpg", "slow.jpg"]
        qtbot.waitUntil(lambda: w.filmstrip.count() == 3, timeout=5000)
        assert w.session.get(hot / "IMG_5.JPG").pair == str((hot / "IMG_5.CR3").resolve())
        # pause: nothing is processed; resume: it is
        w.a_pause.trigger()
        qtbot.waitUntil(lambda: "paused" in w.status.watch.text(), timeout=3000)
        assert w.studio.paused
        (hot / "later.jpg").write_bytes(data)
        qtbot.wait(1200)
        assert "later.jpg" not in fake.calls
        w.a_pause.trigger()
        qtbot.waitUntil(lambda: "later.jpg" in fake.calls, timeout=5000)
        assert fake.calls.count("later.jpg") == 1
    finally:
        close(w)


def test_arrived_while_closed_are_processed_once_on_start(qtbot, tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    data = jpeg_bytes()
    (hot / "a.jpg").write_bytes(data)
    (hot / "b.jpg").write_bytes(data)
    fake = FakeProcessor()
    w = make_window(qtbot, tmp_path, fake, hot_folder=hot, hot_stable_seconds=0.3)
    qtbot.waitUntil(lambda: len(fake.calls) == 2 and not w.studio.busy, timeout=10000)
    close(w)
    (hot / "c.jpg").write_bytes(data)                     # arrives while the app is closed
    fake2 = FakeProcessor()
    w2 = make_window(qtbot, tmp_path / "again", fake2, hot_folder=hot, hot_stable_seconds=0.3)
    try:
        pass
    finally:
        close(w2)
    # a second window on the same output folder: only the new photo is processed
    settings_dir = tmp_path / "s3"
    settings_dir.mkdir()
    w3 = MainWindow(tmp_path / "out", processor=fake2, settings=QSettings(str(settings_dir / "s.ini"), QSettings.IniFormat),
                    hot_folder=hot, hot_stable_seconds=0.3)
    qtbot.addWidget(w3)
    try:
        qtbot.waitUntil(lambda: "c.jpg" in fake2.calls, timeout=10000)
        qtbot.wait(800)
        qtbot.waitUntil(lambda: w3.filmstrip.count() == 3, timeout=5000)
        assert fake2.calls.count("c.jpg") == 1 and "a.jpg" not in fake2.calls[-1:]
    finally:
        close(w3)


def test_cancel_stops_the_batch(qtbot, tmp_path):
    src = tmp_path / "shots"
    src.mkdir()
    for i in range(6):
        (src / f"p{i}.jpg").write_bytes(jpeg_bytes())
    fake = FakeProcessor(delay=0.5)
    w = make_window(qtbot, tmp_path, fake)
    try:
        drop_files(w, [src])
        qtbot.waitUntil(lambda: w.filmstrip.count() == 6, timeout=5000)
        qtbot.waitUntil(lambda: len(fake.calls) == 1, timeout=5000)
        qtbot.waitUntil(lambda: w.status.cancel.isEnabled(), timeout=3000)
        w.status.cancel.click()
        qtbot.wait(1000)
        assert len(fake.calls) == 1
        c = w.session.counts()
        assert c["cancelled"] == 6 and c["ready"] == 0, (c, [(e.name, e.status, e.message) for e in w.session])
        qtbot.waitUntil(lambda: not w.status.cancel.isEnabled(), timeout=3000)
        w.requeue_cancelled()
        qtbot.waitUntil(lambda: w.session.counts()["ready"] == 6, timeout=15000)
    finally:
        close(w)
