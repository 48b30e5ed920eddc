"""Which engines can run the keypoint and segmentation stages: the built-in ones and the trained
checkpoints found in ``weights/`` (each with its ``.json`` config beside it).

    pose:          "blazepose" (built in) | "<name>.pth" = an OpenPose checkpoint in weights/
    segmentation:  "u2netp"    (built in) | "<name>.pth" = a YOLACT model in weights/

The value is exactly what ``ml.pipeline.Pipeline(pose_engine=..., seg_engine=...)`` and the CLI's
``--pose-engine`` / ``--seg-engine`` take, and what the result document's ``engines`` field
records. Qt-free: the GUI's settings dialog and the CLI share it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

BUILTIN_POSE = "blazepose"
BUILTIN_SEG = "u2netp"
OPENPOSE_FORMAT = "studio-catalog-openpose/1"


@dataclass(frozen=True)
class EngineChoice:
    value: str          # what Pipeline takes (built-in name or checkpoint file name in weights/)
    label: str          # what the operator reads
    detail: str = ""    # config name, training info


def _sidecar(path: Path) -> dict | None:
    side = path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        d = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def find_pose_models(weights_dir: str | os.PathLike) -> list[Path]:
    """OpenPose checkpoints in ``weights_dir``: ``*.pth`` / ``*.pt`` whose ``.json`` sidecar is an
    exported OpenPose config (``ml.openpose.train.export_checkpoint``)."""
    d = Path(weights_dir)
    if not d.is_dir():
        return []
    out = []
    for p in sorted(list(d.glob("*.pth")) + list(d.glob("*.pt"))):
        meta = _sidecar(p)
        if meta is None:
            continue
        cfg = meta.get("config")
        if meta.get("format") == OPENPOSE_FORMAT or (isinstance(cfg, dict) and "cpm_channels" in cfg):
            out.append(p)
    return out


def find_seg_models(weights_dir: str | os.PathLike) -> list[Path]:
    """YOLACT models in ``weights_dir`` (see ``ml.yolact.engine.find_models``)."""
    d = Path(weights_dir)
    if not d.is_dir():
        return []
    from ml.yolact.engine import find_models
    return find_models(d)


def _pose_detail(p: Path) -> str:
    meta = _sidecar(p) or {}
    cfg = meta.get("config") or {}
    bits = []
    if cfg.get("name"):
        bits.append(f"config {cfg['name']}")
    if meta.get("iterations"):
        bits.append(f"{meta['iterations']} iterations")
    return ", ".join(bits)


def _seg_detail(p: Path) -> str:
    meta = _sidecar(p) or {}
    bits = []
    if meta.get("name"):
        bits.append(f"config {meta['name']}")
    names = meta.get("class_names")
    if names:
        bits.append("classes: " + ", ".join(map(str, names[:6])) + ("…" if len(names) > 6 else ""))
    return ", ".join(bits) or ("public YOLACT weights" if p.name.startswith("yolact") else "")


def pose_choices(weights_dir: str | os.PathLike) -> list[EngineChoice]:
    out = [EngineChoice(BUILTIN_POSE, "BlazePose (built in)", "MediaPipe pose landmarker, 23 keypoints")]
    for p in find_pose_models(weights_dir):
        out.append(EngineChoice(p.name, f"OpenPose: {p.stem}", _pose_detail(p)))
    return out


def seg_choices(weights_dir: str | os.PathLike) -> list[EngineChoice]:
    out = [EngineChoice(BUILTIN_SEG, "U2-Net-p (built in)", "salient-object segmentation")]
    for p in find_seg_models(weights_dir):
        out.append(EngineChoice(p.name, f"YOLACT: {p.stem}", _seg_detail(p)))
    return out


def validate(pose: str, seg: str, weights_dir: str | os.PathLike) -> list[str]:
    """Problems with a stored choice (a checkpoint removed since it was chosen); empty when fine."""
    bad = []
    if pose not in {c.value for c in pose_choices(weights_dir)}:
        bad.append(f"the keypoint engine {pose!r} is no longer in {Path(weights_dir).name}/")
    if seg not in {c.value for c in seg_choices(weights_dir)}:
        bad.append(f"the segmentation engine {seg!r} is no longer in {Path(weights_dir).name}/")
    return bad
