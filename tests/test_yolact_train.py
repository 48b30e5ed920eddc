"""Training: the shared loop, YOLACT overfitting real CCP photos, resume, evaluation, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.training import LoopConfig, read_log, run_training
from tests.conftest import SHARED_DATA

torch.set_num_threads(1)

CCP = SHARED_DATA / "train" / "ccp"
CCP_ANN = CCP / "ccp_instances_coco.json"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ccp() -> Path:
    if not CCP_ANN.is_file():
        pytest.skip(f"CCP training data not found at {CCP}")
    return CCP


# ----------------------------------------------------------------------------- generic loop
def _linear_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]

    def step(m, b):
        xb, yb = b
        return {"mse": ((m(xb).squeeze(1) - yb) ** 2).mean()}
    return data, step


def test_loop_checkpoints_resume_cancel_and_log(tmp_path):
    data, step = _linear_problem()
    seen = []
    torch.manual_seed(1)
    m = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, 0.9)
    r = run_training(m, opt, data, step, tmp_path, LoopConfig(max_iters=7, checkpoint_every=3, log_every=1,
                     keep_last=2, grad_clip=1.0), scheduler=sched, progress=seen.append,
                     cancel=lambda: len(seen) >= 5)
    assert r.cancelled and r.iteration == 5 and [p.iteration for p in seen] == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in tmp_path.glob("ckpt_*.pth")) == ["ckpt_0000003.pth", "ckpt_0000005.pth"]
    first_loss = read_log(tmp_path)[0]["mse"]
    # resume in a fresh process-like state: new model/optimizer/scheduler objects
    m2 = torch.nn.Linear(3, 1)
    opt2 = torch.optim.SGD(m2.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 5, 0.9)
    r2 = run_training(m2, opt2, data, step, tmp_path, LoopConfig(max_iters=40, checkpoint_every=0, log_every=1),
                      scheduler=sched2, resume=True)
    assert not r2.cancelled and r2.iteration == 40
    assert r2.history[0]["iteration"] == 6                    # continued, not restarted
    assert r2.history[0]["lr"] == pytest.approx(0.09)          # scheduler state came back
    log = read_log(tmp_path)
    assert [e["iteration"] for e in log] == list(range(1, 41))
    assert log[-1]["mse"] < 0.2 * first_loss
    ck = torch.load(tmp_path / "last.pth", weights_only=False)
    assert ck["iteration"] == 40 and "rng" in ck and ck["optimizer"] is not None


def test_loop_skips_non_finite_losses(tmp_path):
    m = torch.nn.Linear(1, 1)
    w0 = m.weight.detach().clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    r = run_training(m, opt, [torch.ones(2, 1)], lambda mod, b: {"loss": mod(b).sum() * float("nan")},
                     tmp_path, LoopConfig(max_iters=2, log_every=100))
    assert r.iteration == 2 and torch.equal(m.weight.detach(), w0)
    assert all(e.get("skipped_nonfinite") for e in read_log(tmp_path))


# ----------------------------------------------------------------------------- YOLACT on CCP
IMAGES = [1, 5]              # two CCP training photos
CATS = [100, 19]             # person, hair


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_tiny_yolact_overfits_two_ccp_photos(ccp, tmp_path):
    """80 steps on two real photos (160 px, person + hair): the loss falls and the predicted masks
    land on the ground truth. Measured: person IoU 0.85-0.92, hair 0.66-0.79, loss 16 -> ~1."""
    from ml.yolact.checkpoint import load_model
    from ml.yolact.data import CocoInstances
    from ml.yolact.evaluate import evaluate
    from ml.yolact.train import train
    res = train("tiny", ccp, CCP_ANN, tmp_path, iterations=80, image_ids=IMAGES, category_ids=CATS,
                augment=False, device="cpu", log_every=10, checkpoint_every=0, lr=5e-3, batch_size=2)
    assert res["iterations"] == 80 and res["num_classes"] == 3
    log = read_log(tmp_path)
    assert log[-1]["loss"] < 0.3 * log[0]["loss"]
    assert log[-1]["mask"] < 0.3 * log[0]["mask"]
    model = load_model(tmp_path / "model_final.pth", device="cpu")
    assert model.cfg.category_ids == tuple(CATS)
    ds = CocoInstances(ccp, CCP_ANN, 160, train=False, category_ids=CATS, image_ids=IMAGES)
    ious = {0: [], 1: []}
    for i in range(len(ds)):
        rgb, masks, _, labels, _ = ds.load_raw(i)
        det = model.predict(rgb)[0]
        assert det.masks.shape[1:] == rgb.shape[:2]
        for j, lab in enumerate(labels):
            cand = np.nonzero(det.classes == lab)[0][:3]
            ious[int(lab)].append(max((_mask_iou(det.masks[k], masks[j] > 0) for k in cand), default=0.0))
    assert min(ious[0]) > 0.7, ious           # person
    assert min(ious[1]) > 0.45, ious          # hair (small, thin)
    # the evaluation path on the same photos: mask AP50 is high after overfitting
    r = evaluate(model, ccp, CCP_ANN, device="cpu", image_ids=IMAGES, fps_iters=2)
    assert r["images"] == 2 and r["fps"] > 0
    assert r["mask"]["AP50"] > 0.6 and r["box"]["AP50"] > 0.6, r


def test_yolact_resume_continues_exactly(ccp, tmp_path):
    from ml.yolact.train import train
    kw = dict(image_ids=[1], category_ids=[100], augment=False, device="cpu", log_every=1, lr=5e-3,
              batch_size=1)
    straight = train("tiny", ccp, CCP_ANN, tmp_path / "a", iterations=4, checkpoint_every=0, **kw)
    part = train("tiny", ccp, CCP_ANN, tmp_path / "b", iterations=2, checkpoint_every=1, **kw)
    assert part["iterations"] == 2
    resumed = train("tiny", ccp, CCP_ANN, tmp_path / "b", iterations=4, resume=True, checkpoint_every=0, **kw)
    assert resumed["iterations"] == 4
    log_b = read_log(tmp_path / "b")
    assert [e["iteration"] for e in log_b] == [1, 2, 3, 4]
    sa = torch.load(tmp_path / "a" / "model_final.pth", weights_only=False)["model"]
    sb = torch.load(tmp_path / "b" / "model_final.pth", weights_only=False)["model"]
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-5), k
    assert json.loads((tmp_path / "b" / "config.json").read_text())["category_ids"] == [100]


def test_augmentation_keeps_masks_and_boxes_consistent(ccp):
    from ml.yolact.data import CocoInstances
    ds = CocoInstances(ccp, CCP_ANN, 128, train=True, category_ids=[100, 39], image_ids=[1, 4], seed=3)
    for _ in range(6):
        for i in range(len(ds)):
            img, t = ds[i]
            assert img.shape == (3, 128, 128)
            m, b = t["masks"], t["boxes"]
            assert m.shape[0] == b.shape[0] == t["labels"].shape[0]
            for j in range(m.shape[0]):
                ys, xs = np.nonzero(m[j].numpy())
                if len(xs) < 20:
                    continue
                # the mask lies inside its (pixel) box, up to resampling
                x1, y1, x2, y2 = (b[j] * 128).tolist()
                assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2 and ys.min() >= y1 - 2 and ys.max() <= y2 + 2


def test_train_and_evaluate_cli_help(capsys):
    p = subprocess.run([sys.executable, "-m", "ml.yolact.train", "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "--config" in p.stdout and "--resume" in p.stdout
    from ml.yolact import evaluate
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--help"])
    assert e.value.code == 0 and "--model" in capsys.readouterr().out
    assert evaluate.main(["--model", "/nonexistent.pth", "--images", ".", "--ann", "/nonexistent.json"]) == 2


@pytest.mark.parametrize("bf16", ["1", "0"])
def test_loop_uses_bf16_autocast_on_a_bf16_cpu_only(tmp_path, monkeypatch, bf16):
    """On a CPU with native bf16 the shared training loop runs the forward pass in bfloat16
    (the parameters and their gradients stay float32); elsewhere in float32."""
    monkeypatch.setenv("STUDIO_CPU_BF16", bf16)
    m = torch.nn.Linear(4, 1)
    seen = []

    def step(mod, b):
        y = mod(b)
        seen.append(y.dtype)
        return {"loss": (y.float() - 1).pow(2).mean()}

    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    r = run_training(m, opt, [torch.ones(2, 4)], step, tmp_path, LoopConfig(max_iters=3, log_every=1))
    assert r.iteration == 3
    assert seen == [torch.bfloat16 if bf16 == "1" else torch.float32] * 3
    assert m.weight.dtype == torch.float32
