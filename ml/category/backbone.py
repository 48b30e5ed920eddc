"""Frozen features for the category head: MediaPipe's Objectron OIDv4 SSD-MobileNetV2.

The file (``weights/oidv4_ssd_mobilenetv2.tflite``, Apache-2.0, from npm
``@mediapipe/objectron``; see ``weights/manifest.json``) is an SSD detector trained on
OpenImages with 24 classes (Footwear, Boot, High heels, Mug, Coffee cup, Bottle, Box,
Laptop, Camera, Book, Chair, ...). It runs through :mod:`ml.runtime.tflite` (no TFLite
runtime), pruned to what the features need:

* the MobileNetV2 ``Conv_1`` map (1280 channels), average- and max-pooled -> 2560 values;
* the class logits of the two finest SSD heads, max-pooled over anchors -> 24 values (what
  the detector thinks is in the crop, in OpenImages terms).

The input is a square RGB crop of :data:`INPUT_SIZE` pixels scaled to [-1, 1]. 236 px (not
the file's 300) is ~1.6x cheaper and keeps every stride-2 layer's input parity, hence the
file's own SAME paddings, exactly as at 300; so does every size 300 - 32k
(:func:`check_input_size`). A head records the size it was trained at, and the classifier
runs the backbone at that size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

MODEL_ID = "oidv4_ssd_mobilenetv2"
INPUT_SIZE = 236
OID_CLASSES = ("???", "Bicycle", "Boot", "Laptop", "Person", "Chair", "Cattle", "Desk", "Cat",
               "Computer mouse", "Computer monitor", "Box", "Mug", "Coffee cup", "Stationary bicycle",
               "Table", "Bottle", "High heels", "Vehicle", "Footwear", "Dog", "Book", "Camera", "Car")
_TAPS = ("FeatureExtractor/MobilenetV2/Conv_1/Relu6",
         "BoxPredictor_0/ClassPredictor/BiasAdd",
         "BoxPredictor_1/ClassPredictor/BiasAdd")
FEATURE_DIM = 2 * 1280 + len(OID_CLASSES)


def check_input_size(size: int) -> int:
    """``size`` when it keeps the file's stride-2 parities (300 - 32k, >= 108), else ValueError."""
    size = int(size)
    if size < 108 or (300 - size) % 32:
        raise ValueError(f"backbone input size {size} would change the network's paddings: "
                         "use 300 - 32k (268, 236, 204, 172, ...)")
    return size


class _Features(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # x: N,H,W,3 in [-1, 1]
        conv1, cls0, cls1 = self.net.run_graph(x)           # NHWC
        n = conv1.shape[0]
        k = len(OID_CLASSES)
        logits = torch.cat([cls0.reshape(n, -1, k), cls1.reshape(n, -1, k)], dim=1)
        return torch.cat([conv1.mean(dim=(1, 2)), conv1.amax(dim=(1, 2)), logits.amax(dim=1)], dim=1)


class Backbone:
    """``features(batch)``: N x :data:`FEATURE_DIM` float32 for uint8 RGB crops N x S x S x 3."""

    def __init__(self, weights_dir: str | Path | None = None, device: torch.device | str = "cpu",
                 trace: bool = True, input_size: int = INPUT_SIZE):
        from ml import weights
        self.device = torch.device(device)
        self.input_size = check_input_size(input_size)
        self.path = weights.verify(MODEL_ID, weights_dir)
        self._module: _Features | None = None
        self._traced = None
        if trace:
            import sys

            from ml import graph_cache
            from ml.fastpath import settle, tracing
            from ml.runtime import tflite
            example = torch.zeros(1, self.input_size, self.input_size, 3, device=self.device)

            def build():
                with torch.no_grad(), tracing():
                    return torch.jit.freeze(torch.jit.trace(self.module, example, check_trace=False))

            key = graph_cache.graph_key("category-backbone", weights_sha256=weights.sha256_file(self.path),
                                        device=self.device, shapes=[example.shape],
                                        code=(sys.modules[__name__], tflite))
            # a cache hit needs no TFLite parse: the eager module is made only for batches
            self._traced, _hit = graph_cache.cached(key, self.device, build)
            settle(self._traced, example)

    @property
    def module(self) -> _Features:
        """The eager network (batches, and the graph's first build), parsed on first use."""
        if self._module is None:
            from ml.runtime.tflite import TFLiteModel
            self._module = _Features(TFLiteModel(self.path, self.device, outputs=list(_TAPS))).eval()
        return self._module

    @torch.inference_mode()
    def features(self, crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device, torch.float32)
        x = x * (2.0 / 255.0) - 1.0
        if self._traced is not None and x.shape[0] == 1:
            out = self._traced(x)
        else:
            out = self.module(x)
        return out.float().cpu().numpy()
