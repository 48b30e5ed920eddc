"""The on-disk cache of frozen graphs (ml.graph_cache): a second start loads what the first built,
gives the same outputs, and never loads a damaged, truncated or stale file."""
from __future__ import annotations

import multiprocessing as mp
import sys
import types

import pytest
import torch
from torch import nn

from ml import graph_cache


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


def _frozen() -> torch.jit.ScriptModule:
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(_Net().eval(), torch.rand(1, 3, 8, 8)))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(graph_cache.ENV, str(tmp_path / "graphs"))
    return tmp_path / "graphs"


def _key(**kw):
    args = dict(weights_sha256="a" * 64, device="cpu", shapes=[(1, 3, 8, 8)], code=(sys.modules[__name__],))
    args.update(kw)
    return graph_cache.graph_key("net", **args)


def _counted():
    calls = []

    def build():
        calls.append(1)
        return _frozen()
    return build, calls


def test_second_start_loads_the_same_graph(cache):
    build, calls = _counted()
    first, hit1 = graph_cache.cached(_key(), "cpu", build)
    second, hit2 = graph_cache.cached(_key(), "cpu", build)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(first(x), second(x))


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_damaged_file_is_rebuilt_never_loaded(cache, damage):
    build, calls = _counted()
    graph_cache.cached(_key(), "cpu", build)
    (path,) = cache.glob("*.graph")
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-100] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:                      # a valid TorchScript file, but not written by the cache
        import io
        buf = io.BytesIO()
        torch.jit.save(_frozen(), buf)
        data = bytearray(buf.getvalue())
    path.write_bytes(bytes(data))
    mod, hit = graph_cache.cached(_key(), "cpu", build)
    assert not hit and len(calls) == 2
    assert graph_cache.load(_key(), "cpu") is not None       # rebuilt and stored again
    assert mod(torch.rand(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_key_changes_with_weights_shape_torch_and_code(cache, monkeypatch):
    base = _key()
    assert _key(weights_sha256="b" * 64) != base
    assert _key(shapes=[(1, 3, 16, 16)]) != base
    assert _key(half=True) != base
    other = types.ModuleType("other_code")
    assert _key(code=(other,)) != base
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert _key() != base


def test_off_switch_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(graph_cache.ENV, "off")
    build, calls = _counted()
    graph_cache.cached(_key(), "cpu", build)
    graph_cache.cached(_key(), "cpu", build)
    assert len(calls) == 2 and graph_cache.cache_dir() is None


def test_eager_fallback_is_not_cached(cache):
    mod, hit = graph_cache.cached(_key(), "cpu", lambda: _Net().eval())
    assert not hit and not list(cache.glob("*.graph"))


def _race(folder: str, key: str, n: int) -> None:
    import os
    os.environ[graph_cache.ENV] = folder
    for _ in range(n):
        graph_cache.store(key, _frozen())


def test_two_processes_writing_at_once_leave_a_whole_file(cache):
    key = _key()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_race, args=(str(cache), key, 15)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    assert graph_cache.load(key, "cpu") is not None
    assert not [p for p in cache.iterdir() if p.suffix != ".graph"]      # no temporary left


def test_u2netp_from_the_cache_matches_the_built_one(cache):
    from conftest import require_weights
    wd = require_weights("u2netp.onnx")
    from ml.stages.segment import ProductSegmenter
    x = torch.rand(1, 3, 320, 320)
    built = ProductSegmenter(wd, "cpu", accelerated=True)
    assert list(cache.glob("u2netp-*.graph"))
    loaded = ProductSegmenter(wd, "cpu", accelerated=True)
    with torch.no_grad():
        a, b = built.model(x), loaded.model(x)
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_pose_graphs_from_the_cache_skip_the_tflite_parse_and_match(cache, monkeypatch):
    """A second start takes BlazePose's frozen graphs from the cache without parsing the TFLite
    files (a start-up cost), and they give the same outputs as the graphs built the first time."""
    import numpy as np

    from conftest import require_weights
    wd = require_weights("pose_detection.tflite", "pose_landmark_full.tflite")
    from ml.models.blazepose import BlazePose
    from ml.runtime import tflite
    det, lmk = wd / "pose_detection.tflite", wd / "pose_landmark_full.tflite"
    built = BlazePose.from_files(det, lmk, "cpu", trace=True)
    assert len(list(cache.glob("tflite-pose_*.graph"))) == 2

    def no_parse(_data):
        raise AssertionError("the TFLite file was parsed on a cache hit")
    monkeypatch.setattr(tflite, "parse_tflite", no_parse)
    loaded = BlazePose.from_files(det, lmk, "cpu", trace=True)
    rng = np.random.default_rng(0)
    x_det = rng.random((1, 224, 224, 3), dtype=np.float32) * 2 - 1
    x_lmk = rng.random((1, 256, 256, 3), dtype=np.float32)
    for a, b in ((built.detector(x_det), loaded.detector(x_det)), (built.landmark(x_lmk), loaded.landmark(x_lmk))):
        assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))
    # a damaged cache file: the parse and the trace come back, the result is the same
    monkeypatch.undo()
    monkeypatch.setenv(graph_cache.ENV, str(cache))
    for f in cache.glob("tflite-pose_detection*.graph"):
        f.write_bytes(f.read_bytes()[:-100])
    again = BlazePose.from_files(det, lmk, "cpu", trace=True)
    assert all(np.array_equal(p, q) for p, q in zip(built.detector(x_det), again.detector(x_det)))


def test_first_call_of_a_cached_graph_needs_no_warm_up(cache):
    """On the CPU graphs run with the plain executor, so the first photo is not slowed by the
    profiling executor's specialising calls (and none are spent at load)."""
    from ml import fastpath
    assert fastpath.plain_executor("cpu") is False
    assert torch._C._get_graph_executor_optimize() is False
    with fastpath.tracing():       # building needs the optimising executor (inlining) ...
        assert torch._C._get_graph_executor_optimize() is True
        mod = _frozen()
    assert torch._C._get_graph_executor_optimize() is False      # ... and gives it back
    with torch.no_grad():
        assert torch.allclose(mod(torch.ones(1, 3, 8, 8)), _Net().eval()(torch.ones(1, 3, 8, 8)), atol=1e-5)
