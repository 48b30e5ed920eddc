"""Export throughput and memory over many photos (default: 50, 100, 250, 500).

Builds synthetic studio shots in a temporary folder (product on white, 1600x1200 JPEG, each
different; every 4th a "person" document with head/top/bottom/shoes/full crops), then exports
them with a preset and prints a table:

    photos  items  seconds  photos/s  RSS after MB  peak RSS MB

Memory should stay flat: the exporter holds one source photo at a time, so RSS after 500
photos should be close to RSS after 50.

    python bench/bench_export.py [--preset amazon] [--photos 50,100,250,500] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_app.core.export import export  # noqa: E402
from studio_app.core.result import Item, ResultDocument, Source, Swatch, save  # noqa: E402


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1e6 if sys.platform == "darwin" else r / 1e3


def make_shot(i: int, photos: Path, results: Path) -> None:
    rng = np.random.default_rng(i)
    w, h = 1600, 1200
    img = np.full((h, w, 3), 255, np.uint8)
    colour = tuple(int(v) for v in rng.integers(20, 220, 3))
    person = i % 4 == 3
    if person:
        img[:] = (236, 236, 236)
        cv2.ellipse(img, (800, 600), (220, 560), 0, 0, 360, colour, -1)
        cv2.circle(img, (800, 110), 70, (190, 150, 120), -1)
    else:
        cx, cy = int(rng.integers(650, 950)), int(rng.integers(500, 700))
        cv2.ellipse(img, (cx, cy), (int(rng.integers(200, 450)), int(rng.integers(150, 400))),
                    float(rng.integers(0, 180)), 0, 360, colour, -1)
    noise = rng.integers(0, 3, img.shape, dtype=np.uint8)          # each photo different
    img = cv2.add(img, noise) if not person else img
    photo = photos / f"shot_{i:04d}.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    import hashlib
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    mask = (np.abs(img.astype(np.int16) - img[0, 0]).max(axis=2) > 20).astype(np.uint8) * 255
    ys, xs = np.nonzero(mask)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    hexc = "#%02x%02x%02x" % colour
    sw = Swatch(rgb=list(colour), hex=hexc, family="blue", file="x_swatch.png")
    if person:
        x0, y0, x1, y1 = box
        hh = y1 - y0
        items = [Item("head", [x0, y0, x1, y0 + 0.15 * hh], "head.jpg", None),
                 Item("top", [x0, y0 + 0.15 * hh, x1, y0 + 0.5 * hh], "top.jpg", sw),
                 Item("bottom", [x0, y0 + 0.5 * hh, x1, y0 + 0.9 * hh], "bottom.jpg", sw),
                 Item("shoes", [x0, y0 + 0.85 * hh, x1, y1], "shoes.jpg", None),
                 Item("full", box, "full.jpg", None)]
    else:
        items = [Item("product", box, "product.jpg", sw)]
    folder = results / photo.stem
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "mask.png"), mask)
    save(ResultDocument(source=Source(str(photo), sha, w, h), kind="person" if person else "product",
                        kind_confidence=1.0, items=items, review={"status": "approved", "note": ""}), folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="amazon")
    ap.add_argument("--photos", default="50,100,250,500", help="comma-separated batch sizes")
    ap.add_argument("--keep", default=None, help="work in this folder and keep it")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.photos.split(",")]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-export-"))
    photos, results = work / "photos", work / "results"
    photos.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i in range(max(sizes)):
        make_shot(i, photos, results)
    print(f"made {max(sizes)} synthetic shots in {time.perf_counter() - t:.1f} s  ({work})", file=sys.stderr)
    folders = sorted(results.iterdir())
    print(f"preset {args.preset}")
    print(f"{'photos':>6} {'items':>6} {'seconds':>8} {'photos/s':>9} {'RSS after MB':>13} {'peak RSS MB':>12}")
    try:
        for n in sizes:
            out = work / f"out_{n}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            rep = export(folders[:n], args.preset, out)
            dt = time.perf_counter() - t
            if not rep.ok:
                print("\n".join(rep.failure_lines()[:5]), file=sys.stderr)
            print(f"{n:>6} {len(rep.rows):>6} {dt:>8.1f} {n / dt:>9.2f} {rss_mb():>13.0f} {peak_rss_mb():>12.0f}",
                  flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
