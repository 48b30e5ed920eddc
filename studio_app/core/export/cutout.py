"""Clean cut-out edges: a soft alpha from the binary mask, colour decontamination (the old
background's colour taken out of the edge pixels) and halo removal (edge pixels that look like the
background they were cut from lose their opacity), then compositing onto a plain background.

This is what puts an on-model photo on pure white (Amazon MAIN, Zalando) without a grey or colour
fringe, and what takes the white speckled fringe off a black backpack. Qt-free, NumPy/OpenCV.

The foreground colour of an edge pixel follows the compositing equation
``I = a F + (1 - a) B``: ``B`` (the local background) is estimated from nearby pixels outside the
mask (normalised blur), so ``F = (I - (1 - a) B) / a``.
"""
from __future__ import annotations

import cv2
import numpy as np

EDGE_SIGMA = 1.2           # soft edge, source pixels
BG_SIGMA = 8.0             # neighbourhood for the local background estimate
HALO_RING = 3              # pixels inside the edge that may be halo
HALO_FAR = 30.0            # subject and backdrop closer than this in colour: keep the mask's own edge
MIN_ALPHA = 0.08           # below this an edge pixel's colour is not solved for (it barely shows)


def soft_alpha(mask: np.ndarray, sigma: float = EDGE_SIGMA) -> np.ndarray:
    m = (mask > 127).astype(np.float32)
    return np.clip(cv2.GaussianBlur(m, (0, 0), sigma), 0.0, 1.0) if sigma > 0 else m


def _small_mean(rgb: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
    """Normalised blur of ``rgb`` over the pixels where ``weight`` is 1, at 1/f resolution
    (it is smooth): (estimate h/f x w/f x 3, f). Read it at full-size pixel (y, x) as est[y // f, x // f]."""
    h, w = weight.shape
    f = 4 if min(h, w) >= 64 else 1
    size = (max(1, w // f), max(1, h // f))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    wt = cv2.resize(weight.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    num = cv2.GaussianBlur(small * wt[..., None], (0, 0), sigma / f)
    den = cv2.GaussianBlur(wt, (0, 0), sigma / f)[..., None]
    return num / np.maximum(den, 1e-3), f


def _at(est: np.ndarray, f: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return est[np.minimum(ys // f, est.shape[0] - 1), np.minimum(xs // f, est.shape[1] - 1)]


def clean(rgb: np.ndarray, mask: np.ndarray, sigma: float = EDGE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(foreground colours uint8 HxWx3, alpha float32 HxW): decontaminated, halo removed.

    In the edge band (a few pixels either side of the mask's edge) each pixel's opacity is its
    position on the line from the local background colour B to the local subject colour F (a
    colour-line matte): backdrop the mask took in gets alpha 0, a blended edge pixel the share of
    the subject it really has; its colour is then solved for (``F = (I - (1 - a) B) / a``). Where
    subject and backdrop have nearly the same colour the mask's own soft edge is kept. Only the
    band's pixels are computed (full-resolution photos stay cheap)."""
    a = soft_alpha(mask, sigma)
    hard = (mask > 127).astype(np.uint8)
    inner = cv2.erode(hard, np.ones((2 * HALO_RING + 1,) * 2, np.uint8))
    band = ((hard - inner) > 0) | ((a > 0) & (a < 1))
    ys, xs = np.nonzero(band)
    out = rgb.copy()
    if not len(ys):
        return out, a
    outside = a <= 0.02
    I = rgb[ys, xs].astype(np.float32)
    if outside.any():
        b_est, f = _small_mean(rgb, outside, BG_SIGMA)
        B = _at(b_est, f, ys, xs)
    else:
        B = np.full_like(I, 255.0)
    ab = a[ys, xs]
    if inner.any() and outside.any():
        f_est, f = _small_mean(rgb, inner, BG_SIGMA)
        d = _at(f_est, f, ys, xs) - B
        dd = (d * d).sum(axis=1)
        proj = np.clip(((I - B) * d).sum(axis=1) / np.maximum(dd, 1e-3), 0.0, 1.0)
        ab = np.where(dd > HALO_FAR ** 2, np.minimum(ab, proj), ab)
        a[ys, xs] = ab
    solved = np.clip((I - (1.0 - ab[:, None]) * B) / np.maximum(ab, MIN_ALPHA)[:, None], 0.0, 255.0)
    edge = (ab > 0) & (ab < 1)
    out[ys[edge], xs[edge]] = (solved[edge] + 0.5).astype(np.uint8)
    return out, a


def on_background(rgb: np.ndarray, mask: np.ndarray, background, sigma: float = EDGE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The subject on a plain ``background`` (uint8 HxWx3) and its alpha as uint8 (the subject mask
    of the composited image: 0 = pure background)."""
    F, a = clean(rgb, mask, sigma)
    bg = np.asarray(background, np.uint8)
    out = F
    out[a <= 0] = bg
    ys, xs = np.nonzero((a > 0) & (a < 1))
    if len(ys):
        w = a[ys, xs][:, None]
        out[ys, xs] = (F[ys, xs] * w + bg.astype(np.float32) * (1.0 - w) + 0.5).astype(np.uint8)
    return out, np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
