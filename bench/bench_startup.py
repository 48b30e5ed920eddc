"""Start-up: one photo from a cold start, side by side with rembg; the desktop app's launch.

Every figure is a fresh Python process (the OS file cache warm, as on a workstation that has
run the app before):

* **cold one photo**: ``studio-catalog process PHOTO --out DIR`` against rembg's cold start on the
  same photo (``import rembg``, ``new_session("u2netp")`` on our own copy of the model file,
  ``remove`` bytes -> PNG written), interleaved ``--repeat`` times. Ours runs with the graph
  cache warm (``ml.graph_cache``: the normal case after the first start) and once with an empty
  cache (the very first start after an install or an update).
* **phases** of our cold start (in one child): ``import torch``, the rest of the imports, models
  loaded (from the graph cache), the first photo.
* **desktop app** (``studio_app.gui.selftest``, the real window, offscreen unless a display is
  set): launch -> window shown, launch -> models loaded, launch -> the first photo's result on
  screen.

    .venv/bin/python bench/bench_startup.py [--photos product:24,person:24] [--repeat 3] [--gui 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

REMBG_COLD = """
import os, sys
os.environ["U2NET_HOME"] = sys.argv[3]
import pooch
pooch.retrieve = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("rembg tried to download"))
import rembg
s = rembg.new_session("u2netp")
open(sys.argv[2], "wb").write(rembg.remove(open(sys.argv[1], "rb").read(), session=s))
"""

PHASES = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from ml.device import configure_cpu_threads
from studio_app.core.processing import Processor
configure_cpu_threads()
t2 = time.perf_counter()
p = Processor(device="cpu")
p.pipeline.warm_up()
t3 = time.perf_counter()
o = p.process(sys.argv[1], sys.argv[2])
t4 = time.perf_counter()
assert o.ok, o.error
print(json.dumps({"import_torch": t1 - t0, "imports_rest": t2 - t1, "models": t3 - t2, "first_photo": t4 - t3}))
"""


def _timed(args: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=str(common.REPO),
                       env={**os.environ, **(env or {})}, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def rembg_home(tmp: Path) -> Path:
    home = tmp / "u2net_home"
    for d in (home, home / "models" / "u2netp"):
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "u2netp.onnx").exists():
            os.symlink(common.REPO / "weights" / "u2netp.onnx", d / "u2netp.onnx")
    return home


def cold_rows(photos, repeat: int, tmp: Path, cache: Path, log) -> list[dict]:
    home = rembg_home(tmp)
    rows = []
    for kind, mp in photos:
        photo = common.make_jpeg(kind, mp, tmp / f"{kind}_{mp:g}mp.jpg")
        ours_cmd = ["-m", "studio_app.cli", "process", str(photo), "--out"]
        empty = tmp / f"empty-cache-{kind}"
        first = _timed(ours_cmd + [str(tmp / f"first-{kind}")], {"STUDIO_GRAPH_CACHE": str(empty)})
        _timed(ours_cmd + [str(tmp / "prime")], {"STUDIO_GRAPH_CACHE": str(cache)})    # cache + file cache warm
        _timed(["-c", REMBG_COLD, str(photo), str(tmp / "r.png"), str(home)])
        ours, peer = [], []
        for i in range(repeat):
            ours.append(_timed(ours_cmd + [str(tmp / f"o-{kind}-{i}")], {"STUDIO_GRAPH_CACHE": str(cache)}))
            peer.append(_timed(["-c", REMBG_COLD, str(photo), str(tmp / "r.png"), str(home)]))
        row = {"kind": kind, "mp": mp, "ours_s": round(common.median(ours), 2), "rembg_s": round(common.median(peer), 2),
               "ours_first_start_s": round(first, 2), "load_average": round(common.load_average(), 2)}
        row["ratio"] = round(row["ours_s"] / row["rembg_s"], 2)
        rows.append(row)
        log(f"  {row}")
    return rows


def phases(photo: Path, out: Path, cache: Path, repeat: int) -> dict:
    runs = []
    for i in range(repeat):
        r = subprocess.run([sys.executable, "-c", PHASES, str(photo), str(out / f"ph{i}")], capture_output=True,
                           text=True, cwd=str(common.REPO), env={**os.environ, "STUDIO_GRAPH_CACHE": str(cache)},
                           timeout=600)
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return {k: round(common.median([x[k] for x in runs]), 2) for k in runs[0]}


def gui_rows(photo: Path, n: int, tmp: Path, cache: Path, keep_loaded_s: float = 0.0) -> list[dict]:
    """``n`` launches of the real app (its self-test). ``keep_loaded_s`` > 0: every launch keeps
    its models loaded for the next (Settings › Keep models loaded after closing) -- the rows are
    then restarts: one launch more runs first, and the last one's models are stopped after."""
    rows = []
    env = {"STUDIO_GRAPH_CACHE": str(cache), "STUDIO_CATALOG_RUNTIME": str(tmp / "run")}
    if not os.environ.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    keep = ["--keep-loaded", str(keep_loaded_s)] if keep_loaded_s > 0 else []
    for i in range(-1 if keep else 0, n):
        out = tmp / f"gui{'keep' if keep else ''}{i}"
        subprocess.run([sys.executable, "-m", "studio_app.gui.selftest", str(out), str(photo)] + keep,
                       cwd=str(common.REPO), env={**os.environ, **env}, capture_output=True, timeout=600)
        if i < 0:
            continue
        text = (out / "selftest.txt").read_text() if (out / "selftest.txt").exists() else ""
        vals = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        if "startup_to_window_s" not in vals:
            raise RuntimeError(f"the self-test failed: {text[-500:]}")
        if keep and vals.get("models_kept_loaded_by_previous_run") != "True":
            raise RuntimeError("a restart did not adopt the models kept loaded by the previous launch")
        rows.append({k: float(vals[k]) for k in ("startup_to_window_s", "models_loaded_s", "first_photo_processed_s",
                                                 "first_result_shown_s") if k in vals})
    if keep:                                    # stop the last launch's waiting models process
        import json
        import signal
        for ep in (tmp / "run").glob("models-*.json"):
            try:
                os.kill(int(json.loads(ep.read_text())["pid"]), signal.SIGTERM)
            except (OSError, ValueError, KeyError):
                pass
    return rows


def run(photos, repeat: int, gui: int, log=print) -> dict:
    common.require_dev()
    res: dict = {"machine": common.machine(), "repeat": repeat}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "graphs"
        res["cold"] = cold_rows(photos, repeat, tmp, cache, log)
        kind, mp = photos[0]
        photo = tmp / f"{kind}_{mp:g}mp.jpg"
        res["phases"] = phases(photo, tmp, cache, repeat)
        log(f"  phases {res['phases']}")
        if gui:
            rows = gui_rows(photo, gui, tmp, cache)
            res["gui"] = {k: round(common.median([r[k] for r in rows]), 2) for k in rows[0]}
            res["gui_runs"] = rows
            log(f"  gui {res['gui']}")
            rows = gui_rows(photo, gui, tmp, cache, keep_loaded_s=600.0)
            res["gui_restart"] = {k: round(common.median([r[k] for r in rows]), 2) for k in rows[0]}
            res["gui_restart_runs"] = rows
            log(f"  gui restart (models kept loaded) {res['gui_restart']}")
    res["load_average"] = round(common.load_average(), 2)
    try:
        import rembg
        res["rembg_version"] = getattr(rembg, "__version__", "?")
    except ImportError:
        res["rembg_version"] = "?"
    return res


def markdown(res: dict) -> str:
    out = ["| photo | **ours, cold, s** | rembg, cold, s | **ours / rembg** | ours, first start ever (empty graph cache), s |",
           "|---|---|---|---|---|"]
    for r in res["cold"]:
        out.append(f"| {r['kind']} {r['mp']:g} MP | **{r['ours_s']:.2f}** | {r['rembg_s']:.2f} | **{r['ratio']:.2f}x** "
                   f"| {r['ours_first_start_s']:.2f} |")
    p = res["phases"]
    out += ["", f"Our cold start, phase by phase (median of {res['repeat']}): import torch {p['import_torch']:.2f} s, "
                f"the other imports {p['imports_rest']:.2f} s, models loaded {p['models']:.2f} s, "
                f"the first photo {p['first_photo']:.2f} s."]
    if res.get("gui"):
        g = res["gui"]
        r = res.get("gui_restart") or {}

        def cell(d, k, bold=False):
            return "–" if k not in d else (f"**{d[k]:.2f}**" if bold else f"{d[k]:.2f}")
        out += ["", "| desktop app, from launch | first launch, s (median) | restart, models kept loaded, s (median) |",
                "|---|---|---|"]
        for k, name, bold in (("startup_to_window_s", "window shown", True),
                              ("models_loaded_s", "models loaded (child process)", False),
                              ("first_photo_processed_s", "first photo processed", False),
                              ("first_result_shown_s", "first photo's overlays on screen", True)):
            if k in g:
                out.append(f"| {name} | {cell(g, k, bold)} | {cell(r, k, bold)} |")
    out += ["", f"rembg {res['rembg_version']}; each figure a fresh process; load average at the end "
                f"{res['load_average']:.2f}."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default="product:24,person:24")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gui", type=int, default=3, help="desktop-app launches to time (0: none)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    photos = [(p.split(":")[0], float(p.split(":")[1])) for p in args.photos.split(",") if p]
    res = run(photos, args.repeat, args.gui, log=lambda s: print(s, file=sys.stderr, flush=True))
    return common.emit(res, markdown(res), args.json)


if __name__ == "__main__":
    sys.exit(main())
