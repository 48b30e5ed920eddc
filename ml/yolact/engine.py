"""Use a trained YOLACT as the segmentation engine.

A model exported by training (``model_final.pth`` + ``model_final.json``, renamed as you like) or a
public ``yolact_*.pth`` placed in ``weights/`` is found by :func:`find_models`;
:class:`YolactSegmenter` turns a photo into instance detections and a foreground mask.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .detect import Detections


def find_models(weights_dir: str | os.PathLike) -> list[Path]:
    """YOLACT weight files in ``weights_dir``: ``*.pth`` with a YOLACT ``.json`` config beside them,
    or named ``yolact_*.pth`` (public checkpoints carry no config file)."""
    d = Path(weights_dir)
    out = []
    for p in sorted(d.glob("*.pth")):
        side = p.with_suffix(".json")
        if side.is_file():
            try:
                cfg = json.loads(side.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(cfg, dict) and "backbone" in cfg and "mask_dim" in cfg:
                out.append(p)
        elif p.name.startswith("yolact"):
            out.append(p)
    return out


class YolactSegmenter:
    """Instance segmentation of a photo with a YOLACT weight file (device: auto / cpu / cuda)."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", score_thresh: float = 0.3):
        from .checkpoint import load_model
        self.path = Path(path)
        self.model = load_model(self.path, device=device)
        self.score_thresh = score_thresh

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.cfg.class_names

    def detect(self, rgb: np.ndarray) -> Detections:
        return self.model.predict([rgb])[0]

    def foreground(self, rgb: np.ndarray, exclude: tuple[str, ...] = ()) -> tuple[np.ndarray, Detections]:
        """(float32 HxW mask in {0,1}: union of detections scoring >= score_thresh whose class is
        not in ``exclude``, the detections). An empty mask means nothing was found."""
        det = self.detect(rgb)
        names = self.class_names
        keep = det.scores >= self.score_thresh
        if exclude and names:
            keep &= np.array([names[c] not in exclude for c in det.classes], bool)
        mask = det.masks[keep].any(axis=0) if keep.any() else np.zeros(rgb.shape[:2], bool)
        return mask.astype(np.float32), det

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """The pipeline's segmentation-engine interface (same as ``ProductSegmenter.predict``):
        a float32 HxW foreground map in [0, 1] at the input size. People are left out, so on a
        product photo a hand holding the product is not cut out with it."""
        return self.foreground(rgb, exclude=("person",))[0]
