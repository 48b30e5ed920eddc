"""The multi-stage PAF + confidence-map cascade of Cao et al. (CVPR 2017, Fig. 3).

Stage 1 has two branches on F: ``stage1_convs`` 3x3 convs (128), a 1x1 conv (512) and a 1x1
conv to the outputs — L^1 (part affinity fields, 2 channels per limb) and S^1 (confidence maps,
one per keypoint + background). Each later stage t takes concat(F, L^{t-1}, S^{t-1}) and has two
branches of ``stageN_convs`` 7x7 convs (128) and two 1x1 convs. Every stage's outputs are
supervised (intermediate supervision), so the model returns them all.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .config import OpenPoseConfig


def _branch(cin: int, out: int, n_convs: int, k: int, ch: int, hidden: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = cin
    for _ in range(n_convs):
        layers += [nn.Conv2d(c, ch, k, padding=k // 2), nn.ReLU(inplace=True)]
        c = ch
    layers += [nn.Conv2d(c, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, out, 1)]
    seq = nn.Sequential(*layers)
    nn.init.normal_(seq[-1].weight, std=0.01)
    nn.init.zeros_(seq[-1].bias)
    return seq


class Stage(nn.Module):
    def __init__(self, cin: int, cfg: OpenPoseConfig, first: bool):
        super().__init__()
        if first:
            n, k, hidden = cfg.stage1_convs, cfg.stage1_kernel, cfg.stage1_hidden
        else:
            n, k, hidden = cfg.stageN_convs, cfg.stageN_kernel, cfg.stage_channels
        self.paf = _branch(cin, cfg.paf_channels, n, k, cfg.stage_channels, hidden)
        self.heat = _branch(cin, cfg.heat_channels, n, k, cfg.stage_channels, hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.paf(x), self.heat(x)


class StageCascade(nn.Module):
    """F -> [(paf_t, heat_t) for t in 1..T]."""

    def __init__(self, cfg: OpenPoseConfig):
        super().__init__()
        fc = cfg.feature_channels
        later_in = fc + cfg.paf_channels + cfg.heat_channels
        self.stages = nn.ModuleList(
            [Stage(fc, cfg, first=True)] + [Stage(later_in, cfg, first=False)
                                             for _ in range(cfg.stages - 1)])

    def forward(self, feats: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        outs = []
        x = feats
        for stage in self.stages:
            paf, heat = stage(x)
            outs.append((paf, heat))
            x = torch.cat([feats, paf, heat], dim=1)
        return outs
