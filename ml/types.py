"""Plain data passed between pipeline stages (numpy arrays, no torch, no Qt)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Cancelled(Exception):
    """Raised between stages when the caller's cancel() returns True (``ml.pipeline`` and every
    processor of the app raise this one type)."""


# The 23 keypoints: COCO-17 order, then the 6 foot points (COCO-WholeBody foot order).
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
KP = {n: i for i, n in enumerate(KEYPOINT_NAMES)}

# Every crop zone, in document order; the person zones are all but "product". "dress" is a
# one-piece (dress, jumpsuit, romper, swimwear); "bag" a carried bag. The garment classes each
# person zone frames live in ml.stages.garment_zones.ZONE_CLASSES.
ZONES = ("head", "top", "bottom", "dress", "shoes", "bag", "full", "product")
PERSON_ZONES = tuple(z for z in ZONES if z != "product")


@dataclass
class LoadedImage:
    """A photo decoded to 8-bit sRGB RGB, EXIF orientation applied.

    ``rgb`` is HxWx3 uint8, C-contiguous. ``width``/``height`` are of the oriented photo.
    ``notes`` records conversions done (ICC -> sRGB, CMYK, 16-bit, RAW ...), ``warnings``
    anything an operator should know.
    """
    rgb: np.ndarray
    path: str
    sha256: str
    format: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exif: bytes | None = None
    icc_profile: bytes | None = None   # the source profile (already converted away in rgb)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass
class Keypoints:
    """23 keypoints in source pixels: xy (23,2) float32, score (23,) float32 in [0,1].

    A point the model does not provide has score 0 (its xy is then meaningless).
    """
    xy: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls) -> "Keypoints":
        return cls(np.zeros((23, 2), np.float32), np.zeros(23, np.float32))

    def visible(self, name: str, thr: float = 0.5) -> bool:
        return bool(self.score[KP[name]] >= thr)

    def point(self, name: str) -> np.ndarray:
        return self.xy[KP[name]]


@dataclass
class PoseResult:
    person_score: float            # detector confidence that a person is present (0 if none)
    keypoints: Keypoints
    mask_prob: np.ndarray | None   # person probability, float32 HxW at some working size (or None)
    seeded: bool = False           # landmarks from a region seeded by a mask (no detection)
    support: float = 0.0           # seeded: how sure the landmark model is that limbs show (0..1)
    n_persons: int = 0             # persons the detector found (the best one is used)


@dataclass
class SwatchColour:
    rgb: tuple[int, int, int]
    hex: str
    family: str
    share: float                  # fraction of the item's pixels in the dominant cluster


@dataclass
class CropItem:
    zone: str
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 in source pixels
    swatch: SwatchColour | None = None
    category: str | None = None              # product category (ml.category) of what the crop shows


@dataclass
class Analysis:
    """What the pipeline found in one photo, before anything is written."""
    kind: str
    kind_confidence: float
    mask: np.ndarray                   # uint8 HxW at source size, 255 = person/product
    keypoints: Keypoints
    items: list[CropItem]
    needs_review: bool
    warnings: list[str]
    engines: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    category: tuple[str, float] | None = None   # product photos: (class or "other", confidence)
    # garment map (uint8 HxW at source size, values index ml.garments.CLASSES) of a person
    # photo, None for products or when the parser is unavailable; and the parser's
    # image-level "a person wearing goods" probability (None when it did not run)
    garments: np.ndarray | None = None
    garment_person_prob: float | None = None
