"""OpenPose training on real photos (tiny config, CPU): overfit, checkpoints/resume, CLIs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ml.openpose.config import get_config
from ml.openpose.data import CocoPoseDataset, collate, load_coco_keypoints
from ml.openpose.grouping import group_people
from conftest import dev_file

torch.set_num_threads(1)

COCO = "persons/mmpose_coco/test_coco.json"
WHOLEBODY = "persons/mmpose_coco/test_coco_wholebody.json"
OCHUMAN = "persons/mmpose_ochuman/test_ochuman.json"


def _real_images():
    ann = dev_file(COCO)
    ims = load_coco_keypoints(ann, ann.parent, dev_file(WHOLEBODY))
    och = dev_file(OCHUMAN)
    ims += load_coco_keypoints(och, och.parent)
    return ims


def test_dataset_reads_coco_and_wholebody_feet(dev_data):
    ims = _real_images()
    assert len(ims) == 3
    people = [p for im in ims for p in im.people]
    assert sum(p.has_foot for p in people) >= 3        # WholeBody foot_kpts merged by ann id
    assert any(not p.has_foot for p in people)         # OCHuman: COCO-17 only
    footed = next(p for p in people if p.has_foot)
    assert (footed.keypoints[17:, 2] > 0).any()
    cfg = get_config("tiny")
    ds = CocoPoseDataset(ims, cfg, augment=True)
    a, b = ds.sample(0, seed=1), ds.sample(0, seed=1)
    assert torch.equal(a["image"], b["image"])          # seeded augmentation is reproducible
    batch = collate([ds.sample(i, seed=i) for i in range(len(ds))])
    assert batch["image"].shape == (3, 3, 128, 128)
    assert batch["heat"].shape == (3, 24, 16, 16) and batch["paf"].shape == (3, 52, 16, 16)
    # flips swap sides: a flipped sample's left shoulder is the unflipped right one, mirrored
    plain = CocoPoseDataset(ims, cfg.replace(flip_prob=0.0, rotate_deg=0, scale_range=(1, 1),
                                             center_jitter=0), augment=True).sample(0, seed=0)
    flipped = CocoPoseDataset(ims, cfg.replace(flip_prob=1.0, rotate_deg=0, scale_range=(1, 1),
                                               center_jitter=0), augment=True).sample(0, seed=0)
    k0, k1 = plain["keypoints"][0].numpy(), flipped["keypoints"][0].numpy()
    assert k1[5, 0] == pytest.approx(127 - k0[6, 0], abs=1e-3)
    assert k1[5, 1] == pytest.approx(k0[6, 1], abs=1e-3)


def test_tiny_model_overfits_real_photos_and_engine_finds_the_person(dev_data, tmp_path):
    from ml.openpose.engine import OpenPoseEstimator
    from ml.openpose.train import export_checkpoint, train
    from ml.training import read_log
    ims = _real_images()
    cfg = get_config("tiny").replace(lr=3e-3, sigma=6.0)
    iters = 150
    model, res = train(cfg, ims, tmp_path / "run", iters, device="cpu", augment=False,
                       checkpoint_every=0, log_every=25, batch_size=3, cache_images=True)
    assert res.iteration == iters
    log = read_log(tmp_path / "run")
    first, last = log[0]["loss"], log[-1]["loss"]
    # measured: ~180 -> ~40-50 in 150 iterations
    assert last < 0.45 * first, (first, last)

    ds = CocoPoseDataset(ims, cfg, augment=False)
    model.eval()
    batch = collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        paf, heat = model(batch["image"])[-1]
    for i in range(len(ds)):
        people = group_people(heat[i].numpy(), paf[i].numpy(), cfg)
        gts = batch["keypoints"][i].numpy()
        main = max(gts, key=lambda g: np.ptp(g[g[:, 2] > 0, 1]) if (g[:, 2] > 0).any() else 0)
        vis = main[:, 2] > 0
        best = None
        for p in people:
            m = vis & (p.keypoints[:, 2] > 0)
            if m.sum() < 10:
                continue
            e = float(np.median(np.linalg.norm(p.keypoints[m, :2] - main[m, :2], axis=1)))
            best = e if best is None else min(best, e)
        # measured: 2.5-5 px median error; one output cell is 8 px
        assert best is not None and best <= 8.0, (i, best)

    # the exported checkpoint as the pipeline's keypoint engine, on the whole photo
    path = export_checkpoint(model, tmp_path / "openpose_tiny.pth")
    im = ims[0]                                   # one person, 640x425
    person = im.people[0]
    ph = person.box[3] - person.box[1]
    size = int(round(max(im.width, im.height) * cfg.target_person_height * cfg.input_size / ph / 8)) * 8
    est = OpenPoseEstimator(path, "cpu", input_size=size)
    from ml.openpose.data import read_rgb
    res_pose = est.estimate(read_rgb(im.file))
    assert res_pose.person_score > 0.3
    ok = (res_pose.keypoints.score > 0) & (person.keypoints[:, 2] > 0)
    assert ok.sum() >= 10
    err = np.linalg.norm(res_pose.keypoints.xy[ok] - person.keypoints[ok, :2], axis=1)
    assert np.median(err) < 0.08 * ph, (np.median(err), ph)    # within 8% of the person's height


def test_checkpoint_round_trip_and_resume(dev_data, tmp_path):
    from ml.openpose.model import load_model
    from ml.openpose.train import train
    ims = _real_images()
    cfg = get_config("tiny")
    model, res = train(cfg, ims, tmp_path / "run", 2, device="cpu", checkpoint_every=1,
                       log_every=1, batch_size=2)
    assert (tmp_path / "run" / "last.pth").is_file()
    loaded, lcfg, ck = load_model(tmp_path / "run" / "last.pth", "cpu")
    assert lcfg == cfg and ck["iteration"] == 2
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x)[-1][1], loaded(x)[-1][1])
    model2, res2 = train(cfg, ims, tmp_path / "run", 4, device="cpu", checkpoint_every=0,
                         log_every=1, batch_size=2, resume=True)
    assert res2.iteration == 4 and [h["iteration"] for h in res2.history] == [3, 4]
    # resumed training starts from the saved weights, not from scratch
    changed = sum(float((a - b).abs().sum()) for a, b in
                  zip(loaded.state_dict().values(), model2.state_dict().values()))
    assert changed > 0


def test_train_and_evaluate_commands(dev_data, tmp_path, capsys):
    from ml.openpose import evaluate, train
    ann = dev_file(COCO)
    out = tmp_path / "run"
    rc = train.main(["--config", "tiny", "--ann", str(ann), "--images", str(ann.parent),
                     "--foot-ann", str(dev_file(WHOLEBODY)), "--out", str(out), "--iterations", "2",
                     "--workers", "0", "--batch-size", "2", "--device", "cpu", "--log-every", "1",
                     "--export", str(tmp_path / "op.pth")])
    assert rc == 0
    assert (out / "last.pth").is_file() and (out / "log.jsonl").is_file()
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    meta = json.loads((tmp_path / "op.pth").with_suffix(".json").read_text())
    assert meta["config"]["name"] == "tiny"
    rc = evaluate.main(["--ann", str(ann), "--images", str(ann.parent), "--foot-ann",
                        str(dev_file(WHOLEBODY)), "--checkpoint", f"tiny={tmp_path / 'op.pth'}",
                        "--device", "cpu", "--json", str(tmp_path / "eval.json")])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| Method | AP | AP<sup>50</sup> | AP<sup>75</sup> | AP<sup>M</sup> | AP<sup>L</sup> | FPS |" in table
    assert "| tiny |" in table
    numbers = json.loads((tmp_path / "eval.json").read_text())["tiny"]
    assert numbers["images"] == 2 and numbers["fps"] > 0
    assert set(numbers["coco17"]) == {"AP", "AP50", "AP75", "AP_M", "AP_L"} and "coco23" in numbers
