"""Garment-true zone boxes and swatch regions from a garment map (synthetic maps: no model)."""
from __future__ import annotations

import numpy as np

from ml.garments import CLASS_INDEX as C
from ml.stages.garment_zones import garment_zones, person_zones, swatch_region
from ml.types import KP, Keypoints


def _person(h=1000, w=600) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[60:200, 240:360] = C["hair"]
    lab[120:200, 260:340] = C["skin"]          # face
    lab[200:260, 280:320] = C["skin"]          # neck
    return lab


def _zones(lab, kp=None):
    items, warnings = garment_zones(lab, kp)
    return {it.zone: it.box for it in items}, warnings


def test_a_coats_top_reaches_its_hem_and_a_mini_skirt_is_framed_tightly():
    lab = _person()
    lab[250:780, 180:420] = C["top"]            # knee-length coat
    lab[780:820, 230:370] = C["bottom"]         # mini-skirt peeking out below the coat
    lab[820:940, 240:360] = C["legwear"]
    lab[940:990, 230:370] = C["shoes"]
    z, _ = _zones(lab)
    assert z["top"][3] >= 780                   # the hem, not the hips
    bx0, by0, bx1, by1 = z["bottom"]
    assert 770 <= by0 and by1 <= 830            # the skirt, not waist-to-ankles
    assert "dress" not in z and "bag" not in z  # absent garments give no zone


def test_a_one_piece_gets_a_dress_zone_and_a_bag_its_own():
    lab = _person()
    lab[250:800, 200:400] = C["dress"]
    lab[500:650, 420:520] = C["bag"]
    lab[940:990, 230:370] = C["shoes"]
    z, _ = _zones(lab)
    assert {"dress", "bag", "shoes", "head"} <= set(z)
    assert "top" not in z and "bottom" not in z
    assert z["bag"][0] >= 400 and z["bag"][2] <= 540


def test_shoes_frame_both_shoes_and_head_covers_a_hat():
    lab = _person()
    lab[20:80, 200:400] = C["headwear"]
    lab[250:600, 200:400] = C["top"]
    lab[600:940, 200:400] = C["bottom"]
    lab[940:990, 180:280] = C["shoes"]
    lab[940:990, 330:430] = C["shoes"]
    z, _ = _zones(lab)
    assert z["shoes"][0] <= 180 and z["shoes"][2] >= 430
    assert z["head"][1] <= 20 and z["head"][0] <= 200 and z["head"][2] >= 400


def test_a_garment_cut_by_the_frame_is_reported():
    lab = np.zeros((600, 400), np.uint8)        # waist-down shot: trousers from the top edge
    lab[0:500, 100:300] = C["bottom"]
    lab[500:560, 100:300] = C["shoes"]
    z, warnings = _zones(lab)
    assert set(z) == {"bottom", "shoes"}
    assert any("bottom" in w and "cut" in w for w in warnings)
    assert not any("shoes" in w for w in warnings)


def test_speckles_are_not_a_garment_and_far_parts_are_dropped_by_the_pose_prior():
    lab = _person()
    lab[250:600, 200:400] = C["top"]
    lab[600:940, 200:400] = C["bottom"]
    lab[900:904, 20:24] = C["dress"]            # a few stray pixels
    lab[960:990, 540:590] = C["top"]            # a misclassified blob far below the torso
    kp = Keypoints.empty()
    for name, xy in (("left_shoulder", (360, 250)), ("right_shoulder", (240, 250)),
                     ("left_hip", (340, 600)), ("right_hip", (260, 600))):
        kp.xy[KP[name]] = xy
        kp.score[KP[name]] = 0.9
    items, _ = person_zones(kp, (600, 1000), None, lab)
    z = {it.zone: it.box for it in items}
    assert "dress" not in z
    assert z["top"][3] <= 640                   # the blob at y 960 is not part of the top
    assert "full" in z


def test_the_swatch_region_holds_only_the_garments_pixels():
    lab = _person()
    lab[250:600, 200:400] = C["top"]
    lab[300:500, 280:320] = C["accessory"]      # a scarf over the top
    region = swatch_region(lab, "top", (0, 0, 600, 1000))
    assert region[400, 250] and not region[400, 300] and not region[150, 300]
    lab[20:80, 200:400] = C["headwear"]
    head = swatch_region(lab, "head")
    assert head[50, 300] and not head[150, 250]  # the hat, not the hair


def test_keypoint_edits_leave_garment_only_zones_alone():
    """Moving a keypoint re-frames keypoint zones; dress and bag (garment map only) keep their box."""
    from studio_app.core.edits import add_zone, move_keypoint
    from studio_app.core.result import Item, Keypoint, ResultDocument, Source
    from ml.types import KEYPOINT_NAMES
    kps = [Keypoint(n, 300.0, 100.0 + 30 * i, 0.9) for i, n in enumerate(KEYPOINT_NAMES)]
    doc = ResultDocument(Source("p.jpg", "0" * 64, 600, 1000), "person", 0.9, keypoints=kps,
                         items=[Item("dress", [200.0, 250.0, 400.0, 800.0], "dress.jpg"),
                                Item("bag", [420.0, 500.0, 520.0, 650.0], "bag.jpg")])
    new, changed = move_keypoint(doc, "left_hip", 320, 420)
    assert "dress" not in changed and new.item("dress").box == [200.0, 250.0, 400.0, 800.0]
    new = add_zone(new, "top")
    assert [it.zone for it in new.items] == ["top", "dress", "bag"]
