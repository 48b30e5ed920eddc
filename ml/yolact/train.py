"""Train YOLACT on a COCO-format instance segmentation dataset.

    python -m ml.yolact.train --config yolact_r101_attention \
        --images <data_root> --ann <data_root>/instances.json --out runs/attn --iterations 100000

Checkpoints (``ckpt_<iter>.pth``, ``last.pth``), ``log.jsonl`` (losses, lr, time) and
``config.json`` go to ``--out``; ``--resume`` continues from ``last.pth``. At the end the weights
are exported with their config as ``model_final.pth`` (+ ``model_final.json``) — copy both into
``weights/`` to use the model as the segmentation engine. Mixed precision is used on CUDA only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..training.command import run_command
from ..training.loop import LoopConfig, ProgressInfo, move_to, run_training
from .checkpoint import save_model
from .config import YolactConfig, get_config
from .data import CocoInstances, collate, worker_init
from .loss import YolactLoss
from .model import Yolact


def lr_lambda(cfg: YolactConfig, total_iters: int) -> Callable[[int], float]:
    """Linear warm-up, then step decay by ``gamma`` at ``lr_steps`` (rescaled to ``total_iters``
    when training shorter/longer than the config's ``max_iter``)."""
    scale = total_iters / max(1, cfg.max_iter)
    steps = [int(s * scale) for s in cfg.lr_steps]
    warm = min(cfg.warmup_iters, max(1, total_iters // 10)) if cfg.warmup_iters else 0

    def f(it: int) -> float:
        w = 1.0
        if warm and it < warm:
            w = cfg.warmup_factor + (1 - cfg.warmup_factor) * it / warm
        return w * cfg.gamma ** sum(it >= s for s in steps)
    return f


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resolve_device(device) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but no CUDA GPU is available on this machine")
    return d


def train(config: str | os.PathLike | YolactConfig, data_root: str | os.PathLike, ann_file: str | os.PathLike,
          out_dir: str | os.PathLike, iterations: int | None = None, epochs: float | None = None, *,
          resume: bool | str = False, device: str | torch.device = "auto", amp: bool = True,
          batch_size: int | None = None, category_ids: Sequence[int] | None = None,
          image_ids: Sequence[int] | None = None, num_workers: int = 0, checkpoint_every: int = 1000,
          log_every: int = 10, seed: int | None = None, max_size: int | None = None,
          lr: float | None = None, augment: bool | None = None,
          progress: Callable[[ProgressInfo], None] | None = None,
          cancel: Callable[[], bool] | None = None, init_weights: str | os.PathLike | None = None,
          eval_every: int = 0, on_eval: Callable[[int, Yolact], None] | None = None
          ) -> dict[str, Any]:
    """Train (or resume) and export ``model_final.pth``. Returns a summary dict.

    ``iterations`` (or ``epochs`` over the dataset) defaults to the config's ``max_iter``.
    ``category_ids`` restricts the classes (default: every category in ``ann_file``).
    On resume the run's own ``config.json`` is used, so the classes and network stay the same.
    ``on_eval(iteration, model)`` is called every ``eval_every`` iterations and after the last
    one (the model in eval mode, gradients off; training resumes afterwards) — for learning curves.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "config.json"
    if resume and cfg_file.is_file():
        cfg = YolactConfig.load(cfg_file)
    else:
        cfg = get_config(config)
        if max_size:
            cfg = cfg.rescaled(max_size)
        over = {}
        if batch_size:
            over["batch_size"] = int(batch_size)
        if seed is not None:
            over["seed"] = int(seed)
        if lr:
            over["lr"] = float(lr)
        if augment is not None:
            over["augment"] = bool(augment)
        cfg = cfg.replace(**over)
    dev = _resolve_device(device)
    seed_everything(cfg.seed)
    cats = list(category_ids) if category_ids else (list(cfg.category_ids) or None)
    ds = CocoInstances(data_root, ann_file, cfg.max_size, train=True, category_ids=cats,
                       image_ids=image_ids, augment=cfg.augment, seed=cfg.seed)
    if len(ds) == 0:
        raise ValueError("the training set has no image with an annotation of the chosen classes")
    if cfg.num_classes != len(ds.category_ids) + 1 or tuple(cfg.category_ids) != tuple(ds.category_ids):
        cfg = cfg.replace(num_classes=len(ds.category_ids) + 1, class_names=ds.class_names,
                          category_ids=tuple(ds.category_ids))
    cfg.save(cfg_file)

    bs = min(cfg.batch_size, len(ds))
    if iterations is None:
        iterations = int(round(epochs * len(ds) / bs)) if epochs else cfg.max_iter
    iterations = max(1, int(iterations))

    model = Yolact(cfg)
    if init_weights and not (resume and (out / "last.pth").is_file()):
        from .checkpoint import load_model
        src = load_model(init_weights, device="cpu")
        own = model.state_dict()
        same = {k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(same, strict=False)
    model.to(dev)
    criterion = YolactLoss(cfg)
    params_decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    params_no = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": params_decay, "weight_decay": cfg.weight_decay},
                                 {"params": params_no, "weight_decay": 0.0}],
                                lr=cfg.lr, momentum=cfg.momentum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, iterations))
    gen = torch.Generator()
    gen.manual_seed(cfg.seed)
    loader = DataLoader(ds, batch_size=bs, shuffle=True, drop_last=True, collate_fn=collate,
                        num_workers=num_workers, worker_init_fn=worker_init, generator=gen,
                        pin_memory=dev.type == "cuda", persistent_workers=num_workers > 0)

    def step_fn(m, batch):
        images, targets = batch
        images = images.to(dev, non_blocking=True)
        targets = [{k: move_to(v, dev) for k, v in t.items()} for t in targets]
        return criterion(m(images), targets)

    def report(info: ProgressInfo) -> None:
        if progress is not None:
            progress(info)
        if on_eval is not None and (info.iteration == info.max_iters
                                    or (eval_every and info.iteration % eval_every == 0)):
            with torch.no_grad():
                model.eval()
                try:
                    on_eval(info.iteration, model)
                finally:
                    model.train()

    result = run_training(
        model, optimizer, loader, step_fn, out,
        LoopConfig(max_iters=iterations, checkpoint_every=checkpoint_every, log_every=log_every,
                   grad_clip=cfg.grad_clip, amp=amp),
        scheduler=scheduler, device=dev, resume=resume, progress=report, cancel=cancel,
        extra={"config": cfg.to_dict()})
    final = None
    if not result.cancelled:
        final = save_model(out / "model_final.pth", model, extra={"iterations": result.iteration})
    return {"iterations": result.iteration, "cancelled": result.cancelled, "config": cfg.name,
            "num_classes": cfg.num_classes, "out_dir": str(out), "model": str(final) if final else None,
            "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
            "last_losses": result.last_losses, "device": str(dev)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.yolact.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="yolact_r101_baseline",
                   help="a named config (yolact_base, yolact_r50, yolact_r101_baseline, yolact_r101_ws, "
                        "yolact_r101_attention, tiny) or a .json config file")
    p.add_argument("--images", required=True, help="image root (file_name in the annotations is relative to it)")
    p.add_argument("--ann", required=True, help="COCO instances annotation file (.json)")
    p.add_argument("--out", required=True, help="output folder for checkpoints, log and the final model")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--iterations", type=int, help="optimisation steps (default: the config's max_iter)")
    g.add_argument("--epochs", type=float, help="passes over the dataset instead of --iterations")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-size", type=int, help="input size (anchor scales follow)")
    p.add_argument("--lr", type=float)
    p.add_argument("--categories", type=lambda s: [int(x) for x in s.split(",")],
                   help="comma-separated category ids to train on (default: all)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pth")
    p.add_argument("--init", help="initialise matching weights from a model/checkpoint file")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int)
    p.add_argument("--no-augment", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def show(info: ProgressInfo) -> None:
        if info.iteration % args.log_every == 0 or info.iteration == info.max_iters:
            losses = " ".join(f"{k}={v:.3f}" for k, v in info.losses.items() if k != "num_pos")
            print(f"[{info.iteration}/{info.max_iters}] {losses} lr={info.lr:.2e} {info.seconds:.0f}s",
                  flush=True)

    def body() -> int:
        res = train(args.config, args.images, args.ann, args.out, iterations=args.iterations,
                    epochs=args.epochs, resume=args.resume, device=args.device, amp=not args.no_amp,
                    batch_size=args.batch_size, category_ids=args.categories, num_workers=args.workers,
                    checkpoint_every=args.checkpoint_every, log_every=args.log_every, seed=args.seed,
                    max_size=args.max_size, lr=args.lr, augment=False if args.no_augment else None,
                    progress=show, init_weights=args.init)
        print(json.dumps(res, indent=2))
        return 0

    return run_command(body, "interrupted; resume with --resume")


if __name__ == "__main__":
    raise SystemExit(main())
