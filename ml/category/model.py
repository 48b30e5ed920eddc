"""The category head and its shipped file (``weights/category_head.pt``).

The head is a 2-layer MLP on standardised backbone features (:mod:`ml.category.backbone`).
The file is a plain ``torch.save`` dict (loaded with ``weights_only=True``):

    {"format": "studio-catalog-category-head", "version": 1,
     "classes": [...], "backbone": {"id", "sha256", "input_size"},
     "feature_mean": Tensor, "feature_std": Tensor, "hidden": int,
     "state_dict": {...}, "threshold": float, "temperature": float,
     "training": {command, data, tiers, seed, epochs, dev metrics ...}}
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FORMAT = "studio-catalog-category-head"
HEAD_ID = "category_head"
HIDDEN = 256


class CategoryHead(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, hidden: int = HIDDEN, dropout: float = 0.3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.net = nn.Sequential(nn.Dropout(0.1), nn.Linear(in_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net((feats - self.mean) / self.std)


def save_head(path: str | Path, head: CategoryHead, *, classes, backbone: dict, threshold: float,
              temperature: float, training: dict) -> None:
    from ml.training.loop import atomic_torch_save
    sd = {k: v.detach().cpu().half() if k.startswith("net.") else v.detach().cpu()
          for k, v in head.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "version": 1, "classes": list(classes), "backbone": backbone,
                       "hidden": head.net[1].out_features, "state_dict": sd,
                       "threshold": float(threshold), "temperature": float(temperature),
                       "training": training}, path)


def load_head(path: str | Path, device: torch.device | str = "cpu") -> tuple[CategoryHead, dict]:
    """(head in eval mode, the file's metadata). A file of another kind raises ValueError."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable category head ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a Studio Catalog category head")
    sd = {k: v.float() for k, v in blob["state_dict"].items()}
    head = CategoryHead(sd["mean"].numel(), len(blob["classes"]), blob["hidden"])
    head.load_state_dict(sd)
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return head.to(device).eval(), meta
