"""``studio-catalog train category``: train the product-category head.

    studio-catalog train category --data DATA/train/products --out runs/category [--resume]

1. every photo of the chosen licence tiers (default: ``permissive``, what we ship) gets its
   U2-Net-p mask and the backbone features of its views, cached under ``<out>/cache``
   (resumable; the slow part, ~0.5 s per photo on a 2-core CPU);
2. the head trains on the cached features (:mod:`ml.training.loop`: checkpoints every epoch
   in ``<out>``, ``--resume`` continues from ``last.pth``; seconds to minutes on a CPU),
   with generated no-product images pushed to a flat distribution (:mod:`.negatives`);
3. on the dev split: temperature and the ``other`` threshold are chosen
   (:func:`ml.category.evaluate.choose_threshold`), metrics written to ``<out>/report.json``,
   and the head to ``<out>/category_head.pt`` (copy it to ``weights/`` to ship it).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ml.category import CLASSES, data, evaluate, features, negatives, views
from ml.category.backbone import FEATURE_DIM, INPUT_SIZE, MODEL_ID
from ml.category.model import CategoryHead, save_head

NEG_WEIGHT = 0.5


def _subset(recs: list[data.Record], per_split: int | None) -> list[data.Record]:
    """At most ``per_split`` photos per split, taken round-robin over the classes (tiny runs)."""
    if not per_split:
        return recs
    out = []
    for split in ("train", "dev"):
        by_class: dict[int, list] = {}
        for r in recs:
            if r.split == split:
                by_class.setdefault(r.label, []).append(r)
        queues = [list(v) for _k, v in sorted(by_class.items())]
        taken = 0
        while taken < per_split and any(queues):
            for q in queues:
                if q and taken < per_split:
                    out.append(q.pop(0))
                    taken += 1
    return out


def _negative_features(backbone, cache: Path, tag: str, n: int, seed: int) -> np.ndarray:
    p = cache / f"features-{tag}" / f"negatives-{n}-{seed}.npy"
    if p.is_file():
        return np.load(p).astype(np.float32)
    imgs = negatives.generate(n, seed=seed)
    rng = np.random.default_rng(seed)
    feats = []
    for img in imgs:
        mask = None
        if rng.random() < 0.5:      # a partial mask, as a segmenter might find on a chart
            m = np.zeros(img.shape[:2], np.uint8)
            a, b = sorted(rng.integers(0, img.shape[0], 2))
            c, d = sorted(rng.integers(0, img.shape[1], 2))
            m[a:max(b, a + 40), c:max(d, c + 40)] = 255
            mask = m
        feats.append(backbone.features(views.compose(img, mask, size=backbone.input_size)[None])[0])
    arr = np.stack(feats).astype(np.float32)
    p.parent.mkdir(parents=True, exist_ok=True)
    np.save(p, arr)
    return arr


class _Batches:
    """Re-iterable: one pass = the training views shuffled into batches, each batch with a
    slice of the negatives."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, neg: torch.Tensor, bs: int, seed: int):
        self.x, self.y, self.neg, self.bs = x, y, neg, bs
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.bs)

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.gen)
        nb = max(1, len(self.neg) * self.bs // max(1, len(self.x)))
        for i in range(0, len(order), self.bs):
            idx = order[i:i + self.bs]
            j = torch.randint(0, max(1, len(self.neg)), (nb,), generator=self.gen)
            yield self.x[idx], self.y[idx], self.neg[j] if len(self.neg) else self.neg


def _lr_factor(i: int, total: int) -> float:
    """Linear warm-up over the first 10 %, then cosine down to 0."""
    warm = max(1, total // 10)
    if i < warm:
        return (i + 1) / warm
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (i - warm) / max(1, total - warm))))


def _class_weights(y: np.ndarray) -> torch.Tensor:
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    w = w / (w[counts > 0].mean() if (counts > 0).any() else 1.0)
    return torch.tensor(w, dtype=torch.float32)


def train(data_root: str | Path, out: str | Path, *, tiers: Sequence[str] = data.PERMISSIVE,
          epochs: int = 80, batch_size: int = 256, lr: float = 2e-3, seed: int = 0,
          device: str = "auto", resume: bool = False, max_photos: int | None = None,
          max_steps: int | None = None, mask_size: int = 320, per_class: int | None = None,
          dev_per_class: int | None = None, cache: str | Path | None = None, input_size: int = INPUT_SIZE,
          n_negatives: int = 420, say: Callable[[str], None] = print, command: str = "") -> dict:
    from ml.device import resolve_device
    from ml.stages.segment import ProductSegmenter
    from ml.training import LoopConfig, run_training

    from ml.category.backbone import Backbone
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache) if cache else out / "cache"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dev = resolve_device(device)
    recs = _subset(data.balanced(data.records(data_root, tiers=tiers), per_class, seed, dev_per_class), max_photos)
    train_recs = [r for r in recs if r.split == "train"]
    dev_recs = [r for r in recs if r.split == "dev"]
    if not train_recs:
        raise ValueError(f"no training photos in {data_root} for licence tiers {', '.join(tiers)}")
    say(f"{len(train_recs)} training and {len(dev_recs)} dev photos ({', '.join(tiers)}); device {dev}")

    t0 = time.monotonic()
    backbone = Backbone(None, dev, input_size=input_size)
    segmenter = ProductSegmenter(None, dev, input_size=mask_size)
    tag = f"{MODEL_ID}-{input_size}-m{mask_size}"

    def show(i: int, n: int, rel: str) -> None:
        if i % 25 == 0 or i == n:
            say(f"[features {i}/{n}] {time.monotonic() - t0:.0f}s {rel}")
    features.build(recs, cache, backbone, segmenter, tag, show)
    neg = _negative_features(backbone, cache, tag, n_negatives, seed)
    cache_s = time.monotonic() - t0

    ftr, ytr = features.load(train_recs, cache, tag)
    x = torch.tensor(np.concatenate(ftr)) if ftr else torch.zeros(0, FEATURE_DIM)
    y = torch.tensor(np.concatenate([np.full(len(f), lab) for f, lab in zip(ftr, ytr)]), dtype=torch.long)
    head = CategoryHead(FEATURE_DIM, len(CLASSES))
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp_min(1e-3))
    cw = _class_weights(ytr).to(dev)
    loader = _Batches(x, y, torch.tensor(neg), batch_size, seed)
    iters = max_steps or epochs * len(loader)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: _lr_factor(i, iters))   # resumable with new --steps

    def step(model, batch):
        xb, yb, nb = (t.to(dev) for t in batch)
        loss = F.cross_entropy(model(xb), yb, weight=cw, label_smoothing=0.05)
        terms = {"ce": loss}
        if len(nb):
            flat = -F.log_softmax(model(nb), dim=1).mean(dim=1).mean() - math.log(len(CLASSES))
            terms["neg"] = flat
            loss = loss + NEG_WEIGHT * flat
        terms["loss"] = loss
        return terms

    def progress(info) -> None:
        if info.iteration % len(loader) == 0 or info.iteration == info.max_iters:
            terms = " ".join(f"{k}={v:.3f}" for k, v in info.losses.items())
            say(f"[head {info.iteration}/{info.max_iters}] epoch {info.epoch} {terms} {info.seconds:.1f}s")

    cfg = LoopConfig(max_iters=iters, checkpoint_every=len(loader), log_every=len(loader), amp=False, keep_last=2)
    res = run_training(head, opt, loader, step, out, cfg, scheduler=sched, device=dev, resume=resume,
                       progress=progress, extra={"classes": list(CLASSES), "seed": seed})
    head.eval().cpu()

    fdev, ydev = features.load(dev_recs, cache, tag)
    report = evaluate.dev_report(head, fdev, ydev, neg_holdout=_negative_features(
        backbone, cache, tag, 140, seed + 1))
    from ml import weights
    training = {"command": command, "data": "train/products (manifest.json), split train; dev for "
                "temperature, threshold and metrics", "licence_tiers": list(tiers),
                "photos": {"train": len(ftr), "dev": len(fdev)}, "views": list(views.VIEW_NAMES),
                "seed": seed, "epochs": epochs, "iterations": res.iteration, "mask_input_size": mask_size,
                "input_size": input_size,
                "cache_seconds": round(cache_s, 1), "seconds": round(time.monotonic() - t0, 1),
                "dev": report["summary"]}
    save_head(out / "category_head.pt", head, classes=CLASSES,
              backbone={"id": MODEL_ID, "sha256": weights.entry(MODEL_ID)["sha256"], "input_size": input_size},
              threshold=report["threshold"], temperature=report["temperature"], training=training)
    from ml.atomic import write_json
    write_json(out / "report.json", {"training": training, **report})
    say(f"dev top-1 {report['summary']['top1']:.3f}; threshold {report['threshold']:.2f}; "
        f"head written to {out / 'category_head.pt'}")
    return {"head": str(out / "category_head.pt"), "iterations": res.iteration, **report["summary"]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio-catalog train category",
                                description="train the product-category head on train/products")
    p.add_argument("--data", required=True, help="the train/products folder (with manifest.json)")
    p.add_argument("--out", required=True, help="output folder (cache, checkpoints, report, head)")
    p.add_argument("--tiers", default="permissive",
                   help="licence tiers to train on, comma-separated (default: permissive, what we ship)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--steps", type=int, help="optimisation steps instead of --epochs (tiny runs)")
    p.add_argument("--max-photos", type=int, help="at most this many photos per split (tiny runs)")
    p.add_argument("--per-class", type=int, help="at most this many training photos per class")
    p.add_argument("--dev-per-class", type=int, help="at most this many dev photos per class")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--mask-size", type=int, default=320, help="U2-Net-p input size for the cut-outs")
    p.add_argument("--input-size", type=int, default=INPUT_SIZE,
                   help="backbone input side in px (300 - 32k: 268, 236, 204, ...); the head records it")
    p.add_argument("--cache", help="feature cache folder (default: <out>/cache)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pth")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ml.training.command import run_command
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.threads:
            torch.set_num_threads(args.threads)
        res = train(args.data, args.out, tiers=[t.strip() for t in args.tiers.split(",") if t.strip()],
                    epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    device=args.device, resume=args.resume, max_photos=args.max_photos,
                    max_steps=args.steps, mask_size=args.mask_size, per_class=args.per_class,
                    dev_per_class=args.dev_per_class, cache=args.cache, input_size=args.input_size,
                    say=lambda s: print(s, flush=True),
                    command="studio-catalog train category " + shlex.join(argv))
        print(json.dumps(res, indent=2))
        return 0

    return run_command(body, "interrupted; resume with --resume")
