"""Pose stage: BlazePose (torch port of MediaPipe's TFLite models) -> 23 keypoints + person mask.

``PoseEstimator(weights_dir, device).estimate(rgb)`` returns an :class:`ml.types.PoseResult`
in the pixels of the image it was given (the caller picks the working size, typically a long
side of about 1024 px):

* ``person_score``: the BlazePose detector's score for the chosen (largest) person (0.0 when no detection
  reaches MediaPipe's 0.5 threshold);
* ``keypoints``: 23 points (COCO-17 + feet). Scores are sigmoid(visibility) x the landmark
  model's pose flag; small toes always have score 0 (BlazePose has none); points outside the
  image are faded out (see :meth:`ml.models.blazepose.BlazePoseResult.keypoints23`);
* ``mask_prob``: HxW float32 person probability at the given image size, or None without a
  person;
* ``n_persons``: how many persons the detector found (the largest is used).

``estimate_seeded(rgb, seed_mask)`` gives the keypoints of a body the detector misses (it
needs a face: a shot cut at the chin or the waist, a back view, a close-up) from ROIs built
from the mask; joints outside the frame or off the subject score 0 (:func:`seeded_pose`).

Both model files are checked against ``weights/manifest.json`` (SHA-256) before loading.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ml import weights as weights_registry
from ml.models.blazepose import BLAZEPOSE_TO_23, BlazePose, BlazePoseResult, Roi
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
        n = self.model.n_detections
        if res.landmarks is None:
            return PoseResult(person_score=float(res.person_score), keypoints=Keypoints.empty(),
                              mask_prob=None, n_persons=n)
        return PoseResult(person_score=float(res.person_score), keypoints=res.keypoints23(w, h),
                          mask_prob=res.mask_prob, n_persons=n)

    def estimate_seeded(self, rgb: np.ndarray, seed: np.ndarray) -> PoseResult | None:
        """Keypoints of a body the detector missed (no face: cut at the waist or chin, seen
        from behind, a close-up), from a region seeded by ``seed`` (see :func:`seeded_pose`)."""
        return seeded_pose(self.model, rgb, seed)


# ---- partial bodies: landmarks on a region seeded from a mask -------------------------------

# Limb joints (BlazePose indices) whose heatmap peaks say "a body shows here": shoulders,
# elbows, wrists, hips, knees, ankles.
LIMBS = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
SEED_MIN_SHARE = 0.01      # a seed mask smaller than this share of the frame seeds nothing
_EDGE = 0.02               # a mask covering this share of an edge (or this close) is cut there


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def seed_rois(box, size: tuple[int, int], cut: tuple[bool, bool] | None = None):
    """Candidate BlazePose ROIs (centre = mid-hip, side = 2.5 x hip-to-head-top) for a body
    whose visible part is ``box`` in an image of ``size`` = (w, h). Upright bodies (EXIF is
    applied; a catalogue shot is upright, so the ROIs are not rotated). A body the frame cuts at the top is legs with the hips at the cut; one cut at
    the bottom is a torso with the hips at or below the cut; only one inside the frame can be
    whole (a whole-body ROI on a pair of legs would put shoulders on the knees)."""
    x0, y0, x1, y1 = box
    w, h = size
    bh = y1 - y0
    cx = (x0 + x1) / 2
    top, bottom = cut if cut is not None else (y0 <= _EDGE * h, y1 >= (1 - _EDGE) * h)
    rois = {}
    if top:                                   # cut at the waist (or chin): legs below the cut
        rois["legs"] = Roi(cx, y0, 2.5 * bh, 0.0)
    if bottom:                                # cut at the thighs: a torso above the cut
        rois["torso"] = Roi(cx, y1, 2.5 * bh, 0.0)
        rois["torso_mid"] = Roi(cx, y0 + 0.75 * bh, 2.0 * bh, 0.0)
    if not rois:                              # the whole body is in the frame
        rois["whole"] = Roi(cx, (y0 + y1) / 2, 1.25 * max(bh, x1 - x0), 0.0)
    return rois


def backdrop_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of the photo's border (the studio backdrop)."""
    step = max(1, max(rgb.shape[:2]) // 256)
    border = np.concatenate([rgb[0, ::step], rgb[-1, ::step], rgb[::step, 0], rgb[::step, -1]])
    return np.median(border, axis=0)


def _support(lm: dict, inside: np.ndarray) -> float:
    """Mean heatmap peak of the limb joints the model places on the seed mask (off it: 0)."""
    return float(np.mean([lm["heat_peak"][j] * inside[j] for j in LIMBS]))


def _on_mask(xy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    x = np.round(xy[:, 0]).astype(int)
    y = np.round(xy[:, 1]).astype(int)
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    out = np.zeros(len(xy), bool)
    out[ok] = mask[y[ok], x[ok]]
    return out


def seeded_pose(model, rgb: np.ndarray, seed: np.ndarray) -> PoseResult | None:
    """BlazePose landmarks without a detection, from ``seed`` (bool HxW at ``rgb``'s size: the
    salient or person mask). Tries the ROIs of :func:`seed_rois` and keeps the one whose limb
    joints the model is surest of. Keypoint scores are BlazePose's visibility,
    0 for a joint outside the frame or off the (slightly dilated) seed mask: a joint is never
    invented on the backdrop. ``support`` (0..1) says how sure the model is that limbs show."""
    h, w = rgb.shape[:2]
    if seed.shape != (h, w) or seed.mean() < SEED_MIN_SHARE:
        return None
    box = mask_box(seed)
    if box is None:
        return None
    k = max(3, int(0.02 * max(h, w)) | 1)
    near = cv2.dilate(seed.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    fill = backdrop_colour(rgb)
    best = None
    cut = (seed[0].mean() >= _EDGE, seed[-1].mean() >= _EDGE)   # the frame cuts the body there
    for roi in seed_rois(box, (w, h), cut).values():
        lm = model.landmarks(rgb, roi, True, border=fill)
        inside = _on_mask(lm["landmarks"], near)
        sup = _support(lm, inside)
        if best is None or sup > best[0]:
            best = (sup, lm, roi, inside)
    sup, lm, roi, inside = best
    res = BlazePoseResult(0.0, lm["landmarks"], lm["z"], lm["visibility"], lm["presence"],
                          lm["pose_flag"], roi, lm["mask_prob"])
    # The pose flag says "a whole pose is in the ROI": low for half a body by design, so the
    # seeded scores are the joints' own visibility, kept only on the subject inside the frame.
    res.pose_flag = 1.0
    kp = res.keypoints23(w, h)
    for j, b in enumerate(BLAZEPOSE_TO_23):
        if b >= 0 and not inside[b]:
            kp.score[j] = 0.0
    return PoseResult(person_score=0.0, keypoints=kp, mask_prob=lm["mask_prob"], seeded=True,
                      support=sup)
