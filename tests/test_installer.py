"""Installer checks that do not build the bundle (installer/build.sh does that and runs the
self-test on the result): the PyInstaller spec, the Linux desktop entry and icons, the
launcher's dispatch, and the self-test itself from the source checkout."""
from __future__ import annotations

import ast
import configparser
import importlib.util
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require_weights

INSTALLER = REPO / "installer"
RESOURCES = REPO / "resources"
DESKTOP = RESOURCES / "studio-catalog.desktop"
ICONS = RESOURCES / "icons"


def _load_launcher():
    spec = importlib.util.spec_from_file_location("studio_catalog_launcher", INSTALLER / "launcher.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- the PyInstaller spec -----------------------------------------------------------------------

def test_spec_compiles_and_names_the_platform_pieces():
    src = (INSTALLER / "studio_catalog.spec").read_text(encoding="utf-8")
    tree = ast.parse(src, filename="studio_catalog.spec")
    compile(tree, "studio_catalog.spec", "exec")
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls
    # one-folder: COLLECT gathers the binaries, the EXE does not embed them
    assert "exclude_binaries=True" in src
    # macOS bundle identifier, Windows version resource, per-platform icons
    assert "bundle_identifier" in src and "VSVersionInfo" in src
    for icon in ("studio-catalog.ico", "studio-catalog.icns", "studio-catalog.png"):
        assert icon in src and (ICONS / icon).is_file()
    # both launchers: the windowed app and the console CLI
    assert "console=False" in src and "console=True" in src


def test_spec_bundles_every_model_in_the_manifest():
    """The spec takes the model list from weights/manifest.json: every model the app loads
    travels inside the bundle, and the build refuses to run with one missing."""
    import json
    src = (INSTALLER / "studio_catalog.spec").read_text(encoding="utf-8")
    assert 'manifest.json' in src and 'raise SystemExit' in src
    models = json.loads((REPO / "weights" / "manifest.json").read_text())["models"]
    assert {m["id"] for m in models} >= {"pose_detection", "pose_landmark_full", "selfie_segmentation", "u2netp"}
    for m in models:
        assert m.get("licence") and m.get("sources"), m["id"]


def test_spec_data_files_evaluate_against_this_checkout(monkeypatch):
    """Run the spec's data-collection part (everything before the PyInstaller build calls) with
    stand-ins for the PyInstaller objects: the listed files exist and include the models."""
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "selfie_segmentation.tflite", "u2netp.onnx")
    src = (INSTALLER / "studio_catalog.spec").read_text(encoding="utf-8")
    head = src.split("\na = Analysis(")[0]
    head = head.replace("from PyInstaller.utils.hooks import collect_submodules",
                        "collect_submodules = lambda name, **kw: [name]")
    ns = {"SPECPATH": str(INSTALLER), "__file__": str(INSTALLER / "studio_catalog.spec")}
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(head, "studio_catalog.spec", "exec"), ns)
    datas = ns["datas"]
    for s, _dest in datas:
        assert Path(s).exists(), s
    names = {Path(s).name for s, _d in datas}
    assert {"pose_detection.tflite", "pose_landmark_full.tflite", "selfie_segmentation.tflite",
            "u2netp.onnx", "manifest.json"} <= names
    assert ("weights" in {d for _s, d in datas}) and ("resources" in {d for _s, d in datas})
    # what the CPU build leaves out stays out
    for mod in ("pytest", "onnxruntime", "tkinter"):
        assert mod in ns["excludes"]


# ---- Linux desktop integration --------------------------------------------------------------------

def test_desktop_entry_is_valid():
    if shutil.which("desktop-file-validate"):
        res = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
        assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str
    cp.read(DESKTOP, encoding="utf-8")
    e = cp["Desktop Entry"]
    assert e["Type"] == "Application" and e["Name"] == "Studio Catalog"
    assert e["Terminal"] == "false"
    assert e["Icon"] == "studio-catalog"            # themed icon name, installed by install-linux.sh
    assert e["Exec"].split()[-1] in ("%F", "%U")    # photos can be opened with the app
    assert "image/jpeg" in e["MimeType"] and e["Categories"].endswith(";")


def test_install_linux_writes_a_valid_entry_pointing_at_the_bundle(tmp_path):
    """installer/install-linux.sh on a fake bundle: the entry's Exec is the installed executable,
    the icon lands in the hicolor theme, and the installed entry validates."""
    bundle = tmp_path / "dist" / "StudioCatalog"
    bundle.mkdir(parents=True)
    exe = bundle / "StudioCatalog"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(home / ".local/share")}
    res = subprocess.run(["bash", str(INSTALLER / "install-linux.sh"), str(bundle)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    installed = home / ".local/opt/StudioCatalog/StudioCatalog"
    assert installed.is_file()
    entry = home / ".local/share/applications/studio-catalog.desktop"
    text = entry.read_text()
    assert f"Exec=\"{installed}\" %F" in text or f"Exec={installed} %F" in text
    for size in (256, 512):
        assert (home / f".local/share/icons/hicolor/{size}x{size}/apps/studio-catalog.png").is_file()
    if shutil.which("desktop-file-validate"):
        v = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert v.returncode == 0 and not v.stdout.strip(), v.stdout
    # uninstall removes what it installed
    res = subprocess.run(["bash", str(INSTALLER / "install-linux.sh"), "--uninstall"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert not entry.exists() and not installed.exists()


def _png_size(p: Path) -> tuple[int, int]:
    data = p.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", p
    return struct.unpack(">II", data[16:24])


def test_icons_have_the_sizes_each_platform_needs():
    assert _png_size(ICONS / "studio-catalog.png") == (512, 512)
    assert _png_size(ICONS / "studio-catalog-256.png") == (256, 256)
    # Windows .ico: a directory of images; 16, 32, 48 and 256 px are what Explorer asks for
    ico = (ICONS / "studio-catalog.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 4
    sizes = set()
    for i in range(count):
        w, h = ico[6 + 16 * i], ico[7 + 16 * i]
        sizes.add((w or 256, h or 256))
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= sizes
    # macOS .icns: 'icns' magic, its length, and the 256, 512 and 1024 (512@2x) px entries
    icns = (ICONS / "studio-catalog.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    types, off = set(), 8
    while off < len(icns):
        t, n = icns[off:off + 4], struct.unpack(">I", icns[off + 4:off + 8])[0]
        types.add(t)
        assert n >= 8
        off += n
    assert {b"ic08", b"ic09", b"ic10"} <= types


# ---- launcher ---------------------------------------------------------------------------------------

def test_launcher_dispatch(monkeypatch, tmp_path):
    launcher = _load_launcher()
    monkeypatch.setenv("STUDIO_CATALOG_WEIGHTS", str(REPO / "weights"))
    monkeypatch.setenv("STUDIO_CATALOG_RESOURCES", str(RESOURCES))
    calls = []
    import studio_app.cli
    import studio_app.gui.app
    import studio_app.gui.selftest
    monkeypatch.setattr(studio_app.cli, "main", lambda argv: calls.append(("cli", argv)) or 0)
    monkeypatch.setattr(studio_app.gui.app, "main", lambda argv: calls.append(("gui", argv)) or 0)
    monkeypatch.setattr(studio_app.gui.selftest, "run_self_test",
                        lambda out, photo: calls.append(("selftest", out, photo)) or 0)
    for argv in (["process", "a.jpg", "--out", "x"], ["export", "r", "--preset", "amazon"],
                 ["models", "verify"], ["--version"], ["train", "yolact"], ["eval", "openpose"]):
        assert launcher.main(argv) == 0
        assert calls[-1] == ("cli", argv)
    assert launcher.main([]) == 0 and calls[-1] == ("gui", [])
    assert launcher.main(["photo.jpg"]) == 0 and calls[-1] == ("gui", ["photo.jpg"])      # "open with"
    assert launcher.main(["gui", "--hot-folder", "h"]) == 0 and calls[-1] == ("gui", ["--hot-folder", "h"])
    assert launcher.main(["--self-test", str(tmp_path)]) == 0
    kind, out, photo = calls[-1]
    assert kind == "selftest" and out == tmp_path and photo.name == "sample_mug.jpg" and photo.is_file()


def test_launcher_cli_subprocess_lists_models():
    require_weights("u2netp.onnx")
    res = subprocess.run([sys.executable, str(INSTALLER / "launcher.py"), "models", "list"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for mid in ("pose_detection", "pose_landmark_full", "selfie_segmentation", "u2netp"):
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(mid))
        assert " ok " in line and "Apache-2.0" in line
    res = subprocess.run([sys.executable, str(INSTALLER / "launcher.py"), "--version"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    from studio_app import __version__
    assert res.returncode == 0 and __version__ in res.stdout


# ---- the self-test from the source checkout -----------------------------------------------------------

@pytest.mark.gui
def test_self_test_from_source(tmp_path):
    """The same self-test the bundle runs: a real window, the sample mug through the worker,
    exported with the generic preset, a screenshot, timings. Runs in a child process (its own
    QApplication) under the display pytest has (Xvfb or offscreen)."""
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "selfie_segmentation.tflite", "u2netp.onnx")
    import os
    out = tmp_path / "st"
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
               OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "studio_app.gui.selftest", str(out),
                          str(RESOURCES / "samples" / "sample_mug.jpg"), "--device", "cpu"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    txt = (out / "selftest.txt").read_text()
    assert "self-test passed" in txt
    vals = dict(ln.split(": ", 1) for ln in txt.splitlines() if ": " in ln)
    assert float(vals["startup_to_window_s"]) > 0
    assert float(vals["first_photo_processed_s"]) >= float(vals["startup_to_window_s"])
    assert "product" in vals["photo"]
    catalog = out / "catalog"
    images = sorted(catalog.glob("*.jpg"))
    assert images, list(catalog.iterdir())
    import cv2
    img = cv2.imread(str(images[0]))
    h, w = img.shape[:2]
    assert h == w and h >= 500                            # generic preset: square, >= 500 px
    assert (img[:5, :5] >= 250).all() and (img[-5:, -5:] >= 250).all()   # pure white around the mug
    shot = cv2.imread(str(out / "selftest.png"))
    assert shot is not None and shot.shape[0] > 300 and shot.shape[1] > 500
    assert shot.std() > 10                               # a drawn window, not a blank grab
    # the user's own settings were not touched
    assert not (tmp_path / "home" / ".config" / "StudioCatalog").exists()


def test_self_test_fails_cleanly_on_a_bad_photo(tmp_path):
    from studio_app.gui.selftest import run_self_test
    bad = tmp_path / "missing.jpg"
    assert run_self_test(tmp_path / "out", bad) == 1
    assert "FAILED" in (tmp_path / "out" / "selftest.txt").read_text()


# ---- first run and Help > About (what the issue asks of the installed app) ----------------------------

@pytest.mark.gui
def test_first_run_choices_gpu_line_and_settings_location(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings
    from studio_app.gui.first_run import FirstRunDialog, gpu_text
    hot = tmp_path / "tether"
    hot.mkdir()
    dlg = FirstRunDialog(hot=str(hot), out=str(tmp_path / "results"), preset="amazon")
    qtbot.addWidget(dlg)
    import torch
    line = dlg.gpu.text()
    assert line == gpu_text()
    assert line.startswith("GPU found") == torch.cuda.is_available()
    assert torch.cuda.is_available() or "CPU" in line
    presets = [dlg.preset.itemData(i) for i in range(dlg.preset.count())]
    assert {"generic", "amazon", "shopify"} <= set(presets)
    assert dlg.values() == (str(hot), str(tmp_path / "results"), "amazon")
    # the app's settings (QSettings, native format) live in the platform's config folder
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    from studio_app.gui.app import make_app
    make_app([])
    if sys.platform.startswith("linux"):
        QSettings.setPath(QSettings.NativeFormat, QSettings.UserScope, str(tmp_path / "cfg"))
        s = QSettings()
        assert Path(s.fileName()) == tmp_path / "cfg" / "StudioCatalog" / "Studio Catalog.conf"


@pytest.mark.gui
def test_about_lists_version_device_and_every_model(qtbot, tmp_path):
    from gui_helpers import FakeProcessor
    from PySide6.QtCore import QSettings
    from studio_app import __version__
    from studio_app.gui.main_window import MainWindow
    from ml.weights import status
    w = MainWindow(tmp_path / "out", processor=FakeProcessor(),
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.device_text != "loading models…", timeout=10000)
    try:
        text = w.about_text()
        assert f"Studio Catalog {__version__}" in text
        assert f"Models run on: {w.device_text}" in text
        for r in status():
            assert r["id"] in text and r["licence"].replace("&", "&amp;")[:10] in text and r["source"] in text
        # the About entry is in the Help menu
        help_menu = next(a.menu() for a in w.menuBar().actions() if a.text().replace("&", "") == "Help")
        assert any("About" in a.text() for a in help_menu.actions())
    finally:
        w.shutdown()
