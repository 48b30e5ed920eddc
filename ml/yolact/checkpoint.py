"""Saving and loading YOLACT weights.

* our model files: ``{"format": "studio-catalog-yolact/1", "config": {...}, "model": state_dict}``
  (:func:`save_model` / :func:`load_model`); training checkpoints of :mod:`ml.training.loop` (with
  the config in ``extra``) load the same way;
* the public dbolya/yolact checkpoints (``yolact_base_*.pth``, ``yolact_resnet50_*.pth``: a bare
  state dict) for the plain ResNet variants: :func:`load_public_state_dict` maps their parameter
  names onto ours and checks every shape; :func:`load_model` recognises such a file and builds the
  matching config with :func:`infer_public_config`.

The public names (verified against dbolya/yolact ``yolact.py``/``backbone.py``/``data/config.py``):
``backbone.conv1``, ``backbone.bn1``, ``backbone.layers.<s>.<b>.{conv1,bn1,conv2,bn2,conv3,bn3}``,
``backbone.layers.<s>.0.downsample.{0,1}``, ``fpn.lat_layers.{0..2}`` (coarsest first),
``fpn.pred_layers.{0..2}``, ``fpn.downsample_layers.{0,1}``, ``proto_net.{0,2,4,8,10}``,
``prediction_layers.0.upfeature.0``, ``prediction_layers.0.{bbox,conf,mask}_layer``,
``semantic_seg_conv``. Our modules use the same names, so the mapping is the identity on those;
what it handles is the rest: legacy ``backbone.layer1..4`` duplicates (dropped by the public loader
too), unused extra ``fpn.downsample_layers``, missing ``num_batches_tracked`` buffers, and a
``module.`` prefix from DataParallel.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ..training.loop import atomic_torch_save
from .config import BackboneConfig, YolactConfig, get_config

FORMAT = "studio-catalog-yolact/1"


def save_model(path: str | os.PathLike, model, extra: Mapping[str, Any] | None = None,
               write_config_json: bool = True) -> Path:
    """Write the model's weights with its config embedded (atomic); also ``<stem>.json``."""
    path = Path(path)
    atomic_torch_save({"format": FORMAT, "config": model.cfg.to_dict(),
                       "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                       "extra": dict(extra or {})}, path)
    if write_config_json:
        model.cfg.save(path.with_suffix(".json"))
    return path


def _resolve_device(device) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def is_public_state_dict(sd: Mapping[str, Any]) -> bool:
    keys = [k[7:] if k.startswith("module.") else k for k in sd]
    return any(k.startswith("prediction_layers.0.conf_layer") for k in keys) and "format" not in sd


def infer_public_config(sd: Mapping[str, torch.Tensor], max_size: int = 550) -> YolactConfig:
    """The config of a public YOLACT state dict (depth, classes, prototypes, anchors, extras)."""
    sd = _strip_module(sd)
    stages = {}
    for k in sd:
        m = re.match(r"backbone\.layers\.(\d+)\.(\d+)\.", k)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            stages[s] = max(stages.get(s, 0), b + 1)
    blocks = tuple(stages[i] for i in sorted(stages))
    depth = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}.get(blocks)
    if depth is None:
        raise ValueError(f"not a ResNet YOLACT checkpoint (blocks per stage {blocks})")
    num_priors = sd["prediction_layers.0.bbox_layer.weight"].shape[0] // 4
    num_classes = sd["prediction_layers.0.conf_layer.weight"].shape[0] // num_priors
    mask_dim = sd["prediction_layers.0.mask_layer.weight"].shape[0] // num_priors
    n_down = len({k.split(".")[2] for k in sd if k.startswith("fpn.downsample_layers.")})
    base = get_config("yolact_base")
    if num_priors != base.num_priors:
        raise ValueError(f"{num_priors} anchors per cell; the public configs use {base.num_priors}")
    cfg = base.replace(name=f"yolact_public_r{depth}", backbone=BackboneConfig(depth=depth),
                       num_classes=num_classes, mask_dim=mask_dim,
                       use_semantic_seg="semantic_seg_conv.weight" in sd,
                       fpn_downsample=min(n_down, 2) if n_down else 2)
    return cfg.rescaled(max_size) if max_size != cfg.max_size else cfg


def _strip_module(sd: Mapping[str, Any]) -> dict[str, Any]:
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def public_to_ours_key(key: str) -> str | None:
    """Our parameter name for a public one, or None when the public loader would drop it too."""
    if key.startswith("module."):
        key = key[7:]
    if re.match(r"backbone\.layer\d", key):           # legacy duplicates of backbone.layers
        return None
    return key                                         # same module names by construction


def load_public_state_dict(model, sd: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """Load a public dbolya/yolact state dict into ``model`` (a plain-ResNet :class:`Yolact`).

    Every parameter of the model must be provided with the same shape (``num_batches_tracked``
    buffers may be absent); public keys with no counterpart are reported in ``ignored``.
    Raises ``ValueError`` with a readable message otherwise. Returns ``{"loaded", "ignored"}``.
    """
    if model.cfg.backbone.attention:
        raise ValueError("the public YOLACT checkpoints have a plain ResNet backbone; "
                         "this model uses split-attention blocks")
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for k, v in sd.items():
        ok = public_to_ours_key(k)
        if ok is None or ok not in ours:
            ignored.append(k)
            continue
        if tuple(v.shape) != tuple(ours[ok].shape):
            raise ValueError(f"shape mismatch for {k}: checkpoint {tuple(v.shape)}, "
                             f"model {tuple(ours[ok].shape)} (wrong config for this checkpoint?)")
        mapped[ok] = v
    missing = [k for k in ours if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{len(missing)} model parameters are not in the checkpoint, e.g. {missing[:5]}")
    for k in ours:
        if k.endswith("num_batches_tracked") and k not in mapped:
            mapped[k] = ours[k]
    model.load_state_dict(mapped, strict=True)
    return {"loaded": sorted(mapped), "ignored": sorted(ignored)}


def load_model(path: str | os.PathLike, device="auto", config: YolactConfig | str | None = None):
    """Build a :class:`Yolact` from any supported weight file, in eval mode on ``device``.

    ``config`` overrides the embedded one (needed only for bare state dicts that are not public
    YOLACT checkpoints)."""
    from .model import Yolact
    dev = _resolve_device(device)
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(ck, dict) and ck.get("format") == FORMAT:
        cfg = get_config(config) if config is not None else YolactConfig.from_dict(ck["config"])
        model = Yolact(cfg)
        model.load_state_dict(ck["model"])
    elif isinstance(ck, dict) and "model" in ck and isinstance(ck.get("extra"), dict) \
            and "config" in ck["extra"]:                       # a training checkpoint
        cfg = get_config(config) if config is not None else YolactConfig.from_dict(ck["extra"]["config"])
        model = Yolact(cfg)
        model.load_state_dict(ck["model"])
    elif isinstance(ck, dict) and is_public_state_dict(ck):
        sd = _strip_module(ck)
        cfg = get_config(config) if config is not None else infer_public_config(sd)
        model = Yolact(cfg)
        load_public_state_dict(model, sd)
    else:
        side = Path(path).with_suffix(".json")
        if config is None and side.is_file():
            config = YolactConfig.load(side)
        if config is None:
            raise ValueError(f"{path}: not a YOLACT checkpoint this program knows, and no config given")
        model = Yolact(get_config(config))
        model.load_state_dict(ck)
    return model.to(dev).eval()
