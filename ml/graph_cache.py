"""On-disk cache of the networks' traced and frozen TorchScript graphs.

Building the fast path of a network at start-up (parse the weight file, build the eager
module, ``torch.jit.trace`` + ``torch.jit.freeze``, check it against the eager outputs) costs
seconds per network on a CPU; loading the frozen graph it produced costs tens of milliseconds.
So each frozen graph is kept on disk under a key made of everything that changes it:

* the SHA-256 of the weight file it was built from (the manifest's verified hash),
* the source code of the modules that build it (a code change is a new key),
* the torch version, the device (and the GPU's name), the input shape(s), the precision,
* :data:`FORMAT`, bumped when this file's layout changes.

A changed key simply misses, and the graph is built and stored anew. A file that is corrupt,
truncated or not what its header says is detected by its SHA-256 before anything is loaded,
removed and rebuilt; it is never loaded wrongly. Each write goes to a temporary file that is
renamed over the final name (atomic on POSIX and Windows), so two processes starting at once
each write a whole file and the last rename wins; a reader never sees half a file.

Where: ``STUDIO_GRAPH_CACHE`` (a folder, or ``off``), else the user cache folder
(platformdirs: ``~/.cache/studio-catalog/graphs`` on Linux, ``%LOCALAPPDATA%`` on Windows,
``~/Library/Caches`` on macOS). Deleting the folder is
always safe: the next start rebuilds what it needs.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable

import torch

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"STUDIO-GRAPH\n"
ENV = "STUDIO_GRAPH_CACHE"


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is switched off (``STUDIO_GRAPH_CACHE=off``)."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() in ("off", "0", "no", "false", "none"):
        return None
    if env:
        return Path(env)
    import platformdirs
    return Path(platformdirs.user_cache_dir("studio-catalog", appauthor=False)) / "graphs"


def code_fingerprint(modules: Iterable[ModuleType]) -> str:
    """SHA-256 over the source files of ``modules`` (a code change makes a new key)."""
    h = hashlib.sha256()
    for mod in modules:
        h.update(mod.__name__.encode())
        path = getattr(mod, "__file__", None)
        if path and os.path.isfile(path):
            h.update(Path(path).read_bytes())
            continue
        try:                # a frozen app (PyInstaller): the compiled code stands for the source
            import marshal
            h.update(marshal.dumps(mod.__spec__.loader.get_code(mod.__name__)))
        except Exception:
            h.update(str(getattr(mod, "__version__", "")).encode())
    return h.hexdigest()


def graph_key(name: str, *, weights_sha256: str, device: torch.device | str,
              shapes: Iterable[Iterable[int]], code: Iterable[ModuleType] = (), **extra) -> str:
    """The cache key (hex) of one network's frozen graph; ``extra`` adds fields (precision, ...)."""
    device = torch.device(device)
    fields = {
        "format": FORMAT, "name": name, "weights": weights_sha256, "torch": torch.__version__,
        "device": device.type, "shapes": [list(map(int, s)) for s in shapes],
        "code": code_fingerprint(code), **{k: str(v) for k, v in sorted(extra.items())},
    }
    if device.type == "cuda" and torch.cuda.is_available():
        fields["gpu"] = torch.cuda.get_device_name(device)
    blob = json.dumps(fields, sort_keys=True).encode()
    return f"{name}-{hashlib.sha256(blob).hexdigest()[:32]}"


def _file(key: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"{key}.graph"


def load(key: str, device: torch.device | str) -> torch.jit.ScriptModule | None:
    """The cached graph for ``key`` on ``device``, or None (missing, switched off, or damaged:
    a damaged file is removed so the next start rebuilds it)."""
    path = _file(key)
    if path is None or not path.is_file():
        return None
    try:
        data = path.read_bytes()
        head, digest, payload = data[:len(MAGIC)], data[len(MAGIC):len(MAGIC) + 64], data[len(MAGIC) + 65:]
        if head != MAGIC or data[len(MAGIC) + 64:len(MAGIC) + 65] != b"\n" \
                or hashlib.sha256(payload).hexdigest().encode() != digest:
            raise ValueError("its content does not match its SHA-256 (damaged or truncated)")
        mod = torch.jit.load(io.BytesIO(payload), map_location=torch.device(device))
        return mod.eval()
    except Exception as exc:     # any failure: never use it, rebuild it
        log.warning("graph cache: %s is unusable (%s); rebuilding it", path.name, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def store(key: str, module: torch.jit.ScriptModule) -> Path | None:
    """Write ``module`` under ``key`` atomically; a failure to write only costs the next start."""
    path = _file(key)
    if path is None:
        return None
    try:
        buf = io.BytesIO()
        torch.jit.save(module, buf)
        payload = buf.getvalue()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path
    except Exception as exc:
        log.warning("graph cache: could not write %s (%s)", path, exc)
        return None


def cached(key: str, device: torch.device | str,
           build: Callable[[], torch.nn.Module]) -> tuple[torch.nn.Module, bool]:
    """(module, came from the cache). ``build`` makes the fast module when the cache misses; it
    is stored only when it is a TorchScript graph (an eager fallback is never cached)."""
    hit = load(key, device)
    if hit is not None:
        return hit, True
    mod = build()
    if isinstance(mod, torch.jit.ScriptModule):
        store(key, mod)
    return mod, False
