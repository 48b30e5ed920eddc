"""Stage 2: person (a model wearing goods) or product, with a confidence.

The decision uses what the pose stage already computed, so it costs nothing extra:
the BlazePose detector's person score, how many body keypoints are confidently
visible, and how much of the frame the person mask covers. A photo is a *person*
photo when a person is detected AND enough of the body is visible to crop garment
zones from (at least shoulders and hips, or shoulders and head); a hand or an arm at
the edge of a packshot stays a *product* photo.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.types import KP, PoseResult

BODY_CORE = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
VISIBLE = 0.5


@dataclass
class KindDecision:
    kind: str            # "person" | "product"
    confidence: float    # confidence in *that* kind, 0.5..1
    reason: str


def decide_kind(pose: PoseResult | None) -> KindDecision:
    if pose is None or pose.person_score <= 0.0:
        return KindDecision("product", 0.95, "no person detected")
    s = pose.keypoints.score
    core = np.array([s[KP[n]] for n in BODY_CORE])
    head = np.array([s[KP[n]] for n in HEAD])
    n_core = int((core >= VISIBLE).sum())
    head_vis = bool((head >= VISIBLE).any())
    mask_share = float(pose.mask_prob.mean()) if pose.mask_prob is not None else 0.0

    # Evidence for a wearable person: detector score, body structure, silhouette size.
    structure = n_core / 4.0
    if head_vis and n_core >= 2:
        structure = max(structure, 0.75)
    if pose.mask_prob is not None:
        area = min(1.0, mask_share / 0.08)      # a person covering >= 8% of the frame counts fully
        evidence = 0.6 * structure + 0.4 * area
    else:                                       # an engine without a person mask (e.g. OpenPose)
        evidence = structure
    p_person = float(pose.person_score) * evidence
    p_person = float(np.clip(p_person, 0.0, 1.0))

    if p_person >= 0.5:
        why = f"person detected (score {pose.person_score:.2f}, {n_core}/4 shoulders/hips visible)"
        return KindDecision("person", p_person, why)
    why = (f"detector saw a person-like shape (score {pose.person_score:.2f}) but too little of a body "
           f"({n_core}/4 shoulders/hips, {mask_share:.0%} of the frame)")
    return KindDecision("product", 1.0 - p_person, why)
