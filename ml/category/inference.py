"""``CategoryClassifier``: the category of a product photo from the photo and its mask.

The product is cut out with the mask the pipeline already computed and placed on white
(:mod:`ml.category.views`), the backbone and the head give calibrated probabilities, and:

* top probability below the head's threshold -> ``other`` with a review reason (a product
  the classes do not cover, a colour chart, a card: never a confident wrong class);
* several separate objects in the mask -> the two largest are classified apart; when they
  disagree (not a pair of shoes) the largest wins and a warning says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ml.category import OTHER, UNCERTAIN_REASON
from ml.category.backbone import MODEL_ID, Backbone
from ml.category.model import HEAD_ID, load_head
from ml.category.views import compose

SECOND_OBJECT = 0.25      # a second component at least this share of the largest is "another object"
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
        self.backbone = Backbone(weights_dir, self.device)

    @torch.inference_mode()
    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        z = self.head(torch.from_numpy(self.backbone.features(crops)))
        return torch.softmax(z / self.temperature, dim=1).numpy()

    def classify(self, rgb: np.ndarray, mask: np.ndarray | None) -> CategoryResult:
        """``rgb``: HxWx3 uint8 (any working size); ``mask``: uint8 0/255 of any size or None."""
        parts = _largest_objects(mask) if mask is not None else []
        if len(parts) < 2:
            p = self.probabilities(compose(rgb, mask)[None])[0]
            return self._result(p, [])
        crops = np.stack([compose(rgb, part) for part in parts])
        probs = self.probabilities(crops)
        first, second = (int(np.argmax(q)) for q in probs)
        warnings = []
        if first != second and probs[1].max() >= self.threshold:
            warnings.append(f"several different products in the photo ({self.classes[first]} and "
                            f"{self.classes[second]}); the category is of the largest")
        return self._result(probs[0], warnings)

    def _result(self, p: np.ndarray, warnings: list[str]) -> CategoryResult:
        k = int(np.argmax(p))
        conf = float(p[k])
        best = self.classes[k]
        if conf >= self.threshold:
            return CategoryResult(best, conf, best, warnings)
        reason = (f"{UNCERTAIN_REASON} (best guess {best}, {conf:.2f}); "
                  "it was set to 'other': choose it by hand")
        return CategoryResult(OTHER, conf, best, warnings, [reason])


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
