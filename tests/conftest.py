"""Shared fixtures. Real photos come from ../shared/data (beside the checkout); tests that
need them skip cleanly where that folder is absent. Model weights come from weights/
(fetched by `studio-catalog models fetch`); tests needing them skip when absent."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STUDIO_SHARED_DATA", REPO.parent / "shared" / "data"))
DEV = SHARED_DATA / "dev"
WEIGHTS = REPO / "weights"


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # After pytest-xvfb has (maybe) set DISPLAY: without any display Qt would abort the run.
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    # One graph cache per test run (ml.graph_cache): the first Pipeline builds the frozen graphs,
    # every later one (and every child process) loads them; the user's own cache is not touched.
    if "STUDIO_GRAPH_CACHE" not in os.environ:
        import tempfile
        os.environ["STUDIO_GRAPH_CACHE"] = tempfile.mkdtemp(prefix="studio-graphs-")


@pytest.fixture(scope="session")
def dev_data() -> Path:
    if not DEV.is_dir():
        pytest.skip(f"shared dev data not found at {DEV}")
    return DEV


@pytest.fixture(scope="session")
def dev_manifest(dev_data) -> dict:
    return json.loads((dev_data / "manifest.json").read_text())


def dev_file(rel: str) -> Path:
    """Path of a dev photo; skips the test when it is not there."""
    p = DEV / rel
    if not p.exists():
        pytest.skip(f"shared dev file not found: {rel}")
    return p


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return WEIGHTS


def require_weights(*files: str) -> Path:
    missing = [f for f in files if not (WEIGHTS / f).is_file()]
    if missing:
        pytest.skip(f"model weights not fetched ({', '.join(missing)}); run `studio-catalog models fetch`")
    return WEIGHTS


@pytest.fixture(scope="session")
def cpu_processor():
    """One real Processor on the CPU (single torch thread, models warmed up) shared by the tests
    that push many photos through the real pipeline."""
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")
    import torch
    torch.set_num_threads(1)
    from studio_app.core.processing import Processor
    proc = Processor(device="cpu")
    proc.pipeline.warm_up()
    return proc


APPAREL_PERSON = "persons/ccp/photos/0002.jpg"        # a CCP look: jacket over a dress, shoes, hair
APPAREL_PRODUCT = "cutouts/shop_saleor/images/saleor__saleor-white-plimsolls-1.jpg"   # a sneaker


@pytest.fixture(scope="session")
def processed_apparel(tmp_path_factory, dev_data):
    """Results of one real person photo (with its garment map) and one real product photo
    (with its category), processed once per session by the real pipeline on the CPU:
    ``{"person": folder, "product": folder}``. Tests that edit must copy them
    (:func:`copy_result`)."""
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx",
                    "garments_u2netp.pt", "oidv4_ssd_mobilenetv2.tflite", "category_head.pt")
    import torch
    torch.set_num_threads(1)
    from studio_app.core.processing import Processor
    out = tmp_path_factory.mktemp("apparel")
    proc = Processor(device="cpu")
    folders = {}
    for key, rel in (("person", APPAREL_PERSON), ("product", APPAREL_PRODUCT)):
        o = proc.process(dev_file(rel), out)
        assert o.ok, o.error
        folders[key] = Path(o.folder)
    proc.close()
    return folders


def copy_result(folder: Path, out_root: Path) -> Path:
    """A private copy of a result folder under ``out_root`` (where a Studio on ``out_root``
    finds it for its photo)."""
    import shutil
    dst = out_root / folder.name
    shutil.copytree(folder, dst)
    return dst


def write_tiny_engines(d: Path) -> Path:
    """Untrained tiny OpenPose / YOLACT engines (``op_tiny.pth``, ``shop_yolact.pth``) in ``d``:
    real checkpoints the app can load in seconds, no downloaded weights needed."""
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from ml.openpose.config import get_config as op_config
    from ml.openpose.model import OpenPoseAttention
    from ml.openpose.train import export_checkpoint
    from ml.yolact.checkpoint import save_model
    from ml.yolact.config import get_config as yo_config
    from ml.yolact.model import Yolact
    export_checkpoint(OpenPoseAttention(op_config("tiny")), d / "op_tiny.pth", {"iterations": 0})
    save_model(d / "shop_yolact.pth", Yolact(yo_config("tiny")))
    return d


@pytest.fixture(scope="session")
def tiny_engines(tmp_path_factory) -> Path:
    return write_tiny_engines(tmp_path_factory.mktemp("tiny_engines"))
