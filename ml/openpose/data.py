"""COCO person-keypoint data for OpenPose training (COCO-17, + COCO-WholeBody ``foot_kpts``).

An annotation contributes the 23 keypoints: COCO ``keypoints`` (17) then the 6 ``foot_kpts``
of COCO-WholeBody (left big toe, left small toe, left heel, right ...) when present and
``foot_valid`` is not false; without them the person is marked ``has_foot = False`` and the
foot channels of the loss are masked around that person (see :mod:`ml.openpose.targets`).
Crowd annotations and people without any labelled keypoint become "ignore" regions.

Augmentation (training): one affine per sample — random scale (person height normalised to
``target_person_height`` of the input, times a factor in ``scale_range``), rotation in
``±rotate_deg``, a crop of ``input_size`` around a (jittered) randomly chosen person, and a
horizontal flip with left/right keypoints swapped (``FLIP_INDEX``). Without augmentation the
same person-centred crop is taken deterministically.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .config import FLIP_INDEX, NUM_KEYPOINTS, OpenPoseConfig
from .model import MEAN, STD
from .targets import make_targets

PAD_RGB = tuple(int(round(m * 255)) for m in MEAN)


@dataclass
class PersonAnn:
    keypoints: np.ndarray      # (23,3) x, y, v in image pixels
    box: np.ndarray            # (4,) x0, y0, x1, y1
    has_foot: bool
    area: float


@dataclass
class ImageAnn:
    image_id: int
    file: Path
    width: int
    height: int
    people: list[PersonAnn] = field(default_factory=list)
    ignore: list[dict] = field(default_factory=list)     # raw COCO anns to mask out


def ann_to_keypoints23(ann: dict) -> tuple[np.ndarray, bool]:
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    body = np.asarray(ann.get("keypoints") or [], np.float32).reshape(-1, 3)
    kp[:min(17, len(body))] = body[:17]
    foot = ann.get("foot_kpts")
    has_foot = foot is not None and ann.get("foot_valid", True) is not False
    if has_foot:
        f = np.asarray(foot, np.float32).reshape(-1, 3)[:6]
        f = f.copy()
        f[:, 2] = np.where(f[:, 2] > 0, np.maximum(f[:, 2], 1), 0)   # WholeBody stores 0/1/2 or conf
        kp[17:17 + len(f)] = f
    kp[kp[:, 2] <= 0] = 0
    return kp, bool(has_foot)


def load_coco_keypoints(ann_file: str | Path, image_dir: str | Path,
                        foot_ann_file: str | Path | None = None) -> list[ImageAnn]:
    """Read a COCO person-keypoints file (optionally merging ``foot_kpts`` from a COCO-WholeBody
    file with the same annotation ids)."""
    d = json.loads(Path(ann_file).read_text())
    feet = {}
    if foot_ann_file:
        for a in json.loads(Path(foot_ann_file).read_text()).get("annotations", []):
            if "foot_kpts" in a:
                feet[a["id"]] = (a["foot_kpts"], a.get("foot_valid", True))
    image_dir = Path(image_dir)
    images = {im["id"]: ImageAnn(im["id"], image_dir / im["file_name"], int(im["width"]),
                                 int(im["height"])) for im in d["images"]}
    person_cats = {c["id"] for c in d.get("categories", []) if c.get("name") == "person"} or {1}
    for a in d.get("annotations", []):
        im = images.get(a["image_id"])
        if im is None or a.get("category_id", 1) not in person_cats:
            continue
        if a.get("id") in feet and "foot_kpts" not in a:
            a = dict(a, foot_kpts=feet[a["id"]][0], foot_valid=feet[a["id"]][1])
        kp, has_foot = ann_to_keypoints23(a)
        if a.get("iscrowd", 0) or (kp[:, 2] > 0).sum() == 0:
            im.ignore.append(a)
            continue
        if "bbox" in a:
            x, y, w, h = a["bbox"]
            box = np.array([x, y, x + w, y + h], np.float32)
        else:
            v = kp[kp[:, 2] > 0, :2]
            box = np.array([*v.min(0), *v.max(0)], np.float32)
        im.people.append(PersonAnn(kp, box, has_foot, float(a.get("area", (box[2] - box[0]) * (box[3] - box[1])))))
    return [images[k] for k in sorted(images)]


def _ignore_mask(im: ImageAnn) -> np.ndarray | None:
    if not im.ignore:
        return None
    mask = np.zeros((im.height, im.width), np.uint8)
    for a in im.ignore:
        seg = a.get("segmentation")
        drawn = False
        if seg:
            try:
                from pycocotools import mask as mask_util
                if isinstance(seg, list):
                    rles = mask_util.frPyObjects(seg, im.height, im.width)
                    m = mask_util.decode(mask_util.merge(rles))
                elif isinstance(seg.get("counts"), list):
                    m = mask_util.decode(mask_util.frPyObjects(seg, im.height, im.width))
                else:
                    m = mask_util.decode(seg)
                mask |= (m > 0).astype(np.uint8)
                drawn = True
            except Exception:
                drawn = False
        if not drawn and "bbox" in a:
            x, y, w, h = (int(round(v)) for v in a["bbox"])
            mask[max(0, y):y + h, max(0, x):x + w] = 1
    return mask


def read_rgb(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(MEAN)[:, None, None]
    std = torch.tensor(STD)[:, None, None]
    return (t - mean) / std


class CocoPoseDataset(Dataset):
    def __init__(self, images: list[ImageAnn], cfg: OpenPoseConfig, augment: bool = True,
                 cache_images: bool = False):
        self.images = [im for im in images if im.people]
        if not self.images:
            raise ValueError("no image with a labelled person")
        self.cfg = cfg
        self.augment = augment
        self._cache: dict[int, np.ndarray] | None = {} if cache_images else None

    @classmethod
    def from_coco(cls, ann_file, image_dir, cfg: OpenPoseConfig, augment: bool = True,
                  foot_ann_file=None, **kw) -> "CocoPoseDataset":
        return cls(load_coco_keypoints(ann_file, image_dir, foot_ann_file), cfg, augment, **kw)

    def __len__(self) -> int:
        return len(self.images)

    def _rgb(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        rgb = read_rgb(self.images[i].file)
        if self._cache is not None:
            self._cache[i] = rgb
        return rgb

    def affine(self, im: ImageAnn, rng: random.Random | None) -> tuple[np.ndarray, bool]:
        """2x3 matrix image -> input pixels, and whether it flips."""
        cfg = self.cfg
        S = cfg.input_size
        if rng is not None:
            p = rng.choice(im.people)
        else:
            p = max(im.people, key=lambda q: q.box[3] - q.box[1])
        x0, y0, x1, y1 = p.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ph = max(y1 - y0, 1.0)
        scale = cfg.target_person_height * S / ph
        angle = 0.0
        flip = False
        if rng is not None:
            scale *= rng.uniform(*cfg.scale_range)
            angle = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
            cx += rng.uniform(-cfg.center_jitter, cfg.center_jitter) / scale
            cy += rng.uniform(-cfg.center_jitter, cfg.center_jitter) / scale
            flip = rng.random() < cfg.flip_prob
        a = math.radians(angle)
        ca, sa = math.cos(a) * scale, math.sin(a) * scale
        out_c = (S - 1) / 2.0
        M = np.array([[ca, -sa, out_c - (ca * cx - sa * cy)],
                      [sa, ca, out_c - (sa * cx + ca * cy)]], np.float64)
        if flip:
            M = np.array([[-1, 0, S - 1], [0, 1, 0]], np.float64) @ np.vstack([M, [0, 0, 1]])
        return M.astype(np.float64), flip

    def sample(self, i: int, seed: int | None = None) -> dict:
        cfg = self.cfg
        im = self.images[i]
        rng = random.Random(seed) if (self.augment) else None
        if self.augment and seed is None:
            rng = random.Random()
        M, flip = self.affine(im, rng)
        S = cfg.input_size
        rgb = cv2.warpAffine(self._rgb(i), M, (S, S), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=PAD_RGB)
        kps, boxes, has_foot = [], [], []
        for p in im.people:
            k = p.keypoints.copy()
            xy1 = np.concatenate([k[:, :2], np.ones((NUM_KEYPOINTS, 1), np.float32)], 1)
            k[:, :2] = xy1 @ M.T
            k[k[:, 2] <= 0, :2] = 0
            if flip:
                k = k[list(FLIP_INDEX)]
            kps.append(k)
            x0, y0, x1, y1 = p.box
            corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]]) @ M.T
            boxes.append([*corners.min(0), *corners.max(0)])
            has_foot.append(p.has_foot)
        kps_arr = np.asarray(kps, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
        g = S // cfg.stride
        ign = _ignore_mask(im)
        ign_grid = None
        if ign is not None:
            warped = cv2.warpAffine(ign * 255, M, (S, S), flags=cv2.INTER_LINEAR, borderValue=0)
            ign_grid = cv2.resize(warped, (g, g), interpolation=cv2.INTER_AREA) > 64
        t = make_targets(kps_arr, (g, g), cfg.stride, cfg.sigma, cfg.paf_width,
                         np.asarray(has_foot), np.asarray(boxes, np.float32), ign_grid)
        return {
            "image": image_to_tensor(rgb),
            "heat": torch.from_numpy(t["heat"]), "paf": torch.from_numpy(t["paf"]),
            "heat_mask": torch.from_numpy(t["heat_mask"]), "paf_mask": torch.from_numpy(t["paf_mask"]),
            "keypoints": torch.from_numpy(kps_arr),       # input pixels (variable N)
            "image_id": im.image_id,
        }

    def __getitem__(self, i: int) -> dict:
        return self.sample(i)


TENSOR_KEYS = ("image", "heat", "paf", "heat_mask", "paf_mask")


def collate(batch: list[dict]) -> dict:
    out = {k: torch.stack([b[k] for b in batch]) for k in TENSOR_KEYS}
    out["keypoints"] = [b["keypoints"] for b in batch]
    out["image_id"] = [b["image_id"] for b in batch]
    return out
