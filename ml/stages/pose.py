"""Pose stage: BlazePose (torch port of MediaPipe's TFLite models) -> 23 keypoints + person mask.

``PoseEstimator(weights_dir, device).estimate(rgb)`` returns an :class:`ml.types.PoseResult`
in the pixels of the image it was given (the caller picks the working size, typically a long
side of about 1024 px):

* ``person_score``: the BlazePose detector's score for the best person (0.0 when no detection
  reaches MediaPipe's 0.5 threshold);
* ``keypoints``: 23 points (COCO-17 + feet). Scores are sigmoid(visibility) x the landmark
  model's pose flag; small toes always have score 0 (BlazePose has none); points outside the
  image are faded out (see :meth:`ml.models.blazepose.BlazePoseResult.keypoints23`);
* ``mask_prob``: HxW float32 person probability at the given image size, or None without a
  person.

Both model files are checked against ``weights/manifest.json`` (SHA-256) before loading.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ml import weights as weights_registry
from ml.models.blazepose import BlazePose, BlazePoseResult
from ml.types import Keypoints, PoseResult

DETECTOR_ID = "pose_detection"
LANDMARK_ID = "pose_landmark_full"


class PoseEstimator:
    """Loads the two BlazePose models once; :meth:`estimate` runs one image.

    ``trace`` (default on) replaces each model's Python op loop by a frozen ``torch.jit.trace``
    (fixed 224/256 inputs): about 1.5-2x faster per call, ~1 s more at load.
    """

    def __init__(self, weights_dir: str | Path | None = None, device: str | torch.device = "cpu",
                 trace: bool = True):
        wdir = Path(weights_dir) if weights_dir is not None else None
        det_path = weights_registry.verify(DETECTOR_ID, wdir)
        lmk_path = weights_registry.verify(LANDMARK_ID, wdir)
        self.device = torch.device(device)
        self.model = BlazePose.from_files(det_path, lmk_path, self.device, trace=trace)
        self.last: BlazePoseResult | None = None

    def run(self, rgb: np.ndarray, with_mask: bool = True) -> BlazePoseResult:
        """The full BlazePose result (33 landmarks, visibility, ROI, mask)."""
        res = self.model(rgb, with_mask=with_mask)
        self.last = res
        return res

    def estimate(self, rgb: np.ndarray) -> PoseResult:
        res = self.run(rgb)
        h, w = rgb.shape[:2]
        if res.landmarks is None:
            return PoseResult(person_score=float(res.person_score), keypoints=Keypoints.empty(),
                              mask_prob=None)
        return PoseResult(person_score=float(res.person_score), keypoints=res.keypoints23(w, h),
                          mask_prob=res.mask_prob)
