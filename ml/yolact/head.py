"""The prediction head shared across pyramid levels: one 3x3 conv + ReLU (``upfeature``), then three
parallel 3x3 convs predicting, for every anchor, class confidences (C), box offsets (4) and k mask
coefficients (tanh). Parameter names follow the public ``prediction_layers.0``."""
from __future__ import annotations

import torch
import torch.nn as nn


class PredictionHead(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_priors: int, num_classes: int, mask_dim: int):
        super().__init__()
        self.num_priors = num_priors
        self.num_classes = num_classes
        self.mask_dim = mask_dim
        self.upfeature = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.bbox_layer = nn.Conv2d(channels, num_priors * 4, 3, padding=1)
        self.conf_layer = nn.Conv2d(channels, num_priors * num_classes, 3, padding=1)
        self.mask_layer = nn.Conv2d(channels, num_priors * mask_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = x.size(0)
        x = self.upfeature(x)
        loc = self.bbox_layer(x).permute(0, 2, 3, 1).reshape(b, -1, 4)
        conf = self.conf_layer(x).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes)
        coef = torch.tanh(self.mask_layer(x).permute(0, 2, 3, 1).reshape(b, -1, self.mask_dim))
        return loc, conf, coef
