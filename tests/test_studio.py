"""The Studio driven headless: photos in -> events out -> documents, with a fast fake processor
for the logic and the real one on real photos. No Qt anywhere (see also test_core_without_qt)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from studio_app.core.edits import EditError
from studio_app.core.history import MoveKeypoint, PaintMask, SetBox
from studio_app.core.result_folder import ResultFolder
from studio_app.core.session import Session
from studio_app.core.studio import HIGH, Studio, StudioError
from studio_fakes import FakeProcessor, Recorder, write_photo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_studio(tmp_path):
    made = []

    def make(proc=None, **kw):
        s = Studio(tmp_path / "out", proc or FakeProcessor(), **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_photos_in_events_out_documents(tmp_path, make_studio):
    photos = [write_photo(tmp_path / "in" / f"shot{i}.jpg", seed=i) for i in range(3)]
    bad = write_photo(tmp_path / "in" / "bad.jpg")
    studio = make_studio()
    rec = Recorder(studio)
    added, errors = studio.add([tmp_path / "in"])
    assert errors == [] and len(added) == 4
    studio.start()
    assert studio.wait_idle(20)
    docs = {Path(ev.photo).name: ev for ev in rec.of("document_changed")}
    assert set(docs) == {p.name for p in photos}
    for p in photos:
        ev = docs[p.name]
        assert ev.reason == "processed" and ev.image_changed
        assert ev.doc.to_dict() == ResultFolder(ev.folder).load().to_dict()     # the event carries what is on disk
        assert studio.entry(p).status == "ready"
    assert studio.entry(bad).status == "error" and "truncated" in studio.entry(bad).message
    last = {}
    for ev in rec.of("entry_changed"):
        last[Path(ev.entry.photo).name] = ev.entry.status
    assert last == {"shot0.jpg": "ready", "shot1.jpg": "ready", "shot2.jpg": "ready", "bad.jpg": "error"}
    progress = rec.of("batch_progress")
    assert progress[-1].done == progress[-1].total == 4 and not progress[-1].busy
    assert [j.outcome.ok for j in rec.of("job_finished")].count(True) == 3
    assert rec.of("processor_state") == []               # a built processor: nothing to load
    studio.close()
    saved = json.loads((tmp_path / "out" / "session.json").read_text())
    assert len(saved["entries"]) == 4                     # written off the caller's thread, flushed on close


def test_photo_on_screen_is_processed_first(tmp_path, make_studio):
    gate = threading.Event()
    proc = FakeProcessor(gate=gate)
    studio = make_studio(proc)
    photos = [write_photo(tmp_path / "in" / f"p{i}.jpg", seed=i) for i in range(5)]
    for p in photos:
        studio.add_photo(p)
    studio.start()
    t = time.monotonic()
    while proc.order == [] and time.monotonic() - t < 5:
        time.sleep(0.01)
    studio.prioritize(photos[3])                          # the operator looks at p3
    studio.enqueue(photos[4], priority=HIGH)              # Ctrl+R on p4 while it waits
    gate.set()
    assert studio.wait_idle(20)
    assert proc.order[:3] == ["p0.jpg", "p3.jpg", "p4.jpg"], proc.order
    assert sorted(proc.order) == [p.name for p in photos]


def test_cancel_stops_the_batch_and_requeue_finishes_it(tmp_path, make_studio):
    gate = threading.Event()
    studio = make_studio(FakeProcessor(gate=gate))
    rec = Recorder(studio)
    photos = [write_photo(tmp_path / "in" / f"p{i}.jpg", seed=i) for i in range(4)]
    studio.add(photos)
    studio.start()
    rec.wait_for("entry_changed", lambda e: e.entry.status == "processing")
    cancelled = studio.cancel()
    assert studio.wait_idle(10)
    assert {e.status for e in studio.session} == {"cancelled"} and len(cancelled) == 3
    assert rec.of("job_finished")[-1].cancelled
    gate.set()
    assert len(studio.requeue_cancelled()) == 4
    assert studio.wait_idle(20)
    assert {e.status for e in studio.session} == {"ready"}


def test_raw_and_jpeg_of_one_shot_are_one_entry(tmp_path, make_studio):
    d = tmp_path / "in"
    write_photo(d / "IMG_1.jpg")
    (d / "IMG_1.CR2").write_bytes(b"raw")
    (d / "IMG_2.NEF").write_bytes(b"raw alone")
    (d / "IMG_3.heic").write_bytes(b"no decoder")          # not a supported type: not taken
    (d / ".hidden.jpg").write_bytes(b"x")
    studio = make_studio()
    added, _ = studio.add([d])
    got = {Path(e.photo).name: (Path(e.pair).name if e.pair else None) for e in added}
    assert got == {"IMG_1.jpg": "IMG_1.CR2", "IMG_2.NEF": None}


def test_supported_types_are_one_table():
    from ml.io import DECODERS, SUPPORTED_EXTENSIONS, is_supported
    from studio_app.core.hotfolder import is_ignored
    for ext in SUPPORTED_EXTENSIONS:
        assert not is_ignored(f"shot{ext}") and not is_ignored(f"SHOT{ext.upper()}") and is_supported(f"a{ext}")
    assert not is_ignored("a.gif") and is_supported("a.gif")            # the CLI took it, now the hot folder too
    heic_readable = DECODERS.get(".heic") is not None
    assert is_ignored("a.heic") != heic_readable and is_supported("a.heic") == heic_readable
    for name in ("a.xmp", "a.jpg.part", ".a.jpg", "~a.jpg", "._a.jpg", "a.txt"):
        assert is_ignored(name) and not (is_supported(name) and not name.startswith((".", "~")) and "." not in name[:-4])


def test_replaced_file_in_hot_folder_is_processed_again(tmp_path, make_studio):
    hot = tmp_path / "hot"
    hot.mkdir()
    studio = make_studio()
    rec = Recorder(studio)
    studio.start()
    assert studio.watch(hot, stable_seconds=0.2, pair_window=0.2, use_polling=True)
    photo = write_photo(hot / "look.jpg", seed=1)
    first = rec.wait_for("document_changed", timeout=15)
    assert rec.of("arrival")[-1].unseen == 1 and not rec.of("arrival")[-1].reprocess
    time.sleep(0.3)
    write_photo(hot / "look.jpg", seed=2)                   # same name, new content
    second = rec.wait_for("document_changed", lambda e: e.doc.source.sha256 != first.doc.source.sha256, timeout=15)
    assert second.image_changed and second.reason == "processed"
    arr = rec.of("arrival")[-1]
    assert arr.reprocess and arr.unseen == 2
    studio.mark_arrivals_seen()
    assert studio.arrivals_unseen == 0
    n_docs = len(rec.of("document_changed"))
    data = photo.read_bytes()
    time.sleep(0.3)
    photo.write_bytes(data)                                 # touched, same content: not again
    time.sleep(2.5)
    assert studio.wait_idle(5) and len(rec.of("document_changed")) == n_docs


def test_edits_undo_redo_and_review_through_the_studio(tmp_path, make_studio):
    photo = write_photo(tmp_path / "in" / "p.jpg")
    studio = make_studio()
    rec = Recorder(studio)
    studio.add([photo])
    studio.start()
    assert studio.wait_idle(10)
    box0 = studio.document(photo).item("top").box
    doc = studio.apply(photo, SetBox("top", (10, 20, 200, 150)))
    assert doc.item("top").box == [10.0, 20.0, 200.0, 150.0] and doc.item("top").locked
    ev = rec.of("document_changed")[-1]
    assert ev.reason == "edit" and ev.doc is doc
    assert ResultFolder(ev.folder).load().item("top").box == [10.0, 20.0, 200.0, 150.0]   # saved at once
    hs = rec.of("history_changed")[-1]
    assert hs.can_undo and not hs.can_redo and hs.undo_text == "Set the top box"
    studio.apply(photo, PaintMask(((5, 5), (100, 5)), 4, add=True))
    assert rec.of("document_changed")[-1].mask_changed
    assert studio.undo(photo) is not None and studio.undo(photo).item("top").box == box0
    assert studio.redo(photo).item("top").box == [10.0, 20.0, 200.0, 150.0]
    studio.approve(photo)
    assert studio.entry(photo).status == "approved"
    with pytest.raises(EditError):
        studio.apply(photo, MoveKeypoint("no_such_point", 1, 1))
    with pytest.raises(EditError):
        studio.apply(tmp_path / "unknown.jpg", SetBox("top", (1, 1, 50, 50)))
    studio.reprocess(photo)
    assert studio.wait_idle(10)
    assert not studio.history_state(photo).can_undo        # a new result: the old history is gone


def test_export_job_progress_cancel_and_status(tmp_path, make_studio):
    photos = [write_photo(tmp_path / "in" / f"p{i}.jpg", 900, 1200, seed=i) for i in range(4)]
    studio = make_studio()
    rec = Recorder(studio)
    studio.add(photos)
    studio.start()
    assert studio.wait_idle(20)
    for p in photos:
        studio.approve(p)
    job = studio.export("generic", tmp_path / "cat1", [photos[0], photos[1]])   # amazon: too small, no upscaling
    with pytest.raises(StudioError):
        studio.export("generic", tmp_path / "cat2")
    assert job.wait(60) and job.error is None and job.report.ok, job.report.failure_lines()
    prog = [e for e in rec.of("export_progress") if e.job == job.id]
    assert prog[-1].finished and prog[-1].report is job.report and len(prog) >= 3
    assert studio.entry(photos[0]).status == "exported" and studio.entry(photos[2]).status == "approved"
    assert any(e.reason == "exported" and e.doc.status == "exported" for e in rec.of("document_changed"))
    # a second job, cancelled from a progress event: stops after the current result
    jobs = []
    studio.events.export_progress.connect(lambda e: jobs[0].cancel() if jobs and not e.finished else None)
    jobs.append(studio.export("generic", tmp_path / "cat3", photos))
    assert jobs[0].wait(60) and jobs[0].report.cancelled
    assert jobs[0].report.documents_exported < 4


def test_crafted_path_outside_the_folder_is_refused(tmp_path, make_studio):
    from studio_app.core.export import export
    from studio_app.core.result import DocumentError
    photo = write_photo(tmp_path / "in" / "p.jpg")
    studio = make_studio()
    studio.add([photo])
    studio.start()
    assert studio.wait_idle(10)
    folder = Path(studio.entry(photo).folder)
    other = tmp_path / "other"
    other.mkdir()
    (other / "mask.png").write_bytes((folder / "mask.png").read_bytes())
    data = json.loads((folder / "result.json").read_text())
    for field, patch in [("mask", {"mask": "../../other/mask.png"}),
                         ("items[0].file", {"items": [dict(data["items"][0], file="/etc/passwd")]}),
                         ("garments.file", {"garments": {"file": "../x.png", "classes": []}})]:
        (folder / "result.json").write_text(json.dumps(dict(data, **patch)))
        with pytest.raises(DocumentError, match=field.replace("[", r"\[").replace("]", r"\]")) as exc:
            ResultFolder(folder).load()
        assert "outside its folder" in str(exc.value)
    (folder / "result.json").write_text(json.dumps(dict(data, mask="../../other/mask.png",
                                                        review={"status": "approved", "note": ""})))
    rep = export([folder], "amazon", tmp_path / "cat", only_approved=False)
    assert rep.documents_exported == 0 and any("mask" in r and "outside" in r for _, r in rep.errors), rep.errors


def test_processor_spec_is_built_on_the_processing_thread(tmp_path, make_studio, monkeypatch):
    from studio_app.core.processor import ProcessorSpec
    built = []

    def build(self):
        built.append(threading.current_thread().name)
        if self.seg_engine == "broken.pth":
            raise RuntimeError("no such checkpoint")
        return FakeProcessor()
    monkeypatch.setattr(ProcessorSpec, "build", build)
    studio = make_studio(ProcessorSpec(device="cpu", seg_engine="broken.pth"))
    rec = Recorder(studio)
    studio.add([write_photo(tmp_path / "in" / "a.jpg")])
    studio.start()
    failed = rec.wait_for("processor_state", lambda s: s.state == "failed")
    assert "the models could not be loaded: no such checkpoint" in failed.text
    assert not studio.wait_idle(0.3) and studio.entry(tmp_path / "in" / "a.jpg").status == "queued"
    studio.set_processor(ProcessorSpec(device="cpu"))        # Settings: another engine
    assert studio.wait_idle(10) and built == ["studio-processing"] * 2
    assert [s.state for s in rec.of("processor_state")] == ["loading", "failed", "loading", "ready"]
    studio.set_processor(ProcessorSpec(device="cpu", seg_engine="broken.pth"))
    failed = rec.wait_for("processor_state", lambda s: s.state == "failed" and "chosen engines" in s.text)
    assert studio.spec.seg_engine == "u2netp"                # the working engines stay
    studio.add([write_photo(tmp_path / "in" / "b.jpg")])
    assert studio.wait_idle(10) and studio.entry(tmp_path / "in" / "b.jpg").status == "ready"


def test_cli_session_is_not_written(tmp_path, make_studio):
    out = tmp_path / "out"
    studio = make_studio(session=Session(out, autosave=False))
    studio.enqueue(write_photo(tmp_path / "a.jpg"))
    studio.start()
    assert studio.wait_idle(10)
    assert not (out / "session.json").exists() and (out / "a" / "result.json").exists()


def test_real_processor_on_real_photos(tmp_path, dev_data, cpu_processor):
    from conftest import dev_file
    photos = [REPO / "resources" / "samples" / "sample_mug.jpg",
              dev_file("persons/ccp/photos/0002.jpg")]
    studio = Studio(tmp_path / "out", cpu_processor)
    try:
        rec = Recorder(studio)
        studio.add(photos)
        studio.start()
        assert studio.wait_idle(300)
        docs = {Path(e.photo).name: e.doc for e in rec.of("document_changed")}
        assert docs["sample_mug.jpg"].kind == "product" and docs["0002.jpg"].kind == "person"
        for p in photos:
            e = studio.entry(p)
            assert e.status in ("ready", "needs_review") and (Path(e.folder) / "mask.png").exists()
        assert all(b.total == 2 for b in rec.of("batch_progress"))
    finally:
        studio.processor = None            # the shared fixture is closed by its owner
        studio.close()


def test_file_replaced_while_it_is_processed_is_processed_once_more(tmp_path, make_studio):
    gate = threading.Event()
    proc = FakeProcessor(gate=gate)
    studio = make_studio(proc)
    rec = Recorder(studio)
    photo = write_photo(tmp_path / "hot" / "a.jpg", seed=1)
    studio.add_photo(photo)
    studio.start()
    rec.wait_for("entry_changed", lambda e: e.entry.status == "processing")
    write_photo(photo, seed=2)                              # the operator copies it again meanwhile
    studio._arrived(photo, None)                            # what the hot folder reports
    gate.set()
    assert studio.wait_idle(10)
    assert proc.order == ["a.jpg", "a.jpg"]
    from ml.io import sha256_file
    assert studio.document(photo).source.sha256 == sha256_file(photo)


def test_photos_still_queued_when_the_app_stopped_are_processed_at_the_next_start(tmp_path, make_studio):
    """Closed with photos waiting (not started, or closed mid-batch): the next Studio on the same
    output folder lists them queued and processes them (it used to raise on opening)."""
    photos = [write_photo(tmp_path / "in" / f"w{i}.jpg", seed=i) for i in range(2)]
    first = make_studio()
    for p in photos:
        first.add_photo(p)
    first.close()                                         # never started: both still queued
    again = make_studio()
    assert [again.entry(p).status for p in photos] == ["queued", "queued"]
    again.start()
    assert again.wait_idle(20)
    assert [again.entry(p).status for p in photos] == ["ready", "ready"]
