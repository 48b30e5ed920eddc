"""One place that decides where models run: CUDA when present, else the CPU."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def resolve_device(choice: str | None = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU raises a readable error."""
    choice = (choice or "auto").lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for, but no CUDA GPU is available on this machine")
        return torch.device(choice)
    if choice == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {choice!r}: use auto, cpu or cuda")


def cpu_model() -> str:
    """The processor's marketing name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def configure_cpu_threads(n: int | None = None) -> None:
    """Intra-op threads for the networks: ``n``, or every core but one (see
    ``ml.fastpath.inference_threads``); leave env overrides (OMP_NUM_THREADS) alone."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    if n is None:
        from ml.fastpath import inference_threads
        n = inference_threads()
    torch.set_num_threads(max(1, n))
