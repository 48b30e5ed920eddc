"""`studio-catalog process` drives the Studio: the same lines, exit codes and Ctrl+C behaviour as
before, checked quickly with the fake processor (the real one: test_reliability_*, test_pipeline_e2e)."""
from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest

from studio_app import cli
from studio_fakes import FakeProcessor, write_photo


class CliFake(FakeProcessor):
    instances: list = []

    def __init__(self, device="auto", pose_engine="blazepose", seg_engine="u2netp", **kw):
        super().__init__(**kw)
        self.pipeline = SimpleNamespace(warm_up=lambda: None)
        self.interrupt_at = None
        CliFake.instances.append(self)

    def process(self, photo, out_root, **kw):
        if self.interrupt_at is not None and len(self.order) == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)         # the operator presses Ctrl+C during this photo
            t = time.monotonic() + 10                   # (the main thread handles it when it next runs)
            while not kw["cancel"]() and time.monotonic() < t:
                time.sleep(0.01)
        return super().process(photo, out_root, **kw)


@pytest.fixture
def fake(monkeypatch):
    CliFake.instances.clear()
    monkeypatch.setattr("studio_app.core.processing.Processor", CliFake)
    monkeypatch.setattr("ml.device.configure_cpu_threads", lambda n=None: None)
    return CliFake


def test_lines_summary_and_exit_code(tmp_path, fake, capsys):
    d = tmp_path / "shoot"
    for i in range(2):
        write_photo(d / f"a{i}.jpg", seed=i)
    write_photo(d / "bad.jpg")
    out = tmp_path / "out"
    rc = cli.main(["process", str(d), "--out", str(out)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert rc == 1
    assert lines[0] == f"[1/3] ok    {d / 'a0.jpg'}: person [top,full]"
    assert lines[1] == f"[2/3] ok    {d / 'a1.jpg'}: person [top,full]"
    assert lines[2].startswith("[3/3] FAIL  Cannot load 'bad.jpg'")
    assert "2 of 3 photos done in" in err and "(0 need review, 1 failed)" in err
    assert not (out / "session.json").exists()
    rc = cli.main(["process", str(d / "a0.jpg"), "--out", str(out), "--skip-existing"])
    err = capsys.readouterr().err
    assert rc == 0 and f"[1/1] ok    {d / 'a0.jpg'}: up to date" in err, err


def test_ctrl_c_stops_after_the_current_photo(tmp_path, fake, capsys, monkeypatch):
    d = tmp_path / "shoot"
    for i in range(4):
        write_photo(d / f"p{i}.jpg", seed=i)
    orig = CliFake.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)
        self.interrupt_at = 1                              # during the second photo
    monkeypatch.setattr(CliFake, "__init__", init)
    rc = cli.main(["process", str(d), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 130, err
    assert "cancelled after 1 of 4 photos; finished results are kept" in err
    assert (tmp_path / "out" / "p0" / "result.json").exists()
    assert not (tmp_path / "out" / "p2").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored
