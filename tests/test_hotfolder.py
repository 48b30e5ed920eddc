"""Hot-folder completion logic: stability, temp/sidecar names, RAW+JPEG pairs, pause/resume."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from studio_app.core.hotfolder import HotFolder, StabilityTracker, is_ignored

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 2000 + b"\xff\xd9"


@pytest.mark.parametrize("name", ["IMG_1.jpg.part", "IMG_1.tmp", "a.crdownload", ".hidden.jpg",
                                  "~lock.jpg", "IMG_1.jpg~", "IMG_1.xmp", "IMG_1.THM", "notes.txt",
                                  "._IMG_1.jpg", "IMG_1.CR3.partial"])
def test_ignored_names(name):
    assert is_ignored(name)


@pytest.mark.parametrize("name", ["IMG_1.jpg", "IMG_1.JPEG", "shot.png", "IMG_1.CR3", "x.nef", "a.tif"])
def test_photo_names(name):
    assert not is_ignored(name)


def test_tracker_waits_for_stable_size(tmp_path):
    t = StabilityTracker(stable_seconds=1.0, pair_window=3.0)
    p = tmp_path / "a.jpg"
    p.write_bytes(JPEG[:1000])
    t.touch(p, 0.0)
    assert t.poll(0.0) == []
    assert t.poll(0.5) == []
    with open(p, "ab") as f:          # still growing
        f.write(JPEG[1000:])
    os.utime(p, (time.time() + 5, time.time() + 5))
    assert t.poll(0.9) == []
    assert t.poll(1.5) == []           # changed at 0.9: not yet stable
    assert t.poll(2.0) == [(p, None)]
    t.touch(p, 2.1)                    # a late modify event for the same content
    assert t.poll(5.0) == []           # handed over exactly once


def test_tracker_truncated_jpeg_waits_longer_then_releases(tmp_path):
    t = StabilityTracker(stable_seconds=1.0)
    p = tmp_path / "a.jpg"
    p.write_bytes(JPEG[:500])          # no end marker
    t.touch(p, 0.0)
    t.poll(0.0)
    assert t.poll(1.5) == []
    assert t.poll(5.5) == [(p, None)]  # released anyway so the error shows in the list


def test_tracker_raw_then_jpeg_pair_once(tmp_path):
    t = StabilityTracker(stable_seconds=0.5, pair_window=3.0)
    raw, jpg = tmp_path / "IMG_7.CR3", tmp_path / "IMG_7.JPG"
    raw.write_bytes(b"raw" * 1000)
    t.touch(raw, 0.0)
    t.poll(0.0)
    assert t.poll(1.0) == []           # RAW complete, waiting for its JPEG
    jpg.write_bytes(JPEG)
    t.touch(jpg, 1.5)
    t.poll(1.5)
    assert t.poll(2.1) == [(jpg, raw)]
    assert t.poll(10.0) == []


def test_tracker_raw_alone_after_window(tmp_path):
    t = StabilityTracker(stable_seconds=0.5, pair_window=2.0)
    raw = tmp_path / "IMG_8.NEF"
    raw.write_bytes(b"raw" * 1000)
    t.touch(raw, 0.0)
    t.poll(0.0)
    assert t.poll(1.0) == []
    assert t.poll(2.6) == []           # complete at 1.0, pair window 2 s
    assert t.poll(3.1) == [(raw, None)]


def test_tracker_jpeg_then_late_raw_is_attached(tmp_path):
    t = StabilityTracker(stable_seconds=0.5, pair_window=3.0)
    raw, jpg = tmp_path / "IMG_9.dng", tmp_path / "IMG_9.jpg"
    jpg.write_bytes(JPEG)
    t.touch(jpg, 0.0)
    t.poll(0.0)
    assert t.poll(0.6) == [(jpg, None)]
    raw.write_bytes(b"raw" * 1000)
    t.touch(raw, 1.0)
    t.poll(1.0)
    assert t.poll(1.6) == []
    assert t.take_late_pairs() == [(jpg, raw)]
    assert t.poll(10.0) == []


def test_tracker_pause_holds_then_releases(tmp_path):
    t = StabilityTracker(stable_seconds=0.5)
    p = tmp_path / "b.png"
    p.write_bytes(b"png" * 100)
    t.paused = True
    t.touch(p, 0.0)
    t.poll(0.0)
    assert t.poll(2.0) == []
    t.paused = False
    assert t.poll(2.1) == [(p, None)]


def test_hotfolder_live_slow_write_rename_and_pair(tmp_path):
    got: list = []
    lock = threading.Lock()

    def ready(photo, pair):
        with lock:
            got.append((photo.name, pair.name if pair else None))

    hf = HotFolder(tmp_path, ready, stable_seconds=0.6, pair_window=1.0, poll_interval=0.05)
    hf.start()
    try:
        # slow write in place, one handle, pauses between chunks
        with open(tmp_path / "slow.jpg", "wb") as f:
            for i in range(4):
                f.write(JPEG[i * 500:(i + 1) * 500])
                f.flush()
                time.sleep(0.25)
            f.write(JPEG[2000:])
        # tmp name then rename
        (tmp_path / "renamed.jpg.part").write_bytes(JPEG)
        time.sleep(0.2)
        os.replace(tmp_path / "renamed.jpg.part", tmp_path / "renamed.jpg")
        # RAW + JPEG of one shot, and ignored files
        (tmp_path / "IMG_2.CR3").write_bytes(b"raw" * 3000)
        (tmp_path / "IMG_2.xmp").write_text("<x/>")
        (tmp_path / ".DS_Store").write_bytes(b"x")
        time.sleep(0.3)
        (tmp_path / "IMG_2.JPG").write_bytes(JPEG)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and len(got) < 3:
            time.sleep(0.05)
        time.sleep(1.5)               # nothing more may arrive
    finally:
        hf.stop()
    assert sorted(got) == [("IMG_2.JPG", "IMG_2.CR3"), ("renamed.jpg", None), ("slow.jpg", None)]


def test_hotfolder_existing_files_and_pause(tmp_path):
    (tmp_path / "old.jpg").write_bytes(JPEG)
    got = []
    hf = HotFolder(tmp_path, lambda p, r: got.append(p.name), stable_seconds=0.3, poll_interval=0.05)
    hf.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not got:
            time.sleep(0.05)
        assert got == ["old.jpg"]
        hf.pause()
        (tmp_path / "new.jpg").write_bytes(JPEG)
        time.sleep(1.0)
        assert got == ["old.jpg"]
        hf.resume()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(got) < 2:
            time.sleep(0.05)
        assert got == ["old.jpg", "new.jpg"]
    finally:
        hf.stop()
