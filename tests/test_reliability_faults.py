"""Reliability, write faults and unreadable documents.

* Disk full and read-only output folder, for processing and for export: a clear message, no
  partial files, the next photos get a clear error too (no crash), and work resumes once the
  disk has room again. Faults are injected in the write path (everywhere) AND produced for
  real where the machine allows it: an immutable folder (``chattr +i``, which stops root too)
  and a tiny tmpfs in a private mount namespace (real ENOSPC, real EROFS).
* Corrupt or newer-version result documents: processing again reports them and leaves them
  untouched; the exporter reports and skips them; the session reports them.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from tests.conftest import dev_file, require_weights
from tests.helpers_proc import (can_mount_tmpfs, check_results_tree, file_hashes, listing, run_in_tmpfs,
                                sha256, temporaries)

MODELS = ("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")
PRODUCTS = ("products/magento_luma/mb02-blue-0.jpg", "products/magento_luma/mb02-gray-0.jpg",
            "products/magento_luma/luma-stability-ball-pink.jpg")
PERSON = "persons/ccp/photos/0002.jpg"


@pytest.fixture(scope="module")
def processor(cpu_processor):
    return cpu_processor


@pytest.fixture(scope="module")
def results(processor, tmp_path_factory, dev_data):
    """Two real result folders (a product and a person), made once; tests copy them."""
    root = tmp_path_factory.mktemp("results") / "res"
    for rel in (PRODUCTS[0], PERSON):
        o = processor.process(dev_file(rel), root)
        assert o.ok, o.error
    return root


def _copy_results(results: Path, dst: Path) -> Path:
    shutil.copytree(results, dst)
    return dst


def _tree_hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


class Faults:
    """Inject OSError(errno) into the atomic write path: ``fsync`` (where a full disk reports
    itself for delayed allocation) after ``after`` successful calls, or at ``mkstemp``
    (a read-only folder refuses the temporary file)."""

    def __init__(self, monkeypatch):
        self.mp = monkeypatch
        self.injected = 0

    def disk_full_after(self, after: int = 0):
        real = os.fsync
        calls = {"n": 0}

        def fsync(fd):
            calls["n"] += 1
            if calls["n"] > after:
                self.injected += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd)
        self.mp.setattr(os, "fsync", fsync)

    def read_only(self, code: int = errno.EROFS):
        import tempfile

        def mkstemp(*a, **k):
            self.injected += 1
            raise OSError(code, os.strerror(code))
        self.mp.setattr(tempfile, "mkstemp", mkstemp)

    def clear(self):
        self.mp.undo()


def _assert_clean(out: Path) -> dict:
    tree = check_results_tree(out)
    assert tree["problems"] == [], tree["problems"]
    assert tree["incomplete"] == [], f"partial result folders: {tree['incomplete']}"
    return tree


# ---------------------------------------------------------------------------------------------
# disk full / read-only: processing

def test_disk_full_while_processing_injected(processor, tmp_path, dev_data, monkeypatch):
    out = tmp_path / "out"
    first = processor.process(dev_file(PRODUCTS[0]), out)
    assert first.ok
    kept = _tree_hashes(first.folder)
    faults = Faults(monkeypatch)
    faults.disk_full_after(2)         # the disk fills up in the middle of the next photo
    errors = []
    for rel in (PRODUCTS[1], PRODUCTS[2], PERSON):
        o = processor.process(dev_file(rel), out)
        assert not o.ok
        assert "\n" not in o.error and "disk is full" in o.error and dev_file(rel).name in o.error, o.error
        errors.append(o.error)
    assert faults.injected >= 3
    faults.clear()
    tree = _assert_clean(out)
    assert list(tree["done"]) == [first.folder.name], "a photo that failed left a result behind"
    assert sorted(p.name for p in out.iterdir()) == [first.folder.name], "a partial folder was left"
    assert _tree_hashes(first.folder) == kept
    # room again: the same photos complete
    for rel in (PRODUCTS[1], PERSON):
        assert processor.process(dev_file(rel), out).ok
    assert len(_assert_clean(out)["done"]) == 3


def test_disk_full_while_reprocessing_keeps_the_old_result(processor, tmp_path, dev_data, monkeypatch):
    out = tmp_path / "out"
    first = processor.process(dev_file(PRODUCTS[0]), out)
    kept = _tree_hashes(first.folder)
    Faults(monkeypatch).disk_full_after(1)
    o = processor.process(dev_file(PRODUCTS[0]), out)
    assert not o.ok and "disk is full" in o.error
    monkeypatch.undo()
    _assert_clean(out)
    assert _tree_hashes(first.folder)["result.json"] == kept["result.json"]


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_output_while_processing_injected(processor, tmp_path, dev_data, monkeypatch, code):
    out = tmp_path / "out"
    first = processor.process(dev_file(PRODUCTS[0]), out)
    kept = _tree_hashes(out)
    Faults(monkeypatch).read_only(code)
    for rel in (PRODUCTS[0], PRODUCTS[1]):
        o = processor.process(dev_file(rel), out)
        assert not o.ok and "not writable" in o.error and "\n" not in o.error, o.error
    monkeypatch.undo()
    assert _tree_hashes(out) == kept
    _assert_clean(out)
    assert first.ok


def test_cli_disk_full_every_photo_reported(tmp_path, dev_data, monkeypatch, capsys):
    """The command keeps going: each photo gets its FAIL line, exit status 1, no traceback."""
    require_weights(*MODELS)
    from studio_app import cli
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    Faults(monkeypatch).disk_full_after(0)
    photos = [dev_file(p) for p in PRODUCTS[:2]]
    rc = cli.main(["process", *map(str, photos), "--out", str(tmp_path / "out"), "--device", "cpu"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 1
    fails = [ln for ln in err.splitlines() if " FAIL " in ln]
    assert len(fails) == 2 and all("disk is full" in ln for ln in fails), err
    assert "Traceback" not in err
    _assert_clean(tmp_path / "out")


def _immutable(folder: Path, on: bool) -> bool:
    if shutil.which("chattr") is None:
        return False
    r = subprocess.run(["chattr", "+i" if on else "-i", str(folder)], capture_output=True)
    return r.returncode == 0


@contextlib.contextmanager
def really_read_only(folder: Path):
    """A folder nobody can write into, root included: chmod 0o555 where that stops us, else an
    immutable folder (chattr +i). Skips where neither works."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.touch()
        probe.unlink()
        writable = True
    except OSError:
        writable = False
    immutable = False
    if writable:       # root: permissions do not stop writes
        immutable = _immutable(folder, True)
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("no way to make a folder read-only here (root without chattr)")
    try:
        yield
    finally:
        if immutable:
            _immutable(folder, False)
        folder.chmod(0o755)


def test_read_only_output_real_folder(processor, tmp_path, dev_data):
    out = tmp_path / "out"
    first = processor.process(dev_file(PRODUCTS[0]), out)
    assert first.ok
    kept = _tree_hashes(out)
    with really_read_only(out):
        o = processor.process(dev_file(PRODUCTS[1]), out)       # a new folder inside `out`
        assert not o.ok and "not writable" in o.error and "\n" not in o.error, o.error
    with really_read_only(first.folder):
        o = processor.process(dev_file(PRODUCTS[0]), out)       # a new result over an old one
        assert not o.ok and "not writable" in o.error, o.error
    assert _tree_hashes(out) == kept
    _assert_clean(out)


needs_tmpfs = pytest.mark.skipif(not can_mount_tmpfs(), reason="cannot mount a private tmpfs here")


@needs_tmpfs
def test_real_disk_full_tmpfs_processing(tmp_path, dev_data):
    require_weights(*MODELS)
    mnt = tmp_path / "small_disk"
    photos = [str(dev_file(p)) for p in (*PRODUCTS, PERSON)]
    before = file_hashes(photos)
    res = run_in_tmpfs(mnt, "process", {"photos": photos, "out": str(mnt / "out")}, size_kb=450)
    out = res["stderr"]
    assert res["rc"] == 1, out
    assert "Traceback" not in out
    fails = [ln for ln in out.splitlines() if " FAIL " in ln]
    oks = [ln for ln in out.splitlines() if "] ok " in ln]
    assert fails and len(fails) + len(oks) == len(photos), out
    assert all("disk is full" in ln for ln in fails), fails
    assert res["problems"] == [] and res["incomplete"] == [] and res["temporaries"] == []
    assert len(res["done"]) == len(oks)
    assert file_hashes(photos) == before


@needs_tmpfs
def test_real_read_only_filesystem_processing(tmp_path, dev_data):
    require_weights(*MODELS)
    mnt = tmp_path / "ro_disk"
    photos = [str(dev_file(p)) for p in PRODUCTS[:2]]
    res = run_in_tmpfs(mnt, "process", {"photos": photos, "out": str(mnt / "out")},
                       prepare='mkdir -p "$SC_MNT/out"', readonly=True)
    fails = [ln for ln in res["stderr"].splitlines() if " FAIL " in ln]
    assert res["rc"] == 1 and len(fails) == 2, res["stderr"]
    assert all("not writable" in ln for ln in fails), fails
    assert res["listing"] == {}


# ---------------------------------------------------------------------------------------------
# disk full / read-only: export

def _export(res: Path, out: Path, **kw):
    from studio_app.core.export.exporter import export
    return export([res], "generic", out, only_approved=False, **kw)   # amazon blocks the 550-px person (no upscaling)


def _catalog_ok(out: Path) -> dict:
    """No temporaries; every catalog file decodes; the manifest (when there) lists exactly the
    images in the folder, once each."""
    from studio_app.core.export import manifest
    assert temporaries(out) == []
    imgs = sorted(p.name for p in out.iterdir() if p.suffix.lower() in (".jpg", ".png", ".webp", ".tif"))
    for n in imgs:
        assert cv2.imread(str(out / n)) is not None, f"{n} is not a complete image"
    csv_p, json_p = manifest.paths(out, "generic")
    if json_p.exists():
        m = json.loads(json_p.read_text())
        files = [r["file"] for r in m["images"]] + [r["swatch_file"] for r in m["images"] if r["swatch_file"]]
        assert len(files) == len(set(files)), "a file is listed twice"
        assert sorted(files) == imgs, (files, imgs)
        assert [r["file"] for r in manifest.read_csv(csv_p)] == [r["file"] for r in m["images"]]
    return {"images": imgs}


def test_export_disk_full_injected_then_resume(results, tmp_path, monkeypatch):
    res = _copy_results(results, tmp_path / "res")
    ref = _export(_copy_results(results, tmp_path / "res_ref"), tmp_path / "ref")
    assert ref.ok
    faults = Faults(monkeypatch)
    faults.disk_full_after(1)      # room for one file, then full: also the manifest fails
    rep = _export(res, tmp_path / "cat")
    faults.clear()
    assert not rep.ok and rep.errors
    assert any("disk is full" in r for _, r in rep.errors), rep.errors
    assert all("\n" not in r for _, r in rep.errors)
    _catalog_ok(tmp_path / "cat")
    rep2 = _export(res, tmp_path / "cat")
    assert rep2.ok, rep2.failure_lines()
    assert _catalog_ok(tmp_path / "cat")["images"] == _catalog_ok(tmp_path / "ref")["images"]
    for n in _catalog_ok(tmp_path / "ref")["images"]:
        assert sha256(tmp_path / "cat" / n) == sha256(tmp_path / "ref" / n)


def test_export_read_only_output(results, tmp_path, monkeypatch, capsys):
    from studio_app import cli
    res = _copy_results(results, tmp_path / "res")
    docs = {p: sha256(p) for p in res.glob("*/result.json")}
    cat = tmp_path / "cat"
    with really_read_only(cat):
        rc = cli.main(["export", str(res), "--preset", "amazon", "--out", str(cat), "--all"])
    err = capsys.readouterr().err
    assert rc != 0 and "not writable" in err and "Traceback" not in err, err
    assert listing(cat) == {}
    assert {p: sha256(p) for p in docs} == docs, "documents marked exported although nothing was written"


@needs_tmpfs
def test_real_disk_full_tmpfs_export(results, tmp_path):
    res = _copy_results(results, tmp_path / "res")
    mnt = tmp_path / "small_disk"
    r = run_in_tmpfs(mnt, "export", {"results": [str(res)], "preset": "amazon", "out": str(mnt / "cat"),
                                     "args": ["--all"]}, size_kb=200)
    assert r["rc"] == 1 and "disk is full" in r["stderr"] and "Traceback" not in r["stderr"], r["stderr"]
    assert r["temporaries"] == []


# ---------------------------------------------------------------------------------------------
# corrupt and newer documents

def _damage(folder: Path, how: str) -> None:
    rj = folder / "result.json"
    if how == "corrupt":
        data = rj.read_bytes()
        rj.write_bytes(data[: len(data) // 2])
    else:
        d = json.loads(rj.read_text())
        d["schema_version"] = 99
        d["added_in_v99"] = {"x": 1}
        rj.write_text(json.dumps(d))


@pytest.mark.parametrize("how,word", [("corrupt", "corrupt"), ("newer", "newer")])
def test_processing_again_reports_and_keeps_unreadable_document(processor, results, tmp_path, how, word):
    res = _copy_results(results, tmp_path / "res")
    from studio_app.core.result import load
    folder = next(p for p in sorted(res.iterdir()) if load(p).kind == "product")
    photo = Path(load(folder).source.path)
    _damage(folder, how)
    kept = _tree_hashes(folder)
    for skip in (False, True):
        o = processor.process(photo, res, skip_existing=skip)
        assert not o.ok and word in o.error.lower() and photo.name in o.error and "\n" not in o.error, o.error
        assert o.folder == folder
    assert _tree_hashes(folder) == kept, "the unreadable document (or its files) was changed"


def test_exporter_reports_and_skips_unreadable_documents(results, tmp_path):
    res = _copy_results(results, tmp_path / "res")
    from studio_app.core.result import load
    folders = sorted(res.iterdir())
    good = folders[0]
    good_kind = load(good).kind
    # a third result: a copy of the good one, then damaged in two ways
    corrupt, newer = res / "corrupt_one", folders[1]
    shutil.copytree(good, corrupt)
    _damage(corrupt, "corrupt")
    _damage(newer, "newer")
    kept = {p: sha256(p / "result.json") for p in (corrupt, newer)}
    rep = _export(res, tmp_path / "cat")
    why = dict(rep.errors)
    assert "corrupt" in why[str(corrupt)] and "newer" in why[str(newer)], rep.errors
    assert rep.documents_exported == 1 and {r["zone"] for r in rep.rows} & {"product", "full"}
    assert all(r["source_sha256"] == load(good).source.sha256 for r in rep.rows), good_kind
    assert {p: sha256(p / "result.json") for p in kept} == kept
    _catalog_ok(tmp_path / "cat")


def test_session_reports_unreadable_documents(results, tmp_path):
    from studio_app.core.result import load
    from studio_app.core.session import Session
    res = _copy_results(results, tmp_path / "res")
    s = Session.open(res)
    folders = sorted(res.iterdir())
    for f in folders:
        s.add(load(f).source.path)
    assert [e.status for e in s] != ["error", "error"] and all(e.folder for e in s)
    _damage(folders[0], "corrupt")
    _damage(folders[1], "newer")
    s2 = Session.open(res)
    st = {Path(e.folder).name: (e.status, e.message) for e in s2}
    assert st[folders[0].name][0] == "error" and "corrupt" in st[folders[0].name][1]
    assert st[folders[1].name][0] == "error" and "newer" in st[folders[1].name][1]
