"""Processing and exporting on a real Ray instance (``--cluster local``, 2 workers), against a local run.

One Ray instance and one pool of 2 model-holding workers are shared by the module (this machine has
2 cores); the export test adds 2 model-less render workers. Skipped where Ray is not installed (it is
the optional extra ``studio-catalog[cluster]``; the test extra pulls it in for CI)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import dev_file, require_weights
from studio_app import cli

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install -e '.[cluster]')")
PHOTOS = ["persons/ccp/photos/0002.jpg", "persons/ccp/photos/0009.jpg",
          "cutouts/shop_saleor/images/saleor__saleor-white-plimsolls-1.jpg"]
TIMING = ("timings",)


def test_no_ray_at_import():
    """The app, the CLI and the cluster package import without loading Ray (the default install)."""
    code = ("import sys, studio_app.cli, studio_app.cluster, studio_app.cluster.processor, "
            "studio_app.cluster.export, studio_app.core.studio; print('ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_cluster_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    import studio_app.cluster as cluster
    monkeypatch.setattr(cluster, "ray_available", lambda: False)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"not read")
    rc = cli.main(["process", str(photo), "--out", str(tmp_path / "out"), "--cluster", "local"])
    err = capsys.readouterr().err
    assert rc == 2
    assert 'pip install "studio-catalog[cluster]"' in err and "Traceback" not in err
    rc = cli.main(["export", str(tmp_path), "--preset", "amazon", "--out", str(tmp_path / "cat"), "--cluster", "local"])
    assert rc == 2 and 'pip install "studio-catalog[cluster]"' in capsys.readouterr().err


def test_disabled_token_auth_is_refused(monkeypatch):
    from studio_app.cluster import ClusterError
    from studio_app.cluster.connect import connect
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(ClusterError, match="token authentication"):
        connect("local", 2)


@needs_ray
def test_unreachable_cluster_is_one_line_and_quick(tmp_path, capsys):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"not read")
    t = time.monotonic()
    rc = cli.main(["process", str(photo), "--out", str(tmp_path / "out"), "--cluster", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - t < 60
    assert "error: cannot reach the cluster at 127.0.0.1:1" in err and "Traceback" not in err


# ---- real Ray -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance (127.0.0.1, no dashboard) with room for 4 single-CPU workers: the
    processing pool of 2 below and the export's 2 render workers."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed")
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")
    from studio_app.cluster.connect import connect
    from studio_app.cluster.processor import ClusterProcessor
    from studio_app.core.processor import ProcessorSpec
    conn = connect("local", 4)
    assert conn.started_here
    proc = ClusterProcessor("local", workers=2, spec=ProcessorSpec(device="cpu"), connection=conn)
    proc.pool.wait_ready(600)
    yield proc
    proc.close()


def _photos(dst: Path, names=PHOTOS) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for rel in names:
        src = dev_file(rel)
        out.append(Path(shutil.copy(src, dst / src.name)))
    return out


def _run(processor, photos: list[Path], out: Path, on_finished=None) -> dict:
    """Photos through a Studio with ``processor``: {photo name: [outcomes]} (each finished photo)."""
    from studio_app.core.session import Session
    from studio_app.core.studio import Studio
    studio = Studio(out, processor, session=Session(out, autosave=False))
    finished: dict = {}
    lock = threading.Lock()

    def done(ev):
        with lock:
            finished.setdefault(Path(ev.photo).name, []).append(ev.outcome)
        if on_finished:
            on_finished(ev)
    studio.events.job_finished.connect(done)
    for p in photos:
        studio.enqueue(p)
    studio.start()
    assert studio.wait_idle(900)
    studio.processor = None           # the shared processor is closed by its fixture, not here
    studio.close()
    return finished


def _doc(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def _image(path: Path) -> np.ndarray:
    import cv2
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@needs_ray
def test_cluster_documents_equal_a_local_run(cluster, cpu_processor, tmp_path):
    photos = _photos(tmp_path / "shoot")
    remote = _run(cluster, photos, tmp_path / "cluster")
    local = _run(cpu_processor, photos, tmp_path / "local")
    assert sorted(remote) == sorted(p.name for p in photos)
    for p in photos:
        (r,), (loc,) = remote[p.name], local[p.name]
        assert r.ok and loc.ok, (r.error, loc.error)
        assert r.folder.name == loc.folder.name and r.folder.parent == tmp_path / "cluster"
        a, b = _doc(r.folder), _doc(loc.folder)
        assert a["kind"] == b["kind"]
        for ka, kb in zip(a["keypoints"], b["keypoints"], strict=True):
            assert ka["name"] == kb["name"]
            assert abs(ka["x"] - kb["x"]) <= 0.5 and abs(ka["y"] - kb["y"]) <= 0.5, (p.name, ka, kb)
        rest = lambda d: {k: v for k, v in d.items() if k not in ("keypoints",) + TIMING}  # noqa: E731
        assert rest(a) == rest(b), p.name
        files = sorted(f.name for f in r.folder.iterdir())
        assert files == sorted(f.name for f in loc.folder.iterdir())
        for name in files:
            if name.endswith((".png", ".jpg")):
                assert np.array_equal(_image(r.folder / name), _image(loc.folder / name)), (p.name, name)


@needs_ray
def test_killed_worker_loses_no_photo(cluster, tmp_path):
    """A worker SIGKILLed mid-run: its photo is retried on another worker; every photo is done once."""
    src = _photos(tmp_path / "src", PHOTOS[:2])
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    photos = [Path(shutil.copy(src[i % 2], shoot / f"look{i}.jpg")) for i in range(6)]
    pids = cluster.pool.worker_pids()
    killed = []

    def kill_once(ev):
        if not killed:
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)
    before = cluster.pool.replaced
    finished = _run(cluster, photos, tmp_path / "out", on_finished=kill_once)
    assert killed and cluster.pool.replaced > before
    assert sorted(finished) == sorted(p.name for p in photos)
    for name, outcomes in finished.items():
        assert len(outcomes) == 1 and outcomes[0].ok, (name, [o.error for o in outcomes])
    folders = sorted(d.name for d in (tmp_path / "out").iterdir() if d.is_dir())
    assert folders == sorted(p.stem for p in photos)          # no second folder for a retried photo
    from ml.atomic import TMP_PREFIX
    assert not list((tmp_path / "out").rglob(TMP_PREFIX + "*"))      # nothing half-written left behind


@needs_ray
def test_corrupt_photo_reported_by_name_on_the_command_line(cluster, tmp_path, capsys):
    shoot = tmp_path / "shoot"
    _photos(shoot, PHOTOS[:1])
    (shoot / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    rc = cli.main(["process", str(shoot), "--out", str(tmp_path / "out"), "--cluster", "local",
                   "--workers", "2", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1, err
    fails = [ln for ln in err.splitlines() if " FAIL " in ln]
    assert len(fails) == 1 and "broken.jpg" in fails[0], err
    assert "1 of 2 photos done" in err and "Ray cluster at 127.0.0.1: 2 CPU workers" in err


@needs_ray
def test_cluster_export_is_byte_identical(cluster, tmp_path, capsys):
    photos = _photos(tmp_path / "shoot")
    results = tmp_path / "results"
    finished = _run(cluster, photos, results)
    assert all(o.ok for (o,) in finished.values())
    rc_local = cli.main(["export", str(results), "--preset", "google_merchant", "--all", "--out", str(tmp_path / "a")])
    rc_cluster = cli.main(["export", str(results), "--preset", "google_merchant", "--all", "--out", str(tmp_path / "b"),
                           "--cluster", "local", "--workers", "2"])
    err = capsys.readouterr().err
    assert rc_local == rc_cluster == 0, err      # google_merchant: small dev photos may be enlarged
    images = sorted(f.name for f in (tmp_path / "a").iterdir() if f.suffix in (".jpg", ".png"))
    assert len(images) >= len(photos)
    assert images == sorted(f.name for f in (tmp_path / "b").iterdir() if f.suffix in (".jpg", ".png"))
    for name in images:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "rendering on Ray cluster" in err
