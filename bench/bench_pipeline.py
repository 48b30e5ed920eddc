"""Pipeline benchmark: per-stage and end-to-end time and peak memory, photo in -> result document.

Builds test photos at 2, 12, 24 and 50 MP (JPEG, quality 92) by resampling real photos
from ../shared/data/dev (a person and a product shot) into a temporary folder — nothing is
copied into the project — then processes each several times with the same Processor the CLI
and the GUI use, and prints a markdown table.

    .venv/bin/python bench/bench_pipeline.py [--sizes 2,12,24,50] [--repeat 3] [--device auto]
                                             [--batch 0] [--markdown docs/performance.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEV = Path(os.environ.get("STUDIO_SHARED_DATA", REPO.parent / "shared" / "data")) / "dev"

SOURCES = {
    "person": "persons/vton_models/049447_0.jpg",
    "product": "products/magento_luma/mb02-blue-0.jpg",
}
STAGES = ("load", "resize", "pose", "segmentation", "crops", "swatch", "write")


def make_photo(src: Path, megapixels: float, out: Path) -> Path:
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    s = (megapixels * 1e6 / (w * h)) ** 0.5
    big = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(out), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    import torch
    dev = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {dev}, torch {torch.__version__}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2,12,24,50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--kinds", default="person,product")
    ap.add_argument("--batch", type=int, default=0, help="also time a batch of N 24-MP photos (photos/s)")
    args = ap.parse_args(argv)

    from ml.device import configure_cpu_threads
    from studio_app.core.processing import Processor
    if not DEV.is_dir():
        print(f"shared dev data not found at {DEV}", file=sys.stderr)
        return 2
    configure_cpu_threads()
    proc = Processor(device=args.device)
    t = time.perf_counter()
    proc.pipeline.warm_up()
    t_models = time.perf_counter() - t

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in args.kinds.split(","):
            for mp in [float(s) for s in args.sizes.split(",")]:
                photo = make_photo(DEV / SOURCES[kind], mp, tmp / f"{kind}_{mp:g}mp.jpg")
                runs = []
                for r in range(args.repeat + 1):          # first run is a warm-up, not counted
                    t = time.perf_counter()
                    out = proc.process(photo, tmp / "out")
                    total = time.perf_counter() - t
                    if not out.ok:
                        print(f"FAILED {photo.name}: {out.error}", file=sys.stderr)
                        break
                    if r:
                        runs.append((total, out.timings))
                if not runs:
                    continue
                med = statistics.median(x[0] for x in runs)
                stage_med = {s: statistics.median(x[1].get(s, 0.0) for x in runs) for s in STAGES}
                rows.append((kind, mp, out.doc.source.width, out.doc.source.height, stage_med, med, peak_rss_mb()))

        batch_line = ""
        if args.batch:
            photo = make_photo(DEV / SOURCES["product"], 24, tmp / "batch_src.jpg")
            files = []
            for i in range(args.batch):
                p = tmp / f"b{i:04d}.jpg"
                os.link(photo, p)
                files.append(p)
            t = time.perf_counter()
            for p in files:
                proc.process(p, tmp / "bout")
            dt = time.perf_counter() - t
            batch_line = (f"\nBatch of {args.batch} 24-MP photos: {dt:.1f} s, {args.batch / dt:.2f} photos/s, "
                          f"peak RSS {peak_rss_mb():.0f} MB\n")

    print(f"\nMachine: {machine()}; model load {t_models:.2f} s\n")
    head = "| kind | MP | size | " + " | ".join(STAGES) + " | end-to-end s | peak RSS MB |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for kind, mp, w, h, st, med, rss in rows:
        cells = " | ".join(f"{st[s] * 1000:.0f} ms" for s in STAGES)
        print(f"| {kind} | {mp:g} | {w}x{h} | {cells} | {med:.2f} | {rss:.0f} |")
    print(batch_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
