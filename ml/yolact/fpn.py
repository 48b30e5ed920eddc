"""Feature pyramid (as in YOLACT): lateral 1x1, top-down bilinear upsampling, 3x3 smoothing with
ReLU, and extra levels (P6, P7) by stride-2 3x3 convolutions on the coarsest level.

Parameter names match the public code: ``lat_layers`` (stored coarsest first), ``pred_layers``,
``downsample_layers``."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], num_features: int = 256, num_downsample: int = 2):
        super().__init__()
        self.lat_layers = nn.ModuleList([nn.Conv2d(c, num_features, 1) for c in reversed(in_channels)])
        self.pred_layers = nn.ModuleList([nn.Conv2d(num_features, num_features, 3, padding=1)
                                          for _ in in_channels])
        self.downsample_layers = nn.ModuleList([nn.Conv2d(num_features, num_features, 3, padding=1,
                                                          stride=2) for _ in range(num_downsample)])

    def forward(self, convouts: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(convouts)
        out: list[torch.Tensor | None] = [None] * n
        x = None
        for i in range(n):
            j = n - 1 - i
            lat = self.lat_layers[i](convouts[j])
            if x is not None:
                x = F.interpolate(x, size=lat.shape[-2:], mode="bilinear", align_corners=False)
                x = x + lat
            else:
                x = lat
            out[j] = F.relu(self.pred_layers[i](x))
        res = [o for o in out if o is not None]
        for layer in self.downsample_layers:
            res.append(layer(res[-1]))
        return res
