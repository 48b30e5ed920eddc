"""Attention estimators for the VGG-19 front (paper section III.C, Fig. 6).

The paper (after Jetley et al., "Learn to Pay Attention", ICLR 2018, whose VGG figure it
reproduces) inserts *attention estimators* after VGG layers 7, 10 and 13. Each estimator
computes a mask over the layer's spatial positions — "a binary mask, where 0 is irrelevant
information for the desired object, and 1 is important" — and the mask is multiplied with the
layer's output, which then continues through the network. Finally "the last fully connected
layer was replaced with a fully connected layer, the input of which is the results of 3
attention estimators".

Choices (the paper gives no equations):

* **Estimator.** Jetley et al. score each local feature l_i against a global descriptor g with
  a learned compatibility c_i = <u, l_i + g>. A pose network is fully convolutional and has no
  global vector at these layers, so g is the global average of the layer's *own* features
  (projected), and the compatibility is a small 1x1-conv MLP:
  ``logit = conv1x1_2(relu(conv1x1_1(l) + W·GAP(l)))``. Per-position, so the mask is a
  spatial map (B,1,h,w).
* **Binary vs. soft.** A hard 0/1 mask has no gradient, so training uses the soft
  ``sigmoid(logit)`` in [0,1]. At inference the mask can be binarised (``logit > 0``) when the
  config asks for it (``attention_hard_inference``); it is off by default because a net trained
  with soft masks is evaluated most faithfully with the same masks.
* **Initialisation.** The last bias starts at +2 (mask ~0.88): an untrained estimator passes
  features almost unchanged, so an ImageNet-initialised front is not damaged at step 0.
* **"FC over the 3 estimators' results".** In a classifier, the final FC turns the
  attention-weighted descriptors into class scores. In OpenPose the role of "the last layer of
  the front" is played by conv4_4_CPM, which produces F, the input of every stage. Its
  replacement is a 1x1 convolution (a fully connected layer applied at every position) over the
  concatenation of the three attention-weighted feature maps, each brought to the stride-8 grid
  (layer 7 is at stride 4 and is average-pooled). See :class:`AttentionFusion`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class AttentionEstimator(nn.Module):
    """Features (B,C,h,w) -> (features * mask, mask) with mask (B,1,h,w) in [0,1]."""

    def __init__(self, channels: int, hidden: int = 64, hard_inference: bool = False,
                 init_bias: float = 2.0):
        super().__init__()
        self.local = nn.Conv2d(channels, hidden, 1)
        self.glob = nn.Linear(channels, hidden, bias=False)
        self.score = nn.Conv2d(hidden, 1, 1)
        self.hard_inference = hard_inference
        nn.init.normal_(self.score.weight, std=0.01)
        nn.init.constant_(self.score.bias, init_bias)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        g = self.glob(x.mean(dim=(2, 3)))[:, :, None, None]
        return self.score(F.relu(self.local(x) + g))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit = self.logits(x)
        if self.hard_inference and not self.training:
            mask = (logit > 0).to(x.dtype)
        else:
            mask = torch.sigmoid(logit)
        return x * mask, mask


class AttentionFusion(nn.Module):
    """The replacement of the front's last layer: 1x1 conv over the three attention-weighted maps."""

    def __init__(self, in_channels: list[int], out_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(sum(in_channels), out_channels, 1)

    def forward(self, feats: list[torch.Tensor], out_hw) -> torch.Tensor:
        h, w = int(out_hw[0]), int(out_hw[1])
        aligned = []
        for f in feats:
            if f.shape[-2:] != (h, w):
                f = F.adaptive_avg_pool2d(f, (h, w))
            aligned.append(f)
        return F.relu(self.proj(torch.cat(aligned, dim=1)), inplace=True)
