"""Export throughput and memory over many photos (default: 50, 100, 250, 500).

Builds synthetic studio shots in a temporary folder (product on white, 1600x1200 JPEG, each
different; every 4th a "person" document with head/top/bottom/shoes/full crops), then exports
them with a preset and prints a table:

    photos  items  seconds  photos/s  RSS after MB  peak RSS MB

Memory should stay flat: the exporter holds one source photo at a time, so RSS after 500
photos should be close to RSS after 50.

With the catalog of goods (default; ``--no-catalog`` for per-photo naming) the shots belong to
``--skus`` products (200) in ``results/catalog.sqlite``: 2-3 shots per SKU, an on-model shot's top
and bottom to two SKUs. A second table times the product panel's query (every SKU with its
completeness, and a SKU filter) on a catalog of 10,000 products (target: under 50 ms).

    python bench/bench_export.py [--preset amazon] [--photos 50,100,250,500] [--skus 200] [--keep DIR]
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


def build_catalog(results: Path, folders: list[Path], n_skus: int) -> None:
    """``n_skus`` products (front|back|on-model); shots assigned round-robin, person tops and
    bottoms to two different SKUs."""
    from studio_app.core.catalog import Assignment, Catalog, Product
    from studio_app.core.result import load
    products = [Product(f"SKU-{k:05d}", f"Product {k}", "blue", "apparel", ("front", "back", "on-model"))
                for k in range(n_skus)]
    rows = []
    with Catalog.open(results) as cat:
        for i, f in enumerate(folders):
            doc = load(f)
            sku = products[i % n_skus].sku
            key = cat.key(f)
            if doc.kind == "person":
                rows.append(Assignment(key, "top", sku, "on-model", False))
                rows.append(Assignment(key, "bottom", products[(i + 1) % n_skus].sku, "on-model", False))
            else:
                rows.append(Assignment(key, "product", sku, "front" if i < n_skus else "back", i < n_skus))
        cat.replace_all(products, rows)


def panel_timing(work: Path, n_products: int = 10_000, per_product: int = 3) -> None:
    """The product panel's queries on a large catalog: median of 7 runs."""
    from studio_app.core.catalog import Assignment, Catalog, Product
    products = [Product(f"SKU-{k:06d}", f"Product {k}", "red", "apparel", ("front", "back", "side", "on-model"))
                for k in range(n_products)]
    rows = [Assignment(f"shot_{k:06d}_{j}", "product", p.sku, ("front", "back", "side")[j], j == 0)
            for k, p in enumerate(products) for j in range(per_product)]
    db = work / "panel"
    db.mkdir(parents=True, exist_ok=True)
    with Catalog.open(db) as cat:
        cat.replace_all(products, rows)
        print(f"\nproduct panel, {n_products} products, {len(rows)} assignments (median of 7)")
        print(f"{'query':<34} {'ms':>8} {'rows':>7}")
        queries = (("all SKUs with completeness", lambda: cat.panel()),
                   ("first page (100 rows)", lambda: cat.panel(limit=100)),
                   ("SKU filter 'SKU-0012'", lambda: cat.panel(sku_contains="SKU-0012")),
                   ("incomplete, first page", lambda: cat.panel(status="incomplete", limit=100)),
                   ("status counts (filter badges)", lambda: list(cat.panel_counts().items())))
        for label, fn in queries:
            times = []
            for _ in range(7):
                t = time.perf_counter()
                got = fn()
                times.append((time.perf_counter() - t) * 1000)
            print(f"{label:<34} {sorted(times)[3]:>8.1f} {len(got):>7}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="amazon")
    ap.add_argument("--photos", default="50,100,250,500", help="comma-separated batch sizes")
    ap.add_argument("--keep", default=None, help="work in this folder and keep it")
    ap.add_argument("--skus", type=int, default=200, help="products the shots belong to (catalog of goods)")
    ap.add_argument("--no-catalog", action="store_true", help="per-photo naming, no catalog")
    ap.add_argument("--panel-products", type=int, default=10_000)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.photos.split(",")]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-export-"))
    photos, results = work / "photos", work / "results"
    photos.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i in range(max(sizes)):
        make_shot(i, photos, results)
    print(f"made {max(sizes)} synthetic shots in {time.perf_counter() - t:.1f} s  ({work})", file=sys.stderr)
    folders = sorted(p for p in results.iterdir() if p.is_dir())
    if not args.no_catalog:
        build_catalog(results, folders, args.skus)
    print(f"preset {args.preset}" + ("" if args.no_catalog else f", catalog of {args.skus} SKUs"))
    print(f"{'photos':>6} {'items':>6} {'seconds':>8} {'photos/s':>9} {'RSS after MB':>13} {'peak RSS MB':>12}")
    try:
        for n in sizes:
            out = work / f"out_{n}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            rep = export(folders[:n], args.preset, out)
            dt = time.perf_counter() - t
            if rep.conflicts or rep.errors:
                print("\n".join(rep.failure_lines()[:5]), file=sys.stderr)
            print(f"{n:>6} {len(rep.rows):>6} {dt:>8.1f} {n / dt:>9.2f} {rss_mb():>13.0f} {peak_rss_mb():>12.0f}",
                  flush=True)
        if rep.blocked:
            print(f"(last run: {len(rep.blocked)} images blocked by pre-flight, e.g. {rep.blocked[0][1][:90]})")
        panel_timing(work, args.panel_products)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
