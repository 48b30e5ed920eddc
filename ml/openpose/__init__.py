"""OpenPose (Cao et al., CVPR 2017) with the attention-modified VGG-19 front of
Sorokina & Ablameyko (section III.C, Fig. 6): 23 keypoints (COCO-17 + 6 foot points), part
affinity fields and multi-person grouping, training and COCO OKS evaluation.

See docs/openpose.md. Submodules: config, vgg, attention, stages, model, targets, grouping,
data, pseudolabel, train, evaluate, engine.
"""
from .config import CONFIGS, LIMBS, OpenPoseConfig, get_config

__all__ = ["CONFIGS", "LIMBS", "OpenPoseConfig", "get_config"]
