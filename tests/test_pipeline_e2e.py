"""End to end on real photos: photo -> Processor -> result document on disk, checked the way a
user would notice: the person mask overlaps the labelled person, zone crops cover the labelled
garments, keypoints sit near the COCO ground truth, products come out on pure white, swatch
colours match the catalogue's colour names, and the source photos are untouched."""
from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from conftest import DEV, dev_file, require_weights
from studio_app.core import result as rd

CCP = ["0024", "0045", "0084", "0113", "0125", "0143"]
PRODUCTS = {  # Magento catalogue shots on white without a person; label -> expected family
    "products/magento_luma/mb02-blue-0.jpg": "blue",
    "products/magento_luma/mb05-black-0.jpg": "black",
    "products/magento_luma/mb02-gray-0.jpg": "gray",
    "products/magento_luma/luma-stability-ball-pink.jpg": "pink",
    "products/magento_luma/wb02-green-0.jpg": "green",
}


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def processor():
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")
    from studio_app.core.processing import Processor
    return Processor(device="auto")


@pytest.fixture(scope="module")
def processed(processor, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    photos = [dev_file(f"persons/ccp/photos/{s}.jpg") for s in CCP]
    photos += [dev_file("persons/mmpose_coco/000000000785.jpg")]
    photos += [dev_file(p) for p in PRODUCTS]
    before = {p: sha(p) for p in photos}
    outcomes = {p: processor.process(p, out) for p in photos}
    return out, outcomes, before


def labels():
    lab = json.loads((DEV / "persons/ccp/labels.json").read_text())
    idx = {n: i for i, n in enumerate(lab["labels"])}
    zm = lab["suggested_zone_mapping"]
    return idx, zm


def test_every_photo_processed_and_sources_untouched(processed):
    out, outcomes, before = processed
    for p, o in outcomes.items():
        assert o.ok, o.error
        assert sha(p) == before[p], f"{p.name} was modified"
        doc = rd.load(o.folder)                      # the document round-trips through the reader
        assert doc.source.sha256 == before[p]
        for f in [doc.mask] + [it.file for it in doc.items] + [it.swatch.file for it in doc.items if it.swatch]:
            assert (o.folder / f).is_file(), f"{f} named in the document is missing"


def test_person_mask_overlaps_labelled_person(processed):
    _, outcomes, _ = processed
    ious = []
    for s in CCP:
        o = outcomes[DEV / f"persons/ccp/photos/{s}.jpg"]
        assert o.doc.kind == "person"
        mask = cv2.imread(str(o.folder / o.doc.mask), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (o.doc.source.height, o.doc.source.width)
        assert set(np.unique(mask)) <= {0, 255}
        gt = cv2.imread(str(DEV / f"persons/ccp/labels/{s}.png"), cv2.IMREAD_GRAYSCALE) > 0
        m = mask > 127
        ious.append((m & gt).sum() / (m | gt).sum())
    assert min(ious) > 0.8 and np.mean(ious) > 0.9, ious


@pytest.mark.parametrize("zone,min_cover", [("top", 0.75), ("bottom", 0.8), ("shoes", 0.8)])
def test_zone_crops_cover_labelled_garments(processed, zone, min_cover):
    _, outcomes, _ = processed
    idx, zm = labels()
    covers = []
    for s in CCP:
        o = outcomes[DEV / f"persons/ccp/photos/{s}.jpg"]
        lab = cv2.imread(str(DEV / f"persons/ccp/labels/{s}.png"), cv2.IMREAD_GRAYSCALE)
        g = np.isin(lab, [idx[n] for n in zm[zone]])
        if g.sum() < 400:
            continue
        it = o.doc.item(zone)
        assert it is not None, f"{s}: labelled {zone} garment but no {zone} crop"
        x0, y0, x1, y1 = (int(round(v)) for v in it.box)
        inside = g[max(0, y0):y1, max(0, x0):x1].sum()
        covers.append(inside / g.sum())
    assert covers, f"no photo with a labelled {zone}"
    assert np.median(covers) >= min_cover, covers


def test_keypoints_near_coco_ground_truth(processed):
    _, outcomes, _ = processed
    o = outcomes[DEV / "persons/mmpose_coco/000000000785.jpg"]
    gt = json.loads((DEV / "persons/mmpose_coco/test_coco.json").read_text())
    ann = next(a for a in gt["annotations"] if a["image_id"] == 785)
    kp = np.array(ann["keypoints"], float).reshape(17, 3)
    size = np.sqrt(ann["bbox"][2] * ann["bbox"][3])
    assert len(o.doc.keypoints) == 23
    assert [k.name for k in o.doc.keypoints] == list(rd.KEYPOINT_NAMES)
    pred = np.array([[k.x, k.y] for k in o.doc.keypoints[:17]])
    vis = kp[:, 2] > 0
    err = np.linalg.norm(pred[vis] - kp[vis, :2], axis=1) / size
    assert np.median(err) < 0.05, err
    assert (err < 0.15).mean() >= 0.9, err
    # the small toes are not given by the model: score 0, never invented
    for name in ("left_small_toe", "right_small_toe"):
        assert o.doc.keypoint(name).score == 0.0


@pytest.mark.parametrize("rel,family", sorted(PRODUCTS.items()))
def test_products_on_pure_white_with_matching_swatch(processed, rel, family):
    _, outcomes, _ = processed
    o = outcomes[DEV / rel]
    doc = o.doc
    assert doc.kind == "product", doc.warnings
    assert doc.keypoints == []
    (item,) = doc.items
    assert item.zone == "product"
    img = cv2.imread(str(o.folder / item.file))
    h, w = img.shape[:2]
    assert h == w and h >= 500
    border = np.concatenate([img[:3].reshape(-1, 3), img[-3:].reshape(-1, 3),
                             img[:, :3].reshape(-1, 3), img[:, -3:].reshape(-1, 3)])
    assert (border == 255).all(), "catalog image border is not pure white"
    # the product is centred and fills a fixed share of the frame
    ys, xs = np.nonzero((img < 245).any(axis=2))
    assert abs((xs.min() + xs.max()) / 2 - w / 2) < 0.03 * w
    assert abs((ys.min() + ys.max()) / 2 - h / 2) < 0.03 * h
    assert 0.75 <= max(xs.max() - xs.min(), ys.max() - ys.min()) / w <= 0.9
    assert item.swatch is not None and item.swatch.family == family, item.swatch
    sw = cv2.imread(str(o.folder / item.swatch.file))
    assert sw.shape == (50, 50, 3)
    assert tuple(int(v) for v in sw[25, 25][::-1]) == tuple(item.swatch.rgb)
