"""A small, generic training loop shared by the trainable models (YOLACT, OpenPose, ...).

What it does, and nothing more:

* runs ``max_iters`` optimisation steps over batches from a (re-iterable) data source;
* the model-specific part is one callable ``step_fn(model, batch) -> dict[str, Tensor]`` that
  returns named loss terms; the optimised loss is ``losses["loss"]`` when present, otherwise the
  sum of all terms;
* mixed precision through ``torch.autocast``: float16 + ``GradScaler`` on CUDA; bfloat16 on a
  CPU that computes it natively (AMX / AVX512-BF16, ``ml.fastpath.cpu_bf16``; no scaler needed);
  elsewhere the same code runs in float32;
* optional gradient clipping (global L2 norm);
* checkpoints every ``checkpoint_every`` iterations and at the end / on cancel: model, optimizer,
  scheduler, grad scaler, iteration, RNG states (python, numpy, torch, cuda) and a free ``extra``
  dict (e.g. the model config), written atomically to ``<out_dir>/ckpt_<iter>.pth`` and
  ``<out_dir>/last.pth``; older numbered checkpoints beyond ``keep_last`` are deleted;
* resume from ``last.pth`` (or a given file) continuing at the saved iteration;
* one JSON line per logged iteration in ``<out_dir>/log.jsonl`` (iteration, losses, lr, seconds);
* ``progress(info)`` callback after every iteration and a ``cancel()`` flag polled before every
  iteration (a cancelled run saves a checkpoint and returns normally).

Typical use::

    from ml.training import LoopConfig, run_training

    result = run_training(model, optimizer, loader, step_fn, out_dir,
                          LoopConfig(max_iters=10_000, checkpoint_every=1_000),
                          scheduler=sched, device=device, resume=True,
                          extra={"config": cfg.to_dict()})

``loader`` is anything that can be iterated repeatedly (a ``DataLoader``); when one pass ends the
loop starts the next pass ("epoch"). ``step_fn`` receives the batch as the loader yields it and is
responsible for moving it to the device (``move_to(batch, device)`` helps).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

__all__ = [
    "LoopConfig", "LoopResult", "ProgressInfo", "run_training", "save_checkpoint",
    "load_checkpoint", "latest_checkpoint", "move_to", "atomic_torch_save", "read_log",
]

LAST_NAME = "last.pth"
LOG_NAME = "log.jsonl"


@dataclass
class LoopConfig:
    max_iters: int
    checkpoint_every: int = 1000       # 0 = only at the end / on cancel
    log_every: int = 10                # JSONL line every N iterations (and the last one)
    grad_clip: float | None = None     # max global L2 norm of the gradients
    amp: bool = True                   # autocast: float16 + GradScaler on CUDA, bfloat16 on a bf16 CPU
    keep_last: int = 3                 # numbered checkpoints kept (last.pth always kept)
    skip_nonfinite: bool = True        # a step with a NaN/inf loss is skipped (and logged)


@dataclass
class ProgressInfo:
    iteration: int                     # iterations completed so far
    max_iters: int
    epoch: int
    losses: dict[str, float]
    lr: float
    seconds: float                     # wall time since this run (not the resumed one) started

    @property
    def fraction(self) -> float:
        return self.iteration / max(1, self.max_iters)


@dataclass
class LoopResult:
    iteration: int                     # iterations completed (including resumed ones)
    cancelled: bool
    last_checkpoint: Path | None
    last_losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)   # the lines logged by this run


# ----------------------------------------------------------------------------- helpers

def move_to(obj: Any, device: torch.device | str) -> Any:
    """Recursively move tensors in lists / tuples / dicts to ``device`` (non_blocking)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it onto ``path``."""
    from ml.atomic import atomic_path
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def _rng_state() -> dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: Mapping[str, Any] | None) -> None:
    if not st:
        return
    if "python" in st:
        random.setstate(st["python"])
    if "numpy" in st:
        np.random.set_state(st["numpy"])
    if "torch" in st:
        torch.set_rng_state(st["torch"].cpu() if isinstance(st["torch"], torch.Tensor) else st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except Exception:  # a different number of GPUs: not worth failing a resume for
            pass


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    scaler: Any = None, iteration: int = 0, extra: Mapping[str, Any] | None = None
                    ) -> Path:
    """Write one checkpoint (atomic). ``extra`` is stored as-is (keep it picklable & small)."""
    ck = {
        "format": "studio-catalog-train/1",
        "iteration": int(iteration),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": _rng_state(),
        "extra": dict(extra or {}),
    }
    return atomic_torch_save(ck, path)


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    scaler: Any = None, restore_rng: bool = True,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into the given objects.

    Returns the raw checkpoint dict (``["iteration"]``, ``["extra"]`` ...). Objects passed as
    ``None`` are left alone.
    """
    ck = torch.load(path, map_location=map_location, weights_only=False)
    if model is not None:
        model.load_state_dict(ck["model"])
    if optimizer is not None and ck.get("optimizer") is not None:
        optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck.get("scheduler") is not None:
        scheduler.load_state_dict(ck["scheduler"])
    if scaler is not None and ck.get("scaler") is not None:
        scaler.load_state_dict(ck["scaler"])
    if restore_rng:
        _set_rng_state(ck.get("rng"))
    return ck


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """``<out_dir>/last.pth`` if present, else the highest numbered ``ckpt_*.pth``, else None."""
    out_dir = Path(out_dir)
    last = out_dir / LAST_NAME
    if last.is_file():
        return last
    numbered = sorted(out_dir.glob("ckpt_*.pth"))
    return numbered[-1] if numbered else None


def read_log(out_dir: str | os.PathLike, name: str = LOG_NAME) -> list[dict[str, Any]]:
    """All lines of ``<out_dir>/log.jsonl`` (or another JSONL file there; empty list when absent)."""
    p = Path(out_dir) / name
    if not p.is_file():
        return []
    out = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:   # a line cut by a crash: ignore it
                pass
    return out


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else 0.0


# ----------------------------------------------------------------------------- the loop

def run_training(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 data: Iterable, step_fn: Callable[[torch.nn.Module, Any], Mapping[str, torch.Tensor]],
                 out_dir: str | os.PathLike, cfg: LoopConfig, *, scheduler: Any = None,
                 device: torch.device | str = "cpu", resume: bool | str | os.PathLike = False,
                 progress: Callable[[ProgressInfo], None] | None = None,
                 cancel: Callable[[], bool] | None = None,
                 extra: Mapping[str, Any] | None = None) -> LoopResult:
    """Train ``model`` for ``cfg.max_iters`` iterations (see the module docstring).

    ``resume``: False = start fresh (an existing log is appended to); True = continue from
    ``<out_dir>/last.pth`` when present; a path = continue from that checkpoint.
    ``scheduler.step()`` is called once per iteration (use iteration-based schedules).
    """
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    use_amp = bool(cfg.amp) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp) if use_amp else None
    if bool(cfg.amp) and device.type == "cpu":
        from ml.fastpath import cpu_bf16
        use_amp = cpu_bf16()
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    start_iter = 0
    if resume:
        ck_path = latest_checkpoint(out_dir) if resume is True else Path(resume)
        if ck_path is not None and Path(ck_path).is_file():
            ck = load_checkpoint(ck_path, model, optimizer, scheduler, scaler, map_location=device)
            start_iter = int(ck["iteration"])

    iteration = start_iter
    epoch = 0
    t0 = time.monotonic()
    history: list[dict[str, Any]] = []
    last_losses: dict[str, float] = {}
    last_ckpt: Path | None = latest_checkpoint(out_dir) if start_iter else None
    cancelled = False
    log_f = open(out_dir / LOG_NAME, "a", encoding="utf-8")

    def checkpoint() -> Path:
        nonlocal last_ckpt
        numbered = out_dir / f"ckpt_{iteration:07d}.pth"
        save_checkpoint(numbered, model, optimizer, scheduler, scaler, iteration, extra)
        save_checkpoint(out_dir / LAST_NAME, model, optimizer, scheduler, scaler, iteration, extra)
        if cfg.keep_last > 0:
            for old in sorted(out_dir.glob("ckpt_*.pth"))[:-cfg.keep_last]:
                try:
                    old.unlink()
                except OSError:
                    pass
        last_ckpt = out_dir / LAST_NAME
        return last_ckpt

    model.train()
    try:
        while iteration < cfg.max_iters:
            got_batch = False
            for batch in data:
                got_batch = True
                if cancel is not None and cancel():
                    cancelled = True
                    break
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                    losses = step_fn(model, batch)
                total = losses["loss"] if "loss" in losses else sum(losses.values())
                vals = {k: float(v.detach().float().item()) for k, v in losses.items()}
                vals.setdefault("loss", float(total.detach().float().item()))
                finite = math.isfinite(vals["loss"])
                if finite or not cfg.skip_nonfinite:
                    if scaler is not None:
                        scaler.scale(total).backward()
                        if cfg.grad_clip:
                            scaler.unscale_(optimizer)
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        total.backward()
                        if cfg.grad_clip:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                iteration += 1
                last_losses = vals
                elapsed = time.monotonic() - t0
                lr = _current_lr(optimizer)
                if (iteration % max(1, cfg.log_every) == 0 or iteration == cfg.max_iters
                        or not finite):
                    rec = {"iteration": iteration, "epoch": epoch, "lr": lr,
                           "seconds": round(elapsed, 3), **{k: round(v, 6) for k, v in vals.items()}}
                    if not finite:
                        rec["skipped_nonfinite"] = True
                    log_f.write(json.dumps(rec) + "\n")
                    log_f.flush()
                    history.append(rec)
                if progress is not None:
                    progress(ProgressInfo(iteration, cfg.max_iters, epoch, vals, lr, elapsed))
                if cfg.checkpoint_every and iteration % cfg.checkpoint_every == 0 \
                        and iteration < cfg.max_iters:
                    checkpoint()
                if iteration >= cfg.max_iters:
                    break
            if cancelled:
                break
            if not got_batch:
                raise ValueError("the training data yielded no batch (empty dataset?)")
            epoch += 1
    finally:
        log_f.close()
    if iteration > start_iter or cancelled or last_ckpt is None:
        checkpoint()
    return LoopResult(iteration, cancelled, last_ckpt, last_losses, history)
