"""YOLACT configurations as plain dataclasses (JSON round-trippable).

Named configs (:func:`get_config`):

* ``yolact_base``          — the public dbolya/yolact ``yolact_base`` layout (ResNet-101, 550 px, 81
  classes) — loads ``yolact_base_*.pth``;
* ``yolact_r50``           — the public ``yolact_resnet50`` layout — loads ``yolact_resnet50_*.pth``;
* ``yolact_r101_baseline`` — Table 1 row 1: plain ResNet-101 at the paper's 800 px;
* ``yolact_r101_ws``       — Table 1 row 2: the same with weight-standardised backbone convolutions
  (+ GroupNorm, see docs/yolact.md);
* ``yolact_r101_attention``— Table 1 row 3: the same with split-attention bottlenecks (K=1, R=2);
* ``tiny``                 — a few-MB network at 160 px for CPU tests.

A config file (``.json``) written by :meth:`YolactConfig.save` can be given wherever a name is.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ImageNet statistics in RGB order on the 0..255 scale (the public YOLACT's, re-ordered to RGB).
MEAN_RGB = (123.68, 116.78, 103.94)
STD_RGB = (58.40, 57.12, 57.38)

RESNET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


@dataclass
class BackboneConfig:
    depth: int = 101                      # 50 / 101 / 152, or 0 with explicit ``layers``
    layers: tuple[int, ...] | None = None  # blocks per stage (overrides depth)
    base_width: int = 64                  # stem channels; stage i has base_width*2**i planes
    norm: str = "bn"                      # "bn" | "gn"
    gn_groups: int = 32
    ws: bool = False                      # weight-standardised convolutions in the backbone
    attention: bool = False               # split-attention bottlenecks instead of the plain 3x3
    cardinality: int = 1                  # K
    radix: int = 2                        # R
    reduction_factor: int = 4
    min_inter_channels: int = 32
    frozen_bn: bool = False               # keep BN statistics fixed (fine-tuning small batches)

    def blocks(self) -> tuple[int, ...]:
        if self.layers:
            return tuple(self.layers)
        if self.depth not in RESNET_LAYERS:
            raise ValueError(f"unsupported ResNet depth {self.depth}")
        return RESNET_LAYERS[self.depth]


@dataclass
class YolactConfig:
    name: str = "yolact_base"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_classes: int = 81                 # including background (index 0)
    class_names: tuple[str, ...] = ()     # foreground names, len = num_classes - 1 (may be empty)
    category_ids: tuple[int, ...] = ()    # dataset category id of each foreground class
    max_size: int = 550                   # images are resized to max_size x max_size
    selected_layers: tuple[int, ...] = (1, 2, 3)   # C3, C4, C5
    fpn_features: int = 256
    fpn_downsample: int = 2               # P6, P7 by stride-2 convs
    pred_scales: tuple[int, ...] = (24, 48, 96, 192, 384)   # anchor size in pixels at max_size
    aspect_ratios: tuple[float, ...] = (1.0, 0.5, 2.0)
    square_anchors: bool = True           # the public YOLACT's anchors (h = w); needed for its weights
    head_channels: int = 256
    mask_dim: int = 32                    # k prototypes
    proto_channels: int = 256
    use_semantic_seg: bool = True         # auxiliary semantic segmentation loss (training only)
    # matching & losses
    pos_iou: float = 0.5
    neg_iou: float = 0.4
    negpos_ratio: int = 3
    conf_alpha: float = 1.0
    bbox_alpha: float = 1.5
    mask_alpha: float = 6.125
    semantic_alpha: float = 1.0
    masks_to_train: int = 100
    variances: tuple[float, float] = (0.1, 0.2)
    # inference
    conf_thresh: float = 0.05
    nms_thresh: float = 0.5
    nms_top_k: int = 200
    max_detections: int = 100
    mask_thresh: float = 0.5
    # training
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_iters: int = 500
    warmup_factor: float = 1e-4 / 1e-3
    lr_steps: tuple[int, ...] = (280_000, 600_000, 700_000, 750_000)
    gamma: float = 0.1
    max_iter: int = 800_000
    batch_size: int = 8
    grad_clip: float | None = 10.0
    augment: bool = True
    seed: int = 0

    # ------------------------------------------------------------------ helpers
    @property
    def num_priors(self) -> int:
        return len(self.aspect_ratios)

    def replace(self, **kw) -> "YolactConfig":
        bb = kw.pop("backbone", None)
        cfg = dataclasses.replace(self, **kw)
        if bb is not None:
            cfg.backbone = bb if isinstance(bb, BackboneConfig) else dataclasses.replace(cfg.backbone, **bb)
        return cfg

    def rescaled(self, max_size: int) -> "YolactConfig":
        """The same network at another input size: anchor scales follow the size (as yolact_im700)."""
        f = max_size / self.max_size
        return self.replace(max_size=max_size, pred_scales=tuple(int(s * f) for s in self.pred_scales))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "YolactConfig":
        d = dict(d)
        bb = d.pop("backbone", {}) or {}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown YOLACT config keys: {sorted(unknown)}")
        bnames = {f.name for f in dataclasses.fields(BackboneConfig)}
        bunknown = set(bb) - bnames
        if bunknown:
            raise ValueError(f"unknown backbone config keys: {sorted(bunknown)}")
        for k, v in list(d.items()):
            if isinstance(v, list):
                d[k] = tuple(v)
        bb = {k: (tuple(v) if isinstance(v, list) else v) for k, v in bb.items()}
        return cls(backbone=BackboneConfig(**bb), **d)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "YolactConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _base() -> YolactConfig:
    return YolactConfig()


def _table1(name: str, **bb) -> YolactConfig:
    # The paper trains ResNet-101 YOLACT on 800 x 800 images (Sect. III-B).
    cfg = _base().rescaled(800)
    return cfg.replace(name=name, backbone=BackboneConfig(depth=101, **bb))


def _tiny() -> YolactConfig:
    return YolactConfig(
        name="tiny",
        backbone=BackboneConfig(depth=0, layers=(1, 1, 1, 1), base_width=8, min_inter_channels=8,
                                gn_groups=4),
        num_classes=3, max_size=160, fpn_features=32, fpn_downsample=2,
        pred_scales=(12, 24, 48, 96, 160), head_channels=32, mask_dim=8, proto_channels=32,
        lr=5e-3, warmup_iters=20, lr_steps=(), max_iter=300, batch_size=2, masks_to_train=50,
    )


CONFIGS = {
    "yolact_base": lambda: _base().replace(name="yolact_base"),
    "yolact_r50": lambda: _base().replace(name="yolact_r50", backbone=BackboneConfig(depth=50)),
    "yolact_r101_baseline": lambda: _table1("yolact_r101_baseline"),
    "yolact_r101_ws": lambda: _table1("yolact_r101_ws", ws=True, norm="gn"),
    "yolact_r101_attention": lambda: _table1("yolact_r101_attention", attention=True,
                                             cardinality=1, radix=2),
    "tiny": _tiny,
}
TABLE1_CONFIGS = ("yolact_r101_baseline", "yolact_r101_ws", "yolact_r101_attention")


def get_config(name_or_path: str | os.PathLike | YolactConfig) -> YolactConfig:
    """A named config (see module doc) or a ``.json`` config file."""
    if isinstance(name_or_path, YolactConfig):
        return name_or_path
    s = str(name_or_path)
    if s in CONFIGS:
        return CONFIGS[s]()
    if s.endswith("_config") and s[:-7] in CONFIGS:      # the public naming, e.g. yolact_base_config
        return CONFIGS[s[:-7]]()
    p = Path(s)
    if p.is_file():
        return YolactConfig.load(p)
    raise ValueError(f"unknown YOLACT config {s!r}: use one of {', '.join(CONFIGS)} or a .json file")
