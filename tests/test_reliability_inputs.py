"""Reliability, bad inputs: the whole bad-input corpus (tests/badinputs.py) mixed with real photos
goes through the REAL Processor and the REAL `studio-catalog process` command in one batch.

Every bad photo gets a one-line error or a correct result, good photos complete, nothing
escapes, the CLI exits 1 with one FAIL line per failed photo, and source files stay byte-identical.
Also: a photo deleted (or replaced) while it is being processed.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.badinputs import make_corpus
from tests.conftest import dev_file, require_weights
from tests.helpers_proc import check_results_tree, file_hashes, run_cli, sha256

GOOD = {"products/magento_luma/mb02-blue-0.jpg": "product", "persons/ccp/photos/0002.jpg": "person"}
MODELS = ("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")


@pytest.fixture(scope="module")
def processor(cpu_processor):
    return cpu_processor


def _expect_error(case) -> bool:
    # the Processor loads with the default limits: a case that only fails with custom limits loads
    return case.expect == "error" and not case.kwargs


def _good_photos(dev_data) -> list[Path]:
    return [dev_file(rel) for rel in GOOD]


def _check_error_line(msg: str, name: str) -> None:
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    assert "Traceback" not in msg and 'File "' not in msg
    assert name in msg, f"the message does not name the photo: {msg!r}"


def _check_complete(outcome, photo: Path) -> None:
    """A result that claims success is complete on disk and describes this photo."""
    from studio_app.core.result import load
    assert outcome.ok, outcome.error
    tree = check_results_tree(outcome.folder.parent)
    assert not [p for p in tree["problems"] if p.startswith(outcome.folder.name + ":")]
    doc = load(outcome.folder)
    # items, or (a tiny noise picture with nothing to cut out) flagged for review with the reason
    assert doc.items or (doc.needs_review and doc.warnings), "an empty result that is not flagged"
    if doc.kind == "product" and doc.item("product"):
        import cv2
        it = doc.item("product")
        img = cv2.imread(str(outcome.folder / it.file))
        h, w = img.shape[:2]
        assert h == w >= 500
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        assert (border >= 250).all(), "product preview not on white"


@pytest.mark.slow
def test_corpus_and_good_photos_through_the_processor(processor, tmp_path, dev_data):
    from studio_app.core.result import result_path
    cases = make_corpus(tmp_path / "corpus")
    good = _good_photos(dev_data)
    before = file_hashes([c.path for c in cases] + good)
    out = tmp_path / "out"
    failed, done = [], []
    for case in cases:
        outcome = processor.process(case.path, out)         # must never raise
        if _expect_error(case):
            assert not outcome.ok, f"{case.name} should fail"
            _check_error_line(outcome.error, case.path.name)
            assert case.keyword.lower() in outcome.error.lower(), (case.name, outcome.error)
            assert outcome.folder is None or not result_path(outcome.folder).exists()
            failed.append(case.name)
        else:
            assert outcome.ok, f"{case.name}: {outcome.error}"
            _check_complete(outcome, case.path)
            assert outcome.doc.source.sha256 == sha256(case.path)
            if case.size and not case.kwargs:      # kwargs (reduce, limits) are not the Processor's
                assert (outcome.doc.source.width, outcome.doc.source.height) == case.size
            done.append(case.name)
    for photo, kind in zip(good, GOOD.values()):
        outcome = processor.process(photo, out)
        _check_complete(outcome, photo)
        assert outcome.doc.kind == kind, (photo.name, outcome.doc.kind)
        if kind == "person":
            assert {"top", "full"} <= {it.zone for it in outcome.doc.items}
    tree = check_results_tree(out)
    assert tree["problems"] == [] and tree["incomplete"] == []
    assert len(tree["done"]) == len(done) + len(good)
    assert file_hashes([c.path for c in cases] + good) == before, "a source file was modified"
    assert len(failed) >= 15 and len(done) >= 25


@pytest.mark.slow
def test_cli_batch_of_bad_and_good_photos(tmp_path, dev_data):
    require_weights(*MODELS)
    from studio_app.cli import collect_photos
    cases = make_corpus(tmp_path / "corpus")
    good = _good_photos(dev_data)
    photos, _ = collect_photos([str(tmp_path / "corpus")])
    by_path = {c.path.resolve(): c for c in cases}
    expect_fail = {p.name for p in photos if _expect_error(by_path[p.resolve()])}
    assert len(expect_fail) >= 12
    before = file_hashes(photos + good)
    out = tmp_path / "out"
    r = run_cli("process", tmp_path / "corpus", *good, "--out", out, "--device", "cpu")
    text = r.stdout + r.stderr
    assert r.returncode == 1, text[-3000:]
    assert "Traceback" not in text and not re.search(r'^\s*File "', text, re.M), text[-3000:]
    fail_lines = [ln for ln in text.splitlines() if re.match(r"\[\d+/\d+\] FAIL ", ln)]
    ok_lines = [ln for ln in text.splitlines() if re.match(r"\[\d+/\d+\] ok ", ln)]
    assert len(fail_lines) == len(expect_fail), "\n".join(fail_lines)
    for name in expect_fail:
        assert sum(name in ln for ln in fail_lines) == 1, name
    assert len(ok_lines) == len(photos) + len(good) - len(expect_fail)
    for g in good:
        assert any(str(g) in ln for ln in ok_lines), g
    summary = [ln for ln in text.splitlines() if " photos done in " in ln]
    assert summary and f"{len(expect_fail)} failed" in summary[0]
    tree = check_results_tree(out)
    assert tree["problems"] == [] and tree["incomplete"] == []
    assert len(tree["done"]) == len(ok_lines)
    assert file_hashes(photos + good) == before, "a source file was modified"


def _copy_of(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


@pytest.mark.parametrize("stage", ["load", "segmentation", "swatch"])
def test_photo_deleted_while_being_processed(processor, tmp_path, dev_data, stage):
    """Deleted before it is read: a clear error and no result folder. Deleted after it was read:
    a complete result of the bytes that were read. Never a partial folder claiming success."""
    from studio_app.core.result import load, result_path
    photo = _copy_of(dev_file("products/magento_luma/mb02-blue-0.jpg"), tmp_path / "in" / "shot 1.jpg")
    digest = sha256(photo)
    seen = []

    def progress(s, frac):
        seen.append(s)
        if s == stage and photo.exists():
            photo.unlink()
    out = tmp_path / "out"
    outcome = processor.process(photo, out, progress=progress)
    assert stage in seen and not photo.exists()
    if stage == "load":
        assert not outcome.ok
        _check_error_line(outcome.error, photo.name)
        assert "does not exist" in outcome.error
        assert not out.exists() or not any(out.rglob("result.json"))
    else:
        _check_complete(outcome, photo)
        doc = load(outcome.folder)
        assert doc.source.sha256 == digest
    tree = check_results_tree(out)
    assert tree["problems"] == [] and tree["incomplete"] == []
    if outcome.ok:
        assert result_path(outcome.folder).exists()


def test_photo_replaced_while_being_processed(processor, tmp_path, dev_data):
    """The document describes the bytes that were analysed, so the exporter notices the change."""
    from studio_app.core.export.exporter import export
    from studio_app.core.result import load
    photo = _copy_of(dev_file("products/magento_luma/mb02-blue-0.jpg"), tmp_path / "in" / "bag.jpg")
    digest = sha256(photo)
    other = dev_file("products/magento_luma/mb02-gray-0.jpg")

    def progress(s, frac):
        if s == "segmentation":
            os.replace(_copy_of(other, tmp_path / "in" / ".incoming"), photo)
    outcome = processor.process(photo, tmp_path / "out", progress=progress)
    _check_complete(outcome, photo)
    assert load(outcome.folder).source.sha256 == digest != sha256(photo)
    rep = export([tmp_path / "out"], "amazon", tmp_path / "cat", only_approved=False)
    assert rep.errors and "changed since it was processed" in rep.errors[0][1]
    assert not [p for p in (tmp_path / "cat").iterdir() if p.suffix == ".jpg"]
