"""Fast image reduction: the one place the integer-factor area average is written.

OpenCV's INTER_AREA has a fast path for an exact integer factor (each output pixel the mean of
an f x f block); a fractional factor takes its general path, ~20x slower on a 24-MP image. Of
the integer factors only 2 is vectorised: on a 24-MP mask, one thread, 2x takes 4 ms, 3x-6x
21-28 ms (RGB: 14 ms against 55-90 ms). So :func:`shrink` halves while the factor is even and
takes the odd rest on the smaller image, and :func:`factor_to_fit` prefers factors of the form
2^k or 3 x 2^k. Large reductions trim the image to a multiple of the factor first; the few
trimmed rows and columns at the far edges are below any crop margin or colour sample's
precision. Callers take the last < 2x step as they need (area, bilinear or none).
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def shrink(img: np.ndarray, f: int) -> np.ndarray:
    """``img`` (H x W or H x W x C) trimmed to a multiple of ``f`` and averaged over f x f blocks;
    ``img`` itself when ``f`` < 2 or when a side is shorter than ``f``. (uint8 images: each
    halving rounds, so the result may differ from one f x f mean by a level or two.)"""
    f = int(f)
    h, w = img.shape[:2]
    if f < 2 or h < f or w < f:
        return img
    img = img[: h - h % f, : w - w % f]
    while f % 2 == 0:
        h, w = img.shape[:2]
        img = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        f //= 2
    if f > 1:
        h, w = img.shape[:2]
        img = cv2.resize(img, (w // f, h // f), interpolation=cv2.INTER_AREA)
    return img


def factor_to_fit(h: int, w: int, side: int) -> int:
    """An integer factor that brings the long side of an ``h`` x ``w`` image to at most ``side``
    pixels (1 when it already fits): the smallest of the fast ones (2^k or 3 x 2^k) that does,
    so the long side comes out between about 2/3 x ``side`` and ``side``."""
    need = max(1, math.ceil(max(h, w) / max(1, int(side))))
    if need <= 2:
        return need
    p = 1 << (need - 1).bit_length()          # the power of two >= need
    return min(p, 3 * p // 4) if 3 * p // 4 >= need else p
