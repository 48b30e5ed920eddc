"""Train OpenPose(-with-attention) on COCO-format person keypoints.

    python -m ml.openpose.train --config tiny --ann labels.json --images photos/ --out runs/op \
        --iterations 2000 [--resume] [--device auto|cpu|cuda] [--no-amp]

Uses the shared loop :mod:`ml.training.loop` (checkpoints ``ckpt_*.pth`` / ``last.pth``,
resume, ``log.jsonl``, CUDA mixed precision, cancel). The model config is stored in every
checkpoint (``extra["config"]``); ``--export PATH`` additionally writes a compact
inference checkpoint (+ ``.json`` sidecar) that :class:`ml.openpose.engine.OpenPoseEstimator`
and the app can load from ``weights/``.

Loss (Cao et al. eq. 5-6): for every stage, the squared error of PAFs and confidence maps,
weighted by the masks of :mod:`ml.openpose.targets`, summed over pixels/channels, halved and
averaged over the batch; the stage losses are summed (intermediate supervision).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader

from ml.device import resolve_device
from ml.training import LoopConfig, LoopResult, ProgressInfo, atomic_torch_save, run_training

from .config import CONFIGS, OpenPoseConfig, get_config
from .data import CocoPoseDataset, ImageAnn, collate, load_coco_keypoints
from .model import OpenPoseAttention


def openpose_loss(outputs: list[tuple[torch.Tensor, torch.Tensor]], batch: dict
                  ) -> dict[str, torch.Tensor]:
    heat_t, paf_t = batch["heat"], batch["paf"]
    heat_m, paf_m = batch["heat_mask"], batch["paf_mask"]
    b = heat_t.shape[0]
    total = heat_t.new_zeros(())
    last_heat = last_paf = total
    for paf, heat in outputs:
        lp = 0.5 * (((paf.float() - paf_t) ** 2) * paf_m).sum() / b
        lh = 0.5 * (((heat.float() - heat_t) ** 2) * heat_m).sum() / b
        total = total + lp + lh
        last_heat, last_paf = lh, lp
    return {"loss": total, "heat_last": last_heat.detach(), "paf_last": last_paf.detach()}


def make_step_fn(device: torch.device) -> Callable:
    def step(model: OpenPoseAttention, batch: dict) -> dict[str, torch.Tensor]:
        batch = {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                 for k, v in batch.items()}
        return openpose_loss(model(batch["image"]), batch)
    return step


def export_checkpoint(model: OpenPoseAttention, path: str | Path, info: dict | None = None) -> Path:
    """Compact inference checkpoint (model weights + config) and a readable ``.json`` sidecar."""
    path = Path(path)
    meta = {"format": "studio-catalog-openpose/1", "config": model.cfg.to_dict(), **(info or {})}
    atomic_torch_save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                       "extra": meta}, path)
    side = path.with_suffix(".json")
    tmp = side.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(side)
    return path


def train(cfg: OpenPoseConfig, images: list[ImageAnn], out_dir: str | Path, iterations: int, *,
          device: str | torch.device = "auto", resume: bool | str = False, amp: bool = True,
          batch_size: int | None = None, lr: float | None = None, augment: bool = True,
          workers: int = 0, checkpoint_every: int = 500, log_every: int = 10,
          vgg_init: str | None = None, seed: int = 0, cache_images: bool = False,
          progress: Callable[[ProgressInfo], None] | None = None,
          cancel: Callable[[], bool] | None = None) -> tuple[OpenPoseAttention, LoopResult]:
    dev = resolve_device(device) if isinstance(device, str) else device
    torch.manual_seed(seed)
    ds = CocoPoseDataset(images, cfg, augment=augment, cache_images=cache_images)
    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(ds, batch_size=batch_size or cfg.batch_size, shuffle=True,
                        num_workers=workers, collate_fn=collate, drop_last=len(ds) > (batch_size or cfg.batch_size),
                        pin_memory=dev.type == "cuda", generator=g,
                        persistent_workers=workers > 0)
    model = OpenPoseAttention(cfg)
    if vgg_init:
        n = model.front.load_vgg19_imagenet(vgg_init)
        print(f"initialised {n} VGG-19 conv layers from {vgg_init}", file=sys.stderr)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr or cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, min(200, iterations // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda it: min(1.0, (it + 1) / warm) * (0.1 if it >= int(0.8 * iterations) else 1.0))
    loop_cfg = LoopConfig(max_iters=iterations, checkpoint_every=checkpoint_every,
                          log_every=log_every, amp=amp, grad_clip=100.0)
    result = run_training(model, opt, loader, make_step_fn(dev), out_dir, loop_cfg, scheduler=sched,
                          device=dev, resume=resume, progress=progress, cancel=cancel,
                          extra={"config": cfg.to_dict(), "kind": "openpose"})
    return model, result


def _print_progress(every: int) -> Callable[[ProgressInfo], None]:
    def cb(p: ProgressInfo) -> None:
        if p.iteration % every and p.iteration != p.max_iters:
            return
        print(f"[{p.iteration}/{p.max_iters}] epoch {p.epoch} loss {p.losses.get('loss', 0):.3f} "
              f"(heat {p.losses.get('heat_last', 0):.3f}, paf {p.losses.get('paf_last', 0):.3f}) "
              f"lr {p.lr:.2e} {p.seconds:.0f}s", file=sys.stderr, flush=True)
    return cb


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m ml.openpose.train", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="openpose_attention_vgg19", choices=sorted(CONFIGS))
    ap.add_argument("--ann", required=True, action="append",
                    help="COCO person-keypoints JSON (repeatable; pair each with --images)")
    ap.add_argument("--images", required=True, action="append", help="image folder of --ann")
    ap.add_argument("--foot-ann", help="COCO-WholeBody JSON to take foot_kpts from (same ann ids)")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl)")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--resume", nargs="?", const=True, default=False,
                    help="continue from OUT/last.pth, or from the given checkpoint")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", dest="amp", action="store_true", default=True,
                    help="mixed precision on CUDA (default on; ignored on the CPU)")
    ap.add_argument("--no-amp", dest="amp", action="store_false")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--input-size", type=int, help="override the config's input size (multiple of 8)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--vgg-init", help="ImageNet VGG-19 state dict (torchvision layout) for layers 1-12")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--export", help="also write a compact inference checkpoint here (e.g. weights/openpose_attention.pth)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.ann) != len(args.images):
        raise SystemExit("give one --images per --ann")
    if args.threads:
        torch.set_num_threads(args.threads)
    over = {}
    if args.input_size:
        over["input_size"] = args.input_size
    cfg = get_config(args.config, **over)
    images: list[ImageAnn] = []
    for ann, img in zip(args.ann, args.images):
        images += load_coco_keypoints(ann, img, args.foot_ann)
    n_people = sum(len(im.people) for im in images)
    print(f"{cfg.name}: {len(images)} images, {n_people} labelled people, "
          f"{sum(p.numel() for p in OpenPoseAttention(cfg).parameters()) / 1e6:.1f} M parameters",
          file=sys.stderr)
    t0 = time.monotonic()
    model, res = train(cfg, images, args.out, args.iterations, device=args.device, resume=args.resume,
                       amp=args.amp, batch_size=args.batch_size, lr=args.lr,
                       augment=not args.no_augment, workers=args.workers,
                       checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                       vgg_init=args.vgg_init, seed=args.seed,
                       progress=_print_progress(args.log_every))
    print(f"done: {res.iteration} iterations, loss {res.last_losses.get('loss', float('nan')):.4f}, "
          f"{time.monotonic() - t0:.0f}s; checkpoint {res.last_checkpoint}", file=sys.stderr)
    if args.export:
        p = export_checkpoint(model, args.export, {"iterations": res.iteration,
                                                   "trained_on": [str(a) for a in args.ann]})
        print(f"exported {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
