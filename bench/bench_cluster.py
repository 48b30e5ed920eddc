"""Processing on a Ray cluster (``--cluster local``) against the single-process run, on this machine.

For the same real dev photos: photos/s of one in-process Processor (one torch thread), then of a local
Ray instance with 1 and 2 workers (one CPU slot each), driven by the Studio exactly as
``studio-catalog process --cluster`` does. Also per photo: the driver's overhead (time the driver
waits for a photo minus the worker's own time on it: scheduling, transfer, unpacking, Studio) and the
serialised size of what travels (the request: paths and settings; the answer: the result document).

    python bench/bench_cluster.py [--photos 6] [--workers 1,2]

Needs the ``cluster`` extra (Ray) and the models; reads ../shared/data/dev (or STUDIO_SHARED_DATA).
"""
from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_app.cluster.worker import pack_outcome  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEV = Path(os.environ.get("STUDIO_SHARED_DATA", REPO.parent / "shared" / "data")) / "dev"
SOURCES = ["persons/ccp/photos", "cutouts/shop_saleor/images"]


def dev_photos(n: int) -> list[Path]:
    pools = [sorted(p for p in (DEV / s).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
             for s in SOURCES if (DEV / s).is_dir()]
    out = []
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop(0))
    if not out:
        sys.exit(f"no dev photos under {DEV}")
    return out


class Timed:
    """A processor wrapper that records how long the driver waited for each photo."""

    def __init__(self, inner):
        self.inner, self.waits, self.outcomes = inner, [], []

    @property
    def slots(self) -> int:
        return getattr(self.inner, "slots", 1)

    def process(self, photo, out_root, **kw):
        t = time.perf_counter()
        o = self.inner.process(photo, out_root, **kw)
        self.waits.append(time.perf_counter() - t)
        self.outcomes.append(o)
        return o

    def describe(self) -> str:
        return self.inner.describe()

    def close(self) -> None:
        pass


def run_batch(processor, photos: list[Path], out: Path) -> float:
    from studio_app.core.session import Session
    from studio_app.core.studio import Studio
    studio = Studio(out, processor, session=Session(out, autosave=False))
    t = time.perf_counter()
    for p in photos:
        studio.enqueue(p)
    studio.start()
    studio.wait_idle()
    dt = time.perf_counter() - t
    studio.close()
    failed = [o.error for o in processor.outcomes if not o.ok]
    if failed:
        print("failures:", *failed, sep="\n  ", file=sys.stderr)
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    photos = dev_photos(args.photos)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    rows = []
    try:
        import torch
        torch.set_num_threads(1)
        from studio_app.core.processing import Processor
        local = Processor(device="cpu")
        local.pipeline.warm_up()
        timed = Timed(local)
        dt = run_batch(timed, photos, tmp / "local")
        rows.append(("single process", len(photos) / dt, statistics.mean(timed.waits), None, None, None))

        from studio_app.cluster.connect import connect
        from studio_app.cluster.processor import ClusterProcessor
        from studio_app.core.processor import ProcessorSpec
        conn = connect("local", max(counts))
        for w in counts:
            proc = ClusterProcessor("local", workers=w, spec=ProcessorSpec(device="cpu"), connection=conn)
            proc.pool.wait_ready()
            timed = Timed(proc)
            dt = run_batch(timed, photos, tmp / f"ray{w}")
            worker = [o.timings.get("worker_total", 0.0) for o in timed.outcomes]
            overhead = statistics.mean(a - b for a, b in zip(timed.waits, worker))
            answer = statistics.mean(len(pickle.dumps(pack_outcome(o))) for o in timed.outcomes)
            request = len(pickle.dumps((str(photos[0]), str(tmp / "ray"), None, False)))
            rows.append((f"Ray local, {w} worker{'s' if w > 1 else ''}", len(photos) / dt,
                         statistics.mean(worker), overhead, request, answer))
            proc.pool.close()
        conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{len(photos)} dev photos, {os.cpu_count()} CPU cores, one torch thread per worker\n")
    print(f"{'run':<22} {'photos/s':>9} {'s/photo (worker)':>17} {'driver overhead ms':>19} "
          f"{'request B':>10} {'answer B':>9}")
    for name, rate, per, over, req, ans in rows:
        print(f"{name:<22} {rate:>9.2f} {per:>17.2f} {'' if over is None else f'{over * 1000:.0f}':>19} "
              f"{'' if req is None else req:>10} {'' if ans is None else f'{ans:.0f}':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
