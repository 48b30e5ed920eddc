"""Building blocks: weight-standardised convolution and the split-attention convolution.

* :class:`WSConv2d` — Weight Standardization (Qiao et al., 2019): before every forward pass the
  kernel of each output channel is standardised to zero mean and unit variance over its
  (in_channels/groups × kh × kw) elements. It is a drop-in replacement of ``nn.Conv2d`` (same
  parameter names and shapes, so a plain checkpoint loads into it).
* :class:`SplitAttentionConv2d` — the paper's "attention division block" (split attention, as in
  ResNeSt): the input is convolved into ``G = K·R`` feature groups by ONE grouped 3×3 convolution
  with ``R·K`` groups; the R splits of each cardinal group are summed, globally average-pooled,
  passed through two fully-connected (1×1) layers with ``K`` groups, and a softmax across the R
  splits (sigmoid when R = 1) gives the attention weights used to recombine the splits.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class WSConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is standardised per output channel in every forward pass."""

    def __init__(self, *args, ws_eps: float = 1e-5, **kwargs):
        super().__init__(*args, **kwargs)
        self.ws_eps = ws_eps

    def standardized_weight(self) -> torch.Tensor:
        w = self.weight
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (w - mean) / torch.sqrt(var + self.ws_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


def make_norm(kind: str, channels: int, gn_groups: int = 32) -> nn.Module:
    """``bn`` -> BatchNorm2d, ``gn`` -> GroupNorm (groups reduced until they divide channels)."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        g = min(gn_groups, channels)
        while channels % g:
            g -= 1
        return nn.GroupNorm(g, channels)
    raise ValueError(f"unknown norm {kind!r} (use 'bn' or 'gn')")


class RadixSoftmax(nn.Module):
    """Softmax over the R splits inside each of the K cardinal groups (sigmoid when R = 1)."""

    def __init__(self, radix: int, cardinality: int):
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (B, R*C, 1, 1) in K-major order
        b = x.size(0)
        if self.radix > 1:
            # (B, K, R, C/K) -> (B, R, K, C/K): softmax over R
            x = x.view(b, self.cardinality, self.radix, -1).transpose(1, 2)
            x = F.softmax(x, dim=1)
            return x.reshape(b, -1)                           # R-major: split r is x[:, r*C:(r+1)*C]
        return torch.sigmoid(x).reshape(b, -1)


class SplitAttentionConv2d(nn.Module):
    """Split-attention convolution (cardinality K, radix R).

    Output has ``channels`` channels. ``conv`` picks the convolution class (``nn.Conv2d`` or
    :class:`WSConv2d`) so the two options combine.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, cardinality: int = 1, radix: int = 2,
                 reduction_factor: int = 4, min_inter_channels: int = 32, norm: str = "bn",
                 conv: type[nn.Conv2d] = nn.Conv2d, gn_groups: int = 32):
        super().__init__()
        if radix < 1 or cardinality < 1:
            raise ValueError("radix and cardinality must be >= 1")
        if channels % cardinality:
            raise ValueError(f"channels ({channels}) must be divisible by cardinality ({cardinality})")
        self.radix = radix
        self.cardinality = cardinality
        self.channels = channels
        inter = max(in_channels * radix // reduction_factor, min_inter_channels)
        inter = -(-inter // cardinality) * cardinality        # divisible by K for the grouped FCs
        # The 3x3 convolutions of all G = K*R groups as ONE grouped convolution with R*K groups.
        self.conv = conv(in_channels, channels * radix, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=cardinality * radix, bias=False)
        self.bn0 = make_norm(norm, channels * radix, gn_groups)
        self.relu = nn.ReLU(inplace=True)
        # two fully connected layers (as 1x1 convs) with K groups predicting the attention weights
        self.fc1 = nn.Conv2d(channels, inter, 1, groups=cardinality)
        # on the pooled 1x1 map a GroupNorm group needs >= 2 channels to be defined
        self.bn1 = make_norm(norm, inter, max(1, min(gn_groups, inter // 2)))
        self.fc2 = nn.Conv2d(inter, channels * radix, 1, groups=cardinality)
        self.rsoftmax = RadixSoftmax(radix, cardinality)

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the conv features (B, R*C, H, W), attention weights (B, R*C))."""
        x = self.relu(self.bn0(self.conv(x)))
        b, rc = x.shape[:2]
        if self.radix > 1:
            splits = torch.split(x, rc // self.radix, dim=1)
            gap = sum(splits)
        else:
            gap = x
        gap = F.adaptive_avg_pool2d(gap, 1)
        gap = self.fc1(gap)
        # BatchNorm over a 1x1 map cannot train on a batch of one image: skip it only then.
        if not (self.training and isinstance(self.bn1, nn.BatchNorm2d) and gap.size(0) == 1):
            gap = self.bn1(gap)
        gap = self.relu(gap)
        atten = self.rsoftmax(self.fc2(gap))
        return x, atten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, atten = self.attention(x)
        b = x.size(0)
        if self.radix > 1:
            splits = torch.split(x, self.channels, dim=1)
            attens = torch.split(atten.view(b, -1, 1, 1), self.channels, dim=1)
            return sum(a * s for a, s in zip(attens, splits))
        return atten.view(b, -1, 1, 1) * x
