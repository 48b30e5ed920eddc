"""Stage 4 (product photos): the product cut out and composed on pure white.

E-commerce standard (paper, introduction): at least 500x500 px, predominantly white
background, the object centred. :func:`compose_on_white` scales the product so that its
bounding box fills ``fill`` of the frame along its limiting side, centres it, and blends it
onto the background with a slightly feathered alpha: edges are smooth, while every pixel
outside the feather (the canvas border in particular) is *exactly* the background value.

Only the product's box (plus a few pixels for the feather) is cropped and resized, so a
24 MP photo costs about as much as its product's pixels, not a full-frame resize.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ml import resample
from ml.masks import as_u8

_CC_WORK = 1024          # components are found on a copy at most this large
_KEEP_FRAC = 0.03        # components at least this fraction of the largest are "the product"
_MIN_AREA_FRAC = 1e-4    # less than this share of the photo: no usable product mask
_FEATHER_SIGMA = 0.7     # output pixels


class _MainComponents:
    """The mask's main connected component(s): the largest and any at least ``_KEEP_FRAC`` of
    it (a pair of shoes, earrings), found at a working size; specks are dropped."""

    def __init__(self, mask_u8: np.ndarray):
        self.mask = mask_u8
        h, w = mask_u8.shape
        f = resample.factor_to_fit(h, w, _CC_WORK)
        if f > 1 and h >= f and w >= f:
            # the < f trimmed edge pixels are covered by the one-working-pixel slack of the
            # refinement below
            small = resample.shrink(mask_u8, f)
            binary = (small >= 32).astype(np.uint8)   # keep thin parts visible at the small size
            s = 1.0 / f
        else:
            binary = (mask_u8 >= 128).astype(np.uint8)
            s = 1.0
        self.sx = self.sy = 1.0 / s
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        self.keep_small = np.zeros(binary.shape, bool)
        self.box: tuple[int, int, int, int] | None = None
        self.all_kept = True
        if n <= 1:
            return
        areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
        keep = np.zeros(n, bool)
        keep[1:] = areas >= _KEEP_FRAC * areas.max()
        self.all_kept = bool(keep[1:].all())
        self.keep_small = keep[labels]
        if f > 1:   # one working pixel of slack around the kept components
            self.keep_small = cv2.dilate(self.keep_small.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        ks = stats[keep]
        rx0 = int(ks[:, cv2.CC_STAT_LEFT].min())
        ry0 = int(ks[:, cv2.CC_STAT_TOP].min())
        rx1 = int((ks[:, cv2.CC_STAT_LEFT] + ks[:, cv2.CC_STAT_WIDTH]).max())
        ry1 = int((ks[:, cv2.CC_STAT_TOP] + ks[:, cv2.CC_STAT_HEIGHT]).max())
        # Refine at full resolution inside the kept region (+1 working pixel).
        X0 = max(0, math.floor((rx0 - 1) * self.sx))
        Y0 = max(0, math.floor((ry0 - 1) * self.sy))
        X1 = w if rx1 >= binary.shape[1] else min(w, math.ceil((rx1 + 1) * self.sx))
        Y1 = h if ry1 >= binary.shape[0] else min(h, math.ceil((ry1 + 1) * self.sy))
        full = mask_u8[Y0:Y1, X0:X1] >= 128
        if not self.all_kept:
            full &= self.keep_region(X0, Y0, X1, Y1)
        rows = np.flatnonzero(full.any(axis=1))
        cols = np.flatnonzero(full.any(axis=0))
        if rows.size == 0:
            return
        self.box = (X0 + int(cols[0]), Y0 + int(rows[0]), X0 + int(cols[-1]) + 1, Y0 + int(rows[-1]) + 1)
        self.area = int(full.sum())

    def keep_region(self, x0: int, y0: int, x1: int, y1: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """Bool image of the full-resolution rectangle x0..x1, y0..y1 (resampled to ``size`` =
        (w, h) when given): which pixels lie in a kept component."""
        w, h = size if size is not None else (x1 - x0, y1 - y0)
        if self.sx == 1.0 and self.sy == 1.0 and size is None:
            return self.keep_small[y0:y1, x0:x1]
        a0, b0 = int(x0 / self.sx), int(y0 / self.sy)
        a1 = max(a0 + 1, min(self.keep_small.shape[1], math.ceil(x1 / self.sx)))
        b1 = max(b0 + 1, min(self.keep_small.shape[0], math.ceil(y1 / self.sy)))
        part = self.keep_small[b0:b1, a0:a1].astype(np.uint8)
        return cv2.resize(part, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def _resize(img: np.ndarray, size: tuple[int, int], *, smooth: bool) -> np.ndarray:
    """Resize to ``size`` = (w, h). Large reductions go through an integer-factor area
    average first (OpenCV's fast path; the general INTER_AREA is ~20x slower on 24 MP),
    then a small area/linear step; enlargements use cubic (``smooth``) or linear."""
    h, w = img.shape[:2]
    tw, th = size
    if tw >= w and th >= h:
        return cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if smooth else cv2.INTER_LINEAR)
    f = int(min(w / tw, h / th))
    if f >= 2 and w % f == 0 and h % f == 0:
        img = resample.shrink(img, f)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _main(mask: np.ndarray) -> _MainComponents:
    m = as_u8(mask)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"the product mask must be a 2-D image, got shape {np.shape(mask)}")
    mc = _MainComponents(m)
    min_area = max(16, _MIN_AREA_FRAC * m.size)
    if mc.box is None or mc.area < min_area:
        raise ValueError("no usable product mask: the segmentation found no product in this photo "
                         "(empty or only specks); check the photo or draw the mask by hand")
    return mc


def product_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1; x1/y1 exclusive) of the mask's main component(s).

    Raises ValueError when the mask holds no usable product.
    """
    return _main(mask).box


def canvas_size(out_size: int | tuple[int, int], aspect: float = 1.0) -> tuple[int, int]:
    """(width, height) of the output. An int is the longer side, ``aspect`` = width/height."""
    if isinstance(out_size, (tuple, list)):
        W, H = int(out_size[0]), int(out_size[1])
    else:
        if not aspect or aspect <= 0:
            raise ValueError(f"aspect must be positive, got {aspect!r}")
        L = int(out_size)
        W, H = (L, max(1, round(L / aspect))) if aspect >= 1.0 else (max(1, round(L * aspect)), L)
    if W < 1 or H < 1:
        raise ValueError(f"output size must be positive, got {out_size!r}")
    return W, H


def compose_on_white(rgb: np.ndarray, mask: np.ndarray, *, out_size: int | tuple[int, int] = 1000,
                     fill: float = 0.85, aspect: float = 1.0, background=(255, 255, 255),
                     max_scale_up: float | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The product of ``rgb`` (HxWx3 uint8) selected by ``mask`` (uint8 0/255, same HxW; a
    mask of another size is scaled to the photo) on a plain ``background`` canvas.

    Returns (image uint8 HxWx3, product box in source pixels). ``out_size``: int = the longer
    canvas side with ``aspect`` = width/height (1/1.44 for a portrait 1000x1440 frame), or an
    explicit (width, height). ``fill``: the share of the frame the product's box takes along
    its limiting side. ``max_scale_up``: never enlarge the product more than this (small
    products stay sharp instead of filling the frame).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    if not 0.0 < fill <= 1.0:
        raise ValueError(f"fill must be in (0, 1], got {fill!r}")
    h, w = rgb.shape[:2]
    m = as_u8(mask)
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    mc = _main(m)
    x0, y0, x1, y1 = mc.box
    bw, bh = x1 - x0, y1 - y0
    W, H = canvas_size(out_size, aspect)
    s = fill * min(W / bw, H / bh)
    if max_scale_up is not None:
        s = min(s, float(max_scale_up))

    # Crop the box plus room for the feather, then resize only that.
    pad = int(math.ceil(3.0 / s)) + 1
    cx0, cy0 = max(0, x0 - pad), max(0, y0 - pad)
    cx1, cy1 = min(w, x1 + pad), min(h, y1 + pad)
    f = int(1.0 / s)
    if f >= 2:   # trim the padding to a multiple of f so the first resize step is exact
        if cx1 - (cx1 - cx0) % f >= x1:
            cx1 -= (cx1 - cx0) % f
        if cy1 - (cy1 - cy0) % f >= y1:
            cy1 -= (cy1 - cy0) % f
    tw = max(1, round((cx1 - cx0) * s))
    th = max(1, round((cy1 - cy0) * s))
    sx, sy = tw / (cx1 - cx0), th / (cy1 - cy0)     # the scale resize really applies
    fg = _resize(rgb[cy0:cy1, cx0:cx1], (tw, th), smooth=True)
    alpha = _resize(m[cy0:cy1, cx0:cx1], (tw, th), smooth=False).astype(np.float32) * (1.0 / 255.0)
    if not mc.all_kept:                      # specks near the product are not part of it
        alpha *= mc.keep_region(cx0, cy0, cx1, cy1, (tw, th))
    alpha = cv2.GaussianBlur(alpha, (0, 0), _FEATHER_SIGMA)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha < 1.0 / 255.0] = 0.0
    alpha[alpha > 254.0 / 255.0] = 1.0

    # Place so that the product box's centre lands on the canvas centre.
    bcx = ((x0 + x1) / 2.0 - cx0) * sx
    bcy = ((y0 + y1) / 2.0 - cy0) * sy
    ox = int(round(W / 2.0 - bcx))
    oy = int(round(H / 2.0 - bcy))

    bg = np.asarray(background, dtype=np.uint8).reshape(3)
    out = np.empty((H, W, 3), np.uint8)
    out[:] = bg
    # Intersection of the placed crop with the canvas.
    dx0, dy0 = max(0, ox), max(0, oy)
    dx1, dy1 = min(W, ox + tw), min(H, oy + th)
    if dx1 > dx0 and dy1 > dy0:
        sl_src = (slice(dy0 - oy, dy1 - oy), slice(dx0 - ox, dx1 - ox))
        a = np.ascontiguousarray(alpha[sl_src])
        bg_img = out[dy0:dy1, dx0:dx1].copy()
        region = cv2.blendLinear(np.ascontiguousarray(fg[sl_src]), bg_img, a, 1.0 - a)
        region[a == 0.0] = bg                             # exactly the background
        out[dy0:dy1, dx0:dx1] = region
    return out, (int(x0), int(y0), int(x1), int(y1))
