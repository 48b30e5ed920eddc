"""YOLACT training losses.

* matching: an anchor is positive when its best IoU with a ground-truth box is >= ``pos_iou``,
  negative (background) when < ``neg_iou``, neutral (ignored) in between; every ground-truth box is
  also given its best anchor (greedy, one anchor per box);
* class loss: softmax cross entropy with online hard negative mining (negatives : positives = 3:1);
* box loss: smooth-L1 on SSD-encoded offsets of positive anchors;
* mask loss: pixel-wise BCE between the assembled masks (prototypes · coefficients, sigmoid),
  cropped to the ground-truth box, and the ground-truth masks at prototype resolution, averaged
  over each box's area;
* optional auxiliary semantic-segmentation loss on P3 (sigmoid BCE per class), as in YOLACT.

Weights (paper): class 1, box 1.5, mask 6.125. Class, box and mask losses are normalised by the
number of positive anchors in the batch, the semantic loss by the batch size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .anchors import box_iou, crop, encode, point_form
from .config import YolactConfig


def match(gt_boxes: torch.Tensor, gt_labels: torch.Tensor, priors: torch.Tensor, pos_thresh: float,
          neg_thresh: float, variances=(0.1, 0.2)):
    """Assign ground truth to priors.

    gt_boxes (m, 4) xyxy relative, gt_labels (m,) foreground index (0-based), priors (N, 4) cxcywh.
    Returns loc_t (N, 4), conf_t (N,) with -1 neutral / 0 background / c+1 class, idx_t (N,) gt index.
    """
    n = priors.size(0)
    if gt_boxes.numel() == 0:
        return (priors.new_zeros((n, 4)), torch.zeros(n, dtype=torch.long, device=priors.device),
                torch.zeros(n, dtype=torch.long, device=priors.device))
    overlaps = box_iou(gt_boxes, point_form(priors))             # (m, N)
    best_truth_overlap, best_truth_idx = overlaps.max(dim=0)
    ov = overlaps.clone()
    for _ in range(gt_boxes.size(0)):                            # greedy: each gt gets its best prior
        flat = int(ov.argmax())
        j, i = divmod(flat, n)
        if ov[j, i] < 0:
            break
        best_truth_overlap[i] = 2.0
        best_truth_idx[i] = j
        ov[j, :] = -1
        ov[:, i] = -1
    conf = gt_labels[best_truth_idx] + 1
    conf[best_truth_overlap < pos_thresh] = -1
    conf[best_truth_overlap < neg_thresh] = 0
    loc = encode(gt_boxes[best_truth_idx], priors, variances)
    return loc, conf, best_truth_idx


class YolactLoss(torch.nn.Module):
    def __init__(self, cfg: YolactConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, preds: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]]
                ) -> dict[str, torch.Tensor]:
        """preds from :meth:`Yolact.forward`; targets per image: ``boxes`` (m, 4) xyxy relative,
        ``labels`` (m,) 0-based foreground class, ``masks`` (m, H, W) float/uint8 at input size.

        The losses are computed in float32 outside autocast (BCE is not autocast-safe)."""
        with torch.autocast(device_type=preds["conf"].device.type, enabled=False):
            return self._losses(preds, targets)

    def _losses(self, preds, targets):
        cfg = self.cfg
        loc, conf, coef, priors, proto = (preds["loc"], preds["conf"], preds["coef"], preds["priors"],
                                          preds["proto"])
        bsz, n, c = conf.shape
        loc_t, conf_t, idx_t = [], [], []
        for t in targets:
            l_, c_, i_ = match(t["boxes"], t["labels"], priors, cfg.pos_iou, cfg.neg_iou, cfg.variances)
            loc_t.append(l_)
            conf_t.append(c_)
            idx_t.append(i_)
        loc_t = torch.stack(loc_t)
        conf_t = torch.stack(conf_t)
        idx_t = torch.stack(idx_t)
        pos = conf_t > 0
        num_pos = pos.sum().clamp(min=1).float()

        # --- box loss
        loss_b = F.smooth_l1_loss(loc[pos].float(), loc_t[pos], reduction="sum") * cfg.bbox_alpha

        # --- class loss with OHEM
        conf_f = conf.float()
        with torch.no_grad():
            bg_loss = torch.logsumexp(conf_f, dim=-1) - conf_f[..., 0]   # (B, N)
            bg_loss[pos] = 0
            bg_loss[conf_t < 0] = 0
            _, order = bg_loss.sort(dim=1, descending=True)
            _, rank = order.sort(dim=1)
            num_neg = (cfg.negpos_ratio * pos.sum(dim=1, keepdim=True)).clamp(max=n - 1)
            neg = (rank < num_neg) & ~pos & (conf_t >= 0)
        sel = pos | neg
        loss_c = F.cross_entropy(conf_f[sel], conf_t[sel], reduction="sum") * cfg.conf_alpha

        # --- mask loss
        loss_m = conf_f.new_zeros(())
        ph, pw = proto.shape[1:3]
        for b in range(bsz):
            pidx = pos[b].nonzero().squeeze(1)
            if pidx.numel() == 0:
                continue
            if pidx.numel() > cfg.masks_to_train:
                pidx = pidx[torch.randperm(pidx.numel(), device=pidx.device)[:cfg.masks_to_train]]
            gt_i = idx_t[b, pidx]
            gt_masks = targets[b]["masks"].float()
            with torch.no_grad():
                gm = F.interpolate(gt_masks[None], size=(ph, pw), mode="bilinear",
                                   align_corners=False)[0].gt(0.5).float()        # (m, ph, pw)
                gm = gm.permute(1, 2, 0)[:, :, gt_i]                              # (ph, pw, p)
            gboxes = targets[b]["boxes"][gt_i]
            pred = torch.sigmoid(proto[b].float() @ coef[b, pidx].float().t())    # (ph, pw, p)
            pred = crop(pred, gboxes)
            bce = F.binary_cross_entropy(pred.clamp(0, 1), gm, reduction="none")
            area = ((gboxes[:, 2] - gboxes[:, 0]) * pw * (gboxes[:, 3] - gboxes[:, 1]) * ph).clamp(min=1.0)
            loss_m = loss_m + (bce.sum(dim=(0, 1)) / area).sum()
        loss_m = loss_m * cfg.mask_alpha

        losses = {"cls": loss_c / num_pos, "box": loss_b / num_pos, "mask": loss_m / num_pos}

        # --- semantic segmentation (auxiliary)
        if cfg.use_semantic_seg and preds.get("segm") is not None:
            segm = preds["segm"].float()                                         # (B, C-1, h, w)
            sh, sw = segm.shape[-2:]
            loss_s = segm.new_zeros(())
            for b in range(bsz):
                tgt = torch.zeros_like(segm[b])
                m = targets[b]["masks"]
                if m.numel():
                    with torch.no_grad():
                        ds = F.interpolate(m.float()[None], size=(sh, sw), mode="bilinear",
                                           align_corners=False)[0].gt(0.5).float()
                        for j, lab in enumerate(targets[b]["labels"].tolist()):
                            tgt[lab] = torch.maximum(tgt[lab], ds[j])
                loss_s = loss_s + F.binary_cross_entropy_with_logits(segm[b], tgt, reduction="sum")
            losses["seg"] = loss_s / (sh * sw) * cfg.semantic_alpha / bsz
        losses["loss"] = sum(losses.values())
        losses["num_pos"] = num_pos.detach()
        return losses
