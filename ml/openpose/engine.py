"""OpenPose as a keypoint engine with the same interface as the BlazePose stage.

``OpenPoseEstimator(checkpoint_path, device).estimate(rgb) -> ml.types.PoseResult`` for the
most prominent person (largest keypoint extent x mean score); ``estimate_all(rgb)`` returns every
person found. Keypoints are in source-image pixels, 23 points, score 0 for a missing point;
``mask_prob`` is None (OpenPose has no segmentation output).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ml.device import resolve_device
from ml.types import Keypoints, PoseResult

from .config import OpenPoseConfig
from .data import image_to_tensor
from .grouping import Person, group_people
from .model import OpenPoseAttention, load_model


def letterbox(rgb: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, float]:
    """Scale so the longer side is ``size``, pad right/bottom to multiples of ``stride``."""
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    pw, ph = -(-nw // stride) * stride, -(-nh // stride) * stride
    out = np.zeros((ph, pw, 3), np.uint8)
    out[:] = (124, 116, 104)
    out[:nh, :nw] = resized
    return out, s


@torch.no_grad()
def predict_maps(model: OpenPoseAttention, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Normalised batch -> last stage (paf, heat) as float32 numpy (B,C,h,w)."""
    paf, heat = model(images)[-1]
    return paf.float().cpu().numpy(), heat.float().cpu().numpy()


def _prominence(p: Person) -> float:
    v = p.keypoints[p.keypoints[:, 2] > 0]
    if len(v) == 0:
        return 0.0
    ext = float(np.ptp(v[:, 0]) + np.ptp(v[:, 1]))
    return ext * p.score * np.sqrt(len(v))


class OpenPoseEstimator:
    """Load a checkpoint (training checkpoint or exported one) and estimate poses on RGB photos."""

    name = "openpose"

    def __init__(self, checkpoint_path: str | Path, device: str | torch.device = "auto",
                 input_size: int | None = None):
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.model, self.cfg, _ = load_model(checkpoint_path, self.device)
        self.model.eval()
        self.input_size = int(input_size or self.cfg.input_size)
        self.checkpoint_path = Path(checkpoint_path)

    @classmethod
    def from_model(cls, model: OpenPoseAttention, device: str | torch.device = "cpu",
                   input_size: int | None = None) -> "OpenPoseEstimator":
        self = cls.__new__(cls)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg: OpenPoseConfig = model.cfg
        self.input_size = int(input_size or self.cfg.input_size)
        self.checkpoint_path = None
        return self

    def estimate_all(self, rgb: np.ndarray) -> list[Person]:
        """Every person, keypoints in source pixels, most prominent first."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("expected an HxWx3 RGB image")
        boxed, s = letterbox(np.ascontiguousarray(rgb), self.input_size, self.cfg.stride)
        x = image_to_tensor(boxed)[None].to(self.device)
        paf, heat = predict_maps(self.model, x)
        people = group_people(heat[0], paf[0], self.cfg)
        h, w = rgb.shape[:2]
        for p in people:
            k = p.keypoints
            k[:, :2] /= s
            k[:, 0] = np.clip(k[:, 0], 0, w - 1)
            k[:, 1] = np.clip(k[:, 1], 0, h - 1)
            k[k[:, 2] <= 0, :2] = 0
        people.sort(key=lambda p: -_prominence(p))
        return people

    def estimate(self, rgb: np.ndarray) -> PoseResult:
        people = self.estimate_all(rgb)
        if not people:
            return PoseResult(0.0, Keypoints.empty(), None)
        p = people[0]
        kp = Keypoints(p.keypoints[:, :2].astype(np.float32).copy(),
                       np.clip(p.keypoints[:, 2], 0, 1).astype(np.float32).copy())
        return PoseResult(float(np.clip(p.score, 0, 1)), kp, None)
