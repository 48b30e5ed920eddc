"""The YOLACT network (Bolya et al., ICCV 2019) with the paper's switchable backbone options."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn

from .anchors import make_priors
from .backbone import ResNetBackbone
from .config import MEAN_RGB, STD_RGB, YolactConfig, get_config
from .detect import Detections, postprocess
from .fpn import FPN
from .head import PredictionHead
from .protonet import ProtoNet


class Yolact(nn.Module):
    """backbone -> FPN (P3..P7) -> protonet on P3 (k prototypes) + a shared prediction head on every
    level (class, box, mask coefficients per anchor) -> Fast NMS -> mask assembly, crop, threshold.

    ``forward(x)`` (x: (B, 3, S, S) normalised) returns the raw predictions used by the loss:
    ``loc`` (B, N, 4), ``conf`` (B, N, C), ``coef`` (B, N, k), ``priors`` (N, 4), ``proto``
    (B, S/4, S/4, k) and, in training with the semantic loss on, ``segm`` (B, C-1, S/8, S/8).
    ``predict(images)`` runs inference on RGB uint8 images and returns :class:`Detections`.
    """

    def __init__(self, cfg: YolactConfig | str):
        super().__init__()
        cfg = get_config(cfg)
        self.cfg = cfg
        self.backbone = ResNetBackbone(cfg.backbone)
        in_ch = [self.backbone.channels[i] for i in cfg.selected_layers]
        self.fpn = FPN(in_ch, cfg.fpn_features, cfg.fpn_downsample)
        self.num_levels = len(in_ch) + cfg.fpn_downsample
        if len(cfg.pred_scales) != self.num_levels:
            raise ValueError(f"{self.num_levels} pyramid levels but {len(cfg.pred_scales)} pred_scales")
        self.proto_net = ProtoNet(cfg.fpn_features, cfg.proto_channels, cfg.mask_dim)
        self.prediction_layers = nn.ModuleList([PredictionHead(
            cfg.fpn_features, cfg.head_channels, cfg.num_priors, cfg.num_classes, cfg.mask_dim)])
        self.semantic_seg_conv = nn.Conv2d(cfg.fpn_features, cfg.num_classes - 1, 1) \
            if cfg.use_semantic_seg else None
        self._prior_cache: dict = {}
        self._init_heads()

    def _init_heads(self) -> None:
        for name, m in self.named_modules():
            if name.startswith("backbone"):
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # start with a confident background (as focal-loss detectors do): stable early training
        conf = self.prediction_layers[0].conf_layer
        with torch.no_grad():
            b = conf.bias.view(self.cfg.num_priors, self.cfg.num_classes)
            b[:, 0] = np.log(max(self.cfg.num_classes - 1, 1) * 99.0)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def priors(self, sizes: Sequence[tuple[int, int]], device) -> torch.Tensor:
        key = (tuple(sizes), str(device))
        p = self._prior_cache.get(key)
        if p is None:
            cfg = self.cfg
            p = torch.cat([make_priors(h, w, s, cfg.aspect_ratios, cfg.max_size, cfg.square_anchors, device)
                           for (h, w), s in zip(sizes, cfg.pred_scales)])
            self._prior_cache = {key: p}
        return p

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.backbone(x)
        pyr = self.fpn([feats[i] for i in self.cfg.selected_layers])
        proto = self.proto_net(pyr[0])
        head = self.prediction_layers[0]
        locs, confs, coefs = [], [], []
        for p in pyr:
            l_, c_, k_ = head(p)
            locs.append(l_)
            confs.append(c_)
            coefs.append(k_)
        out = {
            "loc": torch.cat(locs, 1), "conf": torch.cat(confs, 1), "coef": torch.cat(coefs, 1),
            "priors": self.priors([tuple(p.shape[-2:]) for p in pyr], x.device), "proto": proto,
        }
        if self.training and self.semantic_seg_conv is not None:
            out["segm"] = self.semantic_seg_conv(pyr[0])
        return out

    # ------------------------------------------------------------------ inference
    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 HxWx3 images -> normalised (B, 3, S, S) float tensor on the model's device."""
        s = self.cfg.max_size
        batch = np.stack([cv2.resize(np.ascontiguousarray(im[..., :3]), (s, s), interpolation=cv2.INTER_LINEAR)
                          for im in images]).astype(np.float32)
        batch = (batch - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STD_RGB, np.float32)
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(self.device)

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray] | np.ndarray, *, conf_thresh: float | None = None,
                nms_thresh: float | None = None, max_detections: int | None = None) -> list[Detections]:
        """Detections per image (boxes, scores, classes, masks) in each image's own pixel size."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        was_training = self.training
        self.eval()
        try:
            x = self.preprocess(images)
            out = self.forward(x)
        finally:
            self.train(was_training)
        return self.postprocess(out, [im.shape[:2] for im in images], conf_thresh=conf_thresh,
                                nms_thresh=nms_thresh, max_detections=max_detections)

    def postprocess(self, out: dict[str, torch.Tensor], sizes: Sequence[tuple[int, int]], *,
                    conf_thresh: float | None = None, nms_thresh: float | None = None,
                    max_detections: int | None = None) -> list[Detections]:
        cfg = self.cfg
        res = []
        for b, (h, w) in enumerate(sizes):
            res.append(postprocess(
                out["loc"][b], out["conf"][b], out["coef"][b], out["priors"], out["proto"][b], int(h), int(w),
                conf_thresh=cfg.conf_thresh if conf_thresh is None else conf_thresh,
                nms_thresh=cfg.nms_thresh if nms_thresh is None else nms_thresh,
                top_k=cfg.nms_top_k, max_num_detections=cfg.max_detections if max_detections is None
                else max_detections, mask_thresh=cfg.mask_thresh, variances=cfg.variances))
        return res
