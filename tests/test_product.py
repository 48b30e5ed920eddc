"""Product composition on white: exact white border, fill, centring, sizes, soft edges."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.stages.product import canvas_size, compose_on_white, product_box
from conftest import dev_file

RED = (200, 30, 40)


def _photo(h=700, w=900, box=(250, 120, 610, 580), ellipse=False, seed=0):
    """A grey studio backdrop with noise and a red product; returns (rgb, mask)."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(190, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    if ellipse:
        cv2.ellipse(mask, ((x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2), ((x1 - x0 - 1) // 2, (y1 - y0 - 1) // 2),
                    0, 0, 360, 255, -1)
    else:
        mask[y0:y1, x0:x1] = 255
    rgb[mask > 0] = RED
    return rgb, mask


def _product_extent(img):
    """Extent of the product (pixels at least half way from white to the red)."""
    prod = img[..., 1] < 128
    ys, xs = np.nonzero(prod)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _assert_white_border(img, bg=(255, 255, 255)):
    bg = np.asarray(bg, np.uint8)
    for edge in (img[0], img[-1], img[:, 0], img[:, -1]):
        assert np.all(edge == bg), "border pixels must be exactly the background"


def test_product_box_is_exact():
    _, mask = _photo(box=(250, 120, 610, 580))
    assert product_box(mask) == (250, 120, 610, 580)


def test_square_fill_centre_and_white_border():
    rgb, mask = _photo(box=(250, 120, 610, 580))      # 360 x 460: height limits
    out, box = compose_on_white(rgb, mask, out_size=1000, fill=0.85)
    assert out.shape == (1000, 1000, 3) and out.dtype == np.uint8
    assert box == (250, 120, 610, 580)
    _assert_white_border(out)
    x0, y0, x1, y1 = _product_extent(out)
    assert abs((y1 - y0) / 1000 - 0.85) <= 0.01
    assert abs((x1 - x0) / (y1 - y0) - 360 / 460) < 0.01     # aspect of the product kept
    assert abs((x0 + x1) / 2 - 500) <= 2 and abs((y0 + y1) / 2 - 500) <= 2
    # Well away from the product the canvas is pure white, not the grey backdrop.
    assert np.all(out[: y0 - 3] == 255) and np.all(out[:, x1 + 3:] == 255)


@pytest.mark.parametrize("fill", [0.6, 0.85, 0.95])
def test_fill_ratio_on_longest_side(fill):
    rgb, mask = _photo(box=(100, 200, 700, 500), ellipse=True)   # wide: width limits
    out, _ = compose_on_white(rgb, mask, out_size=800, fill=fill)
    x0, y0, x1, y1 = _product_extent(out)
    assert abs((x1 - x0) / 800 - fill) <= 0.01
    assert abs((x0 + x1) / 2 - 400) <= 2 and abs((y0 + y1) / 2 - 400) <= 2
    _assert_white_border(out)


def test_portrait_canvas():
    rgb, mask = _photo(box=(250, 120, 610, 580))
    out, _ = compose_on_white(rgb, mask, out_size=1440, aspect=1 / 1.44, fill=0.85)
    assert out.shape == (1440, 1000, 3)
    _assert_white_border(out)
    x0, y0, x1, y1 = _product_extent(out)
    # 360x460 product in a 1000x1440 frame: the width limits (0.85*1000/360 < 0.85*1440/460).
    assert abs((x1 - x0) / 1000 - 0.85) <= 0.01
    assert abs((x0 + x1) / 2 - 500) <= 2 and abs((y0 + y1) / 2 - 720) <= 2
    assert canvas_size((600, 900)) == (600, 900)
    assert compose_on_white(rgb, mask, out_size=(600, 900))[0].shape == (900, 600, 3)


def test_custom_background_is_exact():
    rgb, mask = _photo()
    out, _ = compose_on_white(rgb, mask, out_size=500, background=(240, 240, 240))
    _assert_white_border(out, (240, 240, 240))


def test_edges_are_soft_not_jagged():
    rgb, mask = _photo(box=(100, 100, 700, 600), ellipse=True)
    out, _ = compose_on_white(rgb, mask, out_size=1000, fill=0.85)
    row = out[500, :, 1].astype(int)                     # green channel: 255 white, 30 red
    intermediate = np.count_nonzero((row > 40) & (row < 245))
    assert 2 <= intermediate <= 12                       # a short ramp on each side


def test_specks_are_ignored_and_two_part_products_kept():
    rgb, mask = _photo(box=(300, 300, 500, 500))
    mask[20:23, 20:23] = 255                             # a speck of segmentation noise
    rgb[20:23, 20:23] = RED
    assert product_box(mask) == (300, 300, 500, 500)
    out, _ = compose_on_white(rgb, mask, out_size=600)
    x0, y0, x1, y1 = _product_extent(out)
    assert abs((x1 - x0) / 600 - 0.85) <= 0.01            # the speck did not shrink the product
    # A pair of shoes: two components of similar size both count.
    mask2 = np.zeros((400, 800), np.uint8)
    mask2[150:250, 100:300] = 255
    mask2[160:260, 500:700] = 255
    assert product_box(mask2) == (100, 150, 700, 260)


def test_max_scale_up_keeps_small_products_small():
    rgb, mask = _photo(box=(400, 300, 500, 380))
    out, _ = compose_on_white(rgb, mask, out_size=1000, fill=0.85, max_scale_up=1.0)
    x0, y0, x1, y1 = _product_extent(out)
    assert abs((x1 - x0) - 100) <= 2 and abs((y1 - y0) - 80) <= 2
    assert abs((x0 + x1) / 2 - 500) <= 2


def test_no_usable_mask_raises_clear_error():
    rgb, mask = _photo()
    with pytest.raises(ValueError, match="no usable product mask"):
        compose_on_white(rgb, np.zeros_like(mask))
    with pytest.raises(ValueError, match="no usable product mask"):
        product_box(np.zeros((100, 100), np.uint8))


def test_large_photo_mask_of_other_size():
    """A mask given at a working size is scaled to the photo; a big photo goes through the
    integer-factor downscale path and still lands centred with the right fill."""
    h, w = 2400, 3600
    rgb = np.full((h, w, 3), 180, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (1500, 1300), (700, 900), 0, 0, 360, 255, -1)
    rgb[mask > 0] = RED
    small_mask = cv2.resize(mask, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    out, box = compose_on_white(rgb, small_mask, out_size=1000, fill=0.85)
    assert abs(box[0] - 800) <= 6 and abs(box[3] - 2201) <= 6
    _assert_white_border(out)
    x0, y0, x1, y1 = _product_extent(out)
    assert abs((y1 - y0) / 1000 - 0.85) <= 0.01
    assert abs((x0 + x1) / 2 - 500) <= 2 and abs((y0 + y1) / 2 - 500) <= 2


def test_real_photo_with_pseudo_mask():
    photo = dev_file("cutouts/u2net_objects/lamp2_meitu_1.jpg")
    pred = dev_file("cutouts/u2net_objects/lamp2_meitu_1.u2net_pred.png")
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(str(pred), cv2.IMREAD_GRAYSCALE)
    out, box = compose_on_white(rgb, mask, out_size=600, fill=0.85)
    assert out.shape == (600, 600, 3)
    _assert_white_border(out)
    # The lamp fills 85% of the frame along its limiting side.
    nonwhite = np.any(out < 250, axis=2)
    ys, xs = np.nonzero(nonwhite)
    ext = max((xs.max() - xs.min() + 1), (ys.max() - ys.min() + 1)) / 600
    assert 0.82 <= ext <= 0.87
    assert box[2] - box[0] > 20 and box[3] - box[1] > 20
