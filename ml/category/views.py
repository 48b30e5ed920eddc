"""The classifier's input: the product cut out and placed on a studio background.

Clothing in the training photos lies on floors and beds, food sits on shop shelves, the
rest are clean packshots: a network fed whole photos learns the background. Every photo
is therefore reduced to its product, as the pipeline sees it: the salient-object mask
(U2-Net-p) selects the product, its box (plus a margin) is cut out and placed, centred and
letterboxed, on a square background. At inference the background is white; in training
the same cut-out is also placed on grey studio sweeps (a vertical gradient, as a paper
sweep lights up) and flipped, so the head learns the product, not the floor.

When the mask is empty or covers (nearly) the whole photo, the whole photo is used.
"""
from __future__ import annotations

import cv2
import numpy as np

from ml.category.backbone import INPUT_SIZE

MARGIN = 0.06               # of the product box's longer side, on every side
MIN_COVER, MAX_COVER = 0.002, 0.97
BOX_SIDE = 256              # the box is found on a copy of the mask at most this large
KEEP_FRAC = 0.03            # components this share of the largest belong to the product (as ml.stages.product)
WHITE = ((255, 255, 255), (255, 255, 255))
SWEEPS = (((236, 236, 236), (200, 200, 200)), ((250, 250, 248), (222, 222, 220)),
          ((214, 214, 214), (168, 168, 168)))


def product_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Box (x0, y0, x1, y1) of the mask's main object(s): the largest connected component and
    any at least :data:`KEEP_FRAC` of it (a pair of shoes), found on a copy at most
    :data:`BOX_SIDE` px (a few ms, at any photo size) and padded by one copy pixel. None when
    the mask is unusable (empty / everything)."""
    h, w = mask.shape[:2]
    s = min(1.0, BOX_SIDE / max(h, w))
    small = mask if s >= 1.0 else cv2.resize(mask, (max(1, round(w * s)), max(1, round(h * s))),
                                             interpolation=cv2.INTER_AREA)
    binary = (small >= 64).astype(np.uint8)
    cover = float(np.count_nonzero(binary)) / max(1, binary.size)
    if not MIN_COVER <= cover <= MAX_COVER:
        return None
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = stats[1:][areas >= KEEP_FRAC * areas.max()]
    x0, y0 = keep[:, cv2.CC_STAT_LEFT].min(), keep[:, cv2.CC_STAT_TOP].min()
    x1 = (keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max()
    fx, fy = w / binary.shape[1], h / binary.shape[0]
    return (max(0, int((x0 - 1) * fx)), max(0, int((y0 - 1) * fy)),
            min(w, int(np.ceil((x1 + 1) * fx))), min(h, int(np.ceil((y1 + 1) * fy))))


def _sweep(size: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    col = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    return np.broadcast_to(col, (size, size, 3)).copy()


def compose(rgb: np.ndarray, mask: np.ndarray | None, background=WHITE, size: int = INPUT_SIZE,
            use_mask: bool = True) -> np.ndarray:
    """size x size x 3 uint8: the product of ``rgb`` (mask any size; None = whole photo) on
    a background gradient ``(top, bottom)``. ``use_mask=False`` keeps the photo's own
    background around the product (the box crop only)."""
    h, w = rgb.shape[:2]
    box = None
    if mask is not None:
        m = mask if mask.shape == (h, w) else cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        box = product_box(m)
    if box is None:
        x0, y0, x1, y1 = 0, 0, w, h
        alpha = None
    else:
        x0, y0, x1, y1 = box
        pad = int(round(MARGIN * max(x1 - x0, y1 - y0)))
        x0, y0, x1, y1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
        alpha = m[y0:y1, x0:x1] if use_mask else None
    crop = rgb[y0:y1, x0:x1]
    s = size / max(x1 - x0, y1 - y0)
    tw, th = max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    fg = cv2.resize(crop, (tw, th), interpolation=interp).astype(np.float32)
    canvas = _sweep(size, *background)
    ox, oy = (size - tw) // 2, (size - th) // 2
    region = canvas[oy:oy + th, ox:ox + tw]
    if alpha is not None:
        a = cv2.resize(alpha, (tw, th), interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
        region[:] = a * fg + (1 - a) * region
    else:
        region[:] = fg
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def training_views(rgb: np.ndarray, mask: np.ndarray | None, k: int = 0,
                   size: int = INPUT_SIZE) -> list[np.ndarray]:
    """The views whose features one training photo contributes (:data:`VIEW_NAMES`): on
    white, mirrored on white, mirrored on grey sweep ``k % 3``, and the plain box crop with
    the photo's own background (so a failed mask at inference is not out of distribution)."""
    white = compose(rgb, mask, size=size)
    sweep = compose(rgb, mask, background=SWEEPS[k % len(SWEEPS)], size=size)
    return [white, white[:, ::-1].copy(), sweep[:, ::-1].copy(), compose(rgb, mask, size=size, use_mask=False)]


VIEW_NAMES = ("white", "white_flip", "sweep_flip", "own_background")
