"""Training / evaluation data for the garment parser: CCP persons + permissive product photos.

:class:`GarmentBatches` is a re-iterable source of batches for :func:`ml.training.run_training`:
one pass ("epoch") visits every CCP photo once in a shuffled order, ``persons`` per batch,
each with a studio framing from :mod:`.augment`, plus ``products`` product photos per batch
(negatives for the image-level person head; their pixels are ignored by the pixel loss).
Photos are decoded once and kept in memory at a reduced size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from .augment import IGNORE, augment_person, augment_product
from .labels import ccp_pairs, read_ccp_lookup

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
PERSON_HEIGHT = 512       # CCP photos are cached at this height (labels with nearest)
PRODUCT_SIDE = 320        # product photos: long side


def to_tensor(rgbs: list[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 images (same size) -> normalised NCHW float32."""
    a = np.stack(rgbs).astype(np.float32) * (1.0 / 255.0)
    a = (a - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def read_rgb(path: Path, long_side: int | None = None, height: int | None = None) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path} cannot be read as an image")
    h, w = bgr.shape[:2]
    s = 1.0
    if height:
        s = height / h
    elif long_side and max(h, w) > long_side:
        s = long_side / max(h, w)
    if s != 1.0:
        bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_ccp(ccp_dir: str | Path, limit: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rgb, 11-class labels) of every CCP photo, cached at :data:`PERSON_HEIGHT`."""
    lut = read_ccp_lookup(ccp_dir)
    out = []
    for photo, label in ccp_pairs(ccp_dir)[:limit]:
        rgb = read_rgb(photo, height=PERSON_HEIGHT)
        raw = cv2.imread(str(label), cv2.IMREAD_GRAYSCALE)
        if raw is None:
            raise ValueError(f"{label} cannot be read as a label image")
        lab = cv2.resize(lut[raw], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
        out.append((rgb, lab))
    return out


class GarmentBatches:
    """Re-iterable batches ``{"image", "labels", "person"}`` (see module docstring)."""

    def __init__(self, persons: list[tuple[np.ndarray, np.ndarray]], products: list[np.ndarray],
                 size: tuple[int, int], persons_per_batch: int = 6, products_per_batch: int = 2,
                 seed: int = 0, extra_frames: tuple[tuple[int, int], ...] = (),
                 extra_share: float = 0.4):
        """``extra_frames``: other frame shapes (H, W) a batch is drawn at, ``extra_share`` of the
        batches in all (``size`` for the rest). The app parses a photo at its own aspect (a square
        packshot at 288x288); batches of one portrait frame teach the person head only photos
        that fill that frame (persons) or sit fitted inside it (products)."""
        if not persons:
            raise ValueError("no person photos to train on")
        self.persons, self.products, self.size = persons, products, size
        self.extra_frames = tuple(tuple(int(v) for v in f) for f in extra_frames)
        self.extra_share = float(extra_share) if self.extra_frames else 0.0
        self.pb = max(1, min(persons_per_batch, len(persons)))
        self.nb = products_per_batch if products else 0
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return max(1, len(self.persons) // self.pb)

    def __iter__(self) -> Iterator[dict]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.persons))
        for b in range(len(self)):
            size = self.size
            if self.extra_frames and rng.random() < self.extra_share:
                size = self.extra_frames[int(rng.integers(len(self.extra_frames)))]
            imgs, labs, flags = [], [], []
            for i in order[b * self.pb:(b + 1) * self.pb]:
                im, lb = augment_person(*self.persons[i], size, rng)
                imgs.append(im)
                labs.append(lb)
                flags.append(1.0)
            for _ in range(self.nb):
                imgs.append(augment_product(self.products[int(rng.integers(len(self.products)))], size, rng))
                labs.append(np.full(size, IGNORE, np.uint8))
                flags.append(0.0)
            yield {"image": to_tensor(imgs), "labels": torch.from_numpy(np.stack(labs)).long(),
                   "person": torch.tensor(flags)}
