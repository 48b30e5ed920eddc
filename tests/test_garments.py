"""The garment parser (ml.garments): CCP mapping, training command, parsing quality on real
CCP dev photos, garment-true zones and swatches, and the result document (schema 2, v1 read).

Real photos come from ../shared/data; tests skip where the data or the weights are absent.
The quality thresholds were measured on the shipped weights (docs/garments.md) with a margin.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ml.garments import CLASSES
from ml.garments.labels import CCP_TO_CLASS, ccp_lookup
from tests.conftest import DEV, SHARED_DATA, dev_file, require_weights

CCP_DEV = DEV / "persons" / "ccp"
CCP_TRAIN = SHARED_DATA / "train" / "ccp"
# IoU floors on the first 20 CCP dev photos, set ~15 % under what the shipped weights measured
# on the first 25 (top 0.47, bottom 0.35; clothing = top+bottom+dress as one region); the full
# dev numbers are in docs/garments.md
IOU_FLOOR = {"top": 0.38, "bottom": 0.27}
CLOTHING_FLOOR = 0.5


def _ccp(folder):
    if not (folder / "labels.json").is_file():
        pytest.skip(f"CCP data not found at {folder}")
    return folder


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _truth(stem):
    names = json.loads((CCP_DEV / "labels.json").read_text())["labels"]
    return ccp_lookup(names)[cv2.imread(str(CCP_DEV / "labels" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)]


@pytest.fixture(scope="module")
def parser():
    require_weights("garments_u2netp.pt")
    from ml.garments import GarmentParser
    return GarmentParser(device="cpu")


def test_every_ccp_label_has_a_class_and_the_mapping_follows_the_issue():
    names = json.loads((_ccp(CCP_DEV) / "labels.json").read_text())["labels"]
    assert set(names[1:]) == set(CCP_TO_CLASS), "a CCP label without a class (or a stale name)"
    lut = ccp_lookup(names)
    for ccp, cls in (("hat", "headwear"), ("coat", "top"), ("romper", "dress"), ("socks", "legwear"),
                     ("tights", "legwear"), ("purse", "bag"), ("glasses", "accessory"),
                     ("belt", "accessory"), ("skin", "skin"), ("null", "background")):
        assert CLASSES[lut[names.index(ccp)]] == cls, ccp


def test_train_garments_runs_two_steps_and_resumes(tmp_path):
    _ccp(CCP_TRAIN)
    require_weights("u2netp.onnx")
    from studio_app.cli import main
    out, exported = tmp_path / "run", tmp_path / "g.pt"
    common = ["train", "garments", "--ccp", str(CCP_TRAIN), "--out", str(out), "--limit", "2",
              "--size", "64x64", "--batch-persons", "2", "--batch-products", "1", "--threads", "1",
              "--extra-frames", "64x96,96x64"]
    products = SHARED_DATA / "train" / "products"
    if (products / "manifest.json").is_file():
        common += ["--products", str(products)]
    assert main(common + ["--iterations", "2", "--export", str(exported)]) == 0
    assert main(common + ["--iterations", "3", "--resume"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log][-1] == 3           # continued from 2, not from 0
    import torch
    assert torch.load(out / "last.pth", weights_only=False)["iteration"] == 3
    from ml.garments import GarmentParser
    res = GarmentParser(weights_file=exported, device="cpu").parse(np.full((90, 60, 3), 128, np.uint8))
    assert res.labels.shape == (90, 60) and res.labels.max() < len(CLASSES)
    assert abs(sum(res.shares.values()) - 1.0) < 1e-6 and 0.0 <= res.person_prob <= 1.0


def test_training_batches_mix_in_other_frame_shapes():
    """``--extra-frames``: some batches come at square / landscape frames -- persons cropped to
    the frame, products fitted whole into it, as the app parses a photo at its own aspect."""
    from ml.garments.data import GarmentBatches
    rng = np.random.default_rng(0)
    persons = [(rng.integers(0, 255, (160, 96, 3), dtype=np.uint8), np.ones((160, 96), np.uint8))
               for _ in range(40)]
    product = np.full((120, 120, 3), 255, np.uint8)
    product[30:90, 30:90] = (200, 30, 30)
    data = GarmentBatches(persons, [product], (96, 64), persons_per_batch=2, products_per_batch=1,
                          seed=0, extra_frames=((64, 64), (64, 96)))
    shapes = [tuple(b["image"].shape[-2:]) for b in data]
    assert set(shapes) == {(96, 64), (64, 64), (64, 96)}
    assert 0.5 <= shapes.count((96, 64)) / len(shapes) <= 0.75          # ~60 % the main frame
    for b in data:
        assert b["labels"].shape[-2:] == b["image"].shape[-2:]
        assert b["person"].tolist() == [1.0, 1.0, 0.0]
    plain = GarmentBatches(persons, [product], (96, 64), 2, 1, seed=0)
    assert {tuple(b["image"].shape[-2:]) for b in plain} == {(96, 64)}


def test_train_garments_bad_input_is_one_line(tmp_path, capsys):
    from studio_app.cli import main
    rc = main(["train", "garments", "--ccp", str(tmp_path), "--out", str(tmp_path / "r"),
               "--u2netp", str(tmp_path / "none.onnx")])
    assert rc == 2 and capsys.readouterr().err.startswith("error: ")


def test_parser_overlaps_the_ccp_labels(parser):
    from ml.garments.evaluate import evaluate
    r = evaluate(parser, _ccp(CCP_DEV), limit=20)
    for cls, floor in IOU_FLOOR.items():
        assert r["iou"][cls] >= floor, (cls, r["iou"])
    conf = np.array(r["confusion"])
    cl = [CLASSES.index(c) for c in ("top", "bottom", "dress")]
    inter = conf[np.ix_(cl, cl)].sum()
    union = conf[cl].sum() + conf[:, cl].sum() - inter
    assert inter / union >= CLOTHING_FLOOR, inter / union
    assert r["person_recall"] >= 0.9


def test_a_flat_garment_photo_is_not_a_person(parser):
    manifest = SHARED_DATA / "train" / "products" / "manifest.json"
    if not manifest.is_file():
        pytest.skip("product photos not found")
    from ml.garments.labels import product_negatives
    tops = [p for p in product_negatives(manifest.parent, "dev") if p.parent.name in ("top", "bottom")][:10]
    # The photo is routed as a product: the parser's person head is one vote among the body
    # evidence (skin, frame cuts, the detector), and it counts only as far as a body shows.
    from ml.io import load_image
    from ml.pipeline import Pipeline
    pipe = Pipeline(device="cpu")
    kinds = [pipe.analyze(load_image(p)).kind for p in tops]
    assert kinds == ["product"] * len(tops), kinds
    # The head alone is over-confident on flat garments (the 288-px weights: 5 of these 10
    # below 0.5; the earlier 224-px ones 7): that is why routing does not take it alone.
    probs = [parser.parse(_rgb(p)).person_prob for p in tops]
    assert sum(p < 0.5 for p in probs) >= 4, probs


@pytest.mark.xfail(reason="the shipped weights (224x160 then 288x192, ~4.5 h on a 2-core CPU) paint the "
                          "coat's lower part as dress/bottom; see docs/garments.md, Limits", strict=False)
def test_a_coats_top_zone_reaches_its_hem(parser):
    """CCP dev 0109: a long coat. The top zone must reach the coat's labelled hem."""
    photo = _ccp(CCP_DEV) / "photos" / "0109.jpg"
    from ml.stages.garment_zones import garment_zones
    truth = _truth("0109")
    hem = int(np.flatnonzero((truth == CLASSES.index("top")).any(1))[-1])
    items, _ = garment_zones(parser.parse(_rgb(photo)).labels)
    top = {it.zone: it.box for it in items}["top"]
    assert top[3] >= hem - 0.05 * truth.shape[0], (top, hem)


def test_a_known_garments_swatch_family(parser):
    """The top's swatch from the parser's pixels has the family of the labelled top's pixels."""
    from ml.stages.garment_zones import garment_zones, swatch_region
    from ml.colour import delta_e, srgb_to_lab
    from ml.stages.swatch import dominant_colour
    photo = _ccp(CCP_DEV) / "photos" / "0109.jpg"
    rgb, truth = _rgb(photo), _truth("0109")
    want = dominant_colour(rgb, truth == CLASSES.index("top"))
    labels = parser.parse(rgb).labels
    box = {it.zone: it.box for it in garment_zones(labels)[0]}["top"]
    got = dominant_colour(rgb, swatch_region(labels, "top", box), box=box)
    assert got is not None, "no swatch measured on the parsed top"
    # the same family, or (a light grey coat sits on the white/grey border) the same colour
    de = float(delta_e(srgb_to_lab(np.array(got.rgb, np.uint8)), srgb_to_lab(np.array(want.rgb, np.uint8))))
    assert got.family == want.family or de <= 6.0, (got, want, de)


def test_processing_writes_garments_png_with_the_classes(tmp_path):
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx", "garments_u2netp.pt")
    photo = _ccp(CCP_DEV) / "photos" / "0109.jpg"
    from studio_app.core.processing import Processor
    from studio_app.core.result import load
    out = Processor(device="cpu").process(photo, tmp_path, force_kind="person")
    assert out.ok, out.error
    doc = load(out.folder)
    assert doc.schema_version == 2 and doc.garments == {"file": "garments.png", "classes": list(CLASSES)}
    g = cv2.imread(str(out.folder / "garments.png"), cv2.IMREAD_UNCHANGED)
    assert g.dtype == np.uint8 and g.shape == (doc.source.height, doc.source.width)
    assert g.max() < len(CLASSES) and (g == CLASSES.index("top")).mean() > 0.05
    assert "top" in {it.zone for it in doc.items}
    assert json.loads((out.folder / "result.json").read_text())["garments"]["file"] == "garments.png"


def test_a_version_1_document_loads_saves_and_exports(tmp_path):
    photo = _ccp(CCP_DEV) / "photos" / "0109.jpg"
    from studio_app.core.export import export
    from studio_app.core.result import load, save
    rgb = _rgb(photo)
    h, w = rgb.shape[:2]
    folder = tmp_path / "res" / "0109"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "mask.png"), ((_truth("0109") > 0) * 255).astype(np.uint8))
    import hashlib
    v1 = {"schema_version": 1,
          "source": {"path": str(photo.resolve()), "sha256": hashlib.sha256(photo.read_bytes()).hexdigest(),
                     "width": w, "height": h},
          "kind": "person", "kind_confidence": 0.9, "mask": "mask.png", "keypoints": [],
          "items": [{"zone": "top", "box": [100, 120, 450, 600], "file": "top.jpg", "swatch": None},
                    {"zone": "full", "box": [0, 0, w, h], "file": "full.jpg", "swatch": None}],
          "needs_review": False, "warnings": [], "review": {"status": "approved", "note": ""}}
    (folder / "result.json").write_text(json.dumps(v1))
    doc = load(folder)
    assert doc.schema_version == 2 and doc.garments is None and [i.zone for i in doc.items] == ["top", "full"]
    save(doc, folder)
    again = json.loads((folder / "result.json").read_text())
    assert again["schema_version"] == 2 and "garments" not in again
    assert load(folder).items[0].box == [100, 120, 450, 600]
    rep = export([folder.parent], "generic", tmp_path / "catalog")
    assert rep.ok and rep.documents_exported == 1 and rep.written, rep


def test_a_worn_bra_tops_swatch_is_its_colour_not_the_midriff(cpu_processor, tmp_path):
    """Magento wb03-red_main: a red sports bra on a model. The parser gives some of the midriff
    the top's label; the swatch must be the garment's red, not the skin's brown."""
    require_weights("garments_u2netp.pt")
    from studio_app.core.result import load
    photo = dev_file("products/magento_luma/wb03-red_main.jpg")
    out = cpu_processor.process(photo, tmp_path)
    assert out.ok, out.error
    doc = load(out.folder)
    assert doc.kind == "person"
    top = doc.item("top")
    assert top is not None and top.swatch is not None
    assert top.swatch.family == "red", top.swatch


def test_skin_is_taken_out_of_a_garment_region_unless_it_is_most_of_it():
    """``without_skin``: skin pixels inside a garment's region go; a skin-coloured garment
    (most of its pixels skin-like) keeps them all."""
    from ml.stages.swatch import without_skin
    skin, red = (224, 172, 140), (200, 30, 40)
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[:] = red
    rgb[80:100, :] = skin                       # a strip of midriff under the top (a fifth)
    region = np.ones((100, 100), bool)
    out = without_skin(rgb, region, (0, 0, 100, 100), None)
    assert not out[80:, :].any() and out[:80, :].all()
    beige = np.full((100, 100, 3), skin, np.uint8)
    assert without_skin(beige, region, (0, 0, 100, 100), None).all()


def test_onepiece_targets_come_from_the_crops_own_labels():
    """The one-piece head learns "the outfit has a one-piece" from each training crop's labels:
    dress >= 5 % of the labelled person; a product negative or a crop with almost no body says
    nothing (not counted)."""
    import torch

    from ml.garments.augment import IGNORE
    from ml.garments.model import onepiece_targets
    dress, top, skin = (CLASSES.index(c) for c in ("dress", "top", "skin"))
    lab = torch.zeros(4, 40, 40, dtype=torch.long)
    lab[0, 5:35, 10:30] = top
    lab[0, 20:35, 10:30] = dress                   # half the person: a dress
    lab[1, 5:35, 10:30] = top
    lab[1, 34:35, 10:20] = dress                   # 10 px of 600: a stray pixel row, no one-piece
    lab[2] = IGNORE                                # padding only: a product fitted into the frame
    lab[2, 10:30, 10:30] = 0
    lab[3, 0:4, 0:4] = skin                        # 16 px of 1600: almost no body
    target, valid = onepiece_targets(lab, IGNORE)
    assert valid.tolist() == [True, True, False, False]
    assert target[:2].tolist() == [1.0, 0.0]


def _weights_with_onepiece(tmp_path, name, bias=None, drop=False):
    """The shipped weights re-exported: with the one-piece head's output forced (``bias``) or
    without the head (``drop``: weights trained before it existed)."""
    require_weights("garments_u2netp.pt")
    import torch

    from ml import weights
    ck = torch.load(weights.verify("garments_u2netp"), map_location="cpu", weights_only=True)
    state = dict(ck["model"])
    if drop:
        state = {k: v for k, v in state.items() if not k.startswith("onepiece.")}
    else:
        from ml.garments.model import GarmentNet
        fresh = GarmentNet().state_dict()
        for k in ("onepiece.0.weight", "onepiece.0.bias", "onepiece.2.weight", "onepiece.2.bias"):
            state[k] = (torch.zeros_like(fresh[k]) if k != "onepiece.2.bias"
                        else torch.full_like(fresh[k], float(bias))).half()
    path = tmp_path / name
    torch.save({"model": state, "meta": ck["meta"]}, path)
    return path


def test_the_onepiece_head_switches_dress_on_or_off_for_the_whole_photo(tmp_path):
    """A photo the head calls "no one-piece" has no `dress` pixel (they go to their next class);
    one it calls a one-piece has at least as much `dress` as without the head. Weights without
    the head load and parse as before (no one-piece probability)."""
    _ccp(CCP_DEV)
    from ml.garments import GarmentParser
    rgb = _rgb(CCP_DEV / "photos" / "0159.jpg")      # a belted top over culottes: part `dress` without the head
    old = GarmentParser(weights_file=_weights_with_onepiece(tmp_path, "old.pt", drop=True), device="cpu")
    assert old.net.has_onepiece is False
    base = old.parse(rgb)
    assert base.onepiece_prob is None and base.shares["dress"] > 0.01
    off = GarmentParser(weights_file=_weights_with_onepiece(tmp_path, "off.pt", bias=-20), device="cpu").parse(rgb)
    always = GarmentParser(weights_file=_weights_with_onepiece(tmp_path, "on.pt", bias=20), device="cpu")
    on = always.parse(rgb)
    assert off.onepiece_prob < 0.01 and on.onepiece_prob > 0.99
    assert off.shares["dress"] == 0.0
    assert off.shares["bottom"] + off.shares["top"] > base.shares["bottom"] + base.shares["top"]
    assert on.shares["dress"] >= base.shares["dress"]
    # the person head and every other class than dress and its neighbours are untouched
    assert abs(off.person_prob - base.person_prob) < 1e-6
    assert abs(off.shares["background"] - base.shares["background"]) < 0.01
    # `eval garments` scores the head: a head that always says "one-piece" finds every one and
    # is wrong on every outfit without
    from ml.garments.evaluate import evaluate
    r = evaluate(always, CCP_DEV, limit=4)["onepiece"]
    assert r["found"] == r["with"] and r["false"] == 4 - r["with"]
    assert "onepiece" not in evaluate(old, CCP_DEV, limit=1)


def test_fine_tuning_starts_from_exported_weights(tmp_path, capsys):
    """``train garments --init WEIGHTS``: a new run from exported weights (the head the file
    lacks starts untrained and says so); the export then carries the one-piece head."""
    _ccp(CCP_TRAIN)
    require_weights("u2netp.onnx")
    from studio_app.cli import main
    old = _weights_with_onepiece(tmp_path, "old.pt", drop=True)
    out = tmp_path / "g.pt"
    assert main(["train", "garments", "--ccp", str(CCP_TRAIN), "--out", str(tmp_path / "run"), "--limit", "2",
                 "--size", "64x64", "--batch-persons", "2", "--batch-products", "0", "--threads", "1",
                 "--iterations", "1", "--init", str(old), "--export", str(out)]) == 0
    assert "has no onepiece head; it starts untrained" in capsys.readouterr().err
    import torch
    got = torch.load(out, weights_only=True)["model"]
    ref = torch.load(old, weights_only=True)["model"]
    assert "onepiece.2.bias" in got
    # fine-tuned, not from scratch: one small step stays close to the starting weights
    k = "backbone.encoder.3.conv_in.conv.weight"
    assert torch.allclose(got[k].float(), ref[k].float(), atol=0.05)
    from ml.garments import GarmentParser
    assert GarmentParser(weights_file=out, device="cpu").parse(np.full((90, 60, 3), 128, np.uint8)).onepiece_prob is not None
