"""``CategoryClassifier``: the category of a product photo from the photo and its mask.

The product is cut out with the mask the pipeline already computed and placed on white
(:mod:`ml.category.views`), the backbone and the head give calibrated probabilities, and:

* top probability below the head's threshold -> ``other`` with a review reason (a product
  the classes do not cover, a colour chart, a card: never a confident wrong class);
* several separate objects in the mask -> the two largest are classified apart too; when each
  is sure of a different class the largest wins and a warning says so, else (a pair of shoes,
  a set) the whole cut-out decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ml.category import OTHER, UNCERTAIN_REASON
from ml.category.backbone import INPUT_SIZE, MODEL_ID, Backbone
from ml.category.model import HEAD_ID, load_head
from ml.category.views import compose

SECOND_OBJECT = 0.25      # a second component at least this share of the largest is "another object"
PAIR_RATIO = 0.5          # two objects this alike in size, and nothing else, are a pair
SURE_PART = 0.8           # two objects are different products only when each is this sure of its class
_CC_SIDE = 256


@dataclass
class CategoryResult:
    name: str                       # a class of CLASSES, or "other"
    confidence: float               # calibrated probability of ``best`` (0..1)
    best: str                       # the most likely class even when ``name`` is "other"
    warnings: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)    # reasons an operator should look


class CategoryClassifier:
    """Loads the backbone (``oidv4_ssd_mobilenetv2``) and the head (``category_head``), both
    verified against ``weights/manifest.json``."""

    def __init__(self, weights_dir: str | Path | None = None, device: torch.device | str = "cpu"):
        from ml import weights
        self.device = torch.device(device)
        head_path = weights.verify(HEAD_ID, weights_dir)
        self.head, meta = load_head(head_path, "cpu")
        if meta["backbone"]["id"] != MODEL_ID:
            raise ValueError(f"{head_path} was trained on backbone {meta['backbone']['id']!r}, not {MODEL_ID!r}")
        self.classes = list(meta["classes"])
        self.threshold = float(meta["threshold"])
        self.temperature = float(meta["temperature"])
        self.input_size = int(meta["backbone"].get("input_size", INPUT_SIZE))   # what the head was trained at
        self.backbone = Backbone(weights_dir, self.device, input_size=self.input_size)

    @torch.inference_mode()
    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        z = self.head(torch.from_numpy(self.backbone.features(crops)))
        return torch.softmax(z / self.temperature, dim=1).numpy()

    def classify(self, rgb: np.ndarray, mask: np.ndarray | None) -> CategoryResult:
        """``rgb``: HxWx3 uint8 (any working size); ``mask``: uint8 0/255 of any size or None.

        The whole cut-out is classified (as in training: a pair of shoes is one product). When
        the mask holds two big separate objects, each is classified too: two *different* classes,
        each sure (>= :data:`SURE_PART`), are several products -- the largest one's category
        with a warning; otherwise they are one product in parts (a pair, a set) and the whole
        decides when one of the parts backs its class or the two look like a pair (two objects
        of similar size, nothing else big); else the largest part alone (scattered blobs of a
        pattern stay `other`). Classifying one shoe of a pair alone took 8 of 40 dev
        shoes to headwear, sports gear or `other`."""
        whole = self.probabilities(compose(rgb, mask, size=self.input_size)[None])[0]
        parts = _largest_objects(mask) if mask is not None else []
        if len(parts) < 2:
            return self._result(whole, [])
        probs = self.probabilities(np.stack([compose(rgb, part, size=self.input_size) for part in parts]))
        (first, second), sure = (int(np.argmax(q)) for q in probs), max(SURE_PART, self.threshold)
        if first != second and min(float(q.max()) for q in probs) >= sure:
            return self._result(probs[0], [f"several different products in the photo ({self.classes[first]} "
                                           f"and {self.classes[second]}); the category is of the largest"])
        if int(np.argmax(whole)) in (first, second) or _pair(mask, parts):
            return self._result(whole, [])
        return self._result(probs[0], [])     # the parts do not back the whole: the largest alone

    def _result(self, p: np.ndarray, warnings: list[str]) -> CategoryResult:
        k = int(np.argmax(p))
        conf = float(p[k])
        best = self.classes[k]
        if conf >= self.threshold:
            return CategoryResult(best, conf, best, warnings)
        reason = (f"{UNCERTAIN_REASON} (best guess {best}, {conf:.2f}); "
                  "it was set to 'other': choose it by hand")
        return CategoryResult(OTHER, conf, best, warnings, [reason])


def _pair(mask: np.ndarray, parts: list[np.ndarray]) -> bool:
    """Two objects of similar size (the smaller >= :data:`PAIR_RATIO` of the larger) making up
    almost all of the mask: shoes, gloves, earrings."""
    a, b = (int(np.count_nonzero(p >= 128)) for p in parts[:2])
    total = int(np.count_nonzero(mask >= 128))
    return min(a, b) >= PAIR_RATIO * max(a, b) and a + b >= 0.9 * total


def _largest_objects(mask: np.ndarray) -> list[np.ndarray]:
    """Masks of the two largest separate objects when the second is big enough to be another
    product (else an empty list: one object, classify the mask as it is)."""
    h, w = mask.shape[:2]
    s = min(1.0, _CC_SIDE / max(h, w))
    small = cv2.resize(mask, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((small >= 128).astype(np.uint8), connectivity=8)
    if n <= 2:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1]
    if areas[order[1]] < SECOND_OBJECT * areas[order[0]]:
        return []
    out = []
    for k in order[:2]:
        part = (labels == k + 1).astype(np.uint8) * 255
        out.append(cv2.resize(part, (w, h), interpolation=cv2.INTER_NEAREST))
    return out
