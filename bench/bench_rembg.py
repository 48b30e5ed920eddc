"""Side by side with a peer: rembg (U2-Net-p, onnxruntime) on the same photos.

rembg's u2netp model is the very file Studio Catalog ships (weights/u2netp.onnx, same MD5 as
rembg's release), placed where rembg looks for it (``U2NET_HOME`` pointing to a temporary
folder), so rembg never touches the network; a download attempt fails the benchmark.

For each photo, interleaved (so changes in machine load hit both alike), ``--repeat`` times:

* **rembg cut-out**: ``rembg.remove(photo_bytes, session=new_session("u2netp"))``: decode,
  U2-Net-p, mask to full size, cut-out, PNG bytes back (in memory, not written);
* rembg in memory: the same from an already decoded PIL image to a PIL image (no decode,
  no encode: the least rembg can do for a photo);
* **ours**: ``Processor.process``: the whole pipeline from the file to the result folder on
  disk (person/product, pose or U2-Net-p, full-resolution mask, crops, swatches, files).

The ratio is ours / rembg (< 1.0: our complete pipeline is faster than rembg's cut-out alone).

    .venv/bin/python bench/bench_rembg.py [--photos product:2,product:12,product:24,person:24] [--repeat 3]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def rembg_session(home: Path):
    """rembg's u2netp session on our own copy of the model file (no download)."""
    src = common.REPO / "weights" / "u2netp.onnx"
    if not src.exists():
        sys.exit(f"{src} not found (studio-catalog models fetch)")
    for d in (home, home / "models" / "u2netp"):       # flat (legacy) and per-model layouts
        d.mkdir(parents=True, exist_ok=True)
        dst = d / "u2netp.onnx"
        if not dst.exists():
            os.symlink(src, dst)
    os.environ["U2NET_HOME"] = str(home)
    try:
        import pooch
        import rembg
    except ImportError:
        sys.exit("rembg is not installed: .venv/bin/pip install rembg")

    def no_download(*a, **k):
        raise RuntimeError("rembg tried to download a model; the benchmark forbids the network")
    pooch.retrieve = no_download
    return rembg, rembg.new_session("u2netp")


def run(photos: list[tuple[str, float]], repeat: int, device: str, log=print) -> dict:
    common.require_dev()
    from PIL import Image

    from ml.device import configure_cpu_threads
    from studio_app.core.processing import Processor
    res: dict = {"rows": []}
    with tempfile.TemporaryDirectory(prefix="bench-rembg-") as tmp:
        tmp = Path(tmp)
        rembg, session = rembg_session(tmp / "u2net_home")
        import rembg as _r
        res["rembg_version"] = getattr(_r, "__version__", "?")
        import onnxruntime
        res["onnxruntime"] = onnxruntime.__version__
        configure_cpu_threads()
        proc = Processor(device=device)
        proc.pipeline.warm_up()
        res["machine"] = common.machine()
        for kind, mp in photos:
            photo = common.make_jpeg(kind, mp, tmp / f"{kind}_{mp:g}mp.jpg")
            data = photo.read_bytes()
            pil = Image.open(io.BytesIO(data))
            pil.load()
            rembg.remove(data, session=session)          # warm-up both
            proc.process(photo, tmp / "out")
            t_bytes, t_mem, t_ours = [], [], []
            for _ in range(repeat):
                t = time.perf_counter()
                png = rembg.remove(data, session=session)
                t_bytes.append(time.perf_counter() - t)
                t = time.perf_counter()
                cut = rembg.remove(pil, session=session)
                t_mem.append(time.perf_counter() - t)
                t = time.perf_counter()
                o = proc.process(photo, tmp / "out")
                t_ours.append(time.perf_counter() - t)
                if not o.ok:
                    raise RuntimeError(o.error)
            assert isinstance(png, (bytes, bytearray)) and png[:8] == b"\x89PNG\r\n\x1a\n"
            assert cut.mode == "RGBA" and cut.size == pil.size
            row = {"kind": kind, "mp": mp, "size": f"{pil.size[0]}x{pil.size[1]}",
                   "rembg_s": round(common.median(t_bytes), 3),
                   "rembg_mem_s": round(common.median(t_mem), 3),
                   "ours_s": round(common.median(t_ours), 3)}
            row["ratio"] = round(row["ours_s"] / row["rembg_s"], 2)
            row["ratio_mem"] = round(row["ours_s"] / row["rembg_mem_s"], 2)
            row["load_average"] = round(common.load_average(), 2)
            res["rows"].append(row)
            log(f"  {row}")
    res["repeat"] = repeat
    return res


def markdown(res: dict) -> str:
    lines = ["| photo | size | rembg cut-out s (bytes -> PNG) | rembg in memory s | ours, full pipeline s "
             "| **ours / rembg cut-out** | ours / rembg in memory |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['kind']} {r['mp']:g} MP | {r['size']} | {r['rembg_s']:.2f} | {r['rembg_mem_s']:.2f} | "
                     f"{r['ours_s']:.2f} | **{r['ratio']:.2f}x** | {r['ratio_mem']:.2f}x |")
    return ("\n".join(lines) + f"\n\nrembg {res['rembg_version']} (onnxruntime {res['onnxruntime']}, its "
            f"default session options), median of {res['repeat']} interleaved runs.\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default="product:2,product:12,product:24,person:24")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    photos = [(p.split(":")[0], float(p.split(":")[1])) for p in args.photos.split(",") if p]
    res = run(photos, args.repeat, args.device, log=lambda s: print(s, file=sys.stderr, flush=True))
    return common.emit(res, markdown(res), args.json)


if __name__ == "__main__":
    sys.exit(main())
