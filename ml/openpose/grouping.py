"""Multi-person parsing from confidence maps + PAFs (Cao et al. 2017, section 2.4).

1. Peaks: local maxima (3x3 non-maximum suppression) of each keypoint map above
   ``peak_threshold``, refined to sub-cell precision by a parabola fit to the log of the map
   (exact for a Gaussian peak).
2. Limb candidates: for every pair of peaks of a limb's two parts, the PAF line integral —
   ``paf_samples`` points on the segment, dot product with the segment's unit vector — plus a
   distance prior ``min(0.5*H/len - 1, 0)``; a pair is kept when at least ``paf_min_fraction``
   of the samples exceed ``paf_threshold`` and the mean is positive.
3. Bipartite matching per limb: greedy by score, each peak used once per limb (Cao et al.'s
   relaxation of the k-partite matching).
4. Assembly: limbs in order; a connection extends the person owning one of its ends, merges two
   disjoint partial people, or (only for spanning-tree limbs) starts a new one. People with
   fewer than ``min_parts`` parts or a low mean score are dropped.

Result: per person a (23,3) array of x, y (input pixels) and score (0 = missing point).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import LIMBS, NUM_KEYPOINTS, TREE_LIMBS, OpenPoseConfig
from .targets import grid_to_input


@dataclass
class Person:
    keypoints: np.ndarray   # (23,3): x, y in input pixels, score (0 = missing)
    score: float            # mean of (peak scores + connection scores) over its parts
    num_parts: int


def find_peaks(heat: np.ndarray, threshold: float, max_peaks: int = 32) -> list[np.ndarray]:
    """heat (K,h,w) -> per keypoint an array (n,3) of grid x, y (sub-cell), score; at most
    ``max_peaks`` strongest per keypoint (bounds the pairwise limb scoring)."""
    out = []
    k, h, w = heat.shape
    kernel = np.ones((3, 3), np.uint8)
    for j in range(k):
        m = np.ascontiguousarray(heat[j], dtype=np.float32)
        mx = cv2.dilate(m, kernel)
        ys, xs = np.nonzero((m >= mx) & (m > threshold))
        if len(xs) == 0:
            out.append(np.zeros((0, 3), np.float32))
            continue
        # drop plateau duplicates: keep the first of equal neighbours
        pts = []
        taken = np.zeros_like(m, dtype=bool)
        order = np.argsort(-m[ys, xs])
        for i in order:
            y, x = int(ys[i]), int(xs[i])
            if taken[max(0, y - 1):y + 2, max(0, x - 1):x + 2].any():
                continue
            if len(pts) >= max_peaks:
                break
            taken[y, x] = True
            rx, gx = _refine(m, x, y, axis=1)
            ry, gy = _refine(m, x, y, axis=0)
            # score: the fitted peak height (the value the map has at the refined position)
            pts.append((rx, ry, float(min(1.0, m[y, x] * np.exp(gx + gy)))))
        out.append(np.asarray(pts, np.float32).reshape(-1, 3))
    return out


def _refine(m: np.ndarray, x: int, y: int, axis: int) -> tuple[float, float]:
    """Sub-cell position along ``axis`` (1 = x, 0 = y) by a parabola through log values, and
    the gain in log value from the cell centre to the parabola's top."""
    h, w = m.shape
    c = x if axis == 1 else y
    n = w if axis == 1 else h
    if c <= 0 or c >= n - 1:
        return float(c), 0.0
    if axis == 1:
        l, v, r = m[y, x - 1], m[y, x], m[y, x + 1]
    else:
        l, v, r = m[y - 1, x], m[y, x], m[y + 1, x]
    eps = 1e-6
    ll, lv, lr = np.log(max(l, eps)), np.log(max(v, eps)), np.log(max(r, eps))
    den = ll - 2 * lv + lr
    if den >= -1e-9:
        return float(c), 0.0
    off = float(np.clip(0.5 * (ll - lr) / den, -0.5, 0.5))
    gain = float(lv + off * (lr - ll) / 2 + off * off * den / 2 - lv)
    return float(c + off), max(0.0, gain)


def _bilinear(ch: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    h, w = ch.shape
    xs = np.clip(xs, 0, w - 1)
    ys = np.clip(ys, 0, h - 1)
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx, fy = xs - x0, ys - y0
    return (ch[y0, x0] * (1 - fx) * (1 - fy) + ch[y0, x1] * fx * (1 - fy)
            + ch[y1, x0] * (1 - fx) * fy + ch[y1, x1] * fx * fy)


def score_limb(paf_x: np.ndarray, paf_y: np.ndarray, a: np.ndarray, b: np.ndarray,
               n_samples: int, threshold: float, min_fraction: float) -> float | None:
    """PAF line-integral score of the segment a->b (grid coords), or None if rejected."""
    vec = b[:2] - a[:2]
    norm = float(np.hypot(vec[0], vec[1]))
    h = paf_x.shape[0]
    if norm < 1.0:
        # the two parts fall in (nearly) the same cell: no direction to integrate along; accept
        # when a limb field is present there at all
        mid = (a[:2] + b[:2]) / 2
        mag = float(np.hypot(_bilinear(paf_x, mid[:1], mid[1:])[0], _bilinear(paf_y, mid[:1], mid[1:])[0]))
        return mag if mag > max(threshold, 0.3) else None
    u = vec / norm
    t = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)
    xs = a[0] + t * vec[0]
    ys = a[1] + t * vec[1]
    dots = _bilinear(paf_x, xs, ys) * u[0] + _bilinear(paf_y, xs, ys) * u[1]
    score = float(dots.mean()) + min(0.5 * h / norm - 1.0, 0.0)
    if (dots > threshold).mean() < min_fraction or score <= 0:
        return None
    return score


def group_people(heat: np.ndarray, paf: np.ndarray, cfg: OpenPoseConfig,
                 stride: int | None = None) -> list[Person]:
    """heat (>=23,h,w), paf (52,h,w) at the output grid -> people, keypoints in input pixels."""
    stride = cfg.stride if stride is None else stride
    heat = np.asarray(heat, np.float32)
    paf = np.asarray(paf, np.float32)
    peaks = find_peaks(heat[:NUM_KEYPOINTS], cfg.peak_threshold)
    # global candidate table: rows (x, y, score, part)
    cand = []
    ids: list[np.ndarray] = []
    for j, pk in enumerate(peaks):
        start = len(cand)
        for x, y, s in pk:
            cand.append((x, y, s, j))
        ids.append(np.arange(start, len(cand)))
    cand_arr = np.asarray(cand, np.float32).reshape(-1, 4)

    # connections per limb: list of (id_a, id_b, score)
    connections: list[list[tuple[int, int, float]]] = []
    for c, (pa, pb) in enumerate(LIMBS):
        A, B = ids[pa], ids[pb]
        found = []
        for ia in A:
            for ib in B:
                s = score_limb(paf[2 * c], paf[2 * c + 1], cand_arr[ia], cand_arr[ib],
                               cfg.paf_samples, cfg.paf_threshold, cfg.paf_min_fraction)
                if s is not None:
                    found.append((int(ia), int(ib), s + 0.0))
        found.sort(key=lambda t: -t[2])
        used_a, used_b, keep = set(), set(), []
        for ia, ib, s in found:
            if ia in used_a or ib in used_b:
                continue
            used_a.add(ia)
            used_b.add(ib)
            keep.append((ia, ib, s))
        connections.append(keep)

    # assembly. A row: 23 candidate ids (-1 = none), then total score, then part count.
    rows: list[np.ndarray] = []
    for c, (pa, pb) in enumerate(LIMBS):
        for ia, ib, s in connections[c]:
            hits = [r for r, row in enumerate(rows) if row[pa] == ia or row[pb] == ib]
            if len(hits) == 1:
                row = rows[hits[0]]
                if row[pb] == -1 and row[pa] == ia:
                    row[pb] = ib
                    row[-1] += 1
                    row[-2] += cand_arr[ib, 2] + s
                elif row[pa] == -1 and row[pb] == ib:
                    row[pa] = ia
                    row[-1] += 1
                    row[-2] += cand_arr[ia, 2] + s
                elif row[pa] == ia and row[pb] == ib:
                    row[-2] += s
            elif len(hits) == 2:
                r1, r2 = rows[hits[0]], rows[hits[1]]
                occ1, occ2 = r1[:NUM_KEYPOINTS] >= 0, r2[:NUM_KEYPOINTS] >= 0
                if not (occ1 & occ2).any():          # disjoint fragments: merge
                    r1[:NUM_KEYPOINTS][occ2] = r2[:NUM_KEYPOINTS][occ2]
                    r1[-2] += r2[-2] + s
                    r1[-1] += r2[-1]
                    del rows[hits[1]]
            elif not hits and c < TREE_LIMBS:
                row = -np.ones(NUM_KEYPOINTS + 2, np.float64)
                row[pa], row[pb] = ia, ib
                row[-1] = 2
                row[-2] = cand_arr[ia, 2] + cand_arr[ib, 2] + s
                rows.append(row)

    # lone peaks (a person seen only as a single part) are not people
    people: list[Person] = []
    for row in rows:
        n_parts = int(row[-1])
        if n_parts < cfg.min_parts:
            continue
        mean = float(row[-2]) / max(n_parts, 1)
        if mean < cfg.min_person_score:
            continue
        kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        for j in range(NUM_KEYPOINTS):
            cid = int(row[j])
            if cid >= 0:
                x, y, s, _ = cand_arr[cid]
                kp[j] = (grid_to_input(x, stride), grid_to_input(y, stride), s)
        people.append(Person(kp, float(np.clip(kp[kp[:, 2] > 0, 2].mean(), 0, 1)), n_parts))
    people.sort(key=lambda p: -(p.score * p.num_parts))
    return people
