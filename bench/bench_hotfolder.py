"""Hot-folder latency: a photo lands in the watched folder -> its result document is on disk.

Uses ``studio_app.core.hotfolder.HotFolder`` (watchdog, default settings) and the same
``Processor`` as the app; ``on_ready`` hands each photo to a worker thread (as the GUI's
worker does) which processes it. A photo "lands" two ways, as tethering software does it:

* ``rename``: written under a temporary name and renamed into the folder (complete at once);
* ``copy``: written in place under its final name (complete once its size and mtime have
  been stable for ``stable_seconds``, 1 s by default, or 0.5 s after the writer closed it).

Latency = time the result.json appears - time the file landed (rename done / last byte
written and closed). It is split into *detection* (landing -> handed over by the hot folder)
and *processing* (handed over -> result document written).

    .venv/bin/python bench/bench_hotfolder.py [--mp 24] [--kind product] [--shots 5]
"""
from __future__ import annotations

import argparse
import queue
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def run(mp: float, kinds: list[str], shots: int, device: str, log=print) -> dict:
    common.require_dev()
    from ml.device import configure_cpu_threads
    from studio_app.core.hotfolder import HotFolder
    from studio_app.core.processing import Processor
    from studio_app.core.result import result_path

    configure_cpu_threads()
    proc = Processor(device=device)
    proc.pipeline.warm_up()
    res: dict = {"mp": mp, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-hot-") as tmp:
        tmp = Path(tmp)
        srcs = {k: common.make_jpeg(k, mp, tmp / f"src_{k}.jpg") for k in kinds}
        for k, src in srcs.items():                       # warm-up outside the measurement
            proc.process(src, tmp / "warm")
        hot, out = tmp / "hot", tmp / "out"
        hot.mkdir()
        handed: dict[str, float] = {}
        done: dict[str, float] = {}
        jobs: queue.Queue = queue.Queue()

        def on_ready(photo: Path, raw):
            handed[photo.name] = time.perf_counter()
            jobs.put(photo)

        def worker():
            while True:
                photo = jobs.get()
                if photo is None:
                    return
                o = proc.process(photo, out)
                if o.ok and result_path(o.folder).exists():
                    done[photo.name] = time.perf_counter()
                else:
                    done[photo.name] = float("nan")
                    log(f"  {photo.name}: {o.error}")

        th = threading.Thread(target=worker, daemon=True)
        th.start()
        hf = HotFolder(hot, on_ready, include_existing=False)
        hf.start()
        try:
            for mode in ("rename", "copy"):
                rows = []
                for i in range(shots):
                    kind = kinds[i % len(kinds)]
                    name = f"{mode}_{i:02d}.jpg"
                    if mode == "rename":
                        part = hot / (name + ".part")
                        shutil.copyfile(srcs[kind], part)
                        part.rename(hot / name)
                    else:
                        shutil.copyfile(srcs[kind], hot / name)
                    landed = time.perf_counter()
                    t_end = landed + 60
                    while name not in done and time.perf_counter() < t_end:
                        time.sleep(0.005)
                    if name not in done:
                        raise RuntimeError(f"{name}: no result within 60 s ({hf.errors})")
                    rows.append({"kind": kind, "detect_s": handed[name] - landed,
                                 "process_s": done[name] - handed[name], "total_s": done[name] - landed})
                    time.sleep(0.3)
                med = {k: round(common.median([r[k] for r in rows]), 3) for k in ("detect_s", "process_s", "total_s")}
                med["max_total_s"] = round(max(r["total_s"] for r in rows), 3)
                res["modes"][mode] = med
                log(f"  {mode}: {med}")
        finally:
            hf.stop()
            jobs.put(None)
            th.join(timeout=60)
        res["stable_seconds"] = hf.tracker.stable_seconds
        res["closed_grace"] = hf.tracker.closed_grace
    res["load_average"] = round(common.load_average(), 2)
    res["shots"] = shots
    res["kinds"] = kinds
    return res


def markdown(res: dict) -> str:
    lines = [f"| landing ({res['mp']:g}-MP JPEG, {', '.join(res['kinds'])}) | detection s | processing s | "
             "**landing -> result.json s** (median) | worst s |", "|---|---|---|---|---|"]
    names = {"rename": "written elsewhere, renamed into the folder",
             "copy": f"written in place (closed: +{res['closed_grace']:g} s grace)"}
    for mode, m in res["modes"].items():
        lines.append(f"| {names[mode]} | {m['detect_s']:.2f} | {m['process_s']:.2f} | **{m['total_s']:.2f}** | "
                     f"{m['max_total_s']:.2f} |")
    return "\n".join(lines) + f"\n\n{res['shots']} shots per way; load average at the end {res['load_average']}.\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, default=24)
    ap.add_argument("--kinds", default="product,person")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = run(args.mp, args.kinds.split(","), args.shots, args.device,
              log=lambda s: print(s, file=sys.stderr, flush=True))
    return common.emit(res, markdown(res), args.json)


if __name__ == "__main__":
    sys.exit(main())
