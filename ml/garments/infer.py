"""The garment parser used by the pipeline: one network pass on a downscaled copy.

:class:`GarmentParser` loads the shipped weights (``weights/garments_u2netp.pt``, verified
against ``weights/manifest.json``), resizes the photo so its long side is ``long_side`` (by
default the long side the weights were trained at, which they record: 288 for the shipped ones;
dimensions rounded to multiples of 32), runs :class:`~ml.garments.model.GarmentNet` once,
upsamples the logits bilinearly to at most twice the network size, takes the arg-max and
enlarges the label map to the source size with nearest-neighbour (cheap on 24 MP).

Weights with a one-piece head (:mod:`.model`) decide once per photo whether the outfit has a
one-piece: below :data:`ONEPIECE_OFF` its ``dress`` class is switched off for the whole photo
(the pixels go to their next most likely class: a skirt under a cardigan becomes ``bottom``),
above it ``dress`` gains :data:`ONEPIECE_BOOST` in logit (a dress's bodice stops being ``top``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.device import resolve_device

from .data import to_tensor
from .labels import CLASSES
from .model import GarmentNet

MODEL_ID = "garments_u2netp"
LONG_SIDE = 224           # for weights that do not record their training size
ONEPIECE_OFF = 0.5        # one-piece head's probability below which the photo has no `dress` pixel
ONEPIECE_BOOST = 1.0      # logit added to `dress` where the head says there is one
_DRESS = CLASSES.index("dress")


@dataclass
class GarmentParse:
    labels: np.ndarray                        # uint8 HxW at the input size, values index CLASSES
    person_prob: float                        # the photo shows a person wearing goods
    shares: dict[str, float] = field(default_factory=dict)   # fraction of the image per class
    onepiece_prob: float | None = None        # the outfit has a one-piece (None: weights without the head)


def net_size(h: int, w: int, long_side: int = LONG_SIDE) -> tuple[int, int]:
    """The network input size for an HxW photo: long side ``long_side``, multiples of 32."""
    s = long_side / max(h, w)
    return max(32, int(round(h * s / 32)) * 32), max(32, int(round(w * s / 32)) * 32)


def load_weights(path: str | Path, device: torch.device) -> tuple[GarmentNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("meta", {}).get("format") != "studio-catalog-garments/1":
        raise ValueError(f"{Path(path).name} is not a garment-parser weights file")
    if tuple(ck["meta"].get("classes", ())) != CLASSES:
        raise ValueError(f"{Path(path).name} was trained for other classes: {ck['meta'].get('classes')}")
    net = GarmentNet()
    missing, unexpected = net.load_state_dict({k: v.float() for k, v in ck["model"].items()}, strict=False)
    bad = [k for k in missing if not k.startswith(("backbone.side.", "backbone.fuse.", "onepiece."))] + list(unexpected)
    if bad:
        raise ValueError(f"{Path(path).name} does not match the garment network ({bad[:3]} ...)")
    net.has_onepiece = not any(k.startswith("onepiece.") for k in missing)   # older weights: no head
    return net.eval().to(device), ck["meta"]


class _Inference(nn.Module):
    """The network as inference needs it: (class logits, person logit, one-piece logit), no side maps."""

    def __init__(self, net: GarmentNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        fused, _sides, person, onepiece = self.net(x)
        return fused, person, onepiece


class GarmentParser:
    """``GarmentParser(weights_dir=None, device="auto").parse(rgb) -> GarmentParse``."""

    def __init__(self, weights_dir: str | Path | None = None, device: str = "auto",
                 long_side: int | None = None, weights_file: str | Path | None = None):
        from ml import weights
        self.device = resolve_device(device)
        path = Path(weights_file) if weights_file else weights.verify(MODEL_ID, weights_dir)
        self.path = path
        self.net, self.meta = load_weights(path, self.device)
        # the size it was trained at (the weights record it), unless the caller asks otherwise
        trained = self.meta.get("input_hw") or (LONG_SIDE,)
        self.long_side = int(long_side or max(int(v) for v in trained))
        self._lock = threading.Lock()
        self._fast: dict[tuple[int, int], nn.Module] = {}    # accelerated module per input size

    def _module(self, nh: int, nw: int) -> nn.Module:
        """The traced/frozen fast path (ml.fastpath) for this input size, made on first use."""
        mod = self._fast.get((nh, nw))
        if mod is None:
            import sys

            from ml import fastpath
            from ml.garments import model
            mod = fastpath.accelerate_cached(MODEL_ID, self.path, lambda: _Inference(self.net), self.device,
                                             (1, 3, nh, nw), code=(model, sys.modules[__name__]))
            if len(self._fast) < 8:
                self._fast[(nh, nw)] = mod
        return mod

    def warm_up(self, aspects: tuple[tuple[int, int], ...] = ((3, 2), (2, 3))) -> None:
        """Prepare the fast path for portrait (3:2 high) and landscape photos ahead of the first one."""
        for h, w in aspects:
            self._module(*net_size(h * 100, w * 100, self.long_side))

    def logits(self, rgb: np.ndarray) -> tuple[torch.Tensor, float]:
        """(class logits 1x11xhxw at the network size, person probability); with a one-piece
        head, ``dress`` already switched off or boosted for the photo (see the module doc)."""
        logits, prob, _onepiece = self.outputs(rgb)
        return logits, prob

    def outputs(self, rgb: np.ndarray) -> tuple[torch.Tensor, float, float | None]:
        """(class logits as :meth:`logits` gives them, person probability, one-piece probability
        or None for weights without the head)."""
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        nh, nw = net_size(h, w, self.long_side)
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        x = to_tensor([small]).to(self.device)
        with self._lock, torch.no_grad():
            fused, person, onepiece = self._module(nh, nw)(x)
        fused = fused.float()
        q = None
        if self.net.has_onepiece:
            q = float(torch.sigmoid(onepiece.float())[0])
            fused[:, _DRESS] += ONEPIECE_BOOST if q >= ONEPIECE_OFF else -1e4
        return fused, float(torch.sigmoid(person.float())[0]), q

    def parse(self, rgb: np.ndarray) -> GarmentParse:
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        logits, prob, q = self.outputs(rgb)
        nh, nw = logits.shape[-2:]
        mh, mw = min(h, 2 * nh), min(w, 2 * nw)
        with torch.inference_mode():
            up = F.interpolate(logits, size=(mh, mw), mode="bilinear", align_corners=False)
            mid = up.argmax(1)[0].to(torch.uint8).cpu().numpy()
        labels = mid if (mh, mw) == (h, w) else cv2.resize(mid, (w, h), interpolation=cv2.INTER_NEAREST)
        counts = np.bincount(mid.ravel(), minlength=len(CLASSES))[:len(CLASSES)] / float(mid.size)
        return GarmentParse(np.ascontiguousarray(labels), prob,
                            {c: float(v) for c, v in zip(CLASSES, counts)}, onepiece_prob=q)


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise ValueError(f"the garment parser needs an HxWx3 uint8 RGB image, got {a.dtype} {a.shape}")
    return a
