"""OpenPose with attention: blocks, attention masks, targets <-> grouping, OKS evaluation, engine."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ml.openpose.attention import AttentionEstimator, AttentionFusion
from ml.openpose.config import (CONFIGS, FLIP_INDEX, LIMBS, SIGMAS_23, TREE_LIMBS, get_config)
from ml.openpose.evaluate import COCO17_SIGMAS_FRAC, gt_23, oks_ap, people_to_results
from ml.openpose.grouping import Person, find_peaks, group_people
from ml.openpose.model import OpenPoseAttention
from ml.openpose.stages import StageCascade
from ml.openpose.targets import make_targets
from ml.openpose.vgg import VGGFront
from ml.types import KEYPOINT_NAMES, KP, PoseResult

torch.set_num_threads(1)
TINY = get_config("tiny")


def _grads_ok(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in module.parameters())


# ----------------------------------------------------------------------------- config / skeleton

def test_skeleton_covers_all_23_points_and_foot_limbs():
    assert len(KEYPOINT_NAMES) == 23
    # the first TREE_LIMBS limbs are a spanning tree of the 23 points
    parent = list(range(23))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for a, b in LIMBS[:TREE_LIMBS]:
        ra, rb = root(a), root(b)
        assert ra != rb, "tree limbs form a cycle"
        parent[ra] = rb
    assert len({root(i) for i in range(23)}) == 1
    for side in ("left", "right"):
        for part in ("big_toe", "small_toe", "heel"):
            assert (KP[f"{side}_ankle"], KP[f"{side}_{part}"]) in LIMBS
    # flips swap left/right partners and are an involution
    assert KEYPOINT_NAMES[FLIP_INDEX[KP["left_heel"]]] == "right_heel"
    assert all(FLIP_INDEX[FLIP_INDEX[i]] == i for i in range(23))
    assert len(SIGMAS_23) == 23


def test_named_configs_differ_only_where_they_should():
    full, plain = CONFIGS["openpose_attention_vgg19"], CONFIGS["openpose_vgg19"]
    assert full.attention and not plain.attention
    assert full.attention_layers == (7, 10, 13) and full.stages == 6
    assert get_config("tiny").to_dict() == type(TINY).from_dict(TINY.to_dict()).to_dict()
    with pytest.raises(KeyError):
        get_config("nope")


# ----------------------------------------------------------------------------- blocks

def test_vgg_front_shapes_and_gradients_with_and_without_attention():
    for name in ("tiny", "tiny_noatt"):
        cfg = get_config(name)
        front = VGGFront(cfg)
        x = torch.randn(2, 3, 64, 48)
        f = front(x)
        assert f.shape == (2, cfg.feature_channels, 8, 6)
        f.square().mean().backward()
        _grads_ok(front)
        if cfg.attention:
            assert set(front.last_masks) == {7, 10, 13}
            assert front.last_masks[7].shape == (2, 1, 16, 12)     # conv3_3 at stride 4
            assert front.last_masks[10].shape == (2, 1, 8, 6)      # conv4_2 at stride 8
        else:
            assert front.last_masks == {}


def test_full_size_front_counts_vgg19_layers_as_documented():
    cfg = CONFIGS["openpose_attention_vgg19"]
    front = VGGFront(cfg)
    widths = [c.out_channels for c in front.convs]
    assert widths == [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 256]
    assert front.estimators["7"].local.in_channels == 256     # conv3_3
    assert front.estimators["10"].local.in_channels == 512    # conv4_2
    assert front.estimators["13"].local.in_channels == 256    # conv4_3_CPM
    assert front.fusion.proj.in_channels == 256 + 512 + 256
    # ImageNet VGG-19 weights (torchvision layout) go into layers 1..12
    sd = {}
    idx = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25)
    for layer, i in enumerate(idx):
        conv = front.convs[layer]
        sd[f"features.{i}.weight"] = torch.full_like(conv.weight, 0.5 + layer)
        sd[f"features.{i}.bias"] = torch.zeros_like(conv.bias)
    assert front.load_vgg19_imagenet(sd) == 12
    assert float(front.convs[11].weight.detach()[0, 0, 0, 0]) == 11.5


def test_attention_estimator_mask_range_hard_mode_and_gradients():
    est = AttentionEstimator(16, 8)
    x = torch.randn(2, 16, 10, 12, requires_grad=True)
    y, m = est(x)
    assert m.shape == (2, 1, 10, 12)
    assert float(m.detach().min()) >= 0.0 and float(m.detach().max()) <= 1.0
    assert torch.allclose(y, x * m)
    y.sum().backward()
    _grads_ok(est)
    assert x.grad is not None
    hard = AttentionEstimator(16, 8, hard_inference=True)
    hard.load_state_dict(est.state_dict())
    with torch.no_grad():
        hard.score.bias.fill_(0.0)
    hard.eval()
    _, mh = hard(torch.randn(2, 16, 10, 12))
    assert set(torch.unique(mh).tolist()) <= {0.0, 1.0}
    hard.train()
    _, ms = hard(torch.randn(2, 16, 10, 12))
    assert ((ms > 0) & (ms < 1)).all()              # soft while training


def test_attention_reweights_features_and_changes_outputs():
    torch.manual_seed(0)
    model = OpenPoseAttention(TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        base = model(x)[-1][1].clone()
        masks = {k: v.clone() for k, v in model.attention_masks.items()}
    for m in masks.values():
        assert float(m.min()) >= 0 and float(m.max()) <= 1
    # zero one estimator: its mask becomes sigmoid(0) = 0.5 everywhere -> different output
    est = model.front.estimators["10"]
    with torch.no_grad():
        for p in est.parameters():
            p.zero_()
        out = model(x)[-1][1]
    assert torch.allclose(model.attention_masks[10], torch.full_like(model.attention_masks[10], 0.5))
    assert (out - base).abs().max() > 1e-4
    # an estimator that says "irrelevant everywhere" removes the layer's contribution
    with torch.no_grad():
        est.score.bias.fill_(-30.0)
        model(x)
    assert float(model.attention_masks[10].max()) < 1e-6


def test_fusion_aligns_stride4_and_stride8_maps():
    fus = AttentionFusion([4, 6, 5], 7)
    out = fus([torch.randn(1, 4, 16, 16), torch.randn(1, 6, 8, 8), torch.randn(1, 5, 8, 8)], (8, 8))
    assert out.shape == (1, 7, 8, 8) and float(out.detach().min()) >= 0


def test_stage_cascade_and_model_shapes_and_gradients():
    cas = StageCascade(TINY)
    f = torch.randn(2, TINY.feature_channels, 8, 8)
    outs = cas(f)
    assert len(outs) == TINY.stages
    for paf, heat in outs:
        assert paf.shape == (2, 52, 8, 8) and heat.shape == (2, 24, 8, 8)
    sum(o[0].sum() + o[1].sum() for o in outs).backward()
    _grads_ok(cas)
    model = OpenPoseAttention(TINY)
    outs = model(torch.randn(1, 3, 64, 96))
    assert outs[-1][0].shape == (1, 2 * len(LIMBS), 8, 12)
    assert outs[-1][1].shape == (1, 24, 8, 12)
    sum(o[0].square().mean() + o[1].square().mean() for o in outs).backward()
    _grads_ok(model)


# ----------------------------------------------------------------------------- targets + grouping

def _person(cx: float, top: float, h: float) -> np.ndarray:
    """23 keypoints of a standing person (x offsets / y offsets for a 170-unit body)."""
    pts = {0: (0, 10), 1: (-3, 7), 2: (3, 7), 3: (-7, 9), 4: (7, 9), 5: (-16, 28), 6: (16, 28),
           7: (-22, 55), 8: (22, 55), 9: (-25, 80), 10: (25, 80), 11: (-10, 85), 12: (10, 85),
           13: (-11, 120), 14: (11, 120), 15: (-12, 155), 16: (12, 155),
           17: (-14, 168), 18: (-19, 166), 19: (-10, 160), 20: (14, 168), 21: (19, 166), 22: (10, 160)}
    s = h / 170.0
    kp = np.zeros((23, 3), np.float32)
    for j, (dx, dy) in pts.items():
        kp[j] = (cx + dx * s, top + dy * s, 2)
    return kp


def test_targets_peaks_pafs_and_masks():
    kp = _person(100, 20, 300)[None]
    kp[0, KP["left_wrist"], 2] = 0                       # unlabelled point: no peak
    t = make_targets(kp, (46, 46), 8, 7.0, 1.0)
    heat, paf = t["heat"], t["paf"]
    assert heat.shape == (24, 46, 46) and paf.shape == (52, 46, 46)
    j = KP["nose"]
    gy, gx = np.unravel_index(heat[j].argmax(), heat[j].shape)
    assert abs(gx * 8 + 3.5 - kp[0, j, 0]) <= 4 and abs(gy * 8 + 3.5 - kp[0, j, 1]) <= 4
    assert heat[KP["left_wrist"]].max() == 0
    assert np.allclose(heat[-1], np.clip(1 - heat[:-1].max(0), 0, 1))
    # PAF of left_knee -> left_ankle points down the leg, unit length on the band
    c = LIMBS.index((KP["left_knee"], KP["left_ankle"]))
    vx, vy = paf[2 * c], paf[2 * c + 1]
    band = np.hypot(vx, vy) > 0
    assert band.sum() > 5
    assert np.allclose(np.hypot(vx, vy)[band], 1.0, atol=1e-5)
    assert (vy[band] > 0.95).all()
    # a person with no foot labels masks only the foot channels near them
    t2 = make_targets(kp, (46, 46), 8, 7.0, 1.0, has_foot=np.array([False]),
                      boxes=np.array([[60, 20, 140, 320]], np.float32))
    assert t2["heat_mask"][KP["left_heel"]].min() == 0 and t2["heat_mask"][KP["nose"]].min() == 1
    foot_limb = LIMBS.index((KP["left_ankle"], KP["left_heel"]))
    assert t2["paf_mask"][2 * foot_limb].min() == 0 and t2["paf_mask"][2 * c].min() == 1
    ign = np.zeros((46, 46), bool)
    ign[:5, :5] = True
    t3 = make_targets(kp, (46, 46), 8, 7.0, 1.0, ignore=ign)
    assert t3["heat_mask"][:, :5, :5].max() == 0 and t3["paf_mask"][:, 10:, 10:].min() == 1


@pytest.mark.parametrize("stride,size,sigma", [(8, 368, 7.0), (4, 256, 3.0)])
def test_targets_to_grouping_round_trip_three_people(stride, size, sigma):
    cfg = get_config("openpose_attention_vgg19")
    if stride == 8:
        kps = np.stack([_person(70, 20, 300), _person(180, 40, 280), _person(290, 10, 330)])
    else:
        kps = np.stack([_person(50, 20, 220), _person(128, 30, 200), _person(205, 10, 230)])
    kps[1, KP["right_wrist"], 2] = 0       # a missing point must come back with score 0
    t = make_targets(kps, (size // stride, size // stride), stride, sigma, 1.0)
    people = group_people(t["heat"], t["paf"], cfg, stride=stride)
    assert len(people) == 3
    used = set()
    for p in people:
        d = np.linalg.norm(kps[:, :, :2] - p.keypoints[None, :, :2], axis=2)
        d = np.where(kps[:, :, 2] > 0, d, 0).mean(1)
        i = int(d.argmin())
        used.add(i)
        vis = kps[i, :, 2] > 0
        assert (p.keypoints[vis, 2] > 0.95).all()      # refined peak height
        err = np.linalg.norm(p.keypoints[vis, :2] - kps[i, vis, :2], axis=1)
        assert err.max() <= 1.0, (i, err.max())          # well within one stride cell
        assert (p.keypoints[~vis, 2] == 0).all()
        for j in range(17, 23):                           # the foot points are there too
            assert p.keypoints[j, 2] > 0
    assert used == {0, 1, 2}


def test_grouping_drops_isolated_peaks_and_empty_maps():
    cfg = get_config("tiny")
    heat = np.zeros((24, 16, 16), np.float32)
    paf = np.zeros((52, 16, 16), np.float32)
    assert group_people(heat, paf, cfg) == []
    heat[KP["nose"], 5, 5] = 0.9                  # one peak, no limbs
    assert find_peaks(heat[:23], 0.1)[KP["nose"]].shape == (1, 3)
    assert group_people(heat, paf, cfg) == []


# ----------------------------------------------------------------------------- OKS evaluation

def _gt_dict(people: list[np.ndarray], areas: list[float], feet=True) -> dict:
    anns = []
    for i, (k, a) in enumerate(zip(people, areas), start=1):
        x0, y0 = k[:, :2].min(0)
        x1, y1 = k[:, :2].max(0)
        ann = {"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": float(a),
               "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
               "keypoints": [float(v) for v in k[:17].reshape(-1)],
               "num_keypoints": int((k[:17, 2] > 0).sum())}
        if feet:
            ann["foot_kpts"] = [float(v) for v in k[17:].reshape(-1)]
            ann["foot_valid"] = True
        anns.append(ann)
    return {"images": [{"id": 1, "file_name": "x.jpg", "width": 400, "height": 400}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(KEYPOINT_NAMES[:17]),
                            "skeleton": []}]}


def _oks(gt: np.ndarray, dt: np.ndarray, area: float, sigmas) -> float:
    s = np.asarray(sigmas)
    v = gt[:, 2] > 0
    d2 = ((gt[:, :2] - dt[:, :2]) ** 2).sum(1)
    e = d2 / (2 * s) ** 2 / (area + np.spacing(1)) / 2
    return float(np.exp(-e[v]).mean())


def test_oks_gt_as_predictions_is_perfect_and_perturbed_matches_hand_oks():
    gtk = [_person(100, 20, 300), _person(260, 40, 280)]
    gt = _gt_dict(gtk, [40000.0, 36000.0])
    exact = [Person(k.copy(), 1.0, 23) for k in gtk]
    res = people_to_results(1, exact, 17)
    ap = oks_ap(gt, res, COCO17_SIGMAS_FRAC)
    assert ap["AP"] == pytest.approx(1.0) and ap["AP50"] == pytest.approx(1.0)
    assert ap["AP_L"] == pytest.approx(1.0)
    # 23-point variant (foot sigmas) on the same perfect predictions
    ap23 = oks_ap(gt_23(gt), people_to_results(1, exact, 23), SIGMAS_23)
    assert ap23["AP"] == pytest.approx(1.0)
    # single person, every point moved by 6 px: AP = fraction of thresholds .50:.05:.95 <= OKS
    one = _gt_dict([gtk[0]], [40000.0])
    moved = gtk[0].copy()
    moved[:, 0] += 6.0
    oks = _oks(gtk[0][:17], moved[:17], 40000.0, COCO17_SIGMAS_FRAC)
    expected = np.mean([oks >= t for t in np.linspace(0.5, 0.95, 10)])
    assert 0 < expected < 1                       # the case really is in between
    got = oks_ap(one, people_to_results(1, [Person(moved, 0.9, 23)], 17), COCO17_SIGMAS_FRAC)
    assert got["AP"] == pytest.approx(expected, abs=1e-6)


def test_oks_wrapper_equals_direct_pycocotools_on_a_perturbed_multi_person_case():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    rng = np.random.default_rng(3)
    gtk = [_person(90, 20, 300), _person(250, 30, 200), _person(340, 200, 60)]
    gt = _gt_dict(gtk, [40000.0, 15000.0, 2000.0], feet=False)
    preds = []
    for k, sc in zip(gtk, (0.9, 0.7, 0.5)):
        m = k.copy()
        m[:, :2] += rng.normal(0, 5, size=(23, 2))
        preds.append(Person(m, sc, 23))
    preds.append(Person(_person(200, 250, 100), 0.95, 23))      # a false positive
    res = people_to_results(1, preds, 17)
    mine = oks_ap(gt, res)
    c = COCO()
    c.dataset = copy.deepcopy(gt)
    c.createIndex()
    d = c.loadRes(copy.deepcopy(res))
    ev = COCOeval(c, d, "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert mine["AP"] == pytest.approx(max(ev.stats[0], 0))
    assert mine["AP50"] == pytest.approx(max(ev.stats[1], 0))
    assert mine["AP_M"] == pytest.approx(max(ev.stats[3], 0))
    assert mine["AP_L"] == pytest.approx(max(ev.stats[4], 0))
    assert 0 < mine["AP"] < 1


# ----------------------------------------------------------------------------- engine

def test_engine_returns_pose_result_in_image_pixels(tmp_path):
    from ml.openpose.engine import OpenPoseEstimator
    from ml.openpose.train import export_checkpoint
    torch.manual_seed(0)
    model = OpenPoseAttention(TINY)
    # an untrained net: this checks the plumbing (export -> load -> letterbox -> PoseResult);
    # the trained case is in test_openpose_train.py
    path = export_checkpoint(model, tmp_path / "op.pth")
    assert path.with_suffix(".json").is_file()
    est = OpenPoseEstimator(path, "cpu")
    assert est.cfg == TINY
    rgb = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    res = est.estimate(rgb)
    assert isinstance(res, PoseResult)
    assert res.keypoints.xy.shape == (23, 2) and res.keypoints.score.shape == (23,)
    assert res.mask_prob is None
    assert 0.0 <= res.person_score <= 1.0
    # same weights -> same maps as the in-memory model
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = model.eval()(x)[-1][1]
        b = est.model(x)[-1][1]
    assert torch.allclose(a, b)


def test_engine_maps_grouped_people_back_to_source_pixels(monkeypatch):
    """Feed the engine synthetic 'network outputs' and check the letterbox inverse."""
    from ml.openpose import engine as eng
    cfg = get_config("tiny")
    est = eng.OpenPoseEstimator.from_model(OpenPoseAttention(cfg), "cpu", input_size=256)
    src = _person(300, 60, 500)                       # in a 640x600 photo
    s = 256 / 640
    kin = src.copy()
    kin[:, :2] = kin[:, :2] * s
    t = make_targets(kin[None], (256 // 8, 256 // 8), 8, cfg.sigma, 1.0)

    def fake_maps(model, x):
        h, w = x.shape[-2] // 8, x.shape[-1] // 8
        return (t["paf"][None, :, :h, :w], t["heat"][None, :, :h, :w])
    monkeypatch.setattr(eng, "predict_maps", fake_maps)
    res = est.estimate(np.zeros((600, 640, 3), np.uint8))
    assert res.person_score > 0.9
    err = np.linalg.norm(res.keypoints.xy - src[:, :2], axis=1)
    assert err.max() < 1.0 / s, err.max()       # under one input pixel, in source pixels
    assert (res.keypoints.score > 0.95).all()


# ----------------------------------------------------------------------------- pseudo-labels

def test_pseudolabels_are_coco_keypoints_the_dataset_reads(tmp_path):
    import cv2
    from ml.openpose.data import load_coco_keypoints
    from ml.openpose.pseudolabel import list_images, pseudolabel_images
    from ml.types import Keypoints
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), np.full((400, 300, 3), 200, np.uint8))
    kp = _person(150, 20, 350)

    def fake_estimate(rgb):            # at the working size (400 px long side here)
        assert rgb.shape[:2] == (400, 300)
        score = np.full(23, 0.9, np.float32)
        score[KP["left_small_toe"]] = 0.0             # BlazePose has no small toes
        score[KP["right_wrist"]] = 0.3                # below the threshold -> unlabelled
        if rgb[0, 0, 0] == 0:
            return PoseResult(0.0, Keypoints.empty(), None)
        return PoseResult(0.95, Keypoints(kp[:, :2].copy(), score), None)
    paths = list_images(tmp_path)
    cv2.imwrite(str(paths[2]), np.zeros((400, 300, 3), np.uint8))   # a photo without a person
    d = pseudolabel_images(paths, tmp_path, fake_estimate, max_side=1024)
    assert len(d["images"]) == 2 and len(d["info"]["skipped"]) == 1
    a = d["annotations"][0]
    assert len(a["keypoints"]) == 51 and len(a["foot_kpts"]) == 18 and a["foot_valid"]
    assert a["keypoints"][3 * KP["right_wrist"] + 2] == 0
    assert a["foot_kpts"][3 * 1 + 2] == 0 and a["foot_kpts"][2] == 2
    ann = tmp_path / "pl.json"
    ann.write_text(__import__("json").dumps(d))
    ims = load_coco_keypoints(ann, tmp_path)
    p = ims[0].people[0]
    assert p.has_foot
    vis = p.keypoints[:, 2] > 0
    assert np.allclose(p.keypoints[vis, :2], kp[vis, :2], atol=0.01)
    # a working copy smaller than the photo: coordinates come back in photo pixels
    big = tmp_path / "big"
    big.mkdir()
    cv2.imwrite(str(big / "b.jpg"), np.full((800, 600, 3), 200, np.uint8))
    d2 = pseudolabel_images(list_images(big), big, fake_estimate, max_side=400)
    k2 = np.asarray(d2["annotations"][0]["keypoints"]).reshape(17, 3)
    assert k2[0, 0] == pytest.approx(kp[0, 0] * 2, abs=0.02)


def test_pseudolabels_from_the_real_pose_stage(dev_data):
    from conftest import dev_file, require_weights
    from ml.openpose.pseudolabel import pseudolabel_images
    wdir = require_weights("pose_detection.tflite", "pose_landmark_full.tflite")
    try:
        from ml.stages.pose import PoseEstimator
    except ImportError:
        pytest.skip("pose stage not available")
    photo = dev_file("persons/ccp/photos/0002.jpg")
    est = PoseEstimator(wdir, "cpu")
    d = pseudolabel_images([photo], photo.parent, est.estimate, max_side=512)
    assert len(d["annotations"]) == 1
    a = d["annotations"][0]
    k = np.asarray(a["keypoints"]).reshape(17, 3)
    assert (k[:, 2] == 2).sum() >= 12                  # a full-length, clearly visible person
    im = d["images"][0]
    assert (k[k[:, 2] > 0, 0] < im["width"]).all() and (k[k[:, 2] > 0, 1] < im["height"]).all()
    assert k[KP["nose"], 1] < k[KP["left_hip"], 1] < k[KP["left_ankle"], 1]
    x, y, w, h = a["bbox"]
    assert h > 0.6 * im["height"]
