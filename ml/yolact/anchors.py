"""Anchors (priors) and box utilities.

Priors are ``(cx, cy, w, h)`` relative to the image (0..1). For a feature map of size h x w, the
order is row-major over cells, then over aspect ratios — the order the head's outputs use.
Anchor size = ``scale`` pixels at ``max_size``; ``ar`` stretches w by sqrt(ar) and h by 1/sqrt(ar);
``square`` reproduces the public YOLACT's anchors (h = w), required by its published weights.
"""
from __future__ import annotations

import math

import torch


def make_priors(conv_h: int, conv_w: int, scale: float, aspect_ratios, max_size: int,
                square: bool = False, device=None) -> torch.Tensor:
    ys = (torch.arange(conv_h, dtype=torch.float32, device=device) + 0.5) / conv_h
    xs = (torch.arange(conv_w, dtype=torch.float32, device=device) + 0.5) / conv_w
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    per_ar = []
    for ar in aspect_ratios:
        r = math.sqrt(ar)
        w = scale * r / max_size
        h = w if square else scale / r / max_size
        per_ar.append(torch.stack([cx, cy, torch.full_like(cx, w), torch.full_like(cx, h)], dim=-1))
    return torch.stack(per_ar, dim=2).reshape(-1, 4)      # (h*w*A, 4)


def point_form(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)


def center_size(boxes: torch.Tensor) -> torch.Tensor:
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    return torch.cat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], dim=-1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes: a (..., n, 4), b (..., m, 4) -> (..., n, m)."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    return inter / union.clamp(min=1e-12)


def encode(matched_xyxy: torch.Tensor, priors: torch.Tensor, variances=(0.1, 0.2)) -> torch.Tensor:
    """SSD box encoding of ground truth (xyxy) against priors (cx, cy, w, h)."""
    g = center_size(matched_xyxy)
    d_xy = (g[:, :2] - priors[:, :2]) / (variances[0] * priors[:, 2:])
    d_wh = torch.log(g[:, 2:].clamp(min=1e-6) / priors[:, 2:]) / variances[1]
    return torch.cat([d_xy, d_wh], dim=1)


def decode(loc: torch.Tensor, priors: torch.Tensor, variances=(0.1, 0.2)) -> torch.Tensor:
    """Inverse of :func:`encode`: offsets (..., 4) -> xyxy boxes (..., 4)."""
    xy = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    wh = priors[..., 2:] * torch.exp((loc[..., 2:] * variances[1]).clamp(max=math.log(1000.0 / 16)))
    return point_form(torch.cat([xy, wh], dim=-1))


def crop(masks: torch.Tensor, boxes: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """Zero each mask outside its box. masks (H, W, n), boxes (n, 4) xyxy relative (0..1)."""
    h, w, n = masks.shape
    x1 = torch.minimum(boxes[:, 0], boxes[:, 2]) * w
    x2 = torch.maximum(boxes[:, 0], boxes[:, 2]) * w
    y1 = torch.minimum(boxes[:, 1], boxes[:, 3]) * h
    y2 = torch.maximum(boxes[:, 1], boxes[:, 3]) * h
    x1 = (x1 - padding).clamp(min=0)
    y1 = (y1 - padding).clamp(min=0)
    x2 = (x2 + padding).clamp(max=w)
    y2 = (y2 + padding).clamp(max=h)
    cols = torch.arange(w, device=masks.device, dtype=masks.dtype).view(1, -1, 1)
    rows = torch.arange(h, device=masks.device, dtype=masks.dtype).view(-1, 1, 1)
    keep = (cols >= x1.floor().view(1, 1, -1)) & (cols < x2.ceil().view(1, 1, -1)) \
        & (rows >= y1.floor().view(1, 1, -1)) & (rows < y2.ceil().view(1, 1, -1))
    return masks * keep.to(masks.dtype)
