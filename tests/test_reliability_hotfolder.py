"""Reliability, hot folder under load: four writer threads drop photos into a watched folder in
every way studios do (slow chunked writes on one handle, reopen-and-append, NAME.part then rename,
hidden .NAME.tmp then rename, one-go copies) while ``studio_app.core.hotfolder.HotFolder`` watches
it with the desktop app's settings. Every photo is handed over exactly once, never half-written
(its bytes at hand-over are the final bytes), and temporary names never.

The 500-photo version is ``bench/bench_reliability.py``; this test uses 100."""
from __future__ import annotations

from collections import Counter

import pytest

from studio_app.core.hotfolder import TEMP_SUFFIXES
from tests.conftest import dev_file
from tests.helpers_proc import WRITE_MODES, hotfolder_load, make_photo_set


def _check(r: dict, n: int) -> None:
    assert r["errors"] == []
    names = Counter(h[0] for h in r["handed"])
    dup = [k for k, v in names.items() if v > 1]
    assert dup == [], f"handed over more than once: {dup[:10]}"
    assert not [k for k in names if k.startswith(".") or k.lower().endswith(TEMP_SUFFIXES)], \
        "a temporary name was handed over"
    missing = sorted(set(r["final"]) - set(names))
    assert missing == [], f"never handed over: {missing[:10]} ({[r['modes'][m] for m in missing[:10]]})"
    assert set(names) == set(r["final"]) and len(r["handed"]) == n
    half = [(name, r["modes"][name], size) for name, digest, size in r["handed"] if digest != r["final"][name]]
    assert half == [], f"handed over before it was complete: {half[:10]}"
    assert r["leftovers"] == []


@pytest.mark.parametrize("use_polling", [False, True], ids=["inotify", "polling"])
def test_hot_folder_four_writers_100_photos(tmp_path, dev_data, use_polling):
    photos = make_photo_set(dev_file("products/magento_luma/mb02-blue-0.jpg"), 100 if not use_polling else 40,
                            seed=1 + use_polling)
    assert len({d for _, d in photos}) == len(photos)
    r = hotfolder_load(tmp_path / "hot", photos, writers=4, seed=7, use_polling=use_polling)
    _check(r, len(photos))
    assert set(r["modes"].values()) == set(WRITE_MODES)
    assert r["seconds_last_handover"] < 15, "photos waited far longer than the stability window"
