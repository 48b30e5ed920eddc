"""Pipeline benchmark: per-stage and end-to-end time for 2, 12, 24 and 50-MP JPEGs and a
RAW (DNG) file, photos per second and peak memory for a batch.

Test photos are made in a temporary folder from two real photos of the shared dev set (a
studio model shot and a product on white), resampled to each size (JPEG quality 92); the
RAW is a real 12-bit Bayer DNG of the person shot written with the project's own DNG writer
(tests/badinputs.py) and developed by LibRaw. Every photo goes through the same
``Processor.process`` the CLI and the GUI use (file in -> result folder on disk).

Stages (milliseconds, median of ``--repeat`` runs after one warm-up run):

* load: read + SHA-256 + decode for inference (JPEG: DCT-scaled 1/2..1/8) + working copy
* person/product: the BlazePose person detector, which decides person vs product
* pose: landmarks + person mask (person photos; the detector is in the column before)
* garments: the garment parser (ml.garments): person photos, and products whose routing it can change
* category: the time the product-category classifier (ml.category; product photos) adds. It
  runs on its own thread beside the crops and swatch, so its cost is what it adds to that
  span (crops + swatch + the wait for it): the span's median with the classifier minus its
  median in as many runs without it (product photos only); "category own" is the
  classifier's whole time on its thread
* segmentation: U2-Net-p (products) and mask refinement to full resolution (both)
* crops, swatch (k-means), encode (mask.png, item images, swatches, result.json)
* full decode: the full-resolution decode, on a background thread *during* the stages
  above, so it is not part of the sum; "wait" is the time the pipeline had to wait for it

    .venv/bin/python bench/bench_pipeline.py [--sizes 2,12,24,50] [--repeat 3] [--raw-mp 24]
        [--batch 100] [--batch-mp 24] [--device auto] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STAGES = ("load", "person/product", "pose", "garments", "segmentation", "crops", "category", "swatch", "encode")


def _make_processor(device: str):
    from ml.device import configure_cpu_threads
    from studio_app.core.processing import Processor
    configure_cpu_threads()
    proc = Processor(device=device)
    t = time.perf_counter()
    proc.pipeline.warm_up()
    return proc, time.perf_counter() - t


def _instrument_detector(proc) -> dict:
    """Time BlazePose's person detector separately (it is what decides person/product)."""
    acc = {"detect": 0.0}
    model = getattr(proc.pipeline.pose, "model", None)
    if model is not None and hasattr(model, "detect"):
        orig = model.detect

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                acc["detect"] += time.perf_counter() - t
        model.detect = timed
    return acc


def _category_span(tm: dict) -> float:
    """The part of a photo the category classifier overlaps: crops + swatch + its wait."""
    return tm.get("crops", 0.0) + tm.get("swatch", 0.0) + tm.get("category_wait", 0.0)


def _category_added(proc, photo: Path, out: Path, repeat: int, spans_on: list[float]) -> float:
    """Median span with the classifier (``spans_on``) minus the median of ``repeat`` runs with
    the classifier switched off (the pipeline then records it as unavailable)."""
    pipe = proc.pipeline
    keep = pipe._category
    spans_off = []
    try:
        pipe._category = "switched off for the benchmark"
        for r in range(repeat + 1):
            o = proc.process(photo, out)
            if r:
                spans_off.append(_category_span(o.timings))
    finally:
        pipe._category = keep
    return max(0.0, common.median(spans_on) - common.median(spans_off))


def measure(proc, acc: dict, photo: Path, out: Path, repeat: int) -> dict:
    runs = []
    outcome = None
    for r in range(repeat + 1):                 # the first run is a warm-up, not counted
        acc["detect"] = 0.0
        c = time.process_time()
        t = time.perf_counter()
        outcome = proc.process(photo, out)
        wall = time.perf_counter() - t
        cpu = time.process_time() - c
        if not outcome.ok:
            raise RuntimeError(f"{photo.name}: {outcome.error}")
        if r:
            tm = dict(outcome.timings)
            stages = {
                "load": tm.get("load", 0.0) + tm.get("resize", 0.0),
                "person/product": acc["detect"],
                "pose": max(0.0, tm.get("pose", 0.0) - acc["detect"]),
                "garments": tm.get("garments", 0.0),
                "segmentation": tm.get("segmentation", 0.0),
                "crops": tm.get("crops", 0.0),
                "category": 0.0,                # filled in below (product photos)
                "swatch": tm.get("swatch", 0.0),
                "encode": tm.get("write", 0.0),
            }
            runs.append({"wall": wall, "cpu": cpu, "stages": stages, "category_own": tm.get("category", 0.0),
                         "category_span": _category_span(tm),
                         "decode_full": tm.get("decode_full", 0.0),
                         "wait": tm.get("wait_decode", 0.0)})
    doc = outcome.doc
    if doc.kind == "product" and any(r["category_own"] for r in runs):
        added = _category_added(proc, photo, out, repeat, [r["category_span"] for r in runs])
        for r in runs:
            r["stages"]["category"] = added
    return {
        "photo": photo.name, "kind": doc.kind, "width": doc.source.width, "height": doc.source.height,
        "mp": round(doc.source.width * doc.source.height / 1e6, 1),
        "stages_ms": {s: round(1000 * common.median([r["stages"][s] for r in runs]), 1) for s in STAGES},
        "decode_full_ms": round(1000 * common.median([r["decode_full"] for r in runs]), 1),
        "category_own_ms": round(1000 * common.median([r["category_own"] for r in runs]), 1),
        "wait_ms": round(1000 * common.median([r["wait"] for r in runs]), 1),
        "e2e_s": round(common.median([r["wall"] for r in runs]), 3),
        "e2e_min_s": round(min(r["wall"] for r in runs), 3),
        "cpu_s": round(common.median([r["cpu"] for r in runs]), 3),
        "items": [it.zone for it in doc.items],
        "load_average": round(common.load_average(), 2),
    }


def batch_child(photos: list[Path], n: int, device: str) -> dict:
    """Process ``n`` photos (cycling through ``photos``, each under its own name) in this
    process; report throughput and this process's peak memory."""
    proc, _ = _make_processor(device)
    rss_ready = common.rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(n):
            src = photos[i % len(photos)]
            f = tmp / f"shot_{i:04d}{src.suffix}"
            os.link(src, f)
            files.append(f)
        t = time.perf_counter()
        c = time.process_time()
        failed = 0
        for i, f in enumerate(files):       # as the Studio drives it: the next photo is read ahead
            proc.prefetch(files[i + 1] if i + 1 < len(files) else None)
            failed += not proc.process(f, tmp / "out").ok
        wall = time.perf_counter() - t
        cpu = time.process_time() - c
    return {"photos": n, "seconds": round(wall, 2), "photos_per_s": round(n / wall, 3),
            "cpu_s_per_photo": round(cpu / n, 3), "failed": failed,
            "rss_models_loaded_mb": round(rss_ready), "peak_rss_mb": round(common.peak_rss_mb()),
            "load_average": round(common.load_average(), 2)}


def run(sizes: list[float], repeat: int, raw_mp: float, batch: int, batch_mp: float,
        device: str, kinds=("person", "product"), log=print) -> dict:
    common.require_dev()
    res: dict = {"rows": [], "batch": None}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        tmp = Path(tmp)
        photos = []
        for kind in kinds:
            for mp in sizes:
                photos.append(common.make_jpeg(kind, mp, tmp / f"{kind}_{mp:g}mp.jpg"))
        if raw_mp:
            photos.append(common.make_dng("person", raw_mp, tmp / f"person_{raw_mp:g}mp.dng"))
        res["rss_before_models_mb"] = round(common.rss_mb())
        proc, t_models = _make_processor(device)
        res["model_load_s"] = round(t_models, 2)
        res["machine"] = common.machine()
        acc = _instrument_detector(proc)
        for photo in photos:
            row = measure(proc, acc, photo, tmp / "out", repeat)
            row["format"] = "DNG (RAW)" if photo.suffix == ".dng" else "JPEG"
            row["file_mb"] = round(photo.stat().st_size / 2 ** 20, 1)
            res["rows"].append(row)
            log(f"  {photo.name}: {row['e2e_s']:.2f} s end to end, {row['cpu_s']:.2f} s CPU, "
                f"{row['stages_ms']}  (load avg {row['load_average']})")
        res["peak_rss_single_mb"] = round(common.peak_rss_mb())
        if batch:
            srcs = [common.make_jpeg(k, batch_mp, tmp / f"batch_{k}.jpg") for k in kinds]
            log(f"  batch of {batch} {batch_mp:g}-MP photos in a fresh process ...")
            res["batch"] = common.run_child([str(Path(__file__).resolve()), "--child-batch", str(batch),
                                             "--device", device, *map(str, srcs)], timeout=7200)
            res["batch"]["mp"] = batch_mp
            log(f"  batch: {res['batch']}")
    return res


def markdown(res: dict) -> str:
    lines = ["| photo | format | size | " + " | ".join(STAGES)
             + " | category own (overlapped) | full decode (overlapped) | end to end s (median / min) | CPU s |",
             "|" + "---|" * (len(STAGES) + 7)]
    for r in res["rows"]:
        cells = " | ".join(f"{r['stages_ms'][s]:.0f}" for s in STAGES)
        lines.append(f"| {r['kind']} {r['mp']:g} MP | {r['format']} | {r['width']}x{r['height']} | {cells} | "
                     f"{r.get('category_own_ms', 0):.0f} | {r['decode_full_ms']:.0f} (wait {r['wait_ms']:.0f}) | "
                     f"**{r['e2e_s']:.2f}** / {r['e2e_min_s']:.2f} | {r['cpu_s']:.2f} |")
    out = "\n".join(lines) + "\n\nStage times in milliseconds (median).\n"
    b = res.get("batch")
    if b:
        out += (f"\nBatch of {b['photos']} {b['mp']:g}-MP photos (person and product alternating), "
                f"one process: **{b['photos_per_s']:.2f} photos/s** ({b['seconds']:.0f} s, "
                f"{b['cpu_s_per_photo']:.2f} CPU s per photo, {b['failed']} failed); "
                f"**peak RSS {b['peak_rss_mb']} MB** ({b['rss_models_loaded_mb']} MB with the models "
                f"loaded); load average at the end {b['load_average']}.\n")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2,12,24,50")
    ap.add_argument("--kinds", default="person,product")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--raw-mp", type=float, default=24, help="RAW (DNG) size in MP; 0 = none")
    ap.add_argument("--batch", type=int, default=100, help="photos in the batch run; 0 = none")
    ap.add_argument("--batch-mp", type=float, default=24)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child-batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("photos", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_batch:
        print(json.dumps(batch_child([Path(p) for p in args.photos], args.child_batch, args.device)))
        return 0
    res = run([float(s) for s in args.sizes.split(",") if s], args.repeat, args.raw_mp, args.batch,
              args.batch_mp, args.device, kinds=tuple(args.kinds.split(",")),
              log=lambda s: print(s, file=sys.stderr, flush=True))
    print(f"\nMachine: {common.machine_line(res['machine'])}; models loaded in {res['model_load_s']} s\n")
    return common.emit(res, markdown(res), args.json)


if __name__ == "__main__":
    sys.exit(main())
