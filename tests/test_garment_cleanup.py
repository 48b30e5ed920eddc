"""The garment map's clean-up (ml.garments.cleanup): a skirt painted partly as a one-piece and
trousers painted partly as legwear are framed as the bottom they are; real tights and real
one-pieces are left alone."""
from __future__ import annotations

import numpy as np
import pytest

from ml.garments.cleanup import DRESS_MIN_SHARE, resolve
from ml.garments.labels import CLASS_INDEX as C
from ml.stages.garment_zones import person_zones
from ml.types import KP, Keypoints

H, W = 400, 200


def _kp(hip_y=None):
    kp = Keypoints.empty()
    for n, xy in (("left_shoulder", (80, 100)), ("right_shoulder", (120, 100)), ("nose", (100, 60))):
        kp.xy[KP[n]], kp.score[KP[n]] = xy, 0.9
    if hip_y is not None:
        for n, x in (("left_hip", 85), ("right_hip", 115)):
            kp.xy[KP[n]], kp.score[KP[n]] = (x, hip_y), 0.9
    return kp


def _model(bottom_rows=(200, 360)):
    """A standing figure: hair, top (rows 90-200), trousers, shoes."""
    g = np.zeros((H, W), np.uint8)
    g[30:90, 80:120] = C["hair"]
    g[90:200, 60:140] = C["top"]
    g[bottom_rows[0]:bottom_rows[1], 65:135] = C["bottom"]
    g[360:380, 60:140] = C["shoes"]
    return g


def test_a_small_one_piece_patch_is_split_at_the_hip_line():
    g = _model()
    g[190:230, 70:130] = C["dress"]          # the parser hesitating around the waist
    assert (g == C["dress"]).sum() < DRESS_MIN_SHARE * np.count_nonzero(g)
    out = resolve(g, None, _kp(hip_y=205))
    assert not (out == C["dress"]).any()
    assert (out[190:205, 70:130] == C["top"]).all() and (out[205:230, 70:130] == C["bottom"]).all()
    # without a visible hip the patch cannot be split and stays what the parser said
    assert ((resolve(g, None, _kp()) == C["dress"]).sum()) == (g == C["dress"]).sum()


def test_a_real_one_piece_stays_a_one_piece():
    g = _model(bottom_rows=(200, 200))
    g[90:340, 60:140] = C["dress"]
    out = resolve(g, None, _kp(hip_y=205))
    assert np.array_equal(out, g)
    items, _ = person_zones(_kp(hip_y=205), (W, H), None, out)
    assert "dress" in {it.zone for it in items}


def _photo(g, bottom_rgb, leg_rgb):
    rgb = np.full((H, W, 3), 235, np.uint8)
    rgb[g == C["bottom"]] = bottom_rgb
    rgb[g == C["legwear"]] = leg_rgb
    rgb[g == C["top"]] = (200, 40, 40)
    return rgb


def test_trouser_legs_painted_as_legwear_join_the_bottom_and_its_zone_reaches_the_ankles():
    g = _model(bottom_rows=(200, 260))
    g[260:360, 65:135] = C["legwear"]         # the same jeans, lower down
    rgb = _photo(g, (40, 60, 120), (44, 63, 126))
    out = resolve(g, rgb, _kp(hip_y=205))
    assert (out[260:360, 65:135] == C["bottom"]).all()
    before = {it.zone: it.box for it in person_zones(_kp(205), (W, H), None, g)[0]}
    after = {it.zone: it.box for it in person_zones(_kp(205), (W, H), None, out)[0]}
    assert before["bottom"][3] < 300 <= 355 <= after["bottom"][3]


@pytest.mark.parametrize("leg_rgb", [(20, 20, 20), (230, 190, 170)])
def test_tights_of_another_colour_under_a_skirt_stay_legwear(leg_rgb):
    g = _model(bottom_rows=(200, 250))        # a mini-skirt
    g[250:360, 75:125] = C["legwear"]
    rgb = _photo(g, (200, 30, 60), leg_rgb)
    out = resolve(g, rgb, _kp(hip_y=205))
    assert (out[250:360, 75:125] == C["legwear"]).all()
    box = {it.zone: it.box for it in person_zones(_kp(205), (W, H), None, out)[0]}["bottom"]
    assert box[3] < 270                        # the mini-skirt's zone frames the skirt


def test_the_parsers_map_is_not_modified_in_place():
    g = _model()
    g[185:240, 70:130] = C["dress"]
    before = g.copy()
    resolve(g, None, _kp(hip_y=205))
    assert np.array_equal(g, before)
