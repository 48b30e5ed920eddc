"""Line charts of training curves as PNG, drawn with OpenCV (no plotting library needed).

``line_chart(series, path, title=..., xlabel=..., ylabel=...)`` where ``series`` maps a legend
name to ``(xs, ys)``. Used by the experiment runners to put loss and AP curves in ``docs/``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from ..atomic import write_bytes

# Colour-blind-safe palette (Okabe-Ito), BGR.
PALETTE = [(178, 114, 0), (0, 94, 213), (115, 158, 0), (167, 121, 204), (233, 180, 86), (66, 228, 240)]


def smooth(ys: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (NaNs skipped)."""
    out, buf = [], []
    for y in ys:
        buf.append(y)
        if len(buf) > window:
            buf.pop(0)
        vals = [v for v in buf if v == v and math.isfinite(v)]
        out.append(sum(vals) / len(vals) if vals else float("nan"))
    return out


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike, *,
               title: str = "", xlabel: str = "", ylabel: str = "", size: tuple[int, int] = (900, 500),
               y_min: float | None = None, y_max: float | None = None) -> Path:
    """Draw the series as lines with axes, ticks and a legend; write a PNG atomically."""
    w, h = size
    # the legend sits above the plot area (never over a curve): one row per series
    left, right, top, bottom = 80, 20, 30 + 20 * len(series), 60
    img = np.full((h, w, 3), 255, np.uint8)
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if y == y and math.isfinite(y)]
    if not pts:
        raise ValueError("nothing to plot")
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0 = min(p[1] for p in pts) if y_min is None else y_min
    y1 = max(p[1] for p in pts) if y_max is None else y_max
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y1 = y0 + 1
    pad = 0.04 * (y1 - y0)
    y0 -= pad if y_min is None else 0
    y1 += pad if y_max is None else 0

    def px(x: float, y: float) -> tuple[int, int]:
        return (int(round(left + (x - x0) / (x1 - x0) * (w - left - right))),
                int(round(h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))))

    font, grey, black = cv2.FONT_HERSHEY_SIMPLEX, (200, 200, 200), (40, 40, 40)
    for t in _nice_ticks(y0, y1):
        p = px(x0, t)
        cv2.line(img, (left, p[1]), (w - right, p[1]), grey, 1, cv2.LINE_AA)
        label = _fmt(t)
        (tw, th), _ = cv2.getTextSize(label, font, 0.42, 1)
        cv2.putText(img, label, (left - 8 - tw, p[1] + th // 2), font, 0.42, black, 1, cv2.LINE_AA)
    for t in _nice_ticks(x0, x1):
        p = px(t, y0)
        cv2.line(img, (p[0], h - bottom), (p[0], h - bottom + 5), black, 1, cv2.LINE_AA)
        label = _fmt(t)
        (tw, _), _ = cv2.getTextSize(label, font, 0.42, 1)
        cv2.putText(img, label, (p[0] - tw // 2, h - bottom + 20), font, 0.42, black, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), black, 1)
    if title:
        cv2.putText(img, title, (left, 24), font, 0.6, black, 1, cv2.LINE_AA)
    if xlabel:
        (tw, _), _ = cv2.getTextSize(xlabel, font, 0.5, 1)
        cv2.putText(img, xlabel, ((left + w - right - tw) // 2, h - 15), font, 0.5, black, 1, cv2.LINE_AA)
    if ylabel:
        (tw, th), _ = cv2.getTextSize(ylabel, font, 0.5, 1)
        lab = np.full((th + 8, tw + 4, 3), 255, np.uint8)
        cv2.putText(lab, ylabel, (2, th + 2), font, 0.5, black, 1, cv2.LINE_AA)
        lab = cv2.rotate(lab, cv2.ROTATE_90_COUNTERCLOCKWISE)
        yy = max(top, (top + h - bottom - lab.shape[0]) // 2)
        img[yy:yy + lab.shape[0], 4:4 + lab.shape[1]] = lab[:h - yy]
    for i, (xs, ys) in enumerate(series.values()):
        colour = PALETTE[i % len(PALETTE)]
        seg: list[tuple[int, int]] = []
        for x, y in zip(xs, ys):
            if y == y and math.isfinite(y):
                seg.append(px(x, min(max(y, y0), y1)))
            elif seg:
                cv2.polylines(img, [np.array(seg, np.int32)], False, colour, 2, cv2.LINE_AA)
                seg = []
        if len(seg) > 1:
            cv2.polylines(img, [np.array(seg, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in seg if len(seg) <= 12 else []:
            cv2.circle(img, p, 4, colour, -1, cv2.LINE_AA)
    legend_w = max(cv2.getTextSize(n, font, 0.45, 1)[0][0] for n in series) + 40
    lx = w - right - legend_w
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        ly = 18 + 20 * i
        cv2.line(img, (lx, ly - 4), (lx + 25, ly - 4), colour, 3, cv2.LINE_AA)
        cv2.putText(img, name, (lx + 32, ly), font, 0.45, black, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, buf.tobytes())
    return out
