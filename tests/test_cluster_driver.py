"""The cluster's driver side without Ray: the Studio keeps a processor's ``slots`` photos in flight
and cancels them all; the worker pool retries a photo whose worker died once on another worker and
reports it by name after a second death; a result folder leading outside the output folder is
refused. (Real Ray: test_cluster.py.)"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio_app.cluster.pool import WorkerLost, WorkerPool
from studio_app.core.result import DocumentError
from studio_app.core.result_folder import ResultFolder
from studio_app.core.session import Session
from studio_app.core.studio import Studio
from studio_fakes import FakeProcessor, write_photo


class Lanes(FakeProcessor):
    """Records how many photos are processed at the same time."""
    slots = 2

    def __init__(self, **kw):
        super().__init__(**kw)
        self.lock = threading.Lock()
        self.now = self.most = 0

    def process(self, photo, out_root, **kw):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return super().process(photo, out_root, **kw)
        finally:
            with self.lock:
                self.now -= 1


def _studio(tmp_path, proc) -> Studio:
    out = tmp_path / "out"
    return Studio(out, proc, session=Session(out, autosave=False))


def test_studio_keeps_slots_photos_in_flight(tmp_path):
    proc = Lanes(delay=0.2)
    studio = _studio(tmp_path, proc)
    done = []
    studio.events.job_finished.connect(lambda ev: done.append(Path(ev.photo).name))
    for i in range(5):
        studio.enqueue(write_photo(tmp_path / "in" / f"p{i}.jpg", seed=i))
    studio.start()
    assert studio.wait_idle(30)
    studio.close()
    assert proc.most == 2
    assert sorted(done) == [f"p{i}.jpg" for i in range(5)]
    assert sorted(d.name for d in (tmp_path / "out").iterdir() if d.is_dir()) == [f"p{i}" for i in range(5)]


def test_cancel_stops_every_photo_in_flight(tmp_path):
    gate = threading.Event()
    proc = Lanes(gate=gate)
    studio = _studio(tmp_path, proc)
    for i in range(4):
        studio.enqueue(write_photo(tmp_path / "in" / f"p{i}.jpg", seed=i))
    studio.start()
    t = time.monotonic() + 10
    while proc.now < 2 and time.monotonic() < t:
        time.sleep(0.01)
    assert proc.now == 2
    studio.cancel()
    assert studio.wait_idle(10)
    states = {Path(e.photo).name: e.status for e in studio.entries()}
    studio.close()
    assert set(states.values()) == {"cancelled"}, states
    assert len(proc.order) == 2          # the queued photos never started


# ---- the pool's retry, with a stand-in for Ray ------------------------------------------------------
class ActorDied(Exception):
    pass


class FakeRef:
    def __init__(self, value):
        self.value = value


class FakeActor:
    def __init__(self, name, dies):
        self.name, self.dies = name, dies
        self.process = SimpleNamespace(remote=self._call)

    def _call(self, photo, *args):
        return FakeRef(ActorDied() if self.name in self.dies else {"photo": photo, "by": self.name})


def _pool(dies: set[str]) -> WorkerPool:
    pool = WorkerPool.__new__(WorkerPool)
    pool.ray = SimpleNamespace(
        exceptions=SimpleNamespace(RayActorError=ActorDied, ActorUnavailableError=ActorDied),
        wait=lambda refs, timeout: (refs, []), get=_get, kill=lambda actor, no_restart: None)
    names = iter(f"w{i}" for i in range(100))
    pool._new_actor = lambda: FakeActor(next(names), dies)
    import queue
    pool._free, pool._lock, pool._actors, pool.replaced, pool.size = queue.Queue(), threading.Lock(), [], 0, 2
    for _ in range(2):
        pool._free.put(pool._new_actor())
    return pool


def _get(ref):
    if isinstance(ref.value, Exception):
        raise ref.value
    return ref.value


def test_a_dead_worker_photo_is_retried_once_on_another_worker():
    pool = _pool(dies={"w0"})
    assert pool.call("process", "/shoot/a.jpg") == {"photo": "/shoot/a.jpg", "by": "w1"}
    assert pool.replaced == 1 and pool._free.qsize() == 2        # w0 was replaced, the pool is whole


def test_a_photo_that_kills_two_workers_is_reported_by_name(tmp_path):
    from studio_app.cluster.processor import ClusterProcessor
    pool = _pool(dies={"w0", "w1", "w2", "w3"})
    with pytest.raises(WorkerLost):
        pool.call("process", "/shoot/a.jpg")
    proc = ClusterProcessor.__new__(ClusterProcessor)
    proc.pool = _pool(dies={"w0", "w1"})
    photo = tmp_path / "crasher.jpg"
    outcome = proc.process(photo, tmp_path / "out")
    assert not outcome.ok and outcome.error.startswith("crasher.jpg: the cluster worker processing it died twice")
    assert proc.pool.replaced == 2


def test_result_folder_leading_outside_the_output_folder_is_refused(tmp_path):
    photo = write_photo(tmp_path / "in" / "look.jpg")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "look")          # e.g. a link planted in a shared results folder
    (elsewhere / "result.json").write_text("{}")   # unreadable there: the scan would reuse the folder
    with pytest.raises(DocumentError, match="outside the output folder"):
        ResultFolder.for_photo(photo, out)
    from studio_app.core.processing import Processor
    outcome = Processor(pipeline=SimpleNamespace()).process(photo, out)      # refused before any model runs
    assert not outcome.ok and outcome.error.startswith("look.jpg: its result folder look resolves outside")
    assert [p.name for p in elsewhere.iterdir()] == ["result.json"]           # nothing written there


def test_what_a_worker_sends_back_is_the_same_outcome(tmp_path):
    """pack/unpack (the worker's answer): the document, the barcode card and the timings survive."""
    from studio_app.cluster.worker import pack_outcome, unpack_outcome
    from studio_app.core.catalog.binding import CardRead
    photo = write_photo(tmp_path / "in" / "look.jpg")
    o = FakeProcessor().process(photo, tmp_path / "out")
    o.card, o.timings = CardRead("4006381333931", "EAN13", True), {"load": 0.1}
    back = unpack_outcome(pack_outcome(o))
    assert back.doc.to_dict() == o.doc.to_dict() and back.folder == o.folder and back.card == o.card
    assert back.timings == {"load": 0.1} and back.ok
