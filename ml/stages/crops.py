"""Stage 3 (person photos): Smart Cropping — garment-zone boxes from the 23 keypoints.

Zones (paper: "cut the image and create a set of images representing the goods"):

* ``head``   hat / hair / glasses: face points (nose, eyes, ears) down to the shoulders, with
             room above the head for a hat — the person mask's top over the head when known;
* ``top``    shoulders to just below the hips, arms included, widened to the mask;
* ``bottom`` waist (above the hip joints) to the ankles — or, with the ankles not visible,
             to the knees or as far down as the mask shows the legs;
* ``shoes``  both feet (ankles, heels, toes) in one box, down to the soles;
* ``full``   the whole person (mask components + keypoints) with a margin.

A zone is produced only when its keypoints are visible (score >= ``min_score`` *and* inside
the frame): no ``shoes`` when the feet are not in the photo, no ``head`` on a headless torso
shot. Margins are proportional to the body scale ``u`` ≈ shoulder width (estimated from the
shoulders, hips, torso length, head or legs, whichever are visible). Boxes are integer
pixel rectangles (x0, y0, x1, y1), x1/y1 exclusive, clipped to the image and never smaller
than ``min_side`` pixels; a zone that the frame cuts off for the most part is dropped.
"""
from __future__ import annotations

import cv2
import numpy as np

from ml import resample
from ml.masks import as_u8

from ml.types import KP, CropItem, Keypoints
from ml.types import PERSON_ZONES as ALL_PERSON_ZONES

PERSON_ZONES = ("head", "top", "bottom", "shoes", "full")   # the zones keypoints can frame
MIN_SCORE = 0.3
_MASK_WORK = 768          # mask extents are measured on a copy at most this many pixels wide
_MIN_VISIBLE_FRAC = 0.55  # a zone whose box the frame cuts by more than this is dropped

Box = tuple[float, float, float, float]


class _MaskView:
    """The person mask at a small working size, main components only, in source coordinates."""

    def __init__(self, mask: np.ndarray, image_size: tuple[int, int], seeds: list[np.ndarray]):
        w, h = image_size
        m = as_u8(mask)
        mh, mw = m.shape
        f = resample.factor_to_fit(mh, mw, _MASK_WORK)
        if f > 1 and mh >= f and mw >= f:
            m = resample.shrink(m, f)
            self.sx, self.sy = f * w / mw, f * h / mh       # source pixels per working pixel
        else:
            self.sx, self.sy = w / mw, h / mh
        b = (m >= 128).astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(b, connectivity=8)
        keep = np.zeros(n, bool)
        if n > 1:
            areas = stats[1:, cv2.CC_STAT_AREA]
            keep[1:] = areas >= 0.15 * areas.max()
            for p in seeds:   # components that hold a keypoint belong to the person
                x, y = int(p[0] / self.sx), int(p[1] / self.sy)
                if 0 <= y < lab.shape[0] and 0 <= x < lab.shape[1] and lab[y, x] > 0:
                    keep[lab[y, x]] = True
        self.m = keep[lab]
        self.empty = not self.m.any()

    def _rows(self, y0: float, y1: float) -> slice:
        a = int(np.clip(np.floor(y0 / self.sy), 0, self.m.shape[0]))
        b = int(np.clip(np.ceil(y1 / self.sy), 0, self.m.shape[0]))
        return slice(a, max(a, b))

    def _cols(self, x0: float, x1: float) -> slice:
        a = int(np.clip(np.floor(x0 / self.sx), 0, self.m.shape[1]))
        b = int(np.clip(np.ceil(x1 / self.sx), 0, self.m.shape[1]))
        return slice(a, max(a, b))

    def x_extent(self, y0: float, y1: float, x0: float, x1: float) -> tuple[float, float] | None:
        """Leftmost/rightmost mask x in rows y0..y1, searched within columns x0..x1."""
        r, c = self._rows(y0, y1), self._cols(x0, x1)
        cols = np.flatnonzero(self.m[r, c].any(axis=0))
        if cols.size == 0:
            return None
        return (c.start + cols[0]) * self.sx, (c.start + cols[-1] + 1) * self.sx

    def y_extent(self, x0: float, x1: float, y0: float, y1: float) -> tuple[float, float] | None:
        """Topmost/bottommost mask y in columns x0..x1, searched within rows y0..y1."""
        r, c = self._rows(y0, y1), self._cols(x0, x1)
        rows = np.flatnonzero(self.m[r, c].any(axis=1))
        if rows.size == 0:
            return None
        return (r.start + rows[0]) * self.sy, (r.start + rows[-1] + 1) * self.sy

    def bbox(self) -> Box | None:
        if self.empty:
            return None
        ys = np.flatnonzero(self.m.any(axis=1))
        xs = np.flatnonzero(self.m.any(axis=0))
        return xs[0] * self.sx, ys[0] * self.sy, (xs[-1] + 1) * self.sx, (ys[-1] + 1) * self.sy


class _Body:
    """Visible keypoints and the body scale of one person."""

    def __init__(self, kp: Keypoints, image_size: tuple[int, int], min_score: float):
        self.w, self.h = int(image_size[0]), int(image_size[1])
        xy = np.asarray(kp.xy, dtype=np.float64).reshape(-1, 2)
        sc = np.asarray(kp.score, dtype=np.float64).reshape(-1)
        self.vis: dict[str, np.ndarray] = {}
        self.outside: dict[str, np.ndarray] = {}   # detected, but beyond the frame edge
        for name, i in KP.items():
            if i < len(sc) and sc[i] >= min_score and np.all(np.isfinite(xy[i])):
                x, y = xy[i]
                if 0 <= x < self.w and 0 <= y < self.h:
                    self.vis[name] = xy[i]
                else:
                    self.outside[name] = xy[i]
        self.u = self._scale()

    def has(self, *names: str) -> bool:
        return all(n in self.vis for n in names)

    def any(self, *names: str) -> list[np.ndarray]:
        return [self.vis[n] for n in names if n in self.vis]

    def _dist(self, a: str, b: str) -> float | None:
        if self.has(a, b):
            return float(np.linalg.norm(self.vis[a] - self.vis[b]))
        return None

    def _scale(self) -> float | None:
        """Body unit u ≈ shoulder width, from whatever is visible (foreshortening only shrinks
        a length, so the largest estimate of the torso group wins)."""
        primary = []
        if (d := self._dist("left_shoulder", "right_shoulder")) is not None:
            primary.append(d)
        if (d := self._dist("left_hip", "right_hip")) is not None:
            primary.append(1.45 * d)
        sh, hp = self.any("left_shoulder", "right_shoulder"), self.any("left_hip", "right_hip")
        if sh and hp:
            primary.append(float(np.linalg.norm(np.mean(sh, 0) - np.mean(hp, 0))) / 1.4)
        primary = [p for p in primary if p > 1e-3]
        if primary:
            return max(primary)
        secondary = []
        if (d := self._dist("left_ear", "right_ear")) is not None:
            secondary.append(2.3 * d)
        if (d := self._dist("left_eye", "right_eye")) is not None:
            secondary.append(5.5 * d)
        for a, b in (("left_hip", "left_knee"), ("right_hip", "right_knee"),
                     ("left_knee", "left_ankle"), ("right_knee", "right_ankle")):
            if (d := self._dist(a, b)) is not None:
                secondary.append(d / 1.2)
        secondary = [s for s in secondary if s > 1e-3]
        return max(secondary) if secondary else None


def _finish(box, w: int, h: int, min_side: int) -> Box | None:
    """Round outwards, clip to the image; None when the frame cuts away most of it or it is
    too small to be a crop."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(np.isfinite([x0, y0, x1, y1])) or x1 <= x0 or y1 <= y0:
        return None
    area = (x1 - x0) * (y1 - y0)
    cx0, cy0 = max(0.0, np.floor(x0)), max(0.0, np.floor(y0))
    cx1, cy1 = min(float(w), np.ceil(x1)), min(float(h), np.ceil(y1))
    if cx1 - cx0 < min_side or cy1 - cy0 < min_side:
        return None
    if (min(x1, w) - max(x0, 0)) * (min(y1, h) - max(y0, 0)) < _MIN_VISIBLE_FRAC * area:
        return None
    return (cx0, cy0, cx1, cy1)


def _xy_bounds(pts: list[np.ndarray]) -> tuple[float, float, float, float]:
    a = np.asarray(pts)
    return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())


# ---- the zones -----------------------------------------------------------------------------

_FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_FEET = ("left_ankle", "right_ankle", "left_heel", "right_heel",
         "left_big_toe", "left_small_toe", "right_big_toe", "right_small_toe")


def _head_width(b: _Body) -> float | None:
    est = []
    if (d := b._dist("left_ear", "right_ear")) is not None:
        est.append(d)
    if (d := b._dist("left_eye", "right_eye")) is not None:
        est.append(2.3 * d)
    if b.u is not None:
        est.append(0.42 * b.u)
    est = [e for e in est if e > 1e-3]
    return max(est) if est else None


def _head(b: _Body, mv: _MaskView | None) -> Box | None:
    face = b.any(*_FACE)
    if not ("nose" in b.vis or len(face) >= 2):
        return None
    hw = _head_width(b)
    if hw is None:
        return None
    fx0, fy0, fx1, fy1 = _xy_bounds(face)
    cx = (fx0 + fx1) / 2.0
    eye_y = fy0
    x0, x1 = min(fx0, cx - 0.9 * hw) - 0.25 * hw, max(fx1, cx + 0.9 * hw) + 0.25 * hw
    y0 = eye_y - 1.05 * hw                 # crown + a little room for hair
    if mv is not None:
        top = mv.y_extent(cx - 0.8 * hw, cx + 0.8 * hw, eye_y - 2.6 * hw, eye_y)
        if top is not None:
            y0 = min(y0, top[0] - 0.15 * hw)   # a hat (or big hair) reaches higher
            ext = mv.x_extent(y0, eye_y, cx - 1.6 * hw, cx + 1.6 * hw)
            if ext is not None:          # hat brim / hair wider than the face
                x0, x1 = min(x0, ext[0] - 0.1 * hw), max(x1, ext[1] + 0.1 * hw)
    sh = b.any("left_shoulder", "right_shoulder")
    y1 = fy1 + 0.9 * hw                   # chin and neck
    if sh:
        sh_y = float(np.mean([p[1] for p in sh]))
        if sh_y > fy1:
            y1 = max(y1, min(sh_y, eye_y + 2.2 * hw))
    return x0, y0, x1, y1


def _top(b: _Body, mv: _MaskView | None) -> Box | None:
    sh = b.any("left_shoulder", "right_shoulder")
    hips = b.any("left_hip", "right_hip")
    if not sh or not (hips or len(sh) == 2) or b.u is None:
        return None
    u = b.u
    arms = b.any("left_elbow", "right_elbow", "left_wrist", "right_wrist")
    kx0, _, kx1, _ = _xy_bounds(sh + hips + arms)
    sh_y = min(p[1] for p in sh)
    y0 = sh_y - 0.3 * u                    # collar / neckline
    if hips:
        hip_y = max(p[1] for p in hips)
        y1 = hip_y + 0.3 * u               # hem just below the hip joints
        if arms:                            # arms included (hands hanging beside the hips)
            y1 = max(y1, min(max(p[1] for p in arms) + 0.1 * u, hip_y + 0.8 * u))
    else:
        y1 = sh_y + 1.7 * u                # torso length ≈ 1.4 u, plus the hem
    scx = float(np.mean([p[0] for p in sh]))
    x0 = min(kx0 - 0.2 * u, scx - 0.7 * u)
    x1 = max(kx1 + 0.2 * u, scx + 0.7 * u)
    if mv is not None:
        ext = mv.x_extent(sh_y, y1, x0 - 0.5 * u, x1 + 0.5 * u)
        if ext is not None:
            x0, x1 = min(x0, ext[0] - 0.05 * u), max(x1, ext[1] + 0.05 * u)
    return x0, y0, x1, y1


def _bottom(b: _Body, mv: _MaskView | None) -> Box | None:
    hips = b.any("left_hip", "right_hip")
    knees = b.any("left_knee", "right_knee")
    ankles = b.any("left_ankle", "right_ankle")
    if not hips or not (knees or ankles) or b.u is None:
        return None
    u = b.u
    kx0, _, kx1, _ = _xy_bounds(hips + knees + ankles)
    hip_y = min(p[1] for p in hips)
    y0 = hip_y - 0.4 * u                   # the waistband sits above the hip joints
    if knees or ankles:                    # crouching / sitting: knees above the hips
        y0 = min(y0, min(p[1] for p in knees + ankles) - 0.2 * u)
    if ankles:
        y1 = max(p[1] for p in ankles) + 0.15 * u
    else:
        knee_y = max(p[1] for p in knees)
        y1 = knee_y + 0.45 * u             # shorts / skirt hem around the knee
        below = [p[1] for n, p in b.outside.items() if n.endswith("ankle") and p[1] >= b.h]
        if below:                          # the legs go on past the bottom of the frame
            y1 = max(y1, min(float(b.h), max(below) + 0.15 * u))
        if mv is not None:                 # legs continue below the knees (to the frame edge)
            ext = mv.y_extent(kx0 - 0.2 * u, kx1 + 0.2 * u, knee_y, knee_y + 1.4 * u)
            if ext is not None:
                y1 = max(y1, ext[1] + 0.05 * u)
    hcx = float(np.mean([p[0] for p in hips]))
    x0 = min(kx0 - 0.3 * u, hcx - 0.55 * u)
    x1 = max(kx1 + 0.3 * u, hcx + 0.55 * u)
    if mv is not None:                      # skirts flare, wide trousers
        ext = mv.x_extent(hip_y, y1, x0 - 0.5 * u, x1 + 0.5 * u)
        if ext is not None:
            x0, x1 = min(x0, ext[0] - 0.05 * u), max(x1, ext[1] + 0.05 * u)
    return x0, y0, x1, y1


def _shoes(b: _Body, mv: _MaskView | None) -> Box | None:
    feet = b.any(*_FEET)
    if not feet or b.u is None:
        return None
    u = b.u
    fx0, fy0, fx1, fy1 = _xy_bounds(feet)
    ankles = b.any("left_ankle", "right_ankle")
    detail = b.any(*_FEET[2:])          # heels / toes
    if detail:
        x0, x1 = fx0 - 0.2 * u, fx1 + 0.2 * u
        y1 = max(fy1 + 0.12 * u, (max(p[1] for p in ankles) + 0.25 * u) if ankles else fy1)
    else:                                # ankles only: the foot extends forward and down
        x0, x1 = fx0 - 0.35 * u, fx1 + 0.35 * u
        y1 = fy1 + 0.35 * u
    y0 = fy0 - 0.2 * u
    if mv is not None and ankles:        # soles: how far down the mask goes under the feet
        ay = max(p[1] for p in ankles)
        ext = mv.y_extent(x0, x1, ay, ay + 0.8 * u)
        if ext is not None:
            y1 = max(y1, ext[1] + 0.05 * u)
    if mv is not None:                   # the shoes' own width (toe caps, heels, boots)
        ext = mv.x_extent(fy0, y1, x0 - 0.4 * u, x1 + 0.4 * u)
        if ext is not None:
            x0, x1 = min(x0, ext[0] - 0.05 * u), max(x1, ext[1] + 0.05 * u)
    return x0, y0, x1, y1


def _full(b: _Body, mv: _MaskView | None, head: Box | None, shoes: Box | None) -> Box | None:
    boxes = []
    if b.vis:
        pts = list(b.vis.values())
        x0, y0, x1, y1 = _xy_bounds(pts)
        if b.u is not None:
            x0, x1, y1 = x0 - 0.25 * b.u, x1 + 0.25 * b.u, y1 + 0.15 * b.u
            if head is None and any(n in b.vis for n in _FACE):
                y0 -= 0.5 * b.u
        if len(pts) >= 2 and x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    for extra in (head, shoes):
        if extra is not None:
            boxes.append(extra)
    if mv is not None and (mb := mv.bbox()) is not None:
        boxes.append(mb)
    if not boxes:
        return None
    a = np.asarray(boxes, dtype=np.float64)
    x0, y0, x1, y1 = a[:, 0].min(), a[:, 1].min(), a[:, 2].max(), a[:, 3].max()
    m = 0.04 * max(x1 - x0, y1 - y0)
    return x0 - m, y0 - m, x1 + m, y1 + m


# ---- public API ----------------------------------------------------------------------------

def _context(keypoints: Keypoints, image_size, person_mask, min_score: float):
    w, h = int(image_size[0]), int(image_size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive, got {image_size!r}")
    b = _Body(keypoints if keypoints is not None else Keypoints.empty(), (w, h), min_score)
    mv = None
    if person_mask is not None:
        mv = _MaskView(person_mask, (w, h), list(b.vis.values()))
        if mv.empty:
            mv = None
    min_side = max(4, int(round(0.02 * min(w, h))))
    return b, mv, w, h, min_side


def _zone_box(zone: str, b: _Body, mv, w: int, h: int, min_side: int, cache: dict) -> Box | None:
    if zone in cache:
        return cache[zone]
    if zone == "head":
        raw = _head(b, mv)
    elif zone == "top":
        raw = _top(b, mv)
    elif zone == "bottom":
        raw = _bottom(b, mv)
    elif zone == "shoes":
        raw = _shoes(b, mv)
    elif zone == "full":
        raw = _full(b, mv, _zone_box("head", b, mv, w, h, min_side, cache),
                    _zone_box("shoes", b, mv, w, h, min_side, cache))
    elif zone in ALL_PERSON_ZONES:
        raw = None                         # dress / bag: framed from the garment map only
    else:
        raise ValueError(f"unknown person zone {zone!r} (expected one of {', '.join(PERSON_ZONES)})")
    box = None if raw is None else _finish(raw, w, h, min_side)
    cache[zone] = box
    return box


def smart_crop(keypoints: Keypoints, image_size: tuple[int, int], person_mask: np.ndarray | None = None,
               *, min_score: float = MIN_SCORE) -> list[CropItem]:
    """Garment-zone crops of one person, in the order head, top, bottom, shoes, full.

    ``image_size`` is (width, height) of the photo the keypoints are in; ``person_mask``
    (any size — it is scaled to the photo; uint8 0/255, bool or float probability) sharpens
    the boxes: the head's top, the width of the top and bottom, the soles, the full extent.
    """
    b, mv, w, h, min_side = _context(keypoints, image_size, person_mask, min_score)
    cache: dict = {}
    items = []
    for zone in PERSON_ZONES:
        box = _zone_box(zone, b, mv, w, h, min_side, cache)
        if box is not None:
            items.append(CropItem(zone=zone, box=box))
    return items


def recompute_box(zone: str, keypoints: Keypoints, image_size: tuple[int, int],
                  person_mask: np.ndarray | None = None, *, min_score: float = MIN_SCORE) -> Box | None:
    """One zone's box after the keypoints changed (e.g. a drag in the GUI): the same code
    path as :func:`smart_crop`. None when the zone is no longer visible."""
    b, mv, w, h, min_side = _context(keypoints, image_size, person_mask, min_score)
    return _zone_box(zone, b, mv, w, h, min_side, {})
