"""OpenPoseAttention: VGG-19 front (+ attention, Fig. 6) -> multi-stage PAF / heatmap cascade."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .config import LIMBS, OpenPoseConfig, get_config
from .stages import StageCascade
from .vgg import VGGFront

# ImageNet normalisation (the VGG front is ImageNet-shaped)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class OpenPoseAttention(nn.Module):
    """Input: normalised RGB (B,3,H,W), H and W multiples of ``cfg.stride``.

    ``forward`` returns the list of every stage's ``(paf, heat)``: paf (B, 2*26, H/8, W/8) with
    channels (x, y) per limb of :data:`ml.openpose.config.LIMBS`; heat (B, 24, H/8, W/8) — the 23
    keypoint confidence maps then background.
    """

    def __init__(self, cfg: OpenPoseConfig | str = "openpose_attention_vgg19"):
        super().__init__()
        self.cfg = get_config(cfg) if isinstance(cfg, str) else cfg
        self.front = VGGFront(self.cfg)
        self.cascade = StageCascade(self.cfg)
        self.limbs = LIMBS
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation of every ReLU conv (as torchvision's VGG); the heads' output convs and
        # the attention score convs keep their own small init (see stages.py / attention.py).
        heads = {id(st.paf[-1]) for st in self.cascade.stages} | {id(st.heat[-1]) for st in self.cascade.stages}
        heads |= {id(e.score) for e in self.front.estimators.values()}
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and id(m) not in heads:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.cascade(self.front(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last stage only, (paf, heat), in eval mode semantics of the caller."""
        return self.forward(x)[-1]

    @property
    def attention_masks(self) -> dict[int, torch.Tensor]:
        return self.front.last_masks

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def normalize_image(rgb_float01: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) float in [0,1] -> ImageNet-normalised."""
    mean = torch.tensor(MEAN, device=rgb_float01.device, dtype=rgb_float01.dtype)[:, None, None]
    std = torch.tensor(STD, device=rgb_float01.device, dtype=rgb_float01.dtype)[:, None, None]
    return (rgb_float01 - mean) / std


def build_model(cfg: OpenPoseConfig | str) -> OpenPoseAttention:
    return OpenPoseAttention(cfg)


def load_model(checkpoint_path: str | Path, device: torch.device | str = "cpu"
               ) -> tuple[OpenPoseAttention, OpenPoseConfig, dict]:
    """Load a checkpoint written by ``ml.openpose.train`` (or the training loop) with its config."""
    ck = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    extra = ck.get("extra") or {}
    cfg_d = extra.get("config")
    if cfg_d is None:
        side = Path(checkpoint_path).with_suffix(".json")
        if side.is_file():
            import json
            cfg_d = json.loads(side.read_text()).get("config")
    if cfg_d is None:
        raise ValueError(f"{checkpoint_path}: checkpoint has no OpenPose config (extra['config'])")
    cfg = OpenPoseConfig.from_dict(cfg_d)
    model = OpenPoseAttention(cfg)
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    return model, cfg, ck
