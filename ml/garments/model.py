"""The garment-parsing network: U2-Net-p with 11-class heads and an image-level person head.

Transfer learning from the U2-Net-p salient-object weights Studio Catalog already ships
(``weights/u2netp.onnx``, Apache-2.0): the encoder/decoder (RSU blocks) are loaded as they
are; the six 1-channel side outputs become 11-class side outputs whose every channel starts
from the pretrained saliency side conv (background = its negation, so the untrained net
already separates "salient thing" from background), and the 1x1 fuse becomes a per-class
fuse initialised to the mean of the six sides.

``person`` head: avg- and max-pooled features of the two deepest stages (hx5, hx6) and the
mean of the softmaxed class map -> small MLP -> one logit ("this photo shows a person
wearing goods").

``onepiece`` head (same pooled input, its own MLP): one logit, "the outfit includes a one-piece"
(a dress, romper, jumpsuit or swimsuit: ``dress`` covers >= 5 % of the person). Whether a photo
shows a one-piece is one decision per photo, which a per-pixel arg-max makes badly (a skirt under
a cardigan looks like a dress's lower half); inference uses this head to switch the ``dress``
class on or off for the whole photo (:mod:`.infer`). Weights trained before the head existed
load without it (``has_onepiece`` False) and parse as before.

``forward(x)`` returns ``(fused_logits, side_logits, person_logit, onepiece_logit)``; logits are
at the input size, ``side_logits`` a list of 6 tensors (deep supervision during training).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ml.models.u2netp import U2NetP, _pool, _up_like, load_onnx_weights

from .labels import CLASSES

N_CLASSES = len(CLASSES)


class GarmentNet(nn.Module):
    def __init__(self, n_classes: int = N_CLASSES, width: int = 64, frozen_stages: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self.frozen_stages = frozen_stages   # first N encoder stages run without gradients
        self.backbone = U2NetP(width=width)
        self.side = nn.ModuleList([nn.Conv2d(width, n_classes, 3, padding=1) for _ in range(6)])
        self.fuse = nn.Conv2d(6 * n_classes, n_classes, 1)
        self.person = nn.Sequential(nn.Linear(4 * width + n_classes, 64), nn.ReLU(inplace=True),
                                    nn.Linear(64, 1))
        self.onepiece = nn.Sequential(nn.Linear(4 * width + n_classes, 64), nn.ReLU(inplace=True),
                                      nn.Linear(64, 1))
        self.has_onepiece = True     # False: loaded from weights trained without the head
        self._init_fuse()

    def _init_fuse(self) -> None:
        k = self.n_classes
        with torch.no_grad():
            w = torch.zeros(k, 6 * k, 1, 1)
            for c in range(k):
                for s in range(6):
                    w[c, s * k + c] = 1.0 / 6
            self.fuse.weight.copy_(w)
            self.fuse.bias.zero_()

    def init_from_saliency(self) -> None:
        """Start the class heads from the backbone's (pretrained) saliency side convs."""
        with torch.no_grad():
            for new, old in zip(self.side, self.backbone.side):
                w = old.weight.detach().repeat(self.n_classes, 1, 1, 1)
                b = old.bias.detach().repeat(self.n_classes)
                w[0].neg_()
                b[0].neg_()
                new.weight.copy_(w * 0.5)
                new.bias.copy_(b * 0.5)

    def forward(self, x: torch.Tensor):
        bb = self.backbone
        feats = []
        h = x
        for i, stage in enumerate(bb.encoder):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= self.frozen_stages):
                h = stage(h)
            feats.append(h)
            if i < len(bb.encoder) - 1:
                h = _pool(h)
        dec = [feats[5]]
        d = feats[5]
        for i, stage in enumerate(bb.decoder):
            skip = feats[4 - i]
            d = stage(torch.cat((_up_like(d, skip), skip), 1))
            dec.append(d)
        top = dec[-1]
        sides = [_up_like(self.side[k](dec[5 - k]), top) for k in range(6)]
        fused = self.fuse(torch.cat(sides, 1))
        if fused.shape[-2:] != x.shape[-2:]:
            fused = _up_like(fused, x)
        pooled = [feats[4].mean((2, 3)), feats[4].amax((2, 3)),
                  feats[5].mean((2, 3)), feats[5].amax((2, 3)),
                  fused.detach().softmax(1).mean((2, 3))]
        pooled = torch.cat(pooled, 1)
        person = self.person(pooled).squeeze(1)
        onepiece = self.onepiece(pooled).squeeze(1)
        return fused, sides, person, onepiece


def build_pretrained(onnx_path: str | Path, frozen_stages: int = 0) -> GarmentNet:
    """A GarmentNet whose backbone carries the shipped U2-Net-p weights (heads from saliency)."""
    net = GarmentNet(frozen_stages=frozen_stages)
    load_onnx_weights(net.backbone, onnx_path)
    net.init_from_saliency()
    return net


ONEPIECE_SHARE = 0.05     # a one-piece: dress pixels >= this share of the labelled person


def onepiece_targets(labels: torch.Tensor, ignore: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (target, valid) for the one-piece head from a batch of label maps (B x H x W):
    target 1 where ``dress`` covers >= ONEPIECE_SHARE of the labelled person pixels; valid where
    at least 2 % of the frame is a labelled person (a product negative, or a crop showing
    almost no body, says nothing about the outfit)."""
    dress = CLASSES.index("dress")
    lab = labels.reshape(labels.shape[0], -1)
    person = ((lab != 0) & (lab != ignore)).sum(1).float()
    n_dress = (lab == dress).sum(1).float()
    valid = person >= 0.02 * lab.shape[1]
    return (n_dress >= ONEPIECE_SHARE * person.clamp(min=1)).float(), valid


def drop_unused(state: dict) -> dict:
    """The state dict without the backbone's original 1-channel heads (not used for parsing)."""
    return {k: v for k, v in state.items()
            if not (k.startswith("backbone.side.") or k.startswith("backbone.fuse."))}
