"""Training targets of Cao et al.: Gaussian confidence maps and part affinity fields.

Coordinates. Keypoints are given in *input* pixels (the network input after augmentation). The
output grid has ``stride`` input pixels per cell; cell (gx, gy) is centred on input pixel
``(gx*stride + (stride-1)/2, gy*stride + (stride-1)/2)`` — :func:`grid_to_input` and
:func:`input_to_grid` are the only two places that mapping lives (the grouping uses them too).

* Confidence map of keypoint j: max over people of exp(-|p - x_j|^2 / 2 sigma^2)
  (max, not mean, so close peaks stay distinct — Cao et al. eq. 7); background channel =
  max(0, 1 - max_j S_j).
* PAF of limb c: unit vector from part a to part b on the points within ``paf_width`` cells of
  the segment (and between its ends); averaged over the people overlapping there (eq. 8-9).
* Masks (same shape as the maps) weight the L2 loss: 0 where the target is unknown — inside the
  ``ignore`` region (crowds / people without keypoint labels), and for the foot channels
  (foot keypoints, foot limbs, background) inside the box of a person whose annotation has no
  foot points (plain COCO-17 labels), since "no label" there must not teach "no foot".
"""
from __future__ import annotations

import numpy as np

from .config import FOOT_KEYPOINTS, LIMBS, NUM_KEYPOINTS

FOOT_LIMBS = tuple(i for i, (a, b) in enumerate(LIMBS) if a in FOOT_KEYPOINTS or b in FOOT_KEYPOINTS)


def grid_to_input(g: np.ndarray | float, stride: int):
    return np.asarray(g, np.float32) * stride + (stride - 1) / 2.0


def input_to_grid(p: np.ndarray | float, stride: int):
    return (np.asarray(p, np.float32) - (stride - 1) / 2.0) / stride


def make_targets(keypoints: np.ndarray, out_hw: tuple[int, int], stride: int, sigma: float,
                 paf_width: float, has_foot: np.ndarray | None = None,
                 boxes: np.ndarray | None = None, ignore: np.ndarray | None = None
                 ) -> dict[str, np.ndarray]:
    """Targets for one image.

    keypoints: (N,23,3) x, y (input px), v (0 = not labelled, 1 = labelled occluded, 2 = visible).
    has_foot: (N,) whether the person's label source has foot points (default all True).
    boxes: (N,4) x0,y0,x1,y1 input px of each person (used to mask foot channels).
    ignore: (h,w) output-grid array, nonzero where the loss must be ignored.
    Returns float32 arrays ``heat`` (24,h,w), ``paf`` (52,h,w), ``heat_mask``, ``paf_mask``.
    """
    h, w = out_hw
    kps = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    n = kps.shape[0]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    px, py = grid_to_input(gx, stride), grid_to_input(gy, stride)

    heat = np.zeros((NUM_KEYPOINTS + 1, h, w), np.float32)
    inv = 1.0 / (2.0 * sigma * sigma)
    for p in range(n):
        for j in range(NUM_KEYPOINTS):
            x, y, v = kps[p, j]
            if v <= 0:
                continue
            d2 = (px - x) ** 2 + (py - y) ** 2
            g = np.exp(-d2 * inv)
            np.maximum(heat[j], g, out=heat[j])
    heat[-1] = np.clip(1.0 - heat[:-1].max(axis=0), 0.0, 1.0)

    paf = np.zeros((2 * len(LIMBS), h, w), np.float32)
    count = np.zeros((len(LIMBS), h, w), np.float32)
    for p in range(n):
        for c, (a, b) in enumerate(LIMBS):
            if kps[p, a, 2] <= 0 or kps[p, b, 2] <= 0:
                continue
            pa = input_to_grid(kps[p, a, :2], stride)
            pb = input_to_grid(kps[p, b, :2], stride)
            vec = pb - pa
            norm = float(np.hypot(vec[0], vec[1]))
            if norm < 1e-6:
                continue
            u = vec / norm
            dx, dy = gx - pa[0], gy - pa[1]
            along = dx * u[0] + dy * u[1]
            perp = np.abs(dx * u[1] - dy * u[0])
            on = (along >= -paf_width * 0.5) & (along <= norm + paf_width * 0.5) & (perp <= paf_width)
            paf[2 * c][on] += u[0]
            paf[2 * c + 1][on] += u[1]
            count[c][on] += 1
    nz = count > 0
    for c in range(len(LIMBS)):
        m = nz[c]
        paf[2 * c][m] /= count[c][m]
        paf[2 * c + 1][m] /= count[c][m]

    heat_mask = np.ones_like(heat)
    paf_mask = np.ones_like(paf)
    if ignore is not None:
        keep = (np.asarray(ignore) == 0).astype(np.float32)
        heat_mask *= keep
        paf_mask *= keep
    if has_foot is not None and boxes is not None:
        for p in range(n):
            if has_foot[p]:
                continue
            x0, y0, x1, y1 = np.asarray(boxes[p], np.float32)
            bh = y1 - y0
            # the person's box, grown downwards / sideways where feet may stick out
            g0 = np.floor(input_to_grid(np.array([x0 - 0.1 * bh, y0]), stride)).astype(int)
            g1 = np.ceil(input_to_grid(np.array([x1 + 0.1 * bh, y1 + 0.15 * bh]), stride)).astype(int)
            xs0, ys0 = max(0, g0[0]), max(0, g0[1])
            xs1, ys1 = min(w, g1[0] + 1), min(h, g1[1] + 1)
            if xs1 <= xs0 or ys1 <= ys0:
                continue
            for j in FOOT_KEYPOINTS:
                heat_mask[j, ys0:ys1, xs0:xs1] = 0
            heat_mask[-1, ys0:ys1, xs0:xs1] = 0
            for c in FOOT_LIMBS:
                paf_mask[2 * c:2 * c + 2, ys0:ys1, xs0:xs1] = 0
    return {"heat": heat, "paf": paf, "heat_mask": heat_mask, "paf_mask": paf_mask}
