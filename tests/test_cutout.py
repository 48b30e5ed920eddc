"""Cut-out edges: a black product shot on a green-grey sweep, its mask a little too generous (as a real
segmentation often is), composited onto white - the grey backdrop must not come along as a fringe,
and the product itself must stay intact."""
from __future__ import annotations

import cv2
import numpy as np

from studio_app.core.export import cutout


def _shot():
    img = np.full((240, 240, 3), (110, 150, 100), np.uint8)          # a green-grey sweep
    cv2.circle(img, (120, 120), 70, (12, 12, 14), -1, lineType=cv2.LINE_AA)
    mask = np.zeros((240, 240), np.uint8)
    cv2.circle(mask, (120, 120), 73, 255, -1)                        # 3 px of backdrop inside the mask
    return img, mask


def test_no_backdrop_fringe_on_white():
    img, mask = _shot()
    out, alpha = cutout.on_background(img, mask, (255, 255, 255))
    yy, xx = np.mgrid[:240, :240]
    r = np.hypot(yy - 120, xx - 120)
    ring = (r > 71.5) & (r < 73)                                     # backdrop pixels the mask took
    naive = img.astype(float) * (mask[..., None] / 255.0) + 255 * (1 - mask[..., None] / 255.0)
    assert naive[ring].mean() < 150                                  # without cleaning: a grey ring
    assert out[ring].mean() > 235, out[ring].mean()                  # cleaned: white
    assert (out[r < 66] < 30).all()                                  # the product is untouched
    assert (out[r > 80] == 255).all() and (alpha[r > 80] == 0).all()


def test_soft_edge_is_decontaminated():
    img, mask = _shot()
    out, alpha = cutout.on_background(img, mask, (255, 255, 255))
    edge = (alpha > 20) & (alpha < 235)
    assert edge.any()
    # an edge pixel is a blend of the black product and white, never of the grey backdrop:
    # its colour lies on the black-white line (r = g = b within JPEG-free rounding)
    naive = (img.astype(float) * (alpha[..., None] / 255.0) + 255 * (1 - alpha[..., None] / 255.0))[edge]

    def tint(a):             # green above the grey line through black and white
        return a[:, 1] - (a[:, 0] + a[:, 2]) / 2
    assert tint(naive).max() > 8                                     # without cleaning: a green fringe
    assert np.abs(tint(out[edge].astype(float))).max() <= 3
