"""Inference fast path: how the pipeline's networks are prepared for the device they run on.

* CPU: weights and activations in ``channels_last`` (NHWC) memory layout, then
  ``torch.jit.trace`` + ``torch.jit.freeze`` (constant-folded graph, oneDNN-fused conv+ReLU).
  Measured on U2-Net-p 320x320, one thread: eager NCHW ~1.16 s CPU, channels_last ~0.73 s,
  channels_last traced+frozen ~0.63 s; outputs equal to 1e-5.
* CPU with native bf16 (AMX or AVX512-BF16, :func:`cpu_bf16`): the same in bfloat16 weights and
  activations. Measured on U2-Net-p 320x320 (AMX CPU): 1 thread 0.50 -> 0.16 s, 2 threads
  0.30 -> 0.15 s; saliency maps within 0.035 (mean 0.001) of fp32. CPUs without it stay fp32
  (bf16 would be emulated there, slower).
* CUDA: the same, plus half precision (fp16) weights; the wrapper casts the input to fp16
  and the outputs back to float32, so callers see the same dtypes as on the CPU.
  cuDNN autotuning (``benchmark``) is switched on for the fixed input shapes.

Frozen graphs run with TorchScript's plain executor on the CPU (:func:`plain_executor`): the
profiling executor specialises a graph during its first two calls, each 2-3x slower than later
ones (U2-Net-p 0.80 and 0.70 s against 0.46 s), and gains nothing after them on a CPU (no CPU
fusion); with the plain one the first photo runs at full speed and no warm-up calls are needed
(measured: U2-Net-p first call 0.50 s, later 0.46 s; BlazePose detector 0.05 vs 0.03 s).

A module is only replaced when its traced outputs agree with the eager ones on a random
input (fp32: 1e-3 absolute; fp16 / bf16: mean error within 2 % of the mean magnitude, see
:func:`_agrees`); otherwise the eager module is kept, so a tracing problem can cost speed but never
correctness.
"""
from __future__ import annotations

import copy
import logging
import os
import warnings

import torch
from torch import nn

log = logging.getLogger(__name__)


class _Cast(nn.Module):
    """Input -> (dtype, memory format) of the model; outputs -> float32."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, channels_last: bool):
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor):
        x = x.to(dtype=self.dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            return tuple(o.float() for o in out)
        return out.float()


def _outputs(y) -> list[torch.Tensor]:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def cpu_bf16() -> bool:
    """Whether networks on the CPU run in bfloat16: where the CPU computes it natively (AMX tiles
    or AVX512-BF16), unless ``STUDIO_CPU_BF16=0`` (``=1`` forces it)."""
    env = os.environ.get("STUDIO_CPU_BF16")
    if env is not None and env.strip() != "":
        return env.strip().lower() not in ("0", "false", "no", "off")
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        try:
            if getattr(cpu, probe)():
                return True
        except Exception:            # an older torch without the probe: stay fp32
            continue
    return False


def precision(device: torch.device | str, half: bool | None = None, bf16: bool | None = None) -> str:
    """The arithmetic :func:`accelerate` uses on ``device``: "fp16" (CUDA), "bf16" (a CPU with
    native bf16, :func:`cpu_bf16`) or "fp32". ``half``/``bf16`` force a choice when not None."""
    device = torch.device(device)
    if half is None:
        half = device.type == "cuda"
    if half:
        return "fp16"
    if bf16 is None:
        bf16 = device.type == "cpu" and cpu_bf16()
    return "bf16" if bf16 else "fp32"


_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _agrees(got: torch.Tensor, ref: torch.Tensor, prec: str) -> bool:
    """Whether an accelerated output matches the eager one on the check's random input. fp32:
    within 1e-3 everywhere (summation order only). fp16/bf16 round every activation (bf16 keeps
    8 bits): on a random input, where class logits are near ties, single values move by up to
    ~6 % of the output's range, so the mean error is what tells rounding (< 1 % of the mean
    magnitude measured on U2-Net-p and the garment parser) from a broken graph (of the order
    of the values themselves)."""
    diff = (got - ref).abs()
    if prec == "fp32":
        return float(diff.max()) <= 1e-3
    scale = float(ref.abs().mean())
    return (float(diff.mean()) <= 0.02 * scale + 1e-3
            and float(diff.max()) <= 0.25 * max(1.0, float(ref.abs().max())))


def accelerate(model: nn.Module, device: torch.device | str, example_shape: tuple[int, ...], *,
               half: bool | None = None, bf16: bool | None = None, channels_last: bool = True,
               trace: bool = True) -> nn.Module:
    """A faster module computing the same as ``model`` (eval mode, on ``device``) for inputs of
    exactly ``example_shape`` (float32, NCHW). ``half``: None = fp16 on CUDA only; ``bf16``:
    None = on a CPU with native bf16 only (:func:`precision`).
    Set ``STUDIO_NO_FASTPATH=1`` to get ``model`` back unchanged (for comparisons)."""
    device = torch.device(device)
    if os.environ.get("STUDIO_NO_FASTPATH"):
        return model
    plain_executor(device)
    prec = precision(device, half, bf16)
    dtype = _DTYPES[prec]
    model = model.eval().to(device)
    example = torch.rand(example_shape, device=device)
    with torch.no_grad():
        ref = [o.float() for o in _outputs(model(example))]
    fast = model
    if dtype != torch.float32:     # a copy: Module.to casts in place, and callers keep ``model``
        fast = copy.deepcopy(model).to(dtype)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    fast = _Cast(fast, dtype, channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if trace:
        try:
            with torch.no_grad(), warnings.catch_warnings(), tracing():
                warnings.simplefilter("ignore")     # TracerWarning: fixed shapes are intended
                fast = torch.jit.freeze(torch.jit.trace(fast, example, check_trace=False).eval())
        except Exception as exc:          # tracing is an optimisation only
            log.warning("could not trace %s (%s); running it eagerly", type(model).__name__, exc)
    with torch.no_grad():
        got = _outputs(fast(example))
        ok = len(got) == len(ref) and all(g.shape == r.shape and _agrees(g.float(), r, prec)
                                          for g, r in zip(got, ref))
    if not ok:
        log.warning("the accelerated %s disagrees with the eager one; using the eager one",
                    type(model).__name__)
        return model
    return fast


def accelerate_cached(name: str, weights_path: str | os.PathLike, build_model, device: torch.device | str,
                      example_shape: tuple[int, ...], *, code=(), **kw) -> nn.Module:
    """:func:`accelerate` ``build_model()`` -- or load the graph it made at an earlier start from
    the on-disk cache (:mod:`ml.graph_cache`), skipping the eager model, the tracing and the
    check. ``code``: the modules whose source defines the network (part of the cache key)."""
    import sys

    from ml import graph_cache
    from ml.weights import sha256_file
    device = torch.device(device)
    if os.environ.get("STUDIO_NO_FASTPATH"):
        return build_model()
    plain_executor(device)
    prec = precision(device, kw.get("half"), kw.get("bf16"))
    key = graph_cache.graph_key(name, weights_sha256=sha256_file(weights_path), device=device,
                                shapes=[example_shape], code=(*code, sys.modules[__name__]),
                                precision=prec, **{k: repr(v) for k, v in kw.items()})
    mod, _hit = graph_cache.cached(key, device, lambda: accelerate(build_model(), device, example_shape, **kw))
    return mod


def plain_executor(device: torch.device | str) -> bool:
    """Run TorchScript graphs without the profiling executor when ``device`` is the CPU (see the
    module docstring). Returns True when graphs still specialise during their first calls (a
    GPU: fusion pays there), i.e. when a caller should spend its warm-up calls at load."""
    if torch.device(device).type == "cpu":
        torch._C._set_graph_executor_optimize(False)
    return bool(torch._C._get_graph_executor_optimize())


def settle(graph, *examples: torch.Tensor) -> None:
    """Ready a loaded graph for its first photo: on the CPU (plain executor) nothing to do; where
    the profiling executor runs (a GPU) its two specialising calls are paid here, at load."""
    if plain_executor(examples[0].device if examples else "cpu"):
        with torch.inference_mode():
            for _ in range(2):
                graph(*examples)


def tracing():
    """Context for ``torch.jit.trace`` + ``freeze``: they need the optimising executor (it inlines
    the submodules' calls into one graph), whatever :func:`plain_executor` set for running."""
    return torch.jit.optimized_execution(True)


def inference_threads(cores: int | None = None) -> int:
    """The intra-op thread count for the networks: every core but one (at least one).

    The spare core decodes the full-resolution photo and encodes the outputs while the
    networks run, and keeps a GUI responsive. More OpenMP threads than free cores is far
    worse than too few: on the 2-core development machine, 2 threads beside the background
    decode made the pose stage ~30x slower (8.4 s instead of 0.26 s) under load, 1 thread
    did not. ``STUDIO_TORCH_THREADS`` overrides."""
    env = os.environ.get("STUDIO_TORCH_THREADS")
    if env:
        return max(1, int(env))
    cores = cores or os.cpu_count() or 2
    return max(1, cores - 1)


def heavy_threads(cores: int | None = None) -> int:
    """Intra-op threads for the one heavy network (U2-Net-p) once nothing else runs beside it:
    every core. Measured on the 2-core machine, quiet: 2 threads 0.36 s, 1 thread 0.73 s per
    photo. ``STUDIO_TORCH_THREADS`` (or ``OMP_NUM_THREADS``) overrides: set it to 1 on a
    machine busy with other work, where 2 OpenMP threads were slower than 1."""
    env = os.environ.get("STUDIO_TORCH_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if env:
        return max(1, int(env))
    if cpu_bf16():
        # In bf16 (AMX) U2-Net-p is no longer heavy: 1 thread 0.16 s, 2 threads 0.15 s. Waiting
        # for the background decode to give it a second core would cost more than it saves.
        return inference_threads(cores)
    return max(1, cores or os.cpu_count() or 1)


class torch_threads:
    """``with torch_threads(n):`` run torch ops with ``n`` intra-op threads, then restore.
    (A process-wide setting: only the pipeline's worker thread runs networks.)"""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.old = None

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.n != self.old:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.old is not None and torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)
        return False
