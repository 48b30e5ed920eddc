"""Augmentations that turn CCP street photos (full length) into the framings a studio shoots.

One call, :func:`augment_person`, takes a photo and its 11-class label map and returns a
``(H, W)`` training sample: a framing (full length, waist-down, chin-down, hip-to-feet,
head-to-waist, close-up of one worn garment), a horizontal flip, sometimes a plain studio
backdrop in place of the background pixels (flat or gradient white / grey / colour sweep) and
a colour jitter. :func:`augment_product` frames a product photo (no labels) the same way.
Everything is numpy + OpenCV, driven by the ``rng`` passed in (reproducible with a seed).
"""
from __future__ import annotations

import cv2
import numpy as np

from .labels import CLASS_INDEX

IGNORE = 255
FRAMINGS = (("full", 0.28), ("waist_down", 0.2), ("chin_down", 0.16), ("hip_to_feet", 0.1),
            ("head_to_waist", 0.1), ("close_up", 0.16))


def _rows_of(lab: np.ndarray, cls: str) -> np.ndarray:
    return np.flatnonzero((lab == CLASS_INDEX[cls]).any(1))


def _vertical_span(lab: np.ndarray, framing: str, rng: np.random.Generator) -> tuple[float, float]:
    """Rows [ya, yb) of the chosen framing, from the person's extent and its labelled parts."""
    rows = np.flatnonzero((lab > 0).any(1))
    y0, y1 = (float(rows[0]), float(rows[-1] + 1)) if rows.size else (0.0, float(lab.shape[0]))
    h = y1 - y0
    bottom_rows = _rows_of(lab, "bottom")
    waist = float(bottom_rows[0]) if bottom_rows.size else y0 + 0.48 * h
    hair_rows = _rows_of(lab, "hair")
    chin = y0 + 0.13 * h if not hair_rows.size else min(y0 + 0.16 * h, float(hair_rows[-1]) * 0.5 + (y0 + 0.12 * h) * 0.5)
    j = lambda s: float(rng.uniform(-s, s)) * h  # noqa: E731 - tiny local jitter helper
    if framing == "waist_down":
        return waist + j(0.05), y1 + abs(j(0.04))
    if framing == "chin_down":
        return chin + j(0.03), y1 + abs(j(0.04)) if rng.random() < 0.4 else waist + 0.25 * h + j(0.1)
    if framing == "hip_to_feet":
        return waist + 0.08 * h + j(0.04), y1 + abs(j(0.03))
    if framing == "head_to_waist":
        return y0 - abs(j(0.04)), waist + 0.1 * h + j(0.06)
    return y0 - abs(j(0.05)), y1 + abs(j(0.05))


def _close_up_box(lab: np.ndarray, rng: np.random.Generator, aspect: float) -> tuple[float, float, float, float] | None:
    garments = [CLASS_INDEX[c] for c in ("top", "bottom", "dress", "shoes", "bag", "headwear")]
    present = [c for c in garments if (lab == c).any()]
    if not present:
        return None
    ys, xs = np.nonzero(lab == present[int(rng.integers(len(present)))])
    k = int(rng.integers(len(ys)))
    rows = np.flatnonzero((lab > 0).any(1))
    h = float(rows[-1] - rows[0] + 1) if rows.size else float(lab.shape[0])
    bh = h * float(rng.uniform(0.2, 0.45))
    bw = bh * aspect
    cx, cy = float(xs[k]), float(ys[k])
    return cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2


def _crop(img: np.ndarray, lab: np.ndarray | None, box, out_hw: tuple[int, int], border: np.ndarray):
    """Resample ``box`` (x0,y0,x1,y1, may leave the image) to ``out_hw`` with one affine warp."""
    x0, y0, x1, y1 = box
    oh, ow = out_hw
    sx, sy = (x1 - x0) / ow, (y1 - y0) / oh
    m = np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5]], np.float32)
    flags = cv2.INTER_AREA if sx > 1.5 else cv2.INTER_LINEAR
    im = cv2.warpAffine(img, m, (ow, oh), flags=flags | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(v) for v in border))
    lb = None
    if lab is not None:
        lb = cv2.warpAffine(lab, m, (ow, oh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return im, lb


def studio_backdrop(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A flat or vertical-gradient sweep: white, light/mid grey or a muted colour."""
    kind = rng.random()
    if kind < 0.45:
        base = np.full(3, rng.uniform(225, 255))
    elif kind < 0.75:
        base = np.full(3, rng.uniform(90, 220))
    else:
        base = rng.uniform(60, 240, 3)
    top = base * rng.uniform(0.85, 1.05) if rng.random() < 0.6 else base
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    grad = top[None, None, :] * (1 - t) + base[None, None, :] * t
    out = np.broadcast_to(grad, (h, w, 3)) + rng.normal(0, 1.5, (h, w, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def replace_background(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    fg = cv2.GaussianBlur((lab > 0).astype(np.float32), (5, 5), 1.0)[..., None]
    bg = studio_backdrop(img.shape[0], img.shape[1], rng).astype(np.float32)
    return (img.astype(np.float32) * fg + bg * (1 - fg)).astype(np.uint8)


def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.7, 1.3)
    hsv[..., 2] *= rng.uniform(0.75, 1.25)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    c = rng.uniform(0.8, 1.2)
    out = (out - out.mean()) * c + out.mean()
    return np.clip(out, 0, 255).astype(np.uint8)


def _pick_framing(rng: np.random.Generator) -> str:
    names, probs = zip(*FRAMINGS)
    return str(rng.choice(names, p=np.array(probs) / sum(probs)))


def augment_person(img: np.ndarray, lab: np.ndarray, out_hw: tuple[int, int], rng: np.random.Generator,
                   train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A studio-like framing of a labelled person photo, resampled to ``out_hw`` (H, W)."""
    oh, ow = out_hw
    aspect = ow / oh
    framing = _pick_framing(rng) if train else "full"
    box = _close_up_box(lab, rng, aspect) if framing == "close_up" else None
    if box is None:
        ya, yb = _vertical_span(lab, framing, rng) if train else (0.0, float(lab.shape[0]))
        yb = max(yb, ya + 16)
        cols = np.flatnonzero((lab[max(0, int(ya)):max(1, int(yb))] > 0).any(0))
        cx = (cols[0] + cols[-1] + 1) / 2 if cols.size else lab.shape[1] / 2
        bw = (yb - ya) * aspect * (float(rng.uniform(0.9, 1.25)) if train else 1.0)
        cx += float(rng.uniform(-0.1, 0.1)) * bw if train else 0.0
        box = (cx - bw / 2, ya, cx + bw / 2, yb)
    border = img[0, 0] if not train else img[int(rng.integers(img.shape[0])), 0]
    im, lb = _crop(img, lab, box, out_hw, border)
    if train:
        if rng.random() < 0.5:
            im, lb = im[:, ::-1], lb[:, ::-1]
        if rng.random() < 0.35:
            im = replace_background(im, lb, rng)
        if rng.random() < 0.8:
            im = colour_jitter(im, rng)
    return np.ascontiguousarray(im), np.ascontiguousarray(lb)


def augment_product(img: np.ndarray, out_hw: tuple[int, int], rng: np.random.Generator,
                    train: bool = True) -> np.ndarray:
    """A product photo fitted (whole, random scale) into ``out_hw``, padded with its border colour."""
    oh, ow = out_hw
    h, w = img.shape[:2]
    scale = max(w / ow, h / oh) / (float(rng.uniform(0.75, 1.0)) if train else 1.0)
    bw, bh = ow * scale, oh * scale
    cx = w / 2 + (float(rng.uniform(-0.1, 0.1)) * bw if train else 0.0)
    cy = h / 2 + (float(rng.uniform(-0.1, 0.1)) * bh if train else 0.0)
    border = np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]), 0)
    im, _ = _crop(img, None, (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), out_hw, border)
    if train:
        if rng.random() < 0.5:
            im = im[:, ::-1]
        if rng.random() < 0.8:
            im = colour_jitter(im, rng)
    return np.ascontiguousarray(im)
