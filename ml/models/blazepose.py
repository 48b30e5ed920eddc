"""MediaPipe BlazePose (pose detector + full landmark model) as MediaPipe runs it, in torch.

Pipeline for one still image (MediaPipe ``pose_landmark_cpu`` graph, static-image mode):

1. detector: letterbox the image to 224x224 (black borders, values in [-1, 1]); run
   ``pose_detection.tflite``; decode the 2254 SSD anchors (strides 8, 16, 32, 32, 32; two
   anchors per cell; fixed anchor size) with boxes scaled by 224; sigmoid score (clipped at
   +-100); keep scores >= 0.5 (the graph's own default is 0.2; MediaPipe's Pose solution
   overrides it with min_detection_confidence = 0.5, as here); weighted NMS (IoU 0.3); best
   person first.
2. ROI: centre = detector keypoint 0 (mid-hip), side = 2 * |kp0 - kp1| * 1.25 (pixels, square),
   rotation = 90 deg - atan2(-(y1 - y0), x1 - x0) so the body points up in the crop.
3. landmarks: warp that rotated square to 256x256 (values in [0, 1], replicated border); run
   ``pose_landmark_full.tflite``: 39 x (x, y, z, visibility, presence) in crop pixels, a pose
   flag, a 256x256 segmentation logit map and 64x64x39 heatmaps; refine x, y from the heatmap
   (kernel 7, min confidence 0.5, exactly MediaPipe's weighted average); sigmoid visibility and
   presence; rotate/scale the 33 body landmarks back to image pixels.
4. segmentation: sigmoid of the logits, warped back into the image frame with the inverse ROI
   transform (probability 0 outside the ROI), float32 at the input image size.

The two networks are called through plain callables ``NHWC float32 array -> tuple of outputs in
TFLite order``; by default they are :class:`ml.runtime.tflite.TFLiteModel` modules on ``device``,
but any other runner (e.g. a LiteRT interpreter in tests) can be plugged in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from ml.types import Keypoints

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 33
MIN_DETECTION_SCORE = 0.5
NMS_IOU = 0.3
ROI_SCALE = 1.25
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5

BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)

# Our 23 keypoints (ml.types.KEYPOINT_NAMES) <- BlazePose index; -1: BlazePose has no such point.
BLAZEPOSE_TO_23: tuple[int, ...] = (
    0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28,  # COCO-17
    31, -1, 29,   # left big toe (= left foot index), left small toe (none), left heel
    32, -1, 30,   # right big toe, right small toe (none), right heel
)

Runner = Callable[[np.ndarray], Sequence[np.ndarray]]


# --------------------------------------------------------------------------------------------
# Detector: anchors, decoding, weighted NMS
# --------------------------------------------------------------------------------------------

def generate_anchors(input_size: int = DETECTOR_SIZE, strides: Sequence[int] = (8, 16, 32, 32, 32),
                     anchor_offset: float = 0.5) -> np.ndarray:
    """SSD anchor centres (N, 2) as MediaPipe's SsdAnchorsCalculator with fixed_anchor_size.

    Consecutive layers with the same stride share one grid; each layer contributes two anchors
    per cell (aspect ratio 1 plus the interpolated scale), all of size 1x1.
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        per_cell = 0
        while j < len(strides) and strides[j] == strides[i]:
            per_cell += 2
            j += 1
        fm = int(math.ceil(input_size / strides[i]))
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        centres = np.stack([(xs + anchor_offset) / fm, (ys + anchor_offset) / fm], -1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


@dataclass
class Detection:
    score: float
    box: np.ndarray        # xmin, ymin, xmax, ymax (normalised to the detector tensor)
    keypoints: np.ndarray  # (4, 2) normalised to the detector tensor


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                      min_score: float = MIN_DETECTION_SCORE, scale: float = DETECTOR_SIZE
                      ) -> list[Detection]:
    """Decode the detector's raw (N, 12) boxes and (N, 1) logits into detections >= min_score."""
    raw_boxes = raw_boxes.reshape(-1, 12).astype(np.float32)
    logits = np.clip(raw_scores.reshape(-1).astype(np.float32), -100.0, 100.0)
    scores = _sigmoid(logits)
    keep = np.nonzero(scores >= min_score)[0]
    dets = []
    for k in keep:
        r, a = raw_boxes[k], anchors[k]
        xc, yc = r[0] / scale + a[0], r[1] / scale + a[1]
        w, h = r[2] / scale, r[3] / scale
        box = np.array([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], np.float32)
        kps = r[4:12].reshape(4, 2) / scale + a[None, :]
        dets.append(Detection(float(scores[k]), box, kps.astype(np.float32)))
    return dets


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def weighted_nms(dets: list[Detection], iou_threshold: float = NMS_IOU) -> list[Detection]:
    """MediaPipe's WEIGHTED non-max suppression: each kept detection keeps its own score but
    its box and keypoints become the score-weighted mean of all detections overlapping it."""
    remaining = sorted(dets, key=lambda d: -d.score)
    out = []
    while remaining:
        top = remaining[0]
        cands, rest = [], []
        for d in remaining:
            (cands if _iou(top.box, d.box) > iou_threshold else rest).append(d)
        w = np.array([d.score for d in cands], np.float32)
        if w.sum() > 0 and cands:
            box = sum(d.box * s for d, s in zip(cands, w)) / w.sum()
            kps = sum(d.keypoints * s for d, s in zip(cands, w)) / w.sum()
            out.append(Detection(top.score, box.astype(np.float32), kps.astype(np.float32)))
        else:
            out.append(top)
        remaining = rest if cands else remaining[1:]
    return out


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def letterbox_matrix(width: int, height: int, size: int = DETECTOR_SIZE) -> np.ndarray:
    """2x3 affine image px -> detector tensor px: the image fits, centred, in a size x size
    square (MediaPipe keep_aspect_ratio)."""
    side = float(max(width, height))
    s = size / side
    return np.array([[s, 0.0, (side - width) / 2 * s], [0.0, s, (side - height) / 2 * s]], np.float64)


@dataclass
class Roi:
    """Rotated square region in image pixels."""
    cx: float
    cy: float
    side: float
    rotation: float  # radians

    def to_image(self, uv: np.ndarray, size: int = LANDMARK_SIZE) -> np.ndarray:
        """Crop-tensor pixels (..., 2) -> image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        u = (uv[..., 0] / size - 0.5) * self.side
        v = (uv[..., 1] / size - 0.5) * self.side
        return np.stack([c * u - s * v + self.cx, s * u + c * v + self.cy], -1)

    def matrix(self, size: int = LANDMARK_SIZE) -> np.ndarray:
        """2x3 affine image px -> crop tensor px (inverse of :meth:`to_image`)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = size / self.side
        # uv = k * R^T (p - centre) + size/2
        a = np.array([[c, s], [-s, c]]) * k
        t = np.array([size / 2, size / 2]) - a @ np.array([self.cx, self.cy])
        return np.hstack([a, t[:, None]])


def _normalize_radians(a: float) -> float:
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def roi_from_keypoints(kp0: np.ndarray, kp1: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """MediaPipe AlignmentPointsRects + RectTransformation: centre kp0 (mid-hip), square side
    2*|kp0-kp1|*scale, rotation bringing kp1 (above the head) straight above kp0."""
    dx, dy = float(kp1[0] - kp0[0]), float(kp1[1] - kp0[1])
    side = 2.0 * math.hypot(dx, dy) * scale
    rotation = _normalize_radians(math.pi / 2 - math.atan2(-dy, dx))
    return Roi(float(kp0[0]), float(kp0[1]), side, rotation)


def refine_from_heatmap(xy_norm: np.ndarray, heatmap: np.ndarray, kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """MediaPipe RefineLandmarksFromHeatmap: for each landmark, the sigmoid-weighted mean of
    heatmap cell indices in a kernel x kernel window around it, used when the window's max
    confidence >= min_confidence. ``xy_norm`` (K, 2) in [0, 1] of the crop; heatmap (H, W, K)."""
    hh, hw, k = heatmap.shape
    out = xy_norm.astype(np.float32).copy()
    conf = _sigmoid(heatmap.astype(np.float32))
    off = (kernel - 1) // 2
    for i in range(min(k, len(out))):
        col, row = int(out[i, 0] * hw), int(out[i, 1] * hh)  # C++ float->int truncation
        if col < 0 or col >= hw or row < 0 or row >= hh:
            continue
        r0, r1 = max(0, row - off), min(hh, row + off + 1)
        c0, c1 = max(0, col - off), min(hw, col + off + 1)
        win = conf[r0:r1, c0:c1, i]
        total = float(win.sum())
        if win.size == 0 or total <= 0 or float(win.max()) < min_confidence:
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1]
        out[i, 0] = float((cols * win).sum()) / hw / total
        out[i, 1] = float((rows * win).sum()) / hh / total
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------

@dataclass
class BlazePoseResult:
    person_score: float                 # detector score of the chosen person (0 if none)
    landmarks: np.ndarray | None        # (33, 2) image pixels
    z: np.ndarray | None                # (33,) relative depth (crop pixels, MediaPipe units)
    visibility: np.ndarray | None       # (33,) sigmoid
    presence: np.ndarray | None         # (33,) sigmoid
    pose_flag: float                    # landmark model's "pose present" probability
    roi: Roi | None
    mask_prob: np.ndarray | None        # (H, W) float32 person probability
    detection: Detection | None = None

    def keypoints23(self, width: int, height: int, margin: float = 0.02) -> Keypoints:
        """Map BlazePose's 33 landmarks to our 23 keypoints.

        score = sigmoid(visibility) * pose_flag. Small toes do not exist in BlazePose: their
        score is 0 (never invented). A point outside the image is faded out: its score is
        multiplied by ``1 - d / (margin * max(W, H))`` clipped to [0, 1], d = its distance
        outside the image, so points more than 2 % of the long side outside get score 0.
        """
        kp = Keypoints.empty()
        if self.landmarks is None:
            return kp
        tol = max(1e-6, margin * max(width, height))
        for j, b in enumerate(BLAZEPOSE_TO_23):
            if b < 0:
                continue
            x, y = self.landmarks[b]
            kp.xy[j] = (x, y)
            dx = max(0.0, -x, x - (width - 1))
            dy = max(0.0, -y, y - (height - 1))
            fade = float(np.clip(1.0 - math.hypot(dx, dy) / tol, 0.0, 1.0))
            kp.score[j] = float(self.visibility[b]) * self.pose_flag * fade
        return kp


def largest_person(dets: list[Detection]) -> Detection:
    """Of several persons (each scored >= MIN_DETECTION_SCORE), the largest: the body scale
    |mid-hip - above-head| of the detector's alignment points. A studio photo's subject is
    the biggest person in it, not the one with the clearest face."""
    return max(dets, key=lambda d: float(np.linalg.norm(d.keypoints[1] - d.keypoints[0])))


class BlazePose:
    """Still-image BlazePose: detector -> ROI -> landmarks (+ heatmap refinement) -> mask."""

    def __init__(self, detector: Runner, landmark: Runner):
        self.detector = detector
        self.landmark = landmark
        self.anchors = generate_anchors()
        self.n_detections = 0          # persons found in the last image

    @classmethod
    def from_files(cls, detector_path: str | Path, landmark_path: str | Path,
                   device: str | torch.device = "cpu", trace: bool = False) -> "BlazePose":
        from ml.runtime.tflite import TFLiteModel, load_traced

        def runner(path, size):
            if trace:     # the frozen graph of an earlier start: no parsing, no conversion
                hit = load_traced(path, device, [(1, size, size, 3)])
                if hit is not None:
                    return hit
            net = TFLiteModel(path, device)
            if trace:
                net.enable_trace()
            return net

        det, lmk = runner(detector_path, DETECTOR_SIZE), runner(landmark_path, LANDMARK_SIZE)
        obj = cls(det.predict, lmk.predict)
        obj.modules = (det, lmk)
        return obj

    # -- stages ------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """All persons after NMS, best first; boxes/keypoints in image pixels."""
        h, w = rgb.shape[:2]
        m = letterbox_matrix(w, h)
        tensor = cv2.warpAffine(rgb, m, (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        x = (tensor.astype(np.float32) / 127.5 - 1.0)[None]
        raw_boxes, raw_scores = self.detector(x)[:2]
        dets = weighted_nms(decode_detections(raw_boxes, raw_scores, self.anchors))
        inv = cv2.invertAffineTransform(m)
        out = []
        for d in dets:
            pts = np.concatenate([d.box.reshape(2, 2), d.keypoints]) * DETECTOR_SIZE
            pts = pts @ inv[:, :2].T + inv[:, 2]
            out.append(Detection(d.score, pts[:2].reshape(4).astype(np.float32), pts[2:].astype(np.float32)))
        return out

    def landmarks(self, rgb: np.ndarray, roi: Roi, with_mask: bool = True, border=None) -> dict:
        """Landmarks in ``roi``. ``border``: None = replicate the image's edge pixels where the
        ROI leaves the frame (MediaPipe); an RGB triple = fill with that colour (a studio
        backdrop: a body cut at the waist must not be continued by stretched waist pixels).
        The result also holds ``heat_peak`` (33,): each landmark's highest heatmap
        probability, i.e. how sure the model is that the joint shows at all."""
        h, w = rgb.shape[:2]
        m = roi.matrix()
        mode = cv2.BORDER_REPLICATE if border is None else cv2.BORDER_CONSTANT
        fill = (0, 0, 0) if border is None else tuple(int(v) for v in border)
        crop = cv2.warpAffine(rgb, m, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=mode, borderValue=fill)
        x = (crop.astype(np.float32) / 255.0)[None]
        outs = self.landmark(x)
        raw = np.asarray(outs[0], np.float32).reshape(-1, 5)  # 39 x (x, y, z, vis, presence)
        flag = float(np.asarray(outs[1]).reshape(-1)[0])
        seg = np.asarray(outs[2], np.float32).reshape(LANDMARK_SIZE, LANDMARK_SIZE)
        heat = np.asarray(outs[3], np.float32).reshape(outs[3].shape[-3:])
        xy = refine_from_heatmap(raw[:, :2] / LANDMARK_SIZE, heat)
        lm_img = roi.to_image(xy[:NUM_LANDMARKS] * LANDMARK_SIZE)
        res = {
            "landmarks": lm_img.astype(np.float32),
            "z": raw[:NUM_LANDMARKS, 2].copy(),
            "visibility": _sigmoid(raw[:NUM_LANDMARKS, 3]).astype(np.float32),
            "presence": _sigmoid(raw[:NUM_LANDMARKS, 4]).astype(np.float32),
            "pose_flag": flag,
            "heat_peak": _sigmoid(heat.reshape(-1, heat.shape[-1]).max(0))[:NUM_LANDMARKS].astype(np.float32),
            "mask_prob": None,
        }
        if with_mask:
            prob = _sigmoid(seg).astype(np.float32)
            res["mask_prob"] = cv2.warpAffine(prob, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        return res

    def __call__(self, rgb: np.ndarray, with_mask: bool = True) -> BlazePoseResult:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        rgb = np.ascontiguousarray(rgb)
        dets = self.detect(rgb)
        self.n_detections = len(dets)
        if not dets:
            return BlazePoseResult(0.0, None, None, None, None, 0.0, None, None)
        best = largest_person(dets)
        roi = roi_from_keypoints(best.keypoints[0], best.keypoints[1])
        if roi.side < 1.0:
            return BlazePoseResult(best.score, None, None, None, None, 0.0, None, None, best)
        lm = self.landmarks(rgb, roi, with_mask)
        return BlazePoseResult(best.score, lm["landmarks"], lm["z"], lm["visibility"], lm["presence"],
                               lm["pose_flag"], roi, lm["mask_prob"], best)
