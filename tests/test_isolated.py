"""The processor in a child process (the GUI's default): same results as in-process, progress
and cancel cross the process boundary, a dead child is replaced for the next photo. Uses tiny
untrained OpenPose / YOLACT engines in a temp weights folder, so no downloaded weights are needed."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from gui_helpers import jpeg_bytes
from helpers_proc import assert_cancels_and_reports_bad_photos
from studio_app.core.isolated import ChildFailed, IsolatedProcessor


@pytest.fixture()
def tiny_weights(tiny_engines):
    return tiny_engines


def test_child_process_processes_cancels_and_recovers(tmp_path, tiny_weights):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(160, 120))
    proc = IsolatedProcessor(device="cpu", weights_dir=tiny_weights, pose_engine="op_tiny.pth",
                             seg_engine="shop_yolact.pth", cpu_threads=1)
    try:
        assert proc.alive and proc.pid != os.getpid()
        assert proc.describe().startswith("CPU")
        assert proc.engines["pose"] == "op_tiny.pth"
        stages = []
        out = proc.process(photo, tmp_path / "out", force_kind="person", progress=lambda s, f: stages.append((s, f)))
        assert out.ok, out.error
        doc = json.loads((out.folder / "result.json").read_text())
        assert doc["engines"]["pose"] == "op_tiny.pth" and doc["engines"]["segmentation"] == "shop_yolact.pth"
        assert doc["kind"] == "person" and len(doc["keypoints"]) == 23
        assert out.doc.kind == "person"
        assert stages[0][0] == "load" and stages[-1] == ("done", 1.0)

        # cancel: the child stops at the next stage boundary and says so; a bad photo is an
        # outcome with a message, not a crash of the child
        assert_cancels_and_reports_bad_photos(proc, photo, tmp_path / "out", tmp_path / "out2")

        # the child is killed (out of memory, crash in a native library): the next photo gets a new one
        old = proc.pid
        os.kill(old, signal.SIGKILL)
        t0 = time.monotonic()
        while proc.alive and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        out = proc.process(photo, tmp_path / "out3")
        assert out.ok and proc.pid != old
    finally:
        proc.close()
    assert not proc.alive


def test_engine_that_cannot_load_is_reported(tmp_path):
    with pytest.raises(ChildFailed, match="no_such.pth"):
        IsolatedProcessor(device="cpu", weights_dir=tmp_path, pose_engine="no_such.pth", seg_engine="u2netp")


def test_a_prestart_for_other_engines_stops_the_early_child(tmp_path, tiny_weights):
    """`studio-catalog gui` starts a child with the default engines before it reads Settings; when
    Settings name other engines the app prestarts those, and the early child must not linger
    (a second process holding the models)."""
    import dataclasses

    from studio_app.core import isolated
    from studio_app.core.processor import ProcessorSpec
    early = ProcessorSpec(device="cpu", weights_dir=str(tiny_weights), pose_engine="op_tiny.pth",
                          seg_engine="u2netp", isolated=True, cpu_threads=1)
    early.prestart()
    first = next(iter(isolated._PRESTARTED.values()))
    pid = first.pid
    chosen = dataclasses.replace(early, seg_engine="shop_yolact.pth")
    chosen.prestart()
    try:
        assert len(isolated._PRESTARTED) == 1 and first.pid is None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if open(f"/proc/{pid}/stat").read().split()[2] == "Z":    # exited, not yet reaped
                break
            time.sleep(0.05)
        else:
            pytest.fail("the early child is still running")
        proc = chosen.build()
        try:
            assert proc.engines.get("segmentation") == "shop_yolact.pth"
        finally:
            proc.close()
    finally:
        for p in list(isolated._PRESTARTED.values()):
            p.discard()
        isolated._PRESTARTED.clear()


def test_prestarted_child_is_adopted_by_the_first_build(tmp_path, tiny_weights):
    """The app starts the models' child at launch (ProcessorSpec.prestart) so it loads while the
    window is built; the Studio's build() then takes that very child instead of starting another."""
    from studio_app.core import isolated
    from studio_app.core.processor import ProcessorSpec
    spec = ProcessorSpec(device="cpu", weights_dir=str(tiny_weights), pose_engine="op_tiny.pth",
                         seg_engine="shop_yolact.pth", isolated=True, cpu_threads=1)
    spec.prestart()
    spec.prestart()                                  # a second call starts nothing more
    assert len(isolated._PRESTARTED) == 1
    early_pid = next(iter(isolated._PRESTARTED.values())).pid
    proc = spec.build()
    try:
        assert proc.pid == early_pid and not isolated._PRESTARTED
        photo = tmp_path / "a.jpg"
        photo.write_bytes(jpeg_bytes(160, 120))
        out = proc.process(photo, tmp_path / "out", force_kind="product")
        assert out.ok, out.error
        other = spec.build()                         # nothing left to adopt: a child of its own
        try:
            assert other.pid not in (None, early_pid)
        finally:
            other.close()
    finally:
        proc.close()
