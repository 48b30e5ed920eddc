"""Reliability, crashes: the real `studio-catalog process` and `studio-catalog export` commands
are SIGKILLed part-way (as a power cut or the OOM killer would), then run again.

Nothing corrupt (every result.json loads and names files that exist), finished work is not
redone (its documents keep their mtime), unfinished work is done, sources are byte-identical;
the export completes with no half-written, missing or duplicated files and a manifest that
matches the folder; the app's session offers the unprocessed photos again.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import dev_file, require_weights
from tests.helpers_proc import (check_results_tree, doc_mtimes, file_hashes, kill_when, run_cli, sha256,
                                start_cli, start_job, temporaries)

MODELS = ("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")
SHOOT = ["products/magento_luma/" + n for n in (
    "mb02-blue-0.jpg", "mb02-gray-0.jpg", "mb03-black-0.jpg", "mb05-black-0.jpg", "mg02-bk-0.jpg",
    "mg04-bk-0.jpg", "luma-stability-ball-pink.jpg", "mh02-black_main.jpg")] + \
    ["persons/ccp/photos/" + n for n in ("0002.jpg", "0009.jpg", "0024.jpg", "0025.jpg")]


def _shoot(dev_data, folder: Path) -> list[Path]:
    """12 real photos copied into a scratch shoot folder (the copies are the sources)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, rel in enumerate(SHOOT):
        p = folder / f"{i:02d}_{Path(rel).name}"
        p.write_bytes(dev_file(rel).read_bytes())
        out.append(p)
    return out


class MidWrite:
    """Kill condition: at least ``min_done`` documents, and (preferably) a result folder being
    written right now (files but no document yet); after ``patience`` s settle for any moment."""

    def __init__(self, out: Path, min_done: int, patience: float = 40.0):
        import time
        self.out, self.min_done, self.t0, self.patience = out, min_done, time.monotonic(), patience
        self.mid_write = False

    def __call__(self) -> bool:
        import time
        if not self.out.is_dir():
            return False
        done = len(list(self.out.glob("*/result.json")))
        if done < self.min_done:
            return False
        writing = any(p.is_dir() and not (p / "result.json").exists() for p in self.out.iterdir())
        if writing:
            self.mid_write = True
            return True
        return time.monotonic() - self.t0 > self.patience


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, dev_data):
    require_weights(*MODELS)
    root = tmp_path_factory.mktemp("crash")
    photos = _shoot(dev_data, root / "shoot")
    sources = file_hashes(photos)
    out = root / "results"
    proc = start_cli("process", root / "shoot", "--out", out, "--device", "cpu", log=root / "run1.log")
    cond = MidWrite(out, min_done=3)
    killed = kill_when(proc, cond, timeout=400)
    assert killed, "the command finished before it could be killed: " + (root / "run1.log").read_text()[-2000:]
    after_kill = check_results_tree(out)
    mtimes = doc_mtimes(out)
    r = run_cli("process", root / "shoot", "--out", out, "--device", "cpu", "--skip-existing")
    return {"root": root, "photos": photos, "sources": sources, "out": out, "after_kill": after_kill,
            "mtimes": mtimes, "rerun": r, "mid_write": cond.mid_write}


def test_process_killed_then_resumed(killed_and_resumed):
    k = killed_and_resumed
    ak = k["after_kill"]
    # straight after the kill: nothing corrupt, no document naming missing files
    assert ak["problems"] == [t for t in ak["problems"] if t.startswith("temporary left behind")], ak["problems"]
    assert 3 <= len(ak["done"]) < len(k["photos"])
    assert all(Path(t).name.startswith(".sc-tmp-") for t in ak["temporaries"])
    # the re-run: finished work is skipped, the rest is done
    r = k["rerun"]
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-3000:]
    assert "Traceback" not in text
    assert len(re.findall(r"\] ok .*: up to date", text)) == len(ak["done"]), text
    final = check_results_tree(k["out"])
    assert final["problems"] == [] and final["temporaries"] == [] and final["incomplete"] == []
    assert len(final["done"]) == len(k["photos"])
    assert {Path(p).resolve() for p in final["done"].values()} == {p.resolve() for p in k["photos"]}
    now = doc_mtimes(k["out"])
    for name, m in k["mtimes"].items():
        assert now[name] == m, f"{name} was processed again"
    assert file_hashes(k["photos"]) == k["sources"], "a source photo was modified"


def _export_state(cat: Path) -> dict:
    """File name -> sha256 of every catalog file (not the manifest / state)."""
    return {p.name: sha256(p) for p in cat.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.startswith("manifest-")}


def test_export_killed_then_resumed(killed_and_resumed, tmp_path):
    # generic, not amazon: Amazon blocks the 550-px CCP person crops (no upscaling), exit code 1
    k = killed_and_resumed
    assert k["rerun"].returncode == 0
    res, ref_res = tmp_path / "res", tmp_path / "res_ref"
    shutil.copytree(k["out"], res)
    shutil.copytree(k["out"], ref_res)
    r = run_cli("export", ref_res, "--preset", "generic", "--out", tmp_path / "ref", "--all")
    assert r.returncode == 0, r.stderr[-2000:]
    ref = _export_state(tmp_path / "ref")
    assert len(ref) >= 12
    cat = tmp_path / "cat"

    def part_way():
        return cat.is_dir() and len(_export_state(cat)) >= max(2, len(ref) // 4)
    proc = start_cli("export", res, "--preset", "generic", "--out", cat, "--all", log=tmp_path / "exp1.log")
    assert kill_when(proc, part_way, timeout=300), (tmp_path / "exp1.log").read_text()[-2000:]
    partial = _export_state(cat)
    assert 0 < len(partial) < len(ref)
    for name, digest in partial.items():           # what is there under a final name is whole
        assert ref.get(name) == digest, f"{name}: half-written or unexpected after the kill"
    r2 = run_cli("export", res, "--preset", "generic", "--out", cat, "--all")
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "Traceback" not in r2.stderr
    assert _export_state(cat) == ref, "the resumed catalog differs from an uninterrupted export"
    assert temporaries(cat) == []
    m = json.loads((cat / "manifest-generic.json").read_text())
    assert m["complete"] is True
    files = [row["file"] for row in m["images"]] + [row["swatch_file"] for row in m["images"] if row["swatch_file"]]
    assert len(files) == len(set(files)) and sorted(files) == sorted(ref)
    ref_m = json.loads((tmp_path / "ref" / "manifest-generic.json").read_text())
    assert sorted(r["file"] for r in m["images"]) == sorted(r["file"] for r in ref_m["images"])


def test_session_offers_unfinished_photos_after_a_kill(tmp_path, dev_data):
    """The desktop app's session (Qt-free core) killed while working through a hot-folder
    batch: on the next start every photo is either done or offered again; none is lost."""
    require_weights(*MODELS)
    from studio_app.core.session import Session, arrived_while_closed
    hot = tmp_path / "hot"
    photos = _shoot(dev_data, hot)[:8]
    for p in sorted(hot.iterdir()):
        if p not in photos:
            p.unlink()
    out = tmp_path / "out"
    proc = start_job("session", {"out": str(out), "photos": [str(p) for p in photos[:6]]}, log=tmp_path / "s.log")
    assert kill_when(proc, MidWrite(out, min_done=2, patience=30), timeout=400), (tmp_path / "s.log").read_text()[-2000:]
    s = Session.open(out)
    assert s.load_error is None
    done = {Path(d).resolve() for d in check_results_tree(out)["done"].values()}
    assert 2 <= len(done) < 6
    offered = {Path(e.photo).resolve() for e in s.queued()}
    offered |= {p.resolve() for p in arrived_while_closed(hot, s)}
    # the session is saved at most every 200 ms: a photo finished just before the kill may be
    # offered once more (redone, not lost); every other finished photo is shown as done
    assert len(offered & done) <= 1, "finished photos offered again"
    assert offered | done == {p.resolve() for p in photos}, "a photo is neither done nor offered again"
    assert len(offered - done) >= 2
    for e in s:
        assert e.status in ("queued", "ready", "needs_review"), (e.name, e.status, e.message)
