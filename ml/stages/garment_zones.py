"""Garment-true zone boxes: each zone frames the garment's own pixels in the garment map.

The garment map (``ml.garments``, 11 classes) says which pixels are the top, the bottom, a
one-piece, the shoes, a bag, the hat and hair. A zone's box is the bounding box of its
classes' pixels (main connected parts only; speckles dropped) plus a margin proportional to
the garment's size; the keypoint box of the same zone (``ml.stages.crops``) is the prior —
parts far outside it are dropped — and the fallback when there is no garment map.

* ``head``   headwear + hair + accessories on the head + the face's skin (skin above the
             shoulder line); produced when there is hair or headwear (or a visible face);
* ``top``    the top class: a coat reaches its hem;
* ``bottom`` trousers / skirt: a mini-skirt's box is the skirt;
* ``dress``  a one-piece;   ``shoes`` both shoes in one box;   ``bag`` the bag.

A zone whose garment is not in the photo (below ``MIN_SHARE`` of the person's pixels) is not
produced; a zone whose garment touches the frame edge gets a warning (the garment is cut).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ml.garments.cleanup import DRESS_MIN_SHARE
from ml.garments.labels import CLASS_INDEX
from ml.types import CropItem, KP, Keypoints

WORK = 512           # the garment map is measured on a copy at most this large
ZONE_CLASSES: dict[str, tuple[str, ...]] = {
    "head": ("headwear", "hair"),
    "top": ("top",),
    "bottom": ("bottom",),
    "dress": ("dress",),
    "shoes": ("shoes",),
    "bag": ("bag",),
}
SWATCH_CLASSES: dict[str, tuple[tuple[str, ...], ...]] = {   # first non-empty choice wins
    "head": (("headwear",), ("hair",)),
}
# Share of the person's pixels a garment needs before its zone is produced. Measured with the
# shipped parser on the 100 CCP dev photos (zone present vs label present): dress at 0.05 gave
# 3 right / 8 false zones, at 0.12 1 / 0 — a false one-piece zone costs the operator more than a
# missed one, so dress waits for better weights; bag at 0.015 gives 20 right / 5 false.
MIN_SHARE = {"head": 0.01, "top": 0.03, "bottom": 0.02, "dress": DRESS_MIN_SHARE, "shoes": 0.006, "bag": 0.015}
MARGIN = 0.04        # of the garment box's long side, on every side
_KEEP_PART = 0.12    # connected parts smaller than this share of the largest are dropped


def _small(labels: np.ndarray) -> tuple[np.ndarray, float, float]:
    h, w = labels.shape
    f = max(1, math.ceil(max(h, w) / WORK))
    small = labels[::f, ::f] if f > 1 else labels
    return small, w / small.shape[1], h / small.shape[0]


def _parts(m: np.ndarray, max_parts: int) -> np.ndarray:
    """The largest connected parts of ``m`` (at most ``max_parts``, none tiny)."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        return m
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas)[:max_parts]
    keep = np.zeros(n, bool)
    keep[1 + order[areas[order] >= _KEEP_PART * areas.max()]] = True
    return keep[lab]


def _shoulder_y(kp: Keypoints | None, small: np.ndarray, sy: float) -> float | None:
    """The shoulder line in source pixels: from the keypoints, else the top of the top/dress."""
    if kp is not None:
        ys = [kp.xy[KP[n]][1] for n in ("left_shoulder", "right_shoulder") if kp.score[KP[n]] >= 0.3]
        if ys:
            return float(np.mean(ys))
    rows = np.flatnonzero(np.isin(small, [CLASS_INDEX["top"], CLASS_INDEX["dress"]]).any(1))
    return float(rows[0] * sy) if rows.size else None


def zone_mask(small: np.ndarray, zone: str, shoulder_row: float | None) -> np.ndarray:
    m = np.isin(small, [CLASS_INDEX[c] for c in ZONE_CLASSES[zone]])
    if zone == "head" and m.any() and shoulder_row is not None:
        above = np.zeros_like(m)
        above[:max(0, int(shoulder_row))] = True
        extra = np.isin(small, [CLASS_INDEX["skin"], CLASS_INDEX["accessory"]]) & above
        m = m | extra
    return m


def garment_zones(labels: np.ndarray, keypoints: Keypoints | None = None,
                  prior: dict[str, tuple[float, float, float, float]] | None = None
                  ) -> tuple[list[CropItem], list[str]]:
    """Zone items (document order) framed on ``labels`` (uint8 HxW, source size) + warnings."""
    items, warnings = [], []
    for zone in ZONE_CLASSES:
        fit = fit_zone(labels, zone, keypoints, (prior or {}).get(zone), MIN_SHARE[zone])
        if fit is None:
            continue
        box, cut = fit
        if cut:
            warnings.append(f"the {zone} is cut by the frame")
        items.append(CropItem(zone=zone, box=box))
    return items, warnings


def fit_zone(labels: np.ndarray, zone: str, keypoints: Keypoints | None = None, prior=None,
             min_share: float = 0.0) -> tuple[tuple[float, float, float, float], bool] | None:
    """One zone's garment-true box on ``labels`` (source pixels, with :data:`MARGIN`) and whether
    the garment is cut by the frame; None when the zone's garment covers less than ``min_share``
    of the person's pixels (or none at all). ``prior``: a box near the garment (the keypoint box,
    or the operator's box) - parts far outside it are dropped. The one rule behind the
    pipeline's zones and the operator's "fit box to garment"."""
    if zone not in ZONE_CLASSES:
        return None
    small, sx, sy = _small(labels)
    core = np.isin(small, [CLASS_INDEX[c] for c in ZONE_CLASSES[zone]])
    n_core = np.count_nonzero(core)
    if n_core == 0 or n_core < min_share * max(1, int(np.count_nonzero(small))):
        return None
    sh = _shoulder_y(keypoints, small, sy)
    m = zone_mask(small, zone, None if sh is None else sh / sy)
    m = _parts(m, 2 if zone == "shoes" else 3)
    box = _prior_filter(m, prior, sx, sy)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    cut = (x0 <= 0 or y0 <= 0 or x1 >= small.shape[1] or y1 >= small.shape[0]) and (zone != "head" or y0 <= 0)
    bx0, by0, bx1, by1 = x0 * sx, y0 * sy, x1 * sx, y1 * sy
    mg = MARGIN * max(bx1 - bx0, by1 - by0)
    H, W = labels.shape
    return (max(0.0, math.floor(bx0 - mg)), max(0.0, math.floor(by0 - mg)),
            min(float(W), math.ceil(bx1 + mg)), min(float(H), math.ceil(by1 + mg))), bool(cut)


def _prior_filter(m: np.ndarray, prior, sx: float, sy: float):
    """Bounding box (small-map pixels, x1/y1 exclusive) of ``m``'s parts; with a keypoint prior,
    parts that do not reach into the prior box (grown by half its size) are dropped."""
    if prior is not None:
        n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        if n > 2:
            px0, py0, px1, py1 = prior
            gw, gh = 0.5 * (px1 - px0), 0.5 * (py1 - py0)
            r0, r1 = int(max(0, (py0 - gh) / sy)), int(math.ceil((py1 + gh) / sy))
            c0, c1 = int(max(0, (px0 - gw) / sx)), int(math.ceil((px1 + gw) / sx))
            inside = np.unique(lab[r0:r1, c0:c1])
            inside = inside[inside > 0]
            if inside.size:
                m = np.isin(lab, inside)
    ys = np.flatnonzero(m.any(1))
    xs = np.flatnonzero(m.any(0))
    if not ys.size:
        return None
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)


def swatch_region(labels: np.ndarray, zone: str, box=None) -> np.ndarray:
    """The pixels (bool, ``labels``' size) a zone's swatch is measured on: only its garment's
    (for the head the hat before the hair), inside ``box`` when given."""
    h, w = labels.shape
    x0, y0, x1, y1 = (0, 0, w, h) if box is None else (
        max(0, int(box[0])), max(0, int(box[1])), min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3]))))
    out = np.zeros((h, w), bool)
    part = labels[y0:y1, x0:x1]
    for classes in SWATCH_CLASSES.get(zone, (ZONE_CLASSES.get(zone, ()),)):
        m = np.isin(part, [CLASS_INDEX[c] for c in classes])
        if m.any():
            out[y0:y1, x0:x1] = m
            break
    return out


def _face_visible(kp: Keypoints | None) -> bool | None:
    """True/False from the keypoints; None when there are no keypoints at all."""
    if kp is None or not np.any(kp.score > 0):
        return None
    face = [kp.score[KP[n]] >= 0.3 for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    return bool(face[0] or sum(face) >= 2)


def person_zones(keypoints: Keypoints, image_size: tuple[int, int], person_mask: np.ndarray | None,
                 garments: np.ndarray | None) -> tuple[list[CropItem], list[str]]:
    """All person zones: garment-true boxes when there is a garment map, else the keypoint
    boxes of :func:`ml.stages.crops.smart_crop`; ``full`` always from the keypoints and mask
    (grown to the garment map's person when it reaches further)."""
    from ml.stages.crops import smart_crop
    from ml.types import ZONES
    kp_items = smart_crop(keypoints, image_size, person_mask)
    if garments is None:
        return kp_items, []
    prior = {it.zone: it.box for it in kp_items}
    items, warnings = garment_zones(garments, keypoints, prior)
    head = next((it for it in items if it.zone == "head"), None)
    if head is not None and _face_visible(keypoints) is False \
            and not (garments[int(head.box[1]):int(head.box[3]), int(head.box[0]):int(head.box[2])]
                     == CLASS_INDEX["headwear"]).any():
        items.remove(head)                     # hair on the shoulders of a chin-down shot
        warnings = [w for w in warnings if not w.startswith("the head ")]
    full = next((it for it in kp_items if it.zone == "full"), None)
    ext = _person_box(garments)
    if ext is not None:
        box = ext if full is None else tuple(
            f(a, b) for f, a, b in zip((min, min, max, max), full.box, ext))
        full = CropItem(zone="full", box=box)
    if full is not None:
        items.append(full)
    items.sort(key=lambda it: ZONES.index(it.zone))
    return items, warnings


def _person_box(labels: np.ndarray) -> tuple[float, float, float, float] | None:
    small, sx, sy = _small(labels)
    m = _parts(small > 0, 3)
    ys, xs = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if not ys.size or np.count_nonzero(m) < 0.01 * m.size:
        return None
    H, W = labels.shape
    x0, y0, x1, y1 = xs[0] * sx, ys[0] * sy, (xs[-1] + 1) * sx, (ys[-1] + 1) * sy
    mg = MARGIN * max(x1 - x0, y1 - y0)
    return (max(0.0, math.floor(x0 - mg)), max(0.0, math.floor(y0 - mg)),
            min(float(W), math.ceil(x1 + mg)), min(float(H), math.ceil(y1 + mg)))
