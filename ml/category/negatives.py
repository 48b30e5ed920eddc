"""Generated "no product" images: colour charts, textures, noise, stripes, gradients.

The head is trained to give them a flat distribution over the classes (outlier exposure),
so a colour chart, a grey card or a random texture comes out as ``other`` instead of a
confident wrong class. Made here from a seed: no data, no licence question.
"""
from __future__ import annotations

import cv2
import numpy as np

KINDS = ("chart", "noise", "blurred_noise", "stripes", "checker", "gradient", "card")


def _chart(rng, s):
    rows, cols = rng.integers(3, 7), rng.integers(4, 8)
    cells = rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8)
    img = cv2.resize(cells, (s, s), interpolation=cv2.INTER_NEAREST)
    gap = int(rng.integers(0, 6))
    if gap:
        img[:: max(1, s // rows), :] = 20
        img[:, :: max(1, s // cols)] = 20
    return img


def _noise(rng, s):
    return rng.integers(0, 256, (s, s, 3), dtype=np.uint8)


def _blurred(rng, s):
    k = int(rng.integers(4, 40))
    small = rng.integers(0, 256, (k, k, 3), dtype=np.uint8)
    return cv2.resize(small, (s, s), interpolation=cv2.INTER_CUBIC)


def _stripes(rng, s):
    period = int(rng.integers(4, 40))
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    x = (np.arange(s) // period) % 2
    img = np.where(x[None, :, None] == 1, a, b).astype(np.uint8)
    img = np.broadcast_to(img, (s, s, 3)).copy()
    return img if rng.random() < 0.5 else np.ascontiguousarray(img.transpose(1, 0, 2))


def _checker(rng, s):
    period = int(rng.integers(6, 48))
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[:s, :s]
    sel = ((yy // period + xx // period) % 2)[..., None] == 1
    return np.where(sel, a, b).astype(np.uint8)


def _gradient(rng, s):
    a, b = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
    t = np.linspace(0, 1, s, dtype=np.float32)[None, :, None]
    img = np.broadcast_to((1 - t) * a + t * b, (s, s, 3))
    return img.astype(np.uint8) if rng.random() < 0.5 else np.ascontiguousarray(img.transpose(1, 0, 2)).astype(np.uint8)


def _card(rng, s):
    """A grey / white balance card, maybe with a darker frame, on a lighter table."""
    img = np.full((s, s, 3), rng.integers(180, 256), np.uint8)
    m = int(rng.integers(s // 10, s // 4))
    img[m:s - m, m:s - m] = rng.integers(60, 200)
    return img


_MAKERS = {"chart": _chart, "noise": _noise, "blurred_noise": _blurred, "stripes": _stripes,
           "checker": _checker, "gradient": _gradient, "card": _card}


def generate(n: int, seed: int = 0, size: int = 320) -> list[np.ndarray]:
    """``n`` uint8 RGB images of ``size`` px, cycling through :data:`KINDS`."""
    rng = np.random.default_rng(seed)
    return [_MAKERS[KINDS[i % len(KINDS)]](rng, size) for i in range(n)]
