"""The floor-shadow preset option on a real packshot (a dev backpack): ``off`` leaves pure white
under the product; ``soft`` adds a soft contact shadow under its base and nowhere else; ``natural``
carries the sweep's own shadow (painted under the product on a grey sweep) onto white and adds none
where the sweep has none; the product's pixels stay as they were; the pre-flight background check
accepts the intended shadow in a real export."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from studio_app.core.export import export
from studio_app.core.export.presets import PresetError, load as load_preset
from studio_app.core.export.render import render_full
from tests.catalog_fixtures import copy_photo
from tests.test_export import product_doc

BAG = "products/magento_luma/mb02-blue-0.jpg"


@pytest.fixture(scope="module")
def packshot(dev_data):
    from ml.io import load_image
    rgb = load_image(dev_data / BAG).rgb
    m = (np.abs(rgb.astype(np.int16) - 255).max(axis=2) > 18).astype(np.uint8) * 255
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    return rgb, m


def on_sweep(rgb, mask, shadow: bool):
    """The product on a grey studio sweep, with (or without) the shadow it casts on the floor."""
    h, w = mask.shape
    scene = np.full_like(rgb, 226)
    if shadow:
        ys, xs = np.nonzero(mask)
        dark = np.zeros((h, w), np.float32)
        cv2.ellipse(dark, (int(xs.mean()), int(ys.max())), (int((xs.max() - xs.min()) * .45), 12), 0, 0, 360, 1, -1)
        dark = cv2.GaussianBlur(dark, (0, 0), 6) * 0.45
        scene = (scene * (1 - dark[..., None])).astype(np.uint8)
    return np.where(mask[..., None] > 127, rgb, scene)


def below_base(r, rows=8):
    """Mean brightness of the canvas just under the product's base, and of a far corner."""
    ys, xs = np.nonzero(r.image.min(axis=2) < 200)
    base = ys.max() if len(ys) else 0
    band = r.image[base + 2: base + 2 + rows, xs.min(): xs.max()]
    return float(band.mean()), float(r.image[:20, :20].mean())


def test_off_soft_and_natural(packshot):
    rgb, mask = packshot
    box = cv2.boundingRect(cv2.findNonZero(mask))
    box = [box[0], box[1], box[0] + box[2], box[1] + box[3]]
    base = load_preset("generic")
    assert base.shadow == "off"
    off = render_full(rgb, mask, "product", box, base)
    soft = render_full(rgb, mask, "product", box, replace(base, shadow="soft"))
    assert below_base(off)[0] > 254
    band, corner = below_base(soft)
    assert band < 243 and corner == 255.0
    inside = off.subject > 250
    assert np.abs(soft.image[inside].astype(int) - off.image[inside]).max() <= 1      # the product untouched
    assert soft.subject.sum() > off.subject.sum()            # the shadow counts as subject for pre-flight

    nat = replace(base, shadow="natural")
    with_shadow = render_full(on_sweep(rgb, mask, True), mask, "product", box, nat)
    without = render_full(on_sweep(rgb, mask, False), mask, "product", box, nat)
    assert below_base(with_shadow)[0] < 245 and below_base(with_shadow)[1] == 255.0
    assert below_base(without)[0] > 252                      # a plain sweep casts no invented shadow


def test_bad_shadow_value_names_the_field(tmp_path):
    import json
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"extends": "generic", "shadow": "dramatic"}))
    with pytest.raises(PresetError, match="shadow.*natural, soft"):
        load_preset(str(p))
    p.write_text(json.dumps({"extends": "generic", "shadow": "natural"}))
    assert load_preset(str(p)).shadow == "natural"


def test_export_with_a_soft_shadow_passes_preflight(tmp_path, dev_data):
    res = tmp_path / "results"
    folder = product_doc(copy_photo(BAG, tmp_path / "photos" / "bag.jpg"), res)
    rep = export([folder], replace(load_preset("generic"), shadow="soft"), tmp_path / "out")
    assert len(rep.rows) == 1 and rep.rows[0]["preflight"] == "ok" and not rep.blocked
    img = cv2.imread(str(tmp_path / "out" / rep.rows[0]["file"]))
    assert img is not None and img.min() < 200
