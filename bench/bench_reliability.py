"""Reliability figures: inputs tried, faults injected, photos lost (must be 0).

    .venv/bin/python bench/bench_reliability.py [--hot 500] [--skip SECTION ...] [--device cpu]

Sections (all use the real Processor / commands and the real photos in ../shared/data/dev):

* ``inputs``   the bad-input corpus (tests/badinputs.py) + 2 real photos through the Processor
* ``hot``      N photos dropped by 4 writer threads into a watched hot folder (HotFolder, app settings)
* ``kill``     `studio-catalog process` SIGKILLed mid-write over 12 photos, then `--skip-existing`
* ``export``   `studio-catalog export` SIGKILLed part-way, then run again
* ``disk``     disk full (ENOSPC) and read-only (EROFS) injected in the write path of every photo;
               plus a real tmpfs / immutable folder where this machine allows it
* ``docs``     corrupt and newer-schema result documents processed / exported again

A photo is *lost* when it ends without either a complete, loadable result or a clear one-line error,
when a finished result is damaged or redone, or when a hot-folder photo is never (or twice, or
half-written) handed over. Prints a Markdown table (docs/reliability.md holds the last one).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers_proc import (can_mount_tmpfs, check_results_tree, doc_mtimes, file_hashes,  # noqa: E402
                                hotfolder_load, kill_when, make_photo_set, run_cli, run_in_tmpfs, sha256,
                                start_cli, temporaries)

DEV = Path(os.environ.get("STUDIO_SHARED_DATA", REPO.parent / "shared" / "data")) / "dev"
GOOD = {"products/magento_luma/mb02-blue-0.jpg": "product", "persons/ccp/photos/0002.jpg": "person"}
SHOOT = ["products/magento_luma/" + n for n in (
    "mb02-blue-0.jpg", "mb02-gray-0.jpg", "mb03-black-0.jpg", "mb05-black-0.jpg", "mg02-bk-0.jpg",
    "mg04-bk-0.jpg", "luma-stability-ball-pink.jpg", "mh02-black_main.jpg")] + \
    ["persons/ccp/photos/" + n for n in ("0002.jpg", "0009.jpg", "0024.jpg", "0025.jpg")]

ROWS: list[dict] = []


def row(scenario, tried, faults, lost, notes="", seconds=0.0):
    r = {"scenario": scenario, "tried": tried, "faults": faults, "lost": lost, "notes": notes,
         "seconds": round(seconds, 1)}
    ROWS.append(r)
    print(f"  -> {scenario}: tried {tried}, faults {faults}, lost {lost}  {notes}", flush=True)
    return r


_PROC = {}


def processor(device):
    if "p" not in _PROC:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        from studio_app.core.processing import Processor
        _PROC["p"] = Processor(device=device)
        _PROC["p"].pipeline.warm_up()
    return _PROC["p"]


def shoot(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, rel in enumerate(SHOOT):
        p = folder / f"{i:02d}_{Path(rel).name}"
        p.write_bytes((DEV / rel).read_bytes())
        out.append(p)
    return out


# ---------------------------------------------------------------------------------------------

def bench_inputs(tmp: Path, device: str) -> None:
    from studio_app.core.result import result_path
    from tests.badinputs import make_corpus
    t0 = time.perf_counter()
    proc = processor(device)
    cases = make_corpus(tmp / "corpus")
    good = [DEV / rel for rel in GOOD]
    before = file_hashes([c.path for c in cases] + good)
    out = tmp / "out"
    lost, errors, results = 0, 0, 0
    for path in [c.path for c in cases] + good:
        try:
            o = proc.process(path, out)
        except Exception as exc:          # an escaped exception is a lost photo
            print(f"     ESCAPED {path.name}: {exc!r}")
            lost += 1
            continue
        if o.ok:
            results += 1
            if not result_path(o.folder).exists():
                lost += 1
        elif "\n" in o.error or path.name not in o.error:
            lost += 1
            print(f"     unclear error for {path.name}: {o.error!r}")
        else:
            errors += 1
    tree = check_results_tree(out)
    lost += len(tree["problems"]) + len(tree["incomplete"])
    changed = sum(a != b for a, b in zip(before.values(), file_hashes([c.path for c in cases] + good).values()))
    lost += changed
    row("bad-input corpus + 2 real photos, real Processor", len(cases) + len(good), len(cases), lost,
        f"{results} results, {errors} one-line errors, {changed} sources changed", time.perf_counter() - t0)


def bench_hot(tmp: Path, n: int) -> None:
    t0 = time.perf_counter()
    photos = make_photo_set(DEV / "products/magento_luma/mb02-blue-0.jpg", n, seed=11)
    r = hotfolder_load(tmp / "hot", photos, writers=4, seed=5)
    names = Counter(h[0] for h in r["handed"])
    missing = len(set(r["final"]) - set(names))
    twice = sum(v > 1 for v in names.values())
    half = sum(d != r["final"][nm] for nm, d, _ in r["handed"])
    temps = sum(nm not in r["final"] for nm in names)
    modes = Counter(r["modes"].values())
    row(f"hot folder, 4 writers, {n} photos", n, n,           # every photo is a write-in-progress to judge
        missing + twice + half + temps + len(r["errors"]),
        f"missing {missing}, twice {twice}, half-written {half}, temp names {temps}; "
        f"modes {dict(modes)}; writing {r['seconds_writing']:.0f} s, last hand-over "
        f"{r['seconds_last_handover']:.1f} s after the last write", time.perf_counter() - t0)


def bench_kill(tmp: Path) -> Path:
    t0 = time.perf_counter()
    photos = shoot(tmp / "shoot")
    src = file_hashes(photos)
    out = tmp / "results"
    proc = start_cli("process", tmp / "shoot", "--out", out, "--device", "cpu")
    state = {"mid": False}

    def mid_write():
        if not out.is_dir() or len(list(out.glob("*/result.json"))) < 3:
            return False
        state["mid"] = any(p.is_dir() and not (p / "result.json").exists() for p in out.iterdir())
        return state["mid"] or time.perf_counter() - t0 > 120
    killed = kill_when(proc, mid_write, timeout=600)
    after = check_results_tree(out)
    corrupt = [p for p in after["problems"] if not p.startswith("temporary")]
    mt = doc_mtimes(out)
    r = run_cli("process", tmp / "shoot", "--out", out, "--device", "cpu", "--skip-existing")
    final = check_results_tree(out)
    redone = sum(doc_mtimes(out)[k] != v for k, v in mt.items())
    lost = (len(photos) - len(final["done"])) + len(final["problems"]) + len(final["incomplete"]) + redone \
        + len(corrupt) + (r.returncode != 0) + sum(a != b for a, b in zip(src.values(), file_hashes(photos).values()))
    row("`process` SIGKILLed, then `--skip-existing`", len(photos), int(killed), lost,
        f"killed {'mid-write' if state['mid'] else 'between photos'} after {len(after['done'])} done; "
        f"{len(after['temporaries'])} temporaries at kill, {len(final['temporaries'])} after; {redone} redone",
        time.perf_counter() - t0)
    return out


def bench_export(tmp: Path, results: Path) -> None:
    t0 = time.perf_counter()
    res, ref_res = tmp / "x_res", tmp / "x_ref_res"
    shutil.copytree(results, res)
    shutil.copytree(results, ref_res)
    run_cli("export", ref_res, "--preset", "amazon", "--out", tmp / "x_ref", "--all")

    def files(d):
        return {p.name: sha256(p) for p in d.iterdir() if p.is_file() and not p.name.startswith((".", "manifest-"))}
    ref = files(tmp / "x_ref")
    cat = tmp / "x_cat"
    proc = start_cli("export", res, "--preset", "amazon", "--out", cat, "--all")
    killed = kill_when(proc, lambda: cat.is_dir() and len(files(cat)) >= len(ref) // 3, timeout=300)
    partial = files(cat)
    bad_partial = sum(ref.get(k) != v for k, v in partial.items())
    r = run_cli("export", res, "--preset", "amazon", "--out", cat, "--all")
    got = files(cat)
    m = json.loads((cat / "manifest-amazon.json").read_text())
    listed = [x["file"] for x in m["images"]] + [x["swatch_file"] for x in m["images"] if x["swatch_file"]]
    lost = sum(got.get(k) != v for k, v in ref.items()) + len(set(got) - set(ref)) + bad_partial \
        + (len(listed) != len(set(listed))) + (sorted(listed) != sorted(ref)) + len(temporaries(cat)) \
        + (r.returncode != 0)
    row("`export` SIGKILLed, then run again", len(ref), int(killed), lost,
        f"{len(partial)} of {len(ref)} files there at the kill, all whole: {bad_partial == 0}; "
        f"manifest complete: {m['complete']}", time.perf_counter() - t0)


def bench_disk(tmp: Path, device: str) -> None:
    import tempfile as _tf
    from studio_app.core.result import load
    t0 = time.perf_counter()
    proc = processor(device)
    photos = [DEV / rel for rel in SHOOT]
    out = tmp / "disk"
    first = proc.process(photos[0], out)
    kept = sha256(first.folder / "result.json")
    real_fsync, real_mkstemp = os.fsync, _tf.mkstemp
    injected, lost, clear = 0, 0, 0
    for code, name in ((errno.ENOSPC, "disk is full"), (errno.EROFS, "not writable")):
        def fail(*a, **k):
            nonlocal injected
            injected += 1
            raise OSError(code, os.strerror(code))
        if code == errno.ENOSPC:
            os.fsync = fail
        else:
            _tf.mkstemp = fail
        try:
            for p in photos:
                try:
                    o = proc.process(p, out)
                except Exception:
                    lost += 1
                    continue
                if o.ok or name not in (o.error or "") or "\n" in o.error:
                    lost += 1
                else:
                    clear += 1
        finally:
            os.fsync, _tf.mkstemp = real_fsync, real_mkstemp
    tree = check_results_tree(out)
    lost += len(tree["problems"]) + len(tree["incomplete"]) + (sha256(first.folder / "result.json") != kept)
    after = sum(proc.process(p, out).ok for p in photos[1:4])      # room again
    lost += 3 - after
    row("disk full / read-only injected on every write", 2 * len(photos), injected, lost,
        f"{clear} clear one-line errors; earlier result untouched; {after}/3 done once writable again; "
        f"loaded doc ok: {bool(load(first.folder))}", time.perf_counter() - t0)
    if can_mount_tmpfs():
        t0 = time.perf_counter()
        ph = [str(DEV / rel) for rel in SHOOT[:6]]
        r1 = run_in_tmpfs(tmp / "mnt1", "process", {"photos": ph, "out": str(tmp / "mnt1" / "out")}, size_kb=700)
        r2 = run_in_tmpfs(tmp / "mnt2", "process", {"photos": ph[:3], "out": str(tmp / "mnt2" / "out")},
                          prepare='mkdir -p "$SC_MNT/out"', readonly=True)
        fails1 = [ln for ln in r1["stderr"].splitlines() if " FAIL " in ln]
        oks1 = [ln for ln in r1["stderr"].splitlines() if "] ok " in ln]
        fails2 = [ln for ln in r2["stderr"].splitlines() if " FAIL " in ln]
        lost = (len(ph) - len(fails1) - len(oks1)) + sum("disk is full" not in ln for ln in fails1) \
            + len(r1["problems"]) + len(r1["incomplete"]) + (len(oks1) != len(r1["done"])) \
            + (3 - len(fails2)) + sum("not writable" not in ln for ln in fails2) + len(r2["listing"])
        row("real 700 KB tmpfs (ENOSPC) and read-only tmpfs (EROFS), CLI", len(ph) + 3,
            len(fails1) + len(fails2), lost, f"{len(oks1)} fitted, {len(fails1)} 'disk is full', "
            f"{len(fails2)} 'not writable'", time.perf_counter() - t0)


def bench_docs(tmp: Path, device: str) -> None:
    from studio_app.core.export.exporter import export
    t0 = time.perf_counter()
    proc = processor(device)
    out = tmp / "docs"
    photos = [DEV / rel for rel in SHOOT[:3]]
    folders = [proc.process(p, out).folder for p in photos]
    rj = folders[0] / "result.json"
    rj.write_bytes(rj.read_bytes()[:200])
    d = json.loads((folders[1] / "result.json").read_text())
    d["schema_version"] = 7
    (folders[1] / "result.json").write_text(json.dumps(d))
    kept = [sha256(f / "result.json") for f in folders[:2]]
    lost = 0
    for p, word in zip(photos[:2], ("corrupt", "newer")):
        o = proc.process(p, out)
        lost += o.ok or word not in o.error
    rep = export([out], "amazon", tmp / "docs_cat", only_approved=False)
    lost += len(rep.errors) != 2 or rep.documents_exported != 1
    lost += [sha256(f / "result.json") for f in folders[:2]] != kept
    row("corrupt + newer-schema documents, process again and export", 2, 2, lost,
        "reported and left untouched by processing and export", time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hot", type=int, default=500, help="photos for the hot-folder section")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip", nargs="*", default=[], help="sections to leave out")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not DEV.is_dir():
        print(f"dev data not found at {DEV}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sc-bench-rel-") as d:
        tmp = Path(d)
        if "inputs" not in args.skip:
            print("bad inputs ...", flush=True)
            bench_inputs(tmp, args.device)
        if "hot" not in args.skip:
            print("hot folder ...", flush=True)
            bench_hot(tmp, args.hot)
        results = None
        if "kill" not in args.skip:
            print("kill process ...", flush=True)
            results = bench_kill(tmp)
        if "export" not in args.skip and results is not None:
            print("kill export ...", flush=True)
            bench_export(tmp, results)
        if "disk" not in args.skip:
            print("disk full / read-only ...", flush=True)
            bench_disk(tmp, args.device)
        if "docs" not in args.skip:
            print("unreadable documents ...", flush=True)
            bench_docs(tmp, args.device)
    print()
    print("| scenario | inputs tried | faults injected | photos lost | notes |")
    print("|---|---:|---:|---:|---|")
    for r in ROWS:
        print(f"| {r['scenario']} | {r['tried']} | {r['faults']} | **{r['lost']}** | {r['notes']} |")
    tot = {k: sum(r[k] for r in ROWS) for k in ("tried", "faults", "lost")}
    print(f"| **total** | {tot['tried']} | {tot['faults']} | **{tot['lost']}** | {time.perf_counter() - t0:.0f} s |")
    return 0 if tot["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
