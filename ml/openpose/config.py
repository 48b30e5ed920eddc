"""Configurations of the OpenPose-with-attention pose network.

Three named configs:

* ``openpose_attention_vgg19`` — the paper's model (Sorokina & Ablameyko, III.C, Fig. 6):
  VGG-19 front with attention estimators after conv layers 7, 10 and 13, the three
  attention-weighted features fused by a 1x1 conv (the "FC taking the 3 estimators' results"),
  then the 6-stage PAF / confidence-map cascade of Cao et al. (CVPR 2017).
* ``openpose_vgg19`` — the same network without attention (the plain Cao et al. front:
  conv4_3_CPM / conv4_4_CPM reduction), for the comparison of Table 2.
* ``tiny`` — a few thousand parameters' worth of the same topology, for CPU tests.

Everything the model, targets, data pipeline and grouping need is in one :class:`OpenPoseConfig`,
which is stored in every checkpoint (``extra["config"]``) so a checkpoint is self-describing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ml.types import KEYPOINT_NAMES, KP

NUM_KEYPOINTS = len(KEYPOINT_NAMES)   # 23

# Limbs (PAF channel pairs) over the 23 keypoints. There is no "neck" point in our keypoint set
# (Cao et al. synthesise one for COCO); the head is tied to the body by nose->shoulder and the
# ears->shoulders. The first ``TREE_LIMBS`` limbs form a spanning tree of the 23 points (every
# point reachable exactly once) and are the only ones allowed to start a new person during
# grouping; the remaining limbs are redundant connections (as OpenPose's ear-shoulder limbs)
# that only add evidence / merge fragments.
_LIMB_NAMES: tuple[tuple[str, str], ...] = (
    # --- spanning tree (22 edges for 23 points)
    ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_shoulder", "nose"),
    ("nose", "left_eye"), ("nose", "right_eye"),
    ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    # foot limbs: ankle -> big toe, small toe, heel
    ("left_ankle", "left_big_toe"), ("left_ankle", "left_small_toe"), ("left_ankle", "left_heel"),
    ("right_ankle", "right_big_toe"), ("right_ankle", "right_small_toe"), ("right_ankle", "right_heel"),
    # --- redundant limbs
    ("right_shoulder", "nose"),
    ("left_hip", "right_hip"),
    ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
)
LIMBS: tuple[tuple[int, int], ...] = tuple((KP[a], KP[b]) for a, b in _LIMB_NAMES)
LIMB_NAMES = _LIMB_NAMES
TREE_LIMBS = 22
NUM_LIMBS = len(LIMBS)                # 26 -> 52 PAF channels

FOOT_KEYPOINTS = tuple(range(17, 23))
# Left/right partner of every keypoint (for horizontal flips).
FLIP_INDEX: tuple[int, ...] = tuple(
    KP[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for n in KEYPOINT_NAMES)

# OKS sigmas: COCO-17 (pycocotools) + the six COCO-WholeBody foot sigmas.
COCO17_SIGMAS = (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                 .89, .89)
FOOT_SIGMAS = (.68, .66, .66, .92, .94, .94)
SIGMAS_23 = tuple(s / 10.0 for s in COCO17_SIGMAS + FOOT_SIGMAS)


@dataclass(frozen=True)
class OpenPoseConfig:
    name: str = "openpose_attention_vgg19"
    # ---- front (VGG-19). Channel widths of the VGG-19 conv layers 1..12 (conv1_1 .. conv4_4).
    vgg_channels: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512)
    # max-pool after these (1-based) conv layers: stride 8 after conv3_4, as in Cao et al.
    vgg_pool_after: tuple[int, ...] = (2, 4, 8)
    cpm_channels: tuple[int, ...] = (256, 128)   # conv layers 13 (conv4_3_CPM) and 14 (conv4_4_CPM)
    # ---- attention (paper III.C / Fig. 6). Layers counted 1-based over the front's conv layers.
    attention: bool = True
    attention_layers: tuple[int, ...] = (7, 10, 13)
    attention_hidden: int = 64
    attention_hard_inference: bool = False   # binary 0/1 mask in eval mode (paper's "binary mask")
    feature_channels: int = 128              # F, the input of stage 1
    # ---- stages (Cao et al. 2017)
    stages: int = 6
    stage_channels: int = 128
    stage1_kernel: int = 3
    stage1_convs: int = 3
    stage1_hidden: int = 512
    stageN_kernel: int = 7
    stageN_convs: int = 5
    # ---- data / targets
    input_size: int = 368
    stride: int = 8
    sigma: float = 7.0          # Gaussian std of confidence maps, in input pixels
    paf_width: float = 1.0      # half width of a PAF limb band, in output (stride) pixels
    scale_range: tuple[float, float] = (0.7, 1.3)
    rotate_deg: float = 30.0
    flip_prob: float = 0.5
    center_jitter: float = 40.0   # pixels (input scale)
    target_person_height: float = 0.6   # person box height / input size before random scaling
    # ---- training
    lr: float = 1e-4
    weight_decay: float = 5e-4
    batch_size: int = 8
    # ---- grouping
    peak_threshold: float = 0.1
    paf_samples: int = 10
    paf_threshold: float = 0.05
    paf_min_fraction: float = 0.8
    min_parts: int = 3
    min_person_score: float = 0.2

    @property
    def num_keypoints(self) -> int:
        return NUM_KEYPOINTS

    @property
    def heat_channels(self) -> int:
        return NUM_KEYPOINTS + 1     # + background

    @property
    def paf_channels(self) -> int:
        return 2 * NUM_LIMBS

    @property
    def output_size(self) -> int:
        return self.input_size // self.stride

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "OpenPoseConfig":
        names = {f.name for f in fields(cls)}
        kw = {}
        for k, v in d.items():
            if k in names:
                kw[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)

    def replace(self, **kw) -> "OpenPoseConfig":
        return replace(self, **kw)


def _tiny() -> OpenPoseConfig:
    return OpenPoseConfig(
        name="tiny",
        vgg_channels=(8, 8, 16, 16, 24, 24, 24, 24, 32, 32, 32, 32),
        cpm_channels=(32, 24),
        attention=True, attention_hidden=8,
        feature_channels=24,
        stages=2, stage_channels=24, stage1_hidden=48,
        stageN_kernel=3, stageN_convs=3,
        input_size=128, stride=8, sigma=4.0, paf_width=1.0,
        lr=2e-3, weight_decay=0.0, batch_size=4,
        rotate_deg=10.0, scale_range=(0.9, 1.1), center_jitter=8.0,
        target_person_height=0.75,
    )


CONFIGS: dict[str, OpenPoseConfig] = {
    "openpose_attention_vgg19": OpenPoseConfig(),
    "openpose_vgg19": OpenPoseConfig(name="openpose_vgg19", attention=False),
    "tiny": _tiny(),
    "tiny_noatt": _tiny().replace(name="tiny_noatt", attention=False),
}


def get_config(name: str, **overrides) -> OpenPoseConfig:
    try:
        cfg = CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown OpenPose config {name!r}; choose one of {sorted(CONFIGS)}") from None
    return cfg.replace(**overrides) if overrides else cfg
