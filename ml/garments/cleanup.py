"""Clean-up of the garment map before zones and swatches are taken from it.

The parser's two commonest mistakes on the CCP dev photos (measured on its maps: per photo,
which classes the labelled trousers/skirts got) are confusions between neighbouring classes that
the rest of the photo can settle:

* **a one-piece too small to be one.** A skirt under a top is often painted ``dress`` in part
  (6 of 22 poorly framed bottoms). When the ``dress`` pixels are too few for a one-piece zone
  (:data:`DRESS_MIN_SHARE` of the person, the threshold the zones use), they are the parser
  hesitating between the top and the bottom: those above the hip line become ``top``, those
  below it ``bottom``.
* **trousers read as legwear.** The lower legs of trousers are often painted ``legwear``
  (tights, socks; 4 of 22). A legwear region that touches the bottom and has the bottom's
  colour (CIELAB distance below :data:`SAME_COLOUR`) is the same garment and becomes
  ``bottom``; tights of another colour under a skirt stay legwear.

Everything else is left as the network said. Cheap (a few ms on a 1024-px map).
"""
from __future__ import annotations

import cv2
import numpy as np

from ml.types import KP, Keypoints

from .labels import CLASS_INDEX

DRESS_MIN_SHARE = 0.12   # a one-piece covers at least this share of the person's pixels
SAME_COLOUR = 14.0       # CIELAB distance (CIE76) under which legwear is the bottom's own fabric
_TOP, _BOTTOM, _DRESS, _LEG = (CLASS_INDEX[c] for c in ("top", "bottom", "dress", "legwear"))


def hip_row(keypoints: Keypoints | None, min_score: float = 0.3) -> float | None:
    """The hip line's y (the keypoints' scale), or None when no hip is visible."""
    if keypoints is None:
        return None
    ys = [float(keypoints.xy[KP[n]][1]) for n in ("left_hip", "right_hip") if keypoints.score[KP[n]] >= min_score]
    return float(np.mean(ys)) if ys else None


def resolve(labels: np.ndarray, rgb: np.ndarray | None = None, keypoints: Keypoints | None = None) -> np.ndarray:
    """A cleaned copy of ``labels`` (uint8 HxW). ``rgb``: the photo at the same size (for the
    colour test; without it legwear stays); ``keypoints``: at the same scale (the hip line;
    without a visible hip the small one-piece stays)."""
    out = np.array(labels, np.uint8, copy=True)
    n_person = int(np.count_nonzero(out))
    if n_person == 0:
        return out
    dress = out == _DRESS
    n_dress = int(np.count_nonzero(dress))
    hip = hip_row(keypoints)
    if 0 < n_dress < DRESS_MIN_SHARE * n_person and hip is not None:
        below = (np.arange(out.shape[0]) >= hip)[:, None]
        out[dress & ~below] = _TOP
        out[dress & below] = _BOTTOM
    if rgb is not None and rgb.shape[:2] == out.shape:
        _legwear_of_the_bottom(out, rgb)
    return out


def _legwear_of_the_bottom(out: np.ndarray, rgb: np.ndarray) -> None:
    leg = (out == _LEG).astype(np.uint8)
    bottom = out == _BOTTOM
    if not leg.any() or np.count_nonzero(bottom) < 50:
        return
    from ml import colour
    fabric = np.median(colour.srgb_to_lab(rgb[bottom]), axis=0)
    k = max(3, int(round(0.01 * max(out.shape))) | 1)
    near = cv2.dilate(bottom.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    n, comp = cv2.connectedComponents(leg, connectivity=8)
    for i in range(1, n):
        part = comp == i
        if not (part & near).any():
            continue
        if float(colour.delta_e(np.median(colour.srgb_to_lab(rgb[part]), axis=0), fabric)) < SAME_COLOUR:
            out[part] = _BOTTOM
