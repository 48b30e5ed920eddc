"""The VGG-19 front of OpenPose (Cao et al., CVPR 2017), with optional attention (Fig. 6).

How the conv layers are counted (the paper's "layers 7, 10 and 13")
-------------------------------------------------------------------
We number the **convolution layers** of the front 1-based, in order, pooling layers not counted
(VGG-19 itself is "19 weight layers" = 16 convs + 3 FC, so counting weight layers is the
paper's own convention)::

     1 conv1_1   2 conv1_2   | pool  (stride 2)
     3 conv2_1   4 conv2_2   | pool  (stride 4)
     5 conv3_1   6 conv3_2   7 conv3_3   8 conv3_4 | pool (stride 8)
     9 conv4_1  10 conv4_2  11 conv4_3  12 conv4_4
    13 conv4_3_CPM (256)    14 conv4_4_CPM (128)  -> F

Cao et al. keep VGG-19 up to conv4_2 and add the two CPM reduction convs. Fig. 6 needs a 13th
layer, and plain VGG-19 reaches layer 13 (conv5_1) only after a 4th pooling (stride 16), which
OpenPose never uses. We therefore keep the whole conv4 block of VGG-19 (to conv4_4, which can
still be initialised from ImageNet VGG-19) and then the CPM reduction, so that the attention
points are: 7 = conv3_3 (stride 4, 256 ch), 10 = conv4_2 (stride 8, 512 ch, the last VGG layer
Cao et al. keep), 13 = conv4_3_CPM (stride 8, 256 ch, the first pose-specific layer).

With attention, the 14th layer (conv4_4_CPM) is replaced by the fusion described in
:mod:`ml.openpose.attention` (the paper's "last FC replaced by an FC taking the 3 estimators'
results"); without attention the front is the plain Cao et al. front.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import AttentionEstimator, AttentionFusion
from .config import OpenPoseConfig

# indices of the first 12 conv layers inside torchvision's ``vgg19().features``
_TORCHVISION_VGG19_CONV_IDX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25)


class VGGFront(nn.Module):
    """Image (B,3,H,W) -> features F (B, cfg.feature_channels, H/8, W/8)."""

    def __init__(self, cfg: OpenPoseConfig):
        super().__init__()
        self.cfg = cfg
        widths = list(cfg.vgg_channels) + list(cfg.cpm_channels[:1])   # layers 1..13
        self.convs = nn.ModuleList()
        cin = 3
        for w in widths:
            self.convs.append(nn.Conv2d(cin, w, 3, padding=1))
            cin = w
        self.pool_after = set(cfg.vgg_pool_after)
        self.attention_layers = tuple(cfg.attention_layers) if cfg.attention else ()
        for layer in self.attention_layers:
            if not 1 <= layer <= len(widths):
                raise ValueError(f"attention layer {layer} outside 1..{len(widths)}")
        if cfg.attention:
            self.estimators = nn.ModuleDict({
                str(layer): AttentionEstimator(widths[layer - 1], cfg.attention_hidden,
                                               hard_inference=cfg.attention_hard_inference)
                for layer in self.attention_layers})
            self.fusion = AttentionFusion([widths[layer - 1] for layer in self.attention_layers],
                                          cfg.feature_channels)
            self.last_cpm = None
        else:
            self.estimators = nn.ModuleDict()
            self.fusion = None
            self.last_cpm = nn.Conv2d(cin, cfg.feature_channels, 3, padding=1)
        # the attention masks of the last forward pass, {layer: (B,1,h,w)} (for inspection)
        self.last_masks: dict[int, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended: list[torch.Tensor] = []
        masks: dict[int, torch.Tensor] = {}
        for i, conv in enumerate(self.convs, start=1):
            x = F.relu(conv(x), inplace=True)
            key = str(i)
            if key in self.estimators:
                x, m = self.estimators[key](x)
                masks[i] = m
                attended.append(x)
            if i in self.pool_after:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        self.last_masks = masks
        if self.fusion is not None:
            return self.fusion(attended, out_hw=x.shape[-2:])
        return F.relu(self.last_cpm(x), inplace=True)

    # ------------------------------------------------------------------ ImageNet initialisation
    def load_vgg19_imagenet(self, state_dict_or_path) -> int:
        """Copy ImageNet VGG-19 conv weights (torchvision layout, ``features.N.weight``) into
        layers 1..12 where the shapes match. Returns the number of layers copied."""
        sd = state_dict_or_path
        if isinstance(sd, (str, Path)):
            sd = torch.load(sd, map_location="cpu", weights_only=True)
        copied = 0
        for layer, idx in enumerate(_TORCHVISION_VGG19_CONV_IDX):
            w = sd.get(f"features.{idx}.weight")
            b = sd.get(f"features.{idx}.bias")
            conv = self.convs[layer]
            if w is None or b is None or tuple(w.shape) != tuple(conv.weight.shape):
                continue
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(b)
            copied += 1
        return copied
