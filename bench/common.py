"""Helpers shared by the benchmarks: test photos made from the shared dev set, the machine
description, memory and load figures. Photos are written to a temporary folder only;
nothing from the shared data is copied into the project."""
from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from ml.device import cpu_model  # noqa: E402  (after the repo is on the path)

SHARED = Path(os.environ.get("STUDIO_SHARED_DATA", REPO.parent / "shared" / "data"))
DEV = SHARED / "dev"

# a studio model shot (full length, white backdrop) and a product on white
SOURCES = {
    "person": "persons/vton_models/049447_0.jpg",
    "product": "products/magento_luma/mb02-blue-0.jpg",
}


def require_dev() -> None:
    if not (DEV / SOURCES["person"]).exists() or not (DEV / SOURCES["product"]).exists():
        sys.exit(f"shared dev photos not found under {DEV} (set STUDIO_SHARED_DATA)")


def make_jpeg(kind: str, megapixels: float, out: Path, quality: int = 92) -> Path:
    """The dev photo of ``kind`` resampled (bicubic) to ``megapixels`` and saved as JPEG,
    the way a camera of that resolution would deliver it."""
    img = cv2.imread(str(DEV / SOURCES[kind]), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    s = (megapixels * 1e6 / (w * h)) ** 0.5
    big = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    if not cv2.imwrite(str(out), big, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"could not write {out}")
    return out


def make_dng(kind: str, megapixels: float, out: Path) -> Path:
    """A real (uncompressed, 12-bit Bayer RGGB) DNG of the dev photo at ``megapixels``, written
    with the project's own hand-made DNG writer (tests/badinputs.py); LibRaw demosaics it."""
    sys.path.insert(0, str(REPO / "tests"))
    from badinputs import make_dng as _make_dng
    img = cv2.imread(str(DEV / SOURCES[kind]), cv2.IMREAD_COLOR)[:, :, ::-1]
    h, w = img.shape[:2]
    s = (megapixels * 1e6 / (w * h)) ** 0.5
    W, H = 2 * round(w * s / 2), 2 * round(h * s / 2)
    big = cv2.resize(np.ascontiguousarray(img), (W, H), interpolation=cv2.INTER_CUBIC)
    lin = (big.astype(np.float32) / 255.0) ** 2.2          # approximately linear light
    del big
    out.write_bytes(_make_dng(lin))
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return float("nan")


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return float("nan")


def machine() -> dict:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "ram_gb": round(ram_gb(), 1), "gpu": gpu,
        "torch": torch.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}",
        "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load_average": round(load_average(), 2),
    }


def machine_line(m: dict) -> str:
    gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    return (f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {gpu}; torch {m['torch']} "
            f"({m['torch_threads']} intra-op threads), OpenCV {m['opencv']}, Python {m['python']}, "
            f"{m['os']}; {m['date']}; 1-min load average at start {m['load_average']}")


def run_child(args: list[str], timeout: float = 3600, parse: bool = True):
    """Run a benchmark step in a fresh Python process (so its peak memory is its own) and
    return the JSON object it prints on its last line (``parse=False``: its stdout)."""
    env = dict(os.environ)
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=str(REPO))
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{r.stderr[-3000:]}")
    if r.stderr:
        sys.stderr.write(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1]) if parse else r.stdout


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return float("nan")
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def emit(res: dict, table: str, json_path: str | None) -> int:
    """Print a benchmark's markdown table and, if asked, save its raw figures as JSON."""
    print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(res, indent=1))
    return 0
