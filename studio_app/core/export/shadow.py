"""A floor shadow under a packshot (preset ``"shadow"``): ``off`` (the default, and what marketplaces
that want a pure white background — Amazon MAIN, Zalando — keep), ``natural`` (the shadow the
product casts on the studio's sweep, measured in the photo and carried onto the new background) or
``soft`` (a soft synthetic contact shadow under the product's base).

Both are a *shadow map* on the canvas (0 = none .. 1 = full darkness) that multiplies the
background outside the product; the map's pixels count as subject for the pre-flight background
check (the shadow is intended, not a dirty backdrop). Qt-free, NumPy/OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np

MODES = ("off", "natural", "soft")
SOFT_OPACITY = 0.38           # darkest point of the synthetic shadow (share of the background's light)
SOFT_HEIGHT = 0.07            # synthetic shadow height, share of the product's height
NATURAL_BAND = 0.18           # how far below the product's base the sweep's shadow is read (product height)
NATURAL_MAX = 0.6             # never darker than this (a dark floor is not a shadow)
VISIBLE = 0.5 / 255           # map values that change a pixel: subject for the pre-flight


def _box(mask: np.ndarray):
    pts = cv2.findNonZero((mask > 127).view(np.uint8))
    if pts is None:
        return None
    x, y, w, h = cv2.boundingRect(pts)
    return x, y, x + w, y + h


def soft_map(subject: np.ndarray) -> np.ndarray:
    """A blurred ellipse centred under the product's base, as wide as its foot (canvas space)."""
    h, w = subject.shape
    box = _box(subject)
    if box is None:
        return np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = box
    bottom = subject[max(y0, y1 - max(2, (y1 - y0) // 8)):y1, x0:x1] > 127   # the product's footprint
    cols = np.nonzero(bottom.any(axis=0))[0]
    fx0, fx1 = (x0 + cols.min(), x0 + cols.max()) if len(cols) else (x0, x1)
    ry = max(2.0, SOFT_HEIGHT * (y1 - y0) / 2)
    rx = max(4.0, 0.5 * (fx1 - fx0 + 1))
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (int(round((fx0 + fx1) / 2)), int(round(y1 - ry * 0.3))), (int(rx), int(ry)), 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), max(1.0, ry * 0.8))
    return np.clip(m / max(float(m.max()), 1e-6), 0, 1) * SOFT_OPACITY


def natural_map(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The sweep's own shadow under the product in the photo (source space): how much darker each
    pixel in a band below the product's base is than the backdrop beside it."""
    h, w = mask.shape
    out = np.zeros((h, w), np.float32)
    box = _box(mask)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    ph = y1 - y0
    bx0, bx1 = max(0, x0 - (x1 - x0) // 5), min(w, x1 + (x1 - x0) // 5)
    by0, by1 = max(0, y1 - ph // 10), min(h, y1 + int(NATURAL_BAND * ph) + 1)
    if by1 - by0 < 3 or bx1 - bx0 < 3:
        return out
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    outside = mask <= 127
    ring = outside.copy()
    ring[by0:by1, bx0:bx1] = False
    ring[:max(0, y0 - ph // 4)] = False
    ref = np.median(lum[ring]) if ring.any() else np.median(lum[outside]) if outside.any() else 255.0
    band = lum[by0:by1, bx0:bx1]
    dark = np.clip(1.0 - band / max(float(ref), 1.0), 0.0, NATURAL_MAX)
    dark[~outside[by0:by1, bx0:bx1]] = 0.0
    dark[dark < 0.04] = 0.0                                 # backdrop noise and JPEG grain
    dark = cv2.GaussianBlur(dark, (0, 0), 2.0)
    # fade out towards the band's lower and side edges: no hard rectangle
    fy = np.linspace(1.0, 0.0, by1 - by0, dtype=np.float32) ** 0.7
    fx = np.minimum(1.0, 4.0 * np.minimum(np.linspace(0, 1, bx1 - bx0), np.linspace(1, 0, bx1 - bx0)))
    out[by0:by1, bx0:bx1] = dark * fy[:, None] * fx[None, :].astype(np.float32)
    return out


def to_canvas(src_map: np.ndarray, src_mask: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """Carry a source-space map onto the canvas with the transform that placed the product there
    (its mask's box in the photo -> the subject's box on the canvas)."""
    h, w = subject.shape
    a, b = _box(src_mask), _box(subject)
    if a is None or b is None:
        return np.zeros((h, w), np.float32)
    k = ((b[2] - b[0]) / max(1, a[2] - a[0]) + (b[3] - b[1]) / max(1, a[3] - a[1])) / 2
    M = np.float32([[k, 0, b[0] - k * a[0]], [0, k, b[1] - k * a[1]]])
    return cv2.warpAffine(src_map, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def apply(img: np.ndarray, subject: np.ndarray, mode: str, rgb: np.ndarray | None = None,
          mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rendered product with its floor shadow, and the pre-flight's subject grown by it."""
    if mode == "off":
        return img, subject
    if mode == "soft":
        m = soft_map(subject)
    elif mode == "natural" and rgb is not None and mask is not None:
        m = to_canvas(natural_map(rgb, mask), mask, subject)
    else:
        raise ValueError(f"unknown shadow mode {mode!r} (modes: {', '.join(MODES)})")
    m = m * (1.0 - subject.astype(np.float32) / 255.0)      # never over the product itself
    out = np.clip(img.astype(np.float32) * (1.0 - m[..., None]) + 0.5, 0, 255).astype(np.uint8)
    grown = np.where(m > VISIBLE, np.uint8(255), subject)
    return out, grown
