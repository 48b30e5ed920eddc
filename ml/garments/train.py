"""Train the garment parser (``studio-catalog train garments``).

    studio-catalog train garments --ccp DATA/train/ccp --products DATA/train/products \
        --out runs/garments --epochs 6 [--resume] [--seed 0] [--device auto|cpu|cuda] \
        [--threads N] [--export weights/garments_u2netp.pt]

Starts from the shipped U2-Net-p (``weights/u2netp.onnx``), trains on CCP person photos with
studio framings (:mod:`.augment`) and, for the image-level ``person`` head only, on the
``permissive`` product photos. Uses the shared loop (:mod:`ml.training.loop`): progress line,
``ckpt_*.pth`` / ``last.pth`` checkpoints, ``--resume``, ``log.jsonl``, CUDA mixed precision.
The final inference weights (fp16 state dict + metadata) are written by ``--export``.

Loss: cross-entropy over the 11 classes on the fused map (+0.4 x the mean over the six side
maps, deep supervision as in U2-Net) with square-root inverse-frequency class weights, plus
0.5 x binary cross-entropy of the person logit, plus 0.5 x binary cross-entropy of the one-piece
logit (person crops only; target from the crop's own labels, :func:`.model.onepiece_targets`).

``--init WEIGHTS`` starts a new run from exported weights (e.g. the shipped
``weights/garments_u2netp.pt``) instead of the U2-Net-p saliency weights: fine-tuning with a
fresh optimiser and schedule; a head the file lacks (the one-piece head of older weights)
starts untrained.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ml.device import resolve_device
from ml.training import LoopConfig, ProgressInfo, atomic_torch_save, run_training
from ml.training.command import run_command

from .augment import IGNORE
from .data import GarmentBatches, load_ccp, read_rgb
from .labels import CLASSES, product_negatives
from .model import GarmentNet, build_pretrained, drop_unused, onepiece_targets

FORMAT = "studio-catalog-garments/1"


def class_weights(persons: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """sqrt(median frequency / frequency), clipped to [0.5, 3] (rare classes count more)."""
    counts = np.zeros(len(CLASSES), np.float64)
    for _, lab in persons:
        counts += np.bincount(lab.ravel(), minlength=len(CLASSES))[:len(CLASSES)]
    freq = counts / max(1.0, counts.sum())
    med = np.median(freq[freq > 0]) if (freq > 0).any() else 1.0
    w = np.sqrt(med / np.maximum(freq, 1e-6))
    return torch.tensor(np.clip(w, 0.5, 3.0), dtype=torch.float32)


def make_step_fn(device: torch.device, weights: torch.Tensor) -> Callable:
    weights = weights.to(device)

    def step(model: GarmentNet, batch: dict) -> dict[str, torch.Tensor]:
        x = batch["image"].to(device, non_blocking=True)
        y = batch["labels"].to(device, non_blocking=True)
        p = batch["person"].to(device, non_blocking=True)
        fused, sides, person, onepiece = model(x)
        has_pixels = bool((y != IGNORE).any())
        if has_pixels:
            seg = F.cross_entropy(fused.float(), y, weight=weights, ignore_index=IGNORE)
            side = sum(F.cross_entropy(s.float(), y, weight=weights, ignore_index=IGNORE) for s in sides) / len(sides)
        else:
            seg = side = fused.sum() * 0.0
        cls = F.binary_cross_entropy_with_logits(person.float(), p)
        target, valid = onepiece_targets(y, IGNORE)
        if bool(valid.any()):
            one = F.binary_cross_entropy_with_logits(onepiece.float()[valid], target[valid])
        else:
            one = onepiece.sum() * 0.0
        return {"loss": seg + 0.4 * side + 0.5 * cls + 0.5 * one, "seg": seg.detach(), "person": cls.detach(),
                "onepiece": one.detach()}
    return step


def init_from(model: GarmentNet, path: str | Path) -> list[str]:
    """Load exported garment weights into ``model`` (fine-tuning); returns the heads the file
    lacks (they keep their fresh initialisation). Refuses a file of another format or classes."""
    from .infer import load_weights
    net, _meta = load_weights(path, torch.device("cpu"))
    model.load_state_dict(drop_unused(net.state_dict()), strict=False)
    fresh = [] if net.has_onepiece else ["onepiece"]
    if fresh:
        print(f"garments: {Path(path).name} has no {', '.join(fresh)} head; it starts untrained",
              file=sys.stderr, flush=True)
    return fresh


def export_weights(model: GarmentNet, path: str | Path, size: tuple[int, int], info: dict | None = None) -> Path:
    """The shipped file: fp16 state dict (without the unused saliency heads) + metadata."""
    state = {k: v.detach().cpu().half() for k, v in drop_unused(model.state_dict()).items()}
    meta = {"format": FORMAT, "classes": list(CLASSES), "input_hw": list(size), **(info or {})}
    return atomic_torch_save({"model": state, "meta": meta}, path)


def train(ccp_dir: str | Path, products_dir: str | Path | None, out_dir: str | Path, *, u2netp: str | Path,
          epochs: float = 6, size: tuple[int, int] = (256, 192), persons_per_batch: int = 6,
          products_per_batch: int = 2, lr: float = 1e-3, device: str = "auto", resume: bool = False,
          seed: int = 0, limit: int | None = None, iterations: int | None = None,
          checkpoint_every: int = 100, log_every: int = 10, max_minutes: float | None = None,
          frozen_stages: int = 1, progress: Callable[[ProgressInfo], None] | None = None,
          extra_frames: tuple[tuple[int, int], ...] = (), init: str | Path | None = None):
    dev = resolve_device(device)
    torch.manual_seed(seed)
    np.random.seed(seed)
    persons = load_ccp(ccp_dir, limit)
    products = []
    if products_dir:
        files = product_negatives(products_dir)[: (limit * 2 if limit else None)]
        products = [read_rgb(f, long_side=320) for f in files]
    data = GarmentBatches(persons, products, size, persons_per_batch, products_per_batch, seed,
                          extra_frames=extra_frames)
    iters = int(iterations or max(1, round(epochs * len(data))))
    print(f"garments: {len(persons)} person photos, {len(products)} product photos, "
          f"{len(data)} batches/epoch, {iters} iterations at {size[0]}x{size[1]} on {dev.type}",
          file=sys.stderr, flush=True)
    model = build_pretrained(u2netp, frozen_stages)
    if init and not resume:
        init_from(model, init)
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    body = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    opt = torch.optim.AdamW([{"params": body, "lr": lr * 0.5}, {"params": heads, "lr": lr}], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(iters, max_minutes))
    cfg = LoopConfig(max_iters=iters, checkpoint_every=checkpoint_every, log_every=log_every,
                     grad_clip=10.0, keep_last=2)
    result = run_training(model, opt, data, make_step_fn(dev, class_weights(persons)), out_dir, cfg,
                          scheduler=sched, device=dev, resume=resume, progress=progress,
                          cancel=_deadline(max_minutes),
                          extra={"kind": "garments", "input_hw": list(size), "seed": seed,
                                 "extra_frames": [list(f) for f in extra_frames]})
    return model, result


def _schedule(iters: int, max_minutes: float | None) -> Callable[[int], float]:
    """Warm-up, then cosine decay to 5 % over the run. With a time limit the decay follows
    whichever is further along, the steps or the clock, so a slow machine still anneals."""
    warm = max(1, min(100, iters // 20))
    t0 = time.monotonic()

    def factor(it: int) -> float:
        frac = min(it, iters) / iters
        if max_minutes:
            frac = max(frac, min(1.0, (time.monotonic() - t0) / (60.0 * max_minutes)))
        return min(1.0, (it + 1) / warm) * max(0.05, 0.5 * (1 + np.cos(np.pi * frac)))
    return factor


def _deadline(max_minutes: float | None) -> Callable[[], bool] | None:
    """A cancel flag that turns true after ``max_minutes`` of this run (checkpoint + export follow)."""
    if not max_minutes:
        return None
    end = time.monotonic() + 60.0 * max_minutes
    return lambda: time.monotonic() > end


def _print_progress(every: int) -> Callable[[ProgressInfo], None]:
    def cb(p: ProgressInfo) -> None:
        if p.iteration % every and p.iteration != p.max_iters:
            return
        eta = p.seconds / max(1e-9, p.fraction) - p.seconds if p.fraction else 0.0
        print(f"[{p.iteration}/{p.max_iters}] epoch {p.epoch} loss {p.losses.get('loss', 0):.3f} "
              f"(seg {p.losses.get('seg', 0):.3f}, person {p.losses.get('person', 0):.3f}, "
              f"one-piece {p.losses.get('onepiece', 0):.3f}) "
              f"lr {p.lr:.2e} {p.seconds:.0f}s, eta {eta / 60:.0f} min", file=sys.stderr, flush=True)
    return cb


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError("give the input size as HxW, e.g. 256x192") from exc
    if h % 32 or w % 32 or h < 64 or w < 64:
        raise argparse.ArgumentTypeError("input height and width must be multiples of 32, at least 64")
    return h, w


def _frames(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(_size(t) for t in text.split(",") if t.strip())


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="studio-catalog train garments", description=__doc__.split("\n")[0])
    ap.add_argument("--ccp", required=True, help="CCP folder (photos/, labels/, labels.json)")
    ap.add_argument("--products", help="product folder (manifest.json); its permissive train photos are negatives")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl)")
    ap.add_argument("--epochs", type=float, default=6.0)
    ap.add_argument("--iterations", type=int, help="exact number of steps (overrides --epochs)")
    ap.add_argument("--size", type=_size, default=(256, 192), help="training input HxW (default 256x192)")
    ap.add_argument("--extra-frames", type=_frames, default=(),
                    help="other frame shapes HxW mixed into 40%% of the batches, e.g. 288x288,192x288 "
                         "(the app parses a photo at its own aspect; default: --size only)")
    ap.add_argument("--batch-persons", type=int, default=6)
    ap.add_argument("--batch-products", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pth")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--limit", type=int, help="use only the first N photos (smoke tests)")
    ap.add_argument("--max-minutes", type=float, help="stop (checkpoint, export) after this much wall time")
    ap.add_argument("--frozen-stages", type=int, default=1, choices=range(0, 7),
                    help="first N pretrained encoder stages get no gradient (default 1: saves CPU time)")
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--init", help="start from these exported garment weights (fine-tuning, e.g. "
                    "weights/garments_u2netp.pt) instead of the U2-Net-p saliency weights")
    ap.add_argument("--u2netp", help="pretrained U2-Net-p ONNX file (default: weights/u2netp.onnx, verified)")
    ap.add_argument("--export", help="write the inference weights here (e.g. weights/garments_u2netp.pt)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return run_command(lambda: _run(args, argv), "interrupted; continue with the same command and --resume")


def _run(args, argv: list[str]) -> int:
    from ml import weights
    if args.threads:
        torch.set_num_threads(args.threads)
    u2 = args.u2netp or weights.verify("u2netp")
    t0 = time.monotonic()
    model, res = train(args.ccp, args.products, args.out, u2netp=u2, epochs=args.epochs, size=args.size,
                       persons_per_batch=args.batch_persons, products_per_batch=args.batch_products,
                       lr=args.lr, device=args.device, resume=args.resume, seed=args.seed, limit=args.limit,
                       iterations=args.iterations, checkpoint_every=args.checkpoint_every,
                       log_every=args.log_every, max_minutes=args.max_minutes,
                       frozen_stages=args.frozen_stages, progress=_print_progress(args.log_every),
                       extra_frames=args.extra_frames, init=args.init)
    if res.cancelled:
        print("stopped at the time limit; --resume continues", file=sys.stderr)
    print(f"done: {res.iteration} iterations, loss {res.last_losses.get('loss', float('nan')):.4f}, "
          f"{time.monotonic() - t0:.0f}s; checkpoint {res.last_checkpoint}", file=sys.stderr)
    if args.export:
        p = export_weights(model, args.export, args.size, {"iterations": res.iteration, "seed": args.seed,
                                                           "command": "studio-catalog train garments " + " ".join(argv)})
        print(f"exported {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
