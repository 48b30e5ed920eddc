"""Protonet: a small FCN on P3 producing k prototype masks at 1/4 of the input size.

Layout of the public ``mask_proto_net`` — three 3x3 convs, x2 bilinear upsampling, one 3x3 conv,
then a 1x1 conv to k channels; ReLU after each (also on the prototypes). The module indices
(0, 2, 4, 8, 10 hold the convs) are those of the public ``proto_net`` state-dict entries."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Upsample(nn.Module):
    def __init__(self, scale: float = 2.0):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class ProtoNet(nn.Sequential):
    def __init__(self, in_channels: int, channels: int = 256, k: int = 32):
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(3):
            layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(inplace=True)]
            c = channels
        layers += [Upsample(2.0), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(channels, k, 1)]
        super().__init__(*layers)
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> prototypes (B, 2H, 2W, k), ReLU-activated."""
        return F.relu(super().forward(x)).permute(0, 2, 3, 1).contiguous()
