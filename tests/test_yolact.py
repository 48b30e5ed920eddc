"""YOLACT building blocks, Fast NMS, public checkpoint layout, checkpoints and COCO evaluation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ml.yolact.anchors import box_iou, decode, encode, make_priors, point_form
from ml.yolact.backbone import ResNetBackbone
from ml.yolact.checkpoint import (infer_public_config, load_model, load_public_state_dict,
                                  save_model)
from ml.yolact.config import TABLE1_CONFIGS, BackboneConfig, YolactConfig, get_config
from ml.yolact.detect import fast_nms, fast_nms_keep
from ml.yolact.fpn import FPN
from ml.yolact.head import PredictionHead
from ml.yolact.layers import SplitAttentionConv2d, WSConv2d
from ml.yolact.loss import YolactLoss, match
from ml.yolact.model import Yolact
from ml.yolact.protonet import ProtoNet

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- configs
def test_table1_configs_differ_only_in_the_backbone_option():
    base, ws, att = (get_config(n) for n in TABLE1_CONFIGS)
    assert base.backbone.depth == ws.backbone.depth == att.backbone.depth == 101
    assert base.max_size == ws.max_size == att.max_size == 800
    assert (base.backbone.ws, base.backbone.attention) == (False, False)
    assert ws.backbone.ws and not ws.backbone.attention
    assert att.backbone.attention and not att.backbone.ws
    for c in (base, ws, att):
        assert (c.conf_alpha, c.bbox_alpha, c.mask_alpha) == (1.0, 1.5, 6.125)
    assert base.replace(name="x", backbone=ws.backbone).to_dict() == ws.replace(name="x").to_dict()
    assert get_config("yolact_r50").backbone.blocks() == (3, 4, 6, 3)


def test_config_json_round_trip(tmp_path):
    cfg = get_config("yolact_r101_attention").replace(class_names=("a", "b"), category_ids=(3, 7), num_classes=3)
    p = cfg.save(tmp_path / "c.json")
    assert get_config(p) == cfg
    with pytest.raises(ValueError):
        get_config("no_such_config")


# ----------------------------------------------------------------------------- layers
def test_ws_conv_standardises_each_output_channel():
    torch.manual_seed(0)
    conv = WSConv2d(4, 6, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(torch.arange(6.0).view(6, 1, 1, 1))   # per-channel offset & scale
    w = conv.standardized_weight()
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.zeros(6), atol=1e-5)
    assert torch.allclose(w.var(dim=(1, 2, 3), unbiased=False), torch.ones(6), atol=1e-3)
    x = torch.randn(2, 4, 9, 9)
    ref = torch.nn.functional.conv2d(x, w, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-5)
    # invariant to an affine change of one output channel's kernel: a plain conv is not
    y0 = conv(x)
    with torch.no_grad():
        conv.weight[2].mul_(3.0).add_(5.0)
    assert torch.allclose(conv(x), y0, atol=1e-4)
    plain = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    plain.weight.data.copy_(conv.weight.data)
    assert not torch.allclose(plain(x), y0, atol=1e-2)
    conv(x).sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


@pytest.mark.parametrize("k,r,stride", [(1, 1, 1), (1, 2, 1), (2, 2, 2), (4, 1, 2), (2, 4, 1)])
def test_split_attention_shapes_groups_and_gradients(k, r, stride):
    torch.manual_seed(0)
    m = SplitAttentionConv2d(16, 32, 3, stride=stride, padding=1, cardinality=k, radix=r, min_inter_channels=8)
    assert m.conv.groups == k * r                          # one grouped conv with R*K groups
    assert m.conv.out_channels == 32 * r                   # G = K*R feature groups
    assert m.fc1.groups == k and m.fc2.groups == k         # two FC layers with K groups
    x = torch.randn(3, 16, 12, 12, requires_grad=True)
    y = m(x)
    assert y.shape == (3, 32, 12 // stride, 12 // stride)
    y.square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    feats, att = m.attention(x.detach())
    if r > 1:   # softmax over the R splits: the weights of a channel sum to one
        s = att.view(3, r, 32).sum(dim=1)
        assert torch.allclose(s, torch.ones_like(s), atol=1e-5)
    else:
        assert ((att > 0) & (att < 1)).all()
    m.eval()
    assert m(torch.randn(1, 16, 12, 12)).shape[0] == 1


def test_split_attention_with_ws_and_batch_of_one_in_training():
    m = SplitAttentionConv2d(8, 8, 3, padding=1, radix=2, min_inter_channels=4, conv=WSConv2d)
    assert isinstance(m.conv, WSConv2d)
    m.train()
    y = m(torch.randn(1, 8, 6, 6))
    y.sum().backward()
    assert y.shape == (1, 8, 6, 6)


@pytest.mark.parametrize("opts", [{}, {"ws": True, "norm": "gn"}, {"attention": True, "radix": 2, "cardinality": 2}])
def test_backbone_variants_forward_and_backward(opts):
    torch.manual_seed(0)
    bb = ResNetBackbone(BackboneConfig(depth=0, layers=(1, 2, 1, 1), base_width=8, min_inter_channels=8,
                                       gn_groups=4, **opts))
    x = torch.randn(2, 3, 64, 64)
    outs = bb(x)
    assert [o.shape[1] for o in outs] == bb.channels == [32, 64, 128, 256]
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]       # strides 4, 8, 16, 32
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in bb.parameters())
    if opts.get("ws"):
        assert all(isinstance(m, WSConv2d) for m in bb.modules() if isinstance(m, torch.nn.Conv2d))
    if opts.get("attention"):
        assert sum(isinstance(m, SplitAttentionConv2d) for m in bb.modules()) == 5


def test_resnet_depths_match_the_published_block_counts():
    bb = ResNetBackbone(BackboneConfig(depth=50))
    assert [len(l) for l in bb.layers] == [3, 4, 6, 3]
    n = sum(p.numel() for p in bb.parameters())
    assert n == 23_508_032             # torchvision resnet50 without fc (25,557,032 - 2,049,000)


def test_fpn_protonet_head_shapes_and_gradients():
    torch.manual_seed(0)
    feats = [torch.randn(2, c, s, s, requires_grad=True) for c, s in ((64, 20), (128, 10), (256, 5))]
    fpn = FPN([64, 128, 256], 32, 2)
    pyr = fpn(feats)
    assert [tuple(p.shape) for p in pyr] == [(2, 32, 20, 20), (2, 32, 10, 10), (2, 32, 5, 5), (2, 32, 3, 3), (2, 32, 2, 2)]
    proto = ProtoNet(32, 16, 8)(pyr[0])
    assert proto.shape == (2, 40, 40, 8) and (proto >= 0).all()
    head = PredictionHead(32, 16, 3, 5, 8)
    loc, conf, coef = head(pyr[1])
    assert loc.shape == (2, 300, 4) and conf.shape == (2, 300, 5) and coef.shape == (2, 300, 8)
    assert coef.abs().max() <= 1
    (proto.mean() + loc.mean() + conf.mean() + coef.mean()).backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


# ----------------------------------------------------------------------------- anchors / matching
def test_priors_encode_decode_round_trip():
    p = make_priors(4, 6, 24, (1.0, 0.5, 2.0), 96)
    assert p.shape == (4 * 6 * 3, 4)
    assert torch.allclose(p[0, :2], torch.tensor([0.5 / 6, 0.5 / 4]))
    assert math.isclose(float(p[1, 2] / p[1, 3]), 0.5, rel_tol=1e-5)       # ar 0.5: w/h = 0.5
    sq = make_priors(4, 6, 24, (1.0, 0.5, 2.0), 96, square=True)
    assert torch.allclose(sq[:, 2], sq[:, 3])
    gt = torch.rand(p.shape[0], 2) * 0.5
    gt = torch.cat([gt, gt + 0.1 + torch.rand(p.shape[0], 2) * 0.4], 1)
    assert torch.allclose(decode(encode(gt, p), p), gt, atol=1e-5)


def test_match_forces_each_ground_truth_onto_its_best_anchor():
    priors = make_priors(8, 8, 20, (1.0,), 160)
    gt = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.52, 0.52, 0.58, 0.58]])     # the second is tiny
    loc, conf, idx = match(gt, torch.tensor([0, 2]), priors, 0.5, 0.4)
    assert (conf == 3).sum() >= 1 and (conf == 1).sum() >= 1
    best = box_iou(gt, point_form(priors)).argmax(1)
    assert conf[best[1]] == 3 and idx[best[1]] == 1
    assert ((conf == 0) | (conf == -1) | (conf > 0)).all()


# ----------------------------------------------------------------------------- Fast NMS
def _iou_np(boxes):
    b = boxes.numpy().astype(np.float64)
    out = np.zeros((len(b), len(b)))
    for i in range(len(b)):
        for j in range(len(b)):
            iw = max(0.0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
            ih = max(0.0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
            inter = iw * ih
            area = lambda k: (b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1])
            out[i, j] = inter / (area(i) + area(j) - inter)
    return out


def _greedy_nms(iou, scores, thr):
    order = np.argsort(-scores, kind="stable")
    keep = []
    for i in order:
        if all(iou[i, j] <= thr for j in keep):
            keep.append(int(i))
    return set(keep)


def _fast_nms_definition(iou, scores, thr):
    """YOLACT's Fast NMS, written literally: j survives iff max_{i ranked above j} IoU(i, j) <= thr."""
    order = np.argsort(-scores, kind="stable")
    keep = set()
    for r, j in enumerate(order):
        ious = [iou[j, i] for i in order[:r]]
        if max(ious, default=0.0) <= thr:
            keep.add(int(j))
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_fast_nms_matches_its_definition_and_suppresses_a_superset_of_greedy(seed):
    g = torch.Generator().manual_seed(seed)
    n, c, thr = 40, 3, 0.5
    xy = torch.rand(n, 2, generator=g) * 0.6
    wh = 0.1 + torch.rand(n, 2, generator=g) * 0.3
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(c, n, generator=g) * 0.9 + 0.1
    b, s, cls, idx = fast_nms(boxes, scores, thr, top_k=n, conf_thresh=0.0, max_num_detections=1000)
    assert (s[:-1] >= s[1:]).all()
    iou_ref = _iou_np(boxes)
    assert np.allclose(iou_ref, box_iou(boxes, boxes).numpy(), atol=1e-6)
    for k in range(c):
        got = set(idx[cls == k].tolist())
        ref = _fast_nms_definition(iou_ref, scores[k].numpy(), thr)
        assert got == ref
        greedy = _greedy_nms(iou_ref, scores[k].numpy(), thr)
        assert got <= greedy
        # kept boxes overlap no higher-scoring kept box above the threshold
        kb = boxes[sorted(got)]
        iou = box_iou(kb, kb).fill_diagonal_(0)
        assert (float(iou.max()) if iou.numel() else 0.0) <= thr
    # the matrix form itself: upper-triangular IoU, max over columns
    sb = boxes[scores[0].argsort(descending=True)][None]
    keep = fast_nms_keep(sb, thr)[0]
    iou = box_iou(sb[0], sb[0]).triu(diagonal=1)
    assert torch.equal(keep, iou.max(dim=0).values <= thr)


def test_fast_nms_top_k_and_score_threshold():
    boxes = torch.tensor([[0, 0, .2, .2], [.5, .5, .7, .7], [.8, .8, .9, .9]])
    scores = torch.tensor([[0.9, 0.03, 0.6]])
    _, s, _, idx = fast_nms(boxes, scores, 0.5, top_k=2, conf_thresh=0.05)
    assert idx.tolist() == [0, 2] and torch.allclose(s, torch.tensor([0.9, 0.6]))


# ----------------------------------------------------------------------------- model / loss
def test_tiny_model_forward_loss_and_predict():
    torch.manual_seed(0)
    m = Yolact("tiny")
    x = torch.randn(2, 3, 160, 160)
    out = m(x)
    n = out["priors"].shape[0]
    assert out["loc"].shape == (2, n, 4) and out["conf"].shape == (2, n, 3) and out["coef"].shape == (2, n, 8)
    assert out["proto"].shape == (2, 40, 40, 8) and out["segm"].shape == (2, 2, 20, 20)
    masks = torch.zeros(1, 160, 160)
    masks[0, 30:100, 40:90] = 1
    t = [{"boxes": torch.tensor([[40 / 160, 30 / 160, 90 / 160, 100 / 160]]), "labels": torch.tensor([1]),
          "masks": masks} for _ in range(2)]
    losses = YolactLoss(m.cfg)(out, t)
    assert set(losses) >= {"cls", "box", "mask", "seg", "loss"}
    losses["loss"].backward()
    assert all(p.grad is not None for n_, p in m.named_parameters()), "every parameter gets a gradient"
    dets = m.predict([np.zeros((90, 120, 3), np.uint8)], conf_thresh=0.0)
    assert dets[0].masks.shape[1:] == (90, 120) and dets[0].masks.dtype == bool
    assert (dets[0].boxes[:, 2] <= 120).all() and len(dets[0]) <= m.cfg.max_detections


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    cfg = get_config("tiny").replace(backbone={"attention": True, "ws": True, "norm": "gn"})
    m = Yolact(cfg).eval()
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        ref = m(x)
    p = save_model(tmp_path / "m.pth", m)
    assert (tmp_path / "m.json").is_file()
    m2 = load_model(p, device="cpu")
    assert m2.cfg == cfg and not m2.training
    with torch.no_grad():
        got = m2(x)
    for k in ("loc", "conf", "coef", "proto"):
        assert torch.equal(ref[k], got[k]), k
    img = (np.random.default_rng(0).random((70, 50, 3)) * 255).astype(np.uint8)
    a, b = m.predict(img, conf_thresh=0.0)[0], m2.predict(img, conf_thresh=0.0)[0]
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.masks, b.masks)


# ----------------------------------------------------------------------------- public checkpoint layout
def published_yolact_base_shapes(blocks=(3, 4, 23, 3), num_classes=81, k=32, priors=3):
    """Parameter names/shapes of dbolya/yolact yolact_base (and yolact_resnet50 with blocks 3,4,6,3),
    written out from the published definitions (ResNetBackbone, FPN, mask_proto_net,
    PredictionModule with extra_head_net, semantic_seg_conv)."""
    s = {}

    def conv(name, o, i, kk, bias=False):
        s[name + ".weight"] = (o, i, kk, kk)
        if bias:
            s[name + ".bias"] = (o,)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            s[f"{name}.{p}"] = (c,)

    conv("backbone.conv1", 64, 3, 7)
    bn("backbone.bn1", 64)
    inpl = 64
    for st, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for b in range(n):
            p = f"backbone.layers.{st}.{b}"
            conv(p + ".conv1", planes, inpl, 1)
            bn(p + ".bn1", planes)
            conv(p + ".conv2", planes, planes, 3)
            bn(p + ".bn2", planes)
            conv(p + ".conv3", planes * 4, planes, 1)
            bn(p + ".bn3", planes * 4)
            if b == 0:
                conv(p + ".downsample.0", planes * 4, inpl, 1)
                bn(p + ".downsample.1", planes * 4)
            inpl = planes * 4
    for i, c in enumerate((2048, 1024, 512)):
        conv(f"fpn.lat_layers.{i}", 256, c, 1, True)
    for i in range(3):
        conv(f"fpn.pred_layers.{i}", 256, 256, 3, True)
    for i in range(2):
        conv(f"fpn.downsample_layers.{i}", 256, 256, 3, True)
    for i in (0, 2, 4, 8):
        conv(f"proto_net.{i}", 256, 256, 3, True)
    conv("proto_net.10", k, 256, 1, True)
    conv("prediction_layers.0.upfeature.0", 256, 256, 3, True)
    conv("prediction_layers.0.bbox_layer", priors * 4, 256, 3, True)
    conv("prediction_layers.0.conf_layer", priors * num_classes, 256, 3, True)
    conv("prediction_layers.0.mask_layer", priors * k, 256, 3, True)
    conv("semantic_seg_conv", num_classes - 1, 256, 1, True)
    return s


def test_yolact_base_matches_the_published_parameter_layout_and_loads_it():
    torch.manual_seed(0)
    pub = published_yolact_base_shapes()
    model = Yolact("yolact_base")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(ours) == set(pub)
    assert ours == pub
    # a synthetic public checkpoint: our weights under the published names, plus what the public
    # loader itself tolerates (legacy backbone.layerN keys, a third unused downsample layer)
    sd = {k: torch.full(shape, float(i % 97) / 97) for i, (k, shape) in enumerate(pub.items())}
    sd["backbone.layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    sd["fpn.downsample_layers.2.weight"] = torch.zeros(256, 256, 3, 3)
    report = load_public_state_dict(model, sd)
    assert "backbone.layer1.0.conv1.weight" in report["ignored"]
    msd = model.state_dict()
    for k in pub:
        assert torch.equal(msd[k], sd[k]), k
    cfg = infer_public_config(sd)
    assert (cfg.backbone.depth, cfg.num_classes, cfg.mask_dim, cfg.num_priors, cfg.max_size) == (101, 81, 32, 3, 550)
    # a checkpoint for another number of classes is refused with a readable message
    bad = dict(sd)
    bad["prediction_layers.0.conf_layer.weight"] = torch.zeros(3 * 21, 256, 3, 3)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_public_state_dict(model, bad)
    with pytest.raises(ValueError, match="not in the checkpoint"):
        load_public_state_dict(model, {k: v for k, v in sd.items() if not k.startswith("proto_net.10")})


def test_public_resnet50_checkpoint_file_loads_as_a_model(tmp_path):
    pub = published_yolact_base_shapes(blocks=(3, 4, 6, 3))
    torch.manual_seed(0)
    sd = {k: torch.randn(shape) * 0.01 for k, shape in pub.items()}
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = torch.ones_like(sd[k])
    path = tmp_path / "yolact_resnet50_54_800000.pth"
    torch.save(sd, path)
    m = load_model(path, device="cpu")
    assert m.cfg.backbone.depth == 50 and m.cfg.num_classes == 81 and m.cfg.square_anchors
    assert torch.equal(m.state_dict()["prediction_layers.0.mask_layer.weight"], sd["prediction_layers.0.mask_layer.weight"])
    with pytest.raises(ValueError, match="split-attention"):
        load_public_state_dict(Yolact(get_config("tiny").replace(backbone={"attention": True})), sd)


# ----------------------------------------------------------------------------- evaluation
def _coco_gt(objs):
    from pycocotools.coco import COCO
    from pycocotools import mask as mask_util
    import contextlib, io
    images = [{"id": i, "width": 200, "height": 200, "file_name": f"{i}.jpg"} for i in sorted({o[0] for o in objs})]
    anns = []
    for n, (img, cat, (x1, y1, x2, y2)) in enumerate(objs, 1):
        m = np.zeros((200, 200), np.uint8)
        m[y1:y2, x1:x2] = 1
        rle = mask_util.encode(np.asfortranarray(m))
        rle["counts"] = rle["counts"].decode()
        anns.append({"id": n, "image_id": img, "category_id": cat, "iscrowd": 0, "area": float(m.sum()),
                     "bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": rle})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def _dets(gt, items):
    from ml.yolact.detect import Detections
    from ml.yolact.evaluate import detections_to_coco
    boxes, segms = [], []
    for img, cat_index, (x1, y1, x2, y2), score in items:
        m = np.zeros((1, 200, 200), bool)
        m[0, y1:y2, x1:x2] = True
        d = Detections(np.array([[x1, y1, x2, y2]], np.float32), np.array([score], np.float32),
                       np.array([cat_index]), m)
        b, s = detections_to_coco(d, img, [1, 2])
        boxes += b
        segms += s
    return boxes, segms


def test_evaluation_of_ground_truth_is_perfect():
    from ml.yolact.evaluate import coco_metrics, markdown_table
    objs = [(1, 1, (10, 10, 150, 160)), (1, 2, (20, 30, 60, 70)), (2, 1, (5, 5, 25, 25))]
    gt = _coco_gt(objs)
    b, s = _dets(gt, [(img, cat - 1, box, 0.9) for img, cat, box in objs])
    r = coco_metrics(gt, b, s)
    for kind in ("box", "mask"):
        for k in ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L"):
            assert r[kind][k] == pytest.approx(1.0), (kind, k)
    table = markdown_table({"gt": {**r, "fps": 12.5}})
    assert "| gt | 12.5 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in table


def test_evaluation_partial_case_hand_computed():
    """Two large objects, one found (score .9) and one false positive (score .8): precision is 1 up
    to recall 0.5 and 0 after, so COCO's 101-point AP is 51/101 at every IoU threshold."""
    from ml.yolact.evaluate import coco_metrics
    gt = _coco_gt([(1, 1, (0, 0, 100, 120)), (1, 1, (100, 80, 200, 200))])
    b, s = _dets(gt, [(1, 0, (0, 0, 100, 120), 0.9), (1, 0, (0, 150, 60, 200), 0.8)])
    r = coco_metrics(gt, b, s)
    for kind in ("box", "mask"):
        for k in ("AP", "AP50", "AP75", "AP_L"):
            assert r[kind][k] == pytest.approx(51 / 101, abs=1e-6), (kind, k)
        assert math.isnan(r[kind]["AP_S"]) and math.isnan(r[kind]["AP_M"])   # no small/medium GT
    assert coco_metrics(gt, [], [])["mask"]["AP"] == 0.0


def test_engine_finds_a_trained_model_in_weights_and_segments(tmp_path):
    from ml.yolact.engine import YolactSegmenter, find_models
    torch.manual_seed(0)
    save_model(tmp_path / "products.pth", Yolact(get_config("tiny").replace(class_names=("bag", "shoe"))))
    (tmp_path / "other.pth").write_bytes(b"not yolact")
    (tmp_path / "other.json").write_text('{"a": 1}')
    found = find_models(tmp_path)
    assert found == [tmp_path / "products.pth"]
    seg = YolactSegmenter(found[0], device="cpu", score_thresh=0.0)
    assert seg.class_names == ("bag", "shoe")
    mask, det = seg.foreground(np.full((40, 30, 3), 200, np.uint8))
    assert mask.shape == (40, 30) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
