"""Engine selection (issue 5): trained checkpoints placed in weights/ with their config are
offered in Settings, the choice is stored, the Studio rebuilds its processor on its processing thread, and
photos processed afterwards name the chosen checkpoints in a document of the same shape.

The checkpoints are tiny untrained OpenPose / YOLACT models written by the projects' own
export functions into a temporary weights folder (no training, a second to build)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from conftest import dev_file, require_weights, write_tiny_engines
from gui_helpers import FakeProcessor, jpeg_bytes
from studio_app.core.engines import find_pose_models, find_seg_models, pose_choices, seg_choices, validate
from studio_app.gui.main_window import MainWindow

pytestmark = pytest.mark.gui

BUILTIN = ("pose_detection.tflite", "pose_landmark_full.tflite", "selfie_segmentation.tflite", "u2netp.onnx")
PHOTO = "persons/ccp/photos/0002.jpg"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    d = write_tiny_engines(tmp_path_factory.mktemp("weights"))
    # things that must NOT be offered: a .pth without config, a .pth with an unrelated .json
    (d / "stray.pth").write_bytes(b"not a model")
    (d / "notes.pth").write_bytes(b"x")
    (d / "notes.json").write_text(json.dumps({"hello": 1}))
    return d


def with_builtin(tiny: Path, tmp_path: Path) -> Path:
    """A weights folder holding the built-in models (linked) and the tiny checkpoints."""
    real = require_weights(*BUILTIN)
    d = tmp_path / "weights"
    d.mkdir()
    for f in BUILTIN:
        os.symlink(real / f, d / f)
    for f in tiny.iterdir():
        shutil.copy(f, d / f.name)
    return d


def test_discovery_offers_checkpoints_with_their_config_only(tiny_weights):
    assert [p.name for p in find_pose_models(tiny_weights)] == ["op_tiny.pth"]
    assert [p.name for p in find_seg_models(tiny_weights)] == ["shop_yolact.pth"]
    pose = pose_choices(tiny_weights)
    seg = seg_choices(tiny_weights)
    assert [c.value for c in pose] == ["blazepose", "op_tiny.pth"]
    assert [c.value for c in seg] == ["u2netp", "shop_yolact.pth"]
    assert "config tiny" in pose[1].detail and "config tiny" in seg[1].detail
    assert validate("op_tiny.pth", "shop_yolact.pth", tiny_weights) == []
    assert len(validate("gone.pth", "u2netp", tiny_weights)) == 1
    assert find_pose_models(tiny_weights / "missing") == []


def _window(qtbot, tmp_path, weights: Path, **kw) -> MainWindow:
    from studio_app.gui.config import processor_spec
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    kw.setdefault("processor", processor_spec("cpu", isolated=False, weights_dir=str(weights)))
    w = MainWindow(tmp_path / "out", settings=settings, weights_dir=weights, device="cpu", **kw)
    qtbot.addWidget(w)
    w.show()
    return w


def _shape(doc_json: dict) -> dict:
    """The document's structure: keys at every level (lists: union over their entries)."""
    def keys(v):
        if isinstance(v, dict):
            return {k: keys(x) for k, x in v.items()}
        if isinstance(v, list):
            merged: dict = {}
            for x in v:
                k = keys(x)
                if isinstance(k, dict):
                    merged.update(k)
            return [merged] if merged else []
        return type(v).__name__ if v is not None else "null"
    return keys(doc_json)


def test_settings_dialog_switches_engines_document_keeps_its_shape(qtbot, tmp_path, tiny_weights):
    weights = with_builtin(tiny_weights, tmp_path)
    photo = tmp_path / "in" / "look.jpg"
    photo.parent.mkdir()
    shutil.copy(dev_file(PHOTO), photo)
    w = _window(qtbot, tmp_path, weights)
    try:
        qtbot.waitUntil(lambda: w.device_text != "loading models…", timeout=120000)
        # default engines first
        w.add_paths([str(photo)])
        qtbot.waitUntil(lambda: (e := w.session.get(photo)) is not None and e.status not in ("queued", "processing"),
                        timeout=120000)
        e = w.session.get(photo)
        assert e.folder, e.message
        before = json.loads((Path(e.folder) / "result.json").read_text())
        assert before["engines"]["pose"] == "blazepose" and before["engines"]["segmentation"] == "u2netp"

        # Settings: the tiny checkpoints are offered, stray files are not
        w.settings_dialog()
        dlg = w._settings_dlg
        qtbot.waitExposed(dlg)
        pose_items = [dlg.pose.itemData(i) for i in range(dlg.pose.count())]
        seg_items = [dlg.seg.itemData(i) for i in range(dlg.seg.count())]
        assert pose_items == ["blazepose", "op_tiny.pth"]
        assert seg_items == ["u2netp", "shop_yolact.pth"]
        dlg.pose.setCurrentIndex(1)
        dlg.seg.setCurrentIndex(1)
        assert "config tiny" in dlg.pose_detail.text()
        with qtbot.waitSignal(w.processorState, timeout=120000, check_params_cb=lambda state, text: state == "ready"):
            dlg.accept()
        assert w.settings.value("pose_engine") == "op_tiny.pth"
        assert w.settings.value("seg_engine") == "shop_yolact.pth"
        qtbot.waitUntil(lambda: "op_tiny" in w.status.device.text() and "shop_yolact" in w.status.device.text(),
                        timeout=10000)

        # the same photo processed again (as a person, so keypoints are written) with the new engines
        assert w.filmstrip.select_photo(str(photo.resolve()))
        assert w.reprocess(force_kind="person")
        qtbot.waitUntil(lambda: w.session.get(photo).status not in ("queued", "processing"), timeout=120000)
        e = w.session.get(photo)
        assert e.status != "error", e.message
        after = json.loads((Path(e.folder) / "result.json").read_text())
        assert after["engines"]["pose"] == "op_tiny.pth"
        assert after["engines"]["segmentation"] == "shop_yolact.pth"
        assert after["kind"] == "person" and len(after["keypoints"]) == len(before["keypoints"]) == 23
        sb, sa = _shape(before), _shape(after)
        assert sa.keys() == sb.keys()
        assert sa["engines"] == sb["engines"] and sa["source"] == sb["source"]
        assert sa["keypoints"] == sb["keypoints"]
        if sa["items"] and sb["items"]:
            assert sa["items"][0].keys() <= sb["items"][0].keys()
    finally:
        w.shutdown()

    # the choice survives a restart: a new window starts with the stored engines
    from studio_app.gui.app import engine_settings
    assert engine_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)) == \
        ("op_tiny.pth", "shop_yolact.pth")


def test_engine_that_fails_to_load_keeps_the_old_one_and_the_setting(qtbot, tmp_path, tiny_weights, monkeypatch):
    """A broken checkpoint: the operator is told, the Studio goes on with its engines, and the
    stored choice is reverted (the next start does not fail)."""
    bad = tmp_path / "weights"
    shutil.copytree(tiny_weights, bad)
    (bad / "op_tiny.pth").write_bytes(b"truncated download")
    fake = FakeProcessor()
    from PySide6.QtWidgets import QMessageBox
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    w = _window(qtbot, tmp_path, bad, processor=fake)
    try:
        qtbot.waitUntil(lambda: w.device_text == "test processor", timeout=10000)
        with qtbot.waitSignal(w.processorState, timeout=60000,
                              check_params_cb=lambda state, text: state == "failed") as blk:
            assert w.set_engines("op_tiny.pth", "u2netp")
        assert "could not be loaded" in blk.args[1]
        qtbot.waitUntil(lambda: bool(shown), timeout=5000)
        assert w.engines() == ("blazepose", "u2netp")
        assert w.studio.processor is fake and w.device_text == "test processor"
        # and the old processor still works
        p = tmp_path / "x.jpg"
        p.write_bytes(jpeg_bytes())
        w.add_paths([str(p)])
        qtbot.waitUntil(lambda: "x.jpg" in fake.calls, timeout=10000)
        assert w.set_engines("blazepose", "u2netp") is False      # nothing changed: no reload
    finally:
        w.shutdown()
