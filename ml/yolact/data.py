"""COCO-format instance segmentation data for YOLACT (pycocotools), with SSD-style augmentation.

A sample is ``(image, target)``: ``image`` a normalised float tensor (3, S, S) and ``target`` a dict
with ``boxes`` (m, 4) xyxy relative to the image (0..1), ``labels`` (m,) 0-based foreground class,
``masks`` (m, S, S) uint8, ``image_id`` and ``orig_size`` (h, w). Crowd annotations are skipped.

Augmentation (training): photometric distortion (brightness, contrast, saturation, hue), expand
(zoom out onto a mean-coloured canvas, up to 4x), random sample crop (SSD: a crop whose IoU with
some object exceeds a random bound, objects kept when their centre is inside), horizontal mirror,
then resize to S x S. Evaluation: resize only.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .config import MEAN_RGB, STD_RGB

MIN_BOX_PX = 4          # boxes narrower / lower than this (at S) are dropped after augmentation


def load_coco(ann_file: str | os.PathLike):
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(ann_file))


def normalize(img_rgb: np.ndarray) -> torch.Tensor:
    x = (img_rgb.astype(np.float32) - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STD_RGB, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1).contiguous()


# ----------------------------------------------------------------------------- augmentation
def _iou_box_vs_many(crop_box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(crop_box[:2], boxes[:, :2])
    rb = np.minimum(crop_box[2:], boxes[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(1)
    a = (crop_box[2:] - crop_box[:2]).prod()
    b = (boxes[:, 2:] - boxes[:, :2]).prod(1)
    return inter / np.maximum(a + b - inter, 1e-9)


def photometric_distort(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """img float32 RGB 0..255 -> distorted (same dtype)."""
    img = img.copy()
    if rng.random() < 0.5:
        img += rng.uniform(-32, 32)
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        img *= rng.uniform(0.5, 1.5)
    hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    if rng.random() < 0.5:
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 1)
    if rng.random() < 0.5:
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18)) % 360.0
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
    if not contrast_first and rng.random() < 0.5:
        img *= rng.uniform(0.5, 1.5)
    return np.clip(img, 0, 255)


def expand(img, masks, boxes, rng: random.Random, max_ratio: float = 4.0):
    if rng.random() < 0.5:
        return img, masks, boxes
    h, w = img.shape[:2]
    r = rng.uniform(1, max_ratio)
    nh, nw = int(h * r), int(w * r)
    top, left = int(rng.uniform(0, nh - h)), int(rng.uniform(0, nw - w))
    canvas = np.empty((nh, nw, 3), img.dtype)
    canvas[:] = np.asarray(MEAN_RGB, img.dtype)
    canvas[top:top + h, left:left + w] = img
    m2 = np.zeros((masks.shape[0], nh, nw), masks.dtype)
    m2[:, top:top + h, left:left + w] = masks
    return canvas, m2, boxes + np.array([left, top, left, top], np.float32)


_CROP_MODES = (None, 0.1, 0.3, 0.7, 0.9, -1)   # None: keep the image; -1: any crop


def random_sample_crop(img, masks, boxes, labels, rng: random.Random):
    h, w = img.shape[:2]
    if len(boxes) == 0:
        return img, masks, boxes, labels
    while True:
        mode = rng.choice(_CROP_MODES)
        if mode is None:
            return img, masks, boxes, labels
        min_iou = -np.inf if mode == -1 else mode
        for _ in range(50):
            cw, ch = rng.uniform(0.3 * w, w), rng.uniform(0.3 * h, h)
            if ch / cw < 0.5 or ch / cw > 2:
                continue
            left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
            rect = np.array([int(left), int(top), int(left + cw), int(top + ch)])
            if _iou_box_vs_many(rect.astype(np.float32), boxes).max() < min_iou:
                continue
            centers = (boxes[:, :2] + boxes[:, 2:]) / 2
            keep = (rect[0] < centers[:, 0]) & (rect[1] < centers[:, 1]) \
                & (rect[2] > centers[:, 0]) & (rect[3] > centers[:, 1])
            if not keep.any():
                continue
            img2 = img[rect[1]:rect[3], rect[0]:rect[2]]
            m2 = masks[keep][:, rect[1]:rect[3], rect[0]:rect[2]]
            b2 = boxes[keep].copy()
            b2[:, :2] = np.maximum(b2[:, :2], rect[:2]) - rect[:2]
            b2[:, 2:] = np.minimum(b2[:, 2:], rect[2:]) - rect[:2]
            return img2, m2, b2, labels[keep]


def augment(img: np.ndarray, masks: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: random.Random):
    """SSD/YOLACT training augmentation on pixel boxes (xyxy); returns the same kinds."""
    img = photometric_distort(img.astype(np.float32), rng)
    img, masks, boxes = expand(img, masks, boxes, rng)
    img, masks, boxes, labels = random_sample_crop(img, masks, boxes, labels, rng)
    if rng.random() < 0.5:
        w = img.shape[1]
        img = img[:, ::-1]
        masks = masks[:, :, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    return np.ascontiguousarray(img), np.ascontiguousarray(masks), boxes, labels


def resize_sample(img: np.ndarray, masks: np.ndarray, boxes: np.ndarray, size: int):
    h, w = img.shape[:2]
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    if len(masks):
        m = cv2.resize(masks.transpose(1, 2, 0).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
        masks = m.reshape(size, size, -1).transpose(2, 0, 1)
    else:
        masks = np.zeros((0, size, size), np.uint8)
    boxes = boxes * np.array([size / w, size / h, size / w, size / h], np.float32)
    return img, np.ascontiguousarray(masks), boxes


# ----------------------------------------------------------------------------- dataset
class CocoInstances(Dataset):
    """COCO instances (boxes + polygon/RLE masks) for YOLACT.

    ``category_ids``: the dataset category ids used as classes, in class order (default: all, sorted);
    annotations of other categories are ignored. ``image_ids``: restrict to these images.
    """

    def __init__(self, image_root: str | os.PathLike, ann_file: str | os.PathLike, size: int,
                 train: bool = True, category_ids: Sequence[int] | None = None,
                 image_ids: Sequence[int] | None = None, augment: bool = True, seed: int = 0,
                 skip_empty: bool | None = None):
        self.root = Path(image_root)
        self.ann_file = Path(ann_file)
        self.coco = load_coco(ann_file)
        self.size = int(size)
        self.train = train
        self.do_augment = augment and train
        cats = sorted(self.coco.getCatIds()) if not category_ids else [int(c) for c in category_ids]
        self.category_ids = cats
        self.cat_to_label = {c: i for i, c in enumerate(cats)}
        self.class_names = tuple(self.coco.cats[c]["name"] for c in cats)
        ids = list(image_ids) if image_ids is not None else sorted(self.coco.getImgIds())
        skip_empty = train if skip_empty is None else skip_empty
        if skip_empty:
            ids = [i for i in ids if self._anns(i)]
        self.ids = ids
        self._rng = random.Random(seed)

    def _anns(self, img_id: int) -> list[dict]:
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_id], iscrowd=False))
        return [a for a in anns if a["category_id"] in self.cat_to_label and a.get("area", 1) > 0]

    def __len__(self) -> int:
        return len(self.ids)

    def load_raw(self, index: int):
        """(rgb uint8, masks (m,H,W) uint8, boxes (m,4) xyxy px float32, labels (m,), image_id)."""
        img_id = self.ids[index]
        info = self.coco.imgs[img_id]
        bgr = cv2.imread(str(self.root / info["file_name"]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read image {self.root / info['file_name']}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        anns = self._anns(img_id)
        masks = np.zeros((len(anns), h, w), np.uint8)
        boxes = np.zeros((len(anns), 4), np.float32)
        labels = np.zeros(len(anns), np.int64)
        for j, a in enumerate(anns):
            m = self.coco.annToMask(a)
            if m.shape != (h, w):
                m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
            masks[j] = m
            x, y, bw, bh = a["bbox"]
            boxes[j] = (x, y, x + bw, y + bh)
            labels[j] = self.cat_to_label[a["category_id"]]
        return rgb, masks, boxes, labels, img_id

    def __getitem__(self, index: int):
        rgb, masks, boxes, labels, img_id = self.load_raw(index)
        h, w = rgb.shape[:2]
        img = rgb.astype(np.float32)
        if self.do_augment:
            img, masks, boxes, labels = augment(img, masks, boxes, labels, self._rng)
        img, masks, boxes = resize_sample(img, masks, boxes, self.size)
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (bw >= MIN_BOX_PX) & (bh >= MIN_BOX_PX) if self.train else np.ones(len(boxes), bool)
        boxes, masks, labels = boxes[keep] / self.size, masks[keep], labels[keep]
        target = {
            "boxes": torch.from_numpy(np.clip(boxes, 0, 1).astype(np.float32)),
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "masks": torch.from_numpy(masks.astype(np.uint8)),
            "image_id": int(img_id), "orig_size": (h, w),
        }
        return normalize(img), target


def collate(batch):
    """Stack images; keep targets as a list (variable number of objects)."""
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]


def worker_init(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream."""
    info = torch.utils.data.get_worker_info()
    if info is not None:
        ds = info.dataset
        ds._rng = random.Random(torch.initial_seed() % 2**32 + worker_id)
