"""Inference post-processing: decode boxes, Fast NMS, mask assembly, crop and threshold.

Fast NMS (Bolya et al., Sect. 3.4): for each class take the top-k detections sorted by score,
compute their pairwise IoU matrix X (k x k), keep only its strict upper triangle (X_ij for i < j:
box i scores higher than box j), take the max over each column, and keep detection j iff that
max is <= the threshold. Unlike greedy NMS a box already suppressed can still suppress others, so
Fast NMS removes a superset of what greedy NMS removes — in one matrix operation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .anchors import box_iou, crop, decode


@dataclass
class Detections:
    """One image's detections in its own pixel coordinates (numpy arrays).

    ``boxes`` (n, 4) float32 x1 y1 x2 y2; ``scores`` (n,) float32; ``classes`` (n,) int64 index of the
    foreground class (0 .. num_classes-2); ``masks`` (n, H, W) bool.
    """
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, h: int, w: int) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   np.zeros((0, h, w), bool))


def fast_nms_keep(boxes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """boxes (C, n, 4) xyxy, each class sorted by descending score -> keep mask (C, n)."""
    iou = box_iou(boxes, boxes).triu_(diagonal=1)
    iou_max = iou.max(dim=1).values
    return iou_max <= iou_threshold


def fast_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.5, top_k: int = 200,
             conf_thresh: float = 0.05, max_num_detections: int = 100):
    """Class-wise Fast NMS.

    boxes (N, 4) xyxy shared by all classes, scores (C, N) per-class scores.
    Returns (boxes (n, 4), scores (n,), classes (n,), indices (n,) into N), best score first.
    """
    c, n = scores.shape
    if n == 0:
        z = boxes.new_zeros((0,))
        return boxes.new_zeros((0, 4)), z, z.long(), z.long()
    scores, idx = scores.sort(dim=1, descending=True)
    idx = idx[:, :top_k]
    scores = scores[:, :top_k]
    k = idx.size(1)
    cls_boxes = boxes[idx.reshape(-1)].view(c, k, 4)
    keep = fast_nms_keep(cls_boxes, iou_threshold) & (scores > conf_thresh)
    classes = torch.arange(c, device=boxes.device)[:, None].expand_as(keep)[keep]
    out_boxes = cls_boxes[keep]
    out_scores = scores[keep]
    out_idx = idx[keep]
    out_scores, order = out_scores.sort(descending=True)
    order = order[:max_num_detections]
    out_scores = out_scores[:max_num_detections]
    return out_boxes[order], out_scores, classes[order], out_idx[order]


def assemble_masks(proto: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Linear combination of prototypes: proto (H, W, k), coef (n, k) -> sigmoid masks (H, W, n)."""
    return torch.sigmoid(proto @ coef.t())


def postprocess(loc: torch.Tensor, conf: torch.Tensor, coef: torch.Tensor, priors: torch.Tensor,
                proto: torch.Tensor, out_h: int, out_w: int, *, conf_thresh: float = 0.05,
                nms_thresh: float = 0.5, top_k: int = 200, max_num_detections: int = 100,
                mask_thresh: float = 0.5, variances=(0.1, 0.2)) -> Detections:
    """One image's raw head outputs -> :class:`Detections` at (out_h, out_w) pixels.

    loc (N, 4), conf (N, C) logits, coef (N, k), priors (N, 4), proto (H, W, k).
    """
    boxes = decode(loc.float(), priors, variances)
    scores = F.softmax(conf.float(), dim=-1)[:, 1:].t()       # (C-1, N), no background
    keep = scores.max(dim=0).values > conf_thresh
    if not bool(keep.any()):
        return Detections.empty(out_h, out_w)
    sel = keep.nonzero().squeeze(1)
    b, s, c, i = fast_nms(boxes[sel], scores[:, sel], nms_thresh, top_k, conf_thresh, max_num_detections)
    if s.numel() == 0:
        return Detections.empty(out_h, out_w)
    anchor = sel[i]
    masks = assemble_masks(proto.float(), coef[anchor].float())
    masks = crop(masks, b)                                     # zero outside the predicted box
    masks = masks.permute(2, 0, 1)[None]                       # (1, n, H, W)
    masks = F.interpolate(masks, size=(out_h, out_w), mode="bilinear", align_corners=False)[0]
    masks = masks > mask_thresh
    scale = b.new_tensor([out_w, out_h, out_w, out_h])
    b = (b * scale)
    b[:, 0::2] = b[:, 0::2].clamp(0, out_w)
    b[:, 1::2] = b[:, 1::2].clamp(0, out_h)
    return Detections(b.cpu().numpy().astype(np.float32), s.cpu().numpy().astype(np.float32),
                      c.cpu().numpy().astype(np.int64), masks.cpu().numpy())
