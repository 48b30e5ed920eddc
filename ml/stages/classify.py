"""Stage 2: person (a model wearing goods) or product, with an honest confidence.

Two steps, the second only when the first is not clear:

1. :func:`decide_kind` on the pose stage alone (free: it is already computed): the BlazePose
   detector's person score, how many body keypoints are confidently visible and how much of
   the frame the person mask covers. A full-length or half-length model with a face is
   decided here.
2. The detector needs a face, so a body cut at the chin or the waist, seen from behind or in
   a close-up gets no detection, while a tee with a printed face or a hoodie laid flat may get
   one. When step 1 is not clear the pipeline gathers :class:`BodyEvidence` that survives
   framing — the salient-object mask (U2-Net-p, needed for a product anyway), the skin it
   holds, whether the frame cuts it, the BlazePose landmark model run on a region seeded from
   it (:func:`ml.stages.pose.seeded_pose`: do limbs show?), the garment parser's
   ``person_prob`` when there is one — and :func:`decide_kind` weighs it.

A person is a person when cropped at the waist or the chin, from behind or in a close-up of a
worn garment (skin and limbs show, the frame cuts the body); a garment laid flat, on a hanger
or a ghost mannequin, shoes alone, a product with a printed face are products (no skin, no
limbs, whole inside the frame). Below ``SURE`` the decision carries its reason and the photo
is flagged for review.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ml.types import KP, PoseResult

BODY_CORE = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
VISIBLE = 0.5
CUT_MIN = 0.08     # a subject covering less of the top/bottom frame edge is not cut by it
CLEAR = 0.8        # step 1 at or above this (person) needs no more evidence. On the 420 dev
                   # photos no product's pose-only p reaches 0.75 (highest 0.747, a car; printed-
                   # face tees 0.61-0.65); 162 of 213 persons reach 0.8 (157 at 0.85), and each
                   # one decided here skips U2-Net-p (~0.4 s on this CPU)
SURE = 0.7         # below this the photo is flagged "unsure whether person or product"


@dataclass
class KindDecision:
    kind: str            # "person" | "product"
    confidence: float    # confidence in *that* kind, 0.5..1
    reason: str
    seeded: bool = False  # person found by the seeded landmark model (no detection)


@dataclass
class BodyEvidence:
    """What the photo shows beyond the detector (all shares 0..1)."""
    subject_share: float          # salient mask / frame
    skin_share: float             # skin pixels / salient pixels
    cut: float                    # share of the top or bottom frame edge the subject covers
    limbs: float                  # seeded landmark model's limb support (0: not run / none)
    limb_joints: int              # joints the seeded model places on the subject
    cut_both: bool = False        # the frame cuts the subject at the top AND the bottom
    colour: bool = True           # False: a black-and-white photo, where skin cannot be seen
    person_prob: float | None = None   # garment parser: the photo shows a person wearing goods
    parser_skin: float | None = None   # garment parser: skin pixels / subject pixels


def body_evidence(rgb: np.ndarray, subject: np.ndarray, pose: PoseResult,
                  seeded: PoseResult | None = None) -> BodyEvidence:
    """Evidence from ``rgb`` (working copy) and the bool ``subject`` mask at its size."""
    from ml.stages.swatch import skin_model
    h, w = subject.shape
    s = min(1.0, 256 / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    sub = cv2.resize(subject.astype(np.uint8), small.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    kp = pose.keypoints if pose.person_score > 0 else None
    skin = skin_model(small, kp)(small) & sub
    n = int(sub.sum())
    # a black-and-white photo: no pixel anywhere has colour (skin would have some)
    crcb = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.int16) - 128
    colourful = float(np.percentile(np.abs(crcb).max(axis=-1), 99)) >= 4.0
    edges = (subject[0], subject[-1])
    ev = BodyEvidence(subject_share=float(subject.mean()), skin_share=float(skin.sum() / n) if n else 0.0,
                      cut=frame_cut(subject),
                      cut_both=bool(min(float(e.mean()) for e in edges) >= 0.02), colour=colourful,
                      limbs=float(seeded.support) if seeded is not None else 0.0,
                      limb_joints=int((seeded.keypoints.score >= VISIBLE).sum()) if seeded is not None else 0)
    return ev


def add_parser(ev: BodyEvidence, garments, rgb: np.ndarray | None = None) -> BodyEvidence:
    """``ev`` with the garment parser's vote: its person probability and the skin in its map.

    With ``rgb`` (the photo the parser saw) and a colour photo, only the parser's skin pixels
    whose colour can be skin at all (the generic YCrCb skin range) count: the parser calls an
    iMac's pink-and-violet wallpaper skin (12 % of the subject, where the colour model saw
    0.9 %), which with its 95 % "person" routed the iMac as a person."""
    ev.person_prob = float(getattr(garments, "person_prob", 0.0))
    shares = getattr(garments, "shares", None) or {}
    skin_share = shares.get("skin", 0.0)        # of the whole image; the evidence is per subject
    labels = getattr(garments, "labels", None)
    if rgb is not None and labels is not None and ev.colour and skin_share > 0:
        skin_share *= _skin_coloured(rgb, labels)
    ev.parser_skin = float(min(1.0, skin_share / max(ev.subject_share, 1e-6)))
    return ev


def _skin_coloured(rgb: np.ndarray, labels: np.ndarray) -> float:
    """Share of the parser's skin pixels whose colour lies in the generic skin range."""
    from ml.garments import CLASSES
    from ml.stages.swatch import in_skin_range
    h, w = labels.shape
    s = min(1.0, 256 / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    skin = cv2.resize((labels == CLASSES.index("skin")).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    n = int(skin.sum())
    if n == 0:
        return 0.0
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return float(in_skin_range(small)[skin].mean())


def parser_needed(pose: PoseResult, ev: BodyEvidence) -> bool:
    """Whether the garment parser's vote can matter for routing (a product photo then skips
    the parser: ~0.2 s of CPU). Not when nothing was detected, the frame does not cut the
    subject and it shows no skin (< 2 %, in colour): without the parser that is a product at
    95 %, and with it (see :func:`_weigh`) the parser's vote counts only as far as its own map
    shows skin, so it could at most turn a sure product into an undecided one when its map saw
    skin covering a fifth of a subject in which the skin model saw almost none."""
    return not (pose.person_score <= 0 and ev.cut < CUT_MIN and ev.skin_share < 0.02 and ev.colour)


def frame_cut(subject: np.ndarray) -> float:
    """Share of the top or bottom frame edge the subject covers (a body cut at the chin or
    the waist, or at the thighs)."""
    return max(float(subject[0].mean()), float(subject[-1].mean()))


def _pose_only(pose: PoseResult) -> tuple[float, str, int]:
    """(p_person from the detector and its keypoints, reason, shoulders/hips visible)."""
    s = pose.keypoints.score
    core = np.array([s[KP[n]] for n in BODY_CORE])
    head = np.array([s[KP[n]] for n in HEAD])
    n_core = int((core >= VISIBLE).sum())
    head_vis = bool((head >= VISIBLE).any())
    mask_share = float(pose.mask_prob.mean()) if pose.mask_prob is not None else 0.0
    structure = n_core / 4.0
    if head_vis and n_core >= 2:
        structure = max(structure, 0.75)
    if pose.mask_prob is not None:
        area = min(1.0, mask_share / 0.08)      # a person covering >= 8% of the frame counts fully
        evidence = 0.6 * structure + 0.4 * area
    else:                                       # an engine without a person mask (e.g. OpenPose)
        evidence = structure
    p = float(np.clip(float(pose.person_score) * evidence, 0.0, 1.0))
    if p >= 0.5:
        why = f"person detected (score {pose.person_score:.2f}, {n_core}/4 shoulders/hips visible)"
    else:
        why = (f"detector saw a person-like shape (score {pose.person_score:.2f}) but too little of a body "
               f"({n_core}/4 shoulders/hips, {mask_share:.0%} of the frame)")
    return p, why, n_core


def decide_kind(pose: PoseResult | None, evidence: BodyEvidence | None = None) -> KindDecision:
    """Person or product. Without ``evidence``: the pose stage alone (step 1)."""
    if pose is None or pose.person_score <= 0.0:
        p_pose, why, n_core = 0.0, "no person detected", 0
    else:
        p_pose, why, n_core = _pose_only(pose)
    if evidence is None:
        if p_pose >= 0.5:
            return KindDecision("person", p_pose, why)
        return KindDecision("product", 0.95 if p_pose == 0.0 else 1.0 - p_pose, why)
    p, why2 = _weigh(p_pose, n_core, evidence)
    seeded = p >= 0.5 and p_pose < 0.5
    reason = f"{why}; {why2}"
    if p >= 0.5:
        return KindDecision("person", p, reason, seeded=seeded)
    return KindDecision("product", 1.0 - p, reason)


def _weigh(p_pose: float, n_core: int, ev: BodyEvidence) -> tuple[float, str]:
    """p(person) from the detector's view and the body evidence, with the reason.

    Measured on the dev photos (bench/quality.py): products mostly hold < 1 % skin (a yoghurt
    pot or a long-sleeve the detector fires on up to 4 %, a skin-coloured garment, food or a
    beige watch strap more: skin alone is not enough), a flat or packshot product lies inside
    the frame (its mask covers < 11 % of the top/bottom edge), while a catalogue model with no
    face in the picture is cut by the frame (>= 23 % of an edge) and shows skin (>= 5 %)."""
    skin = ev.skin_share if ev.parser_skin is None else max(ev.skin_share, ev.parser_skin)
    facts = (f"skin {skin:.0%} of the subject, limbs {ev.limbs:.2f}, "
             f"frame cuts {ev.cut:.0%} of the top/bottom edge")
    skin_p = float(np.clip((skin - 0.015) / 0.03, 0.0, 1.0))
    # a detection needs a little more: products it fires on hold up to 4 % skin-like pixels
    skin_det = float(np.clip((skin - 0.05) / 0.05, 0.0, 1.0))
    if ev.cut_both:
        # Cut at both ends: a close-up of a worn garment shows plenty of skin (neck, arms,
        # legs); a strap or a band running off the frame may show a little skin-like colour.
        skin_p = float(np.clip((skin - 0.20) / 0.10, 0.0, 1.0))
    if not ev.colour:                         # black and white: skin says nothing either way
        skin_p, skin_det = 0.5, 1.0
        facts = "a black-and-white photo (no skin evidence), " + facts.split(", ", 1)[1]
    cut_p = float(np.clip((ev.cut - CUT_MIN) / 0.12, 0.0, 1.0))
    limb_p = float(np.clip((ev.limbs - 0.25) / 0.15, 0.0, 1.0))
    # No face: a body the frame cuts, with skin; the landmark model's limbs add weight.
    p = skin_p * cut_p * (0.7 + 0.3 * limb_p)
    if ev.cut_both and skin >= 0.05 and ev.colour:
        p = max(p, 0.35)    # a close-up with some skin: not sure either way, say so
    if p_pose > 0.0:
        # A detection (a face-like pattern over a body shape) without skin is a printed or
        # flat garment; with skin it is the detector's person, a little surer.
        p = max(p, p_pose * (0.3 + 0.7 * skin_det) + 0.25 * skin_det * (1.0 - p_pose))
    if ev.person_prob is not None:
        # The garment parser looked at the whole photo: its log-odds add to ours, so a sure
        # parser moves the decision and an undecided one (about 0.5) leaves it alone.
        # Both are capped at 5 %/95 %: "no face, not cut by the frame" is weak against a
        # parser sure of a close-up of a worn garment, and the parser's person head is
        # over-confident (99 % on milk cartons and an iMac on the dev set). Its vote also
        # counts only as far as a body shows: skin in its own map (none below 2 %, all from
        # 17 %) or the detector's person (from 0.3 to 0.7): a person wearing goods shows
        # skin, or a body the detector sees (a model in a long coat: 1 % skin); a carton the
        # parser is sure of shows neither. Measured on bench/quality.py --limit 8: products
        # 0.846 -> 0.98, persons unchanged.
        # The detector's share of that trust needs some skin in a colour photo (>= 0.5 %): the
        # model in a long coat shows 1 %, a hoodie packshot the detector fires on (0.65) none
        # -- the parser fine-tuned at 288 px said 93 % "person" there (on all 420 dev photos
        # this gate changes only that photo, to right).
        body_seen = (p_pose - 0.3) / 0.4
        if ev.colour and max(ev.skin_share, ev.parser_skin or 0.0) < 0.005:
            body_seen = 0.0
        trust = float(np.clip(max(((ev.parser_skin or 0.0) - 0.02) / 0.15, body_seen), 0.0, 1.0))
        p = _sigmoid(_logit(p, 0.05) + trust * _logit(ev.person_prob, 0.05))
        facts += f", garment parser: person {ev.person_prob:.0%}"
    else:       # not asked (parser_needed) or absent: as sure as a parser with no vote leaves it
        p = float(np.clip(p, 0.05, 0.95))
    return float(np.clip(p, 0.0, 1.0)), facts


def _logit(p: float, eps: float = 0.01) -> float:
    p = float(np.clip(p, eps, 1.0 - eps))
    return float(np.log(p / (1.0 - p)))


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
