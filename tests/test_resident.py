"""Models kept loaded after the app closes (Settings › Keep models loaded after closing): the next
launch adopts the waiting models process instead of loading everything again; it serves that
launch like its own child (results, progress, cancel); strangers, other weights and dead processes
are never adopted; it goes away by itself. Tiny untrained engines, as in test_isolated.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gui_helpers import jpeg_bytes
from helpers_proc import assert_cancels_and_reports_bad_photos
from studio_app.core import resident
from studio_app.core.isolated import IsolatedProcessor

pytestmark = pytest.mark.skipif(os.name != "posix", reason="checks processes with POSIX signals")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tiny_weights(tiny_engines):
    return tiny_engines


@pytest.fixture()
def runtime(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("STUDIO_CATALOG_RUNTIME", str(d))
    return d


def _opts(weights) -> dict:
    return dict(device="cpu", weights_dir=str(weights), pose_engine="op_tiny.pth",
                seg_engine="shop_yolact.pth", cpu_threads=1)


def _first_run(weights, keep_s: float, photo: Path, out: Path) -> dict:
    """An app run in a process of its own: process one photo, close as the app does, exit."""
    code = textwrap.dedent(f"""
        import json, sys
        from studio_app.core.isolated import IsolatedProcessor
        p = IsolatedProcessor(keep_loaded_s={keep_s!r}, **{_opts(weights)!r})
        o = p.process({str(photo)!r}, {str(out)!r}, force_kind="person")
        pid = p.pid
        kept = p.close_for_exit()
        print(json.dumps({{"ok": o.ok, "pid": pid, "kept": kept}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _wait_gone(pid: int, seconds: float = 15) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _port_closed(port: int, seconds: float = 15) -> bool:
    """The kernel closes a killed process's listening socket once its last thread has exited,
    which may be a moment after the process shows as gone."""
    import socket
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_next_launch_adopts_the_models_kept_loaded(tmp_path, tiny_weights, runtime):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(160, 120))
    first = _first_run(tiny_weights, 120.0, photo, tmp_path / "out1")
    assert first["ok"] and first["kept"]
    pid = first["pid"]
    try:
        assert _alive(pid), "the models process stopped with its app"
        key = resident.key_for(_opts(tiny_weights))
        assert (runtime / f"models-{key}.json").is_file()

        # a stranger without the user's secret gets nothing and does not use it up
        from multiprocessing.connection import Client
        port = json.loads((runtime / f"models-{key}.json").read_text())["port"]
        with pytest.raises(Exception):
            Client(("127.0.0.1", port), authkey=b"x" * 32)

        # other weights: another key, never this process
        assert resident.key_for({**_opts(tiny_weights), "seg_engine": "u2netp"}) != key

        t0 = time.monotonic()
        proc = IsolatedProcessor(keep_loaded_s=120.0, **_opts(tiny_weights))
        adopt_s = time.monotonic() - t0
        try:
            assert proc.adopted_resident and proc.pid == pid
            assert adopt_s < 2.0, f"adopting took {adopt_s:.2f} s"
            assert proc.describe().startswith("CPU") and proc.engines["pose"] == "op_tiny.pth"
            assert not (runtime / f"models-{key}.json").exists()   # taken: nobody else adopts it
            stages = []
            out = proc.process(photo, tmp_path / "out2", force_kind="person",
                               progress=lambda s, f: stages.append(s))
            assert out.ok, out.error
            doc = json.loads((out.folder / "result.json").read_text())
            assert doc["kind"] == "person" and doc["engines"]["pose"] == "op_tiny.pth"
            assert stages[0] == "load" and stages[-1] == "done"
            # cancel crosses the socket; a bad photo is an outcome, the process lives on
            assert_cancels_and_reports_bad_photos(proc, photo, tmp_path / "out2", tmp_path / "out3")
        finally:
            proc.close()                 # keep = off at this close: it stops
        assert _wait_gone(pid), "the adopted process did not stop when asked"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_kept_models_expire_and_dead_ones_are_not_adopted(tmp_path, tiny_weights, runtime):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(160, 120))
    key = resident.key_for(_opts(tiny_weights))
    ep = runtime / f"models-{key}.json"

    first = _first_run(tiny_weights, 2.0, photo, tmp_path / "out1")   # kept two seconds only
    assert first["kept"]
    assert _wait_gone(first["pid"], 20), "a kept models process outlived its time"
    assert not ep.exists()

    first = _first_run(tiny_weights, 120.0, photo, tmp_path / "out1")
    pid = first["pid"]
    os.kill(pid, signal.SIGKILL)                    # killed while waiting: its file stays behind
    assert _wait_gone(pid) and ep.exists()
    assert _port_closed(json.loads(ep.read_text())["port"])
    proc = IsolatedProcessor(keep_loaded_s=120.0, **_opts(tiny_weights))
    try:
        assert not proc.adopted_resident and proc.pid != pid
        assert not ep.exists()                      # the stale endpoint was cleared
        assert proc.process(photo, tmp_path / "out2", force_kind="product").ok
    finally:
        assert proc.close_for_exit() is True       # and this one waits in turn...
    try:
        assert ep.exists()
        again = IsolatedProcessor(keep_loaded_s=0.0, **_opts(tiny_weights))   # setting off:
        assert not again.adopted_resident           # ...but a launch with the setting off does not look
        again.close_for_exit()                      # and stops its own child at exit
        assert not again.alive
    finally:
        kept = json.loads(ep.read_text())["pid"]
        os.kill(kept, signal.SIGKILL)
        _wait_gone(kept)


def test_without_keep_loaded_the_models_stop_with_the_app(tmp_path, tiny_weights, runtime):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(160, 120))
    first = _first_run(tiny_weights, 0.0, photo, tmp_path / "out1")
    assert first["ok"] and not first["kept"]
    assert _wait_gone(first["pid"])
    assert not list(runtime.glob("models-*.json")) if runtime.exists() else True


def test_endpoint_rules_without_models(tmp_path, runtime):
    """No endpoint: nothing to adopt (no network touched). One waiting process per key: a second
    one does not listen. A garbage or stale endpoint file is never adopted. The runtime folder and
    the secret are private to the user."""
    assert resident.connect("k1") is None
    first = resident.listen("k1")
    try:
        assert first is not None and (runtime / "models-k1.json").is_file()
        assert resident.listen("k1") is None                  # somebody already waits for k1
        assert oct(runtime.stat().st_mode & 0o777) == "0o700"
        assert oct((runtime / "models.key").stat().st_mode & 0o777) == "0o600"
        assert len((runtime / "models.key").read_bytes()) == 32
    finally:
        first.close()
    assert not (runtime / "models-k1.json").exists()          # closing removes its file
    (runtime / "models-k2.json").write_text("{not json")
    assert resident.connect("k2") is None
    (runtime / "models-k3.json").write_text(json.dumps({"port": _free_port(), "pid": 1}))
    assert resident.connect("k3") is None and not (runtime / "models-k3.json").exists()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
