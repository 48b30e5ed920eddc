"""Smart Cropping: zone boxes from keypoints (+ person mask).

Real ground truth: COCO val2017 persons (mmpose test data) with hand-labelled 17 body
keypoints, COCO-WholeBody foot keypoints and person segmentation; OCHuman persons with
17 keypoints and segmentation. Synthetic cases for visibility rules and clipping.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import dev_file
from ml.stages.crops import PERSON_ZONES, recompute_box, smart_crop
from ml.types import KEYPOINT_NAMES, KP, Keypoints

pycocotools_mask = pytest.importorskip("pycocotools.mask")

FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
FEET = ("left_ankle", "right_ankle", "left_big_toe", "left_small_toe", "left_heel",
        "right_big_toe", "right_small_toe", "right_heel")


def _contains(box, pt, tol=0.0):
    x0, y0, x1, y1 = box
    return x0 - tol <= pt[0] <= x1 + tol and y0 - tol <= pt[1] <= y1 + tol


def _boxes(items):
    return {it.zone: it.box for it in items}


def _kp_from_coco(body, foot=None):
    k = np.asarray(body, np.float32).reshape(17, 3)
    f = np.asarray(foot if foot is not None else [0] * 18, np.float32).reshape(6, 3)
    allk = np.vstack([k, f])
    return Keypoints(allk[:, :2].copy(), (allk[:, 2] > 0).astype(np.float32))


def _decode_seg(seg, h, w):
    if isinstance(seg, str):
        import ast
        seg = ast.literal_eval(seg)
    if isinstance(seg, list):
        rle = pycocotools_mask.merge(pycocotools_mask.frPyObjects(seg, h, w))
    elif isinstance(seg.get("counts"), list):
        rle = pycocotools_mask.frPyObjects(seg, h, w)
    else:
        rle = seg
    return pycocotools_mask.decode(rle).astype(np.uint8) * 255


def _coco_persons():
    """(name, keypoints, (w, h), mask) for every annotated COCO/OCHuman person here."""
    out = []
    wb = json.loads(dev_file("persons/mmpose_coco/test_coco_wholebody.json").read_text())
    images = {im["id"]: im for im in wb["images"]}
    for a in wb["annotations"]:
        im = images[a["image_id"]]
        foot = a["foot_kpts"] if a.get("foot_valid") else None
        kp = _kp_from_coco(a["keypoints"], foot)
        mask = _decode_seg(a["segmentation"], im["height"], im["width"])
        out.append((f"coco{a['id']}", kp, (im["width"], im["height"]), mask))
    oc = json.loads(dev_file("persons/mmpose_ochuman/test_ochuman.json").read_text())
    oimages = {str(im["id"]): im for im in oc["images"]}
    for a in oc["annotations"]:
        im = oimages[str(a["image_id"])]
        body = a["keypoints"]
        if isinstance(body, str):
            body = json.loads(body)
        kp = _kp_from_coco(body)
        mask = _decode_seg(a["segmentation"], im["height"], im["width"])
        out.append((f"ochuman{a['id']}", kp, (im["width"], im["height"]), mask))
    return out


def test_zone_boxes_cover_the_labelled_body_parts():
    persons = _coco_persons()
    assert len(persons) >= 6
    counts = dict.fromkeys(PERSON_ZONES, 0)
    for name, kp, (w, h), mask in persons:
        vis = {n: kp.point(n) for n in KEYPOINT_NAMES
               if kp.score[KP[n]] > 0 and 0 <= kp.point(n)[0] < w and 0 <= kp.point(n)[1] < h}
        boxes = _boxes(smart_crop(kp, (w, h), mask))
        for zone, b in boxes.items():
            counts[zone] += 1
            x0, y0, x1, y1 = b
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (name, zone, b)
            assert all(float(v).is_integer() for v in b)
        # full: every visible keypoint and (nearly) the whole segmentation.
        assert "full" in boxes, name
        for n, p in vis.items():
            assert _contains(boxes["full"], p), (name, n)
        fx0, fy0, fx1, fy1 = (int(v) for v in boxes["full"])
        assert mask[fy0:fy1, fx0:fx1].sum() >= 0.98 * mask.sum(), name
        face = [n for n in FACE if n in vis]
        if "nose" in vis or len(face) >= 2:
            assert "head" in boxes, name
            for n in face:
                assert _contains(boxes["head"], vis[n]), (name, n)
        if all(n in vis for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")):
            assert "top" in boxes, name
            for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"):
                assert _contains(boxes["top"], vis[n]), (name, n)
            for n in ("left_elbow", "right_elbow"):   # arms included
                if n in vis:
                    assert _contains(boxes["top"], vis[n]), (name, n)
        legs = [n for n in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
                if n in vis]
        if any("hip" in n for n in legs) and any("knee" in n or "ankle" in n for n in legs):
            assert "bottom" in boxes, name
            for n in legs:
                assert _contains(boxes["bottom"], vis[n]), (name, n)
        feet = [n for n in FEET if n in vis]
        if feet:
            assert "shoes" in boxes, name
            for n in feet:
                assert _contains(boxes["shoes"], vis[n]), (name, n)
            # The shoe box is about the feet, not the legs: well below the knees.
            knees = [vis[n][1] for n in ("left_knee", "right_knee") if n in vis]
            if knees:
                assert boxes["shoes"][1] > min(knees), name
        else:
            assert "shoes" not in boxes, name
        # A head box is a head, not half the person.
        if "head" in boxes and "full" in boxes:
            assert (boxes["head"][3] - boxes["head"][1]) < 0.5 * (boxes["full"][3] - boxes["full"][1]), name
    assert counts["head"] >= 4 and counts["top"] >= 4 and counts["shoes"] >= 3


def test_skier_hat_is_inside_the_head_box():
    """COCO 785: a skier in a tall striped hat. The hat is in the person mask above the eyes;
    the head box must reach the top of it."""
    persons = {n: (kp, size, m) for n, kp, size, m in _coco_persons()}
    kp, (w, h), mask = persons["coco442619"]
    head = _boxes(smart_crop(kp, (w, h), mask))["head"]
    eye_y = min(kp.point("left_eye")[1], kp.point("right_eye")[1])
    cx = int(kp.point("nose")[0])
    cols = mask[:, cx - 10:cx + 10].any(axis=1)
    mask_top = int(np.flatnonzero(cols)[0])
    assert mask_top < eye_y - 15          # the hat really rises above the eyes
    assert head[1] <= mask_top
    assert head[1] >= mask_top - 30       # and the box does not run far beyond it


# ---- synthetic rules -------------------------------------------------------------------------

def _standing(w=600, h=1000, dy=0.0, dx=0.0):
    """A front-facing person, 23 keypoints all visible."""
    pts = {
        "nose": (300, 120), "left_eye": (312, 108), "right_eye": (288, 108),
        "left_ear": (330, 115), "right_ear": (270, 115),
        "left_shoulder": (370, 210), "right_shoulder": (230, 210),
        "left_elbow": (395, 340), "right_elbow": (205, 340),
        "left_wrist": (405, 460), "right_wrist": (195, 460),
        "left_hip": (345, 480), "right_hip": (255, 480),
        "left_knee": (340, 680), "right_knee": (260, 680),
        "left_ankle": (335, 870), "right_ankle": (265, 870),
        "left_big_toe": (350, 915), "left_small_toe": (365, 905), "left_heel": (330, 890),
        "right_big_toe": (250, 915), "right_small_toe": (235, 905), "right_heel": (270, 890),
    }
    kp = Keypoints.empty()
    for n, (x, y) in pts.items():
        kp.xy[KP[n]] = (x + dx, y + dy)
        kp.score[KP[n]] = 0.95
    return kp, (w, h)


def _person_mask(w=600, h=1000, dy=0, hat=False, skirt=False):
    import cv2
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (300, 110 + dy), (42, 55), 0, 0, 360, 255, -1)                   # head
    cv2.rectangle(m, (220, 200 + dy), (380, 500 + dy), 255, -1)                     # torso
    cv2.rectangle(m, (190, 210 + dy), (220, 470 + dy), 255, -1)                     # arms
    cv2.rectangle(m, (380, 210 + dy), (412, 470 + dy), 255, -1)
    cv2.rectangle(m, (245, 480 + dy), (355, 880 + dy), 255, -1)                     # legs
    cv2.rectangle(m, (225, 880 + dy), (375, 925 + dy), 255, -1)                     # feet
    if hat:
        cv2.rectangle(m, (255, 10 + dy), (345, 70 + dy), 255, -1)                   # top hat
    if skirt:
        pts = np.array([[250, 470 + dy], [350, 470 + dy], [450, 700 + dy], [150, 700 + dy]], np.int32)
        cv2.fillPoly(m, [pts], 255)
    return m


def test_all_zones_for_a_full_length_person_in_order():
    kp, size = _standing()
    items = smart_crop(kp, size, _person_mask())
    assert [it.zone for it in items] == list(PERSON_ZONES)
    assert all(it.swatch is None for it in items)
    b = _boxes(items)
    # Zones sit top to bottom and overlap only a little.
    assert b["head"][1] < b["top"][1] < b["bottom"][1] < b["shoes"][1]
    assert b["head"][3] <= b["top"][1] + 0.5 * (b["top"][3] - b["top"][1])
    assert b["shoes"][3] >= 925                      # down to the soles in the mask
    assert b["bottom"][3] >= 870 and b["bottom"][3] < b["shoes"][3]


def test_missing_or_out_of_frame_feet_give_no_shoes():
    kp, size = _standing()
    for n in FEET:
        kp.score[KP[n]] = 0.05                       # not detected
    assert "shoes" not in _boxes(smart_crop(kp, size, None))
    # Feet detected but outside the frame (a knee-length shot).
    kp, _ = _standing()
    zones = _boxes(smart_crop(kp, (600, 860), None))
    assert "shoes" not in zones and "bottom" in zones and "top" in zones
    assert zones["bottom"][3] == 860                # legs go on to the frame edge


def test_headless_torso_shot_has_no_head():
    kp, _ = _standing(dy=-190)                        # face above the frame top
    zones = _boxes(smart_crop(kp, (600, 1000), None))
    assert "head" not in zones
    assert {"top", "bottom", "shoes", "full"} <= set(zones)
    assert zones["top"][1] == 0                       # clipped, not negative


def test_low_scores_hide_zones():
    kp, size = _standing()
    kp.score[:] = 0.2
    assert smart_crop(kp, size, None) == []
    # With a mask only the full view can be framed.
    items = smart_crop(kp, size, _person_mask())
    assert [it.zone for it in items] == ["full"]
    assert smart_crop(kp, size, None, min_score=0.1) != []


def test_boxes_are_clipped_and_never_degenerate():
    kp, _ = _standing(dx=-260)                        # person half out on the left
    items = smart_crop(kp, (600, 1000), None)
    assert items
    for it in items:
        x0, y0, x1, y1 = it.box
        assert 0 <= x0 < x1 <= 600 and 0 <= y0 < y1 <= 1000
        assert x1 - x0 >= 20 and y1 - y0 >= 20
    # All points on one pixel: nothing sensible to crop, and nothing degenerate returned.
    kp = Keypoints.empty()
    kp.xy[:] = (100, 100)
    kp.score[:] = 1.0
    for it in smart_crop(kp, (600, 1000), None):
        assert it.box[2] - it.box[0] >= 4 and it.box[3] - it.box[1] >= 4
    assert smart_crop(Keypoints.empty(), (600, 1000), None) == []
    with pytest.raises(ValueError):
        smart_crop(Keypoints.empty(), (0, 100), None)


def test_mask_adds_room_for_a_hat_and_widens_a_skirt():
    kp, size = _standing()
    plain = _boxes(smart_crop(kp, size, _person_mask()))
    hat = _boxes(smart_crop(kp, size, _person_mask(hat=True)))
    assert hat["head"][1] <= 10 < plain["head"][1]
    skirt = _boxes(smart_crop(kp, size, _person_mask(skirt=True)))
    assert skirt["bottom"][0] <= 150 and skirt["bottom"][2] >= 450
    assert plain["bottom"][0] > 150 and plain["bottom"][2] < 450


def test_mask_at_working_size_gives_the_same_boxes():
    import cv2
    kp, size = _standing()
    full = _person_mask(hat=True)
    small = cv2.resize(full, (150, 250), interpolation=cv2.INTER_AREA)
    a, b = _boxes(smart_crop(kp, size, full)), _boxes(smart_crop(kp, size, small))
    assert a.keys() == b.keys()
    for z in a:
        assert np.allclose(a[z], b[z], atol=8), z
    prob = full.astype(np.float32) / 255.0
    assert _boxes(smart_crop(kp, size, prob)).keys() == a.keys()


def test_recompute_box_follows_a_keypoint_drag():
    kp, size = _standing()
    mask = _person_mask()
    boxes = _boxes(smart_crop(kp, size, mask))
    for z in PERSON_ZONES:
        assert recompute_box(z, kp, size, mask) == boxes[z]
    kp.xy[KP["left_big_toe"]] = (470, 960)           # drag the left toe outwards / down
    moved = recompute_box("shoes", kp, size, mask)
    assert moved[2] > boxes["shoes"][2] and moved[3] > boxes["shoes"][3]
    assert recompute_box("head", kp, size, mask) == boxes["head"]
    for n in FEET:
        kp.score[KP[n]] = 0.0
    assert recompute_box("shoes", kp, size, mask) is None
    with pytest.raises(ValueError):
        recompute_box("hat", kp, size, mask)
