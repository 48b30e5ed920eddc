"""Fast image reduction: the one place the integer-factor area average is written.

OpenCV's INTER_AREA has a fast path for an exact integer factor (each output pixel the mean of
an f x f block); a fractional factor takes its general path, ~20x slower on a 24-MP image. So
large reductions trim the image to a multiple of ``f`` and average by ``f`` first; the few
trimmed rows and columns at the far edges are below any crop margin or colour sample's
precision. Callers then take the last < 2x step as they need (area, bilinear or none).
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def shrink(img: np.ndarray, f: int) -> np.ndarray:
    """``img`` (H x W or H x W x C) trimmed to a multiple of ``f`` and averaged over f x f blocks;
    ``img`` itself when ``f`` < 2 or when a side is shorter than ``f``."""
    f = int(f)
    h, w = img.shape[:2]
    if f < 2 or h < f or w < f:
        return img
    th, tw = h - h % f, w - w % f
    return cv2.resize(img[:th, :tw], (tw // f, th // f), interpolation=cv2.INTER_AREA)


def factor_to_fit(h: int, w: int, side: int) -> int:
    """The smallest integer factor that brings the long side of an ``h`` x ``w`` image to at
    most ``side`` pixels (1 when it already fits)."""
    return max(1, math.ceil(max(h, w) / max(1, int(side))))
