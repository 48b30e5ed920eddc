"""ResNet-50/101 backbone with the paper's switchable options.

Parameter names follow the public YOLACT ``ResNetBackbone`` (``conv1``, ``bn1``,
``layers.<stage>.<block>.conv1/bn1/conv2/bn2/conv3/bn3/downsample.0/downsample.1``) so that the
plain variants load the published checkpoints unchanged.

Options (:class:`~ml.yolact.config.BackboneConfig`):

* ``ws``        — every backbone convolution is a :class:`~ml.yolact.layers.WSConv2d`;
* ``norm``      — BatchNorm (``bn``) or GroupNorm (``gn``, the usual partner of WS);
* ``attention`` — each bottleneck's 3x3 convolution becomes a split-attention convolution
  (cardinality K, radix R). With attention the block's ``conv2`` is a
  :class:`~ml.yolact.layers.SplitAttentionConv2d` and ``bn2`` follows it (as in ResNeSt).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .config import BackboneConfig
from .layers import SplitAttentionConv2d, WSConv2d, make_norm


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None,
                 cfg: BackboneConfig):
        super().__init__()
        conv = WSConv2d if cfg.ws else nn.Conv2d
        width = planes
        self.conv1 = conv(inplanes, width, 1, bias=False)
        self.bn1 = make_norm(cfg.norm, width, cfg.gn_groups)
        if cfg.attention:
            self.conv2 = SplitAttentionConv2d(
                width, width, 3, stride=stride, padding=1, cardinality=cfg.cardinality,
                radix=cfg.radix, reduction_factor=cfg.reduction_factor,
                min_inter_channels=cfg.min_inter_channels, norm=cfg.norm, conv=conv,
                gn_groups=cfg.gn_groups)
        else:
            self.conv2 = conv(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = make_norm(cfg.norm, width, cfg.gn_groups)
        self.conv3 = conv(width, planes * 4, 1, bias=False)
        self.bn3 = make_norm(cfg.norm, planes * 4, cfg.gn_groups)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetBackbone(nn.Module):
    """Returns the outputs of the four stages (C2..C5) as a list."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        conv = WSConv2d if cfg.ws else nn.Conv2d
        w = cfg.base_width
        self.conv1 = conv(3, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = make_norm(cfg.norm, w, cfg.gn_groups)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        self.channels: list[int] = []
        inplanes = w
        for i, n in enumerate(cfg.blocks()):
            planes = w * 2 ** i
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes * 4:
                down = nn.Sequential(conv(inplanes, planes * 4, 1, stride=stride, bias=False),
                                     make_norm(cfg.norm, planes * 4, cfg.gn_groups))
            blocks = [Bottleneck(inplanes, planes, stride, down, cfg)]
            inplanes = planes * 4
            blocks += [Bottleneck(inplanes, planes, 1, None, cfg) for _ in range(1, n)]
            self.layers.append(nn.Sequential(*blocks))
            self.channels.append(inplanes)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # zero-init the last norm of each residual branch: a from-scratch deep ResNet trains stably
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def train(self, mode: bool = True) -> "ResNetBackbone":
        super().train(mode)
        if self.cfg.frozen_bn and mode:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs
