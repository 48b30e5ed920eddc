"""Bounded fuzzing: mutated image files may only raise ImageLoadError; mutated result
documents may only raise DocumentError."""
from __future__ import annotations

import atexit
import copy
import io
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ml.io import ImageLoadError, load_image
from studio_app.core import result as R
from tests.badinputs import adobe_rgb_icc, make_dng, upright_pattern

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# mutated headers may claim big sizes; keep any accidental decode small and fast
LIMIT = dict(max_pixels=4_000_000)

_WORK = Path(tempfile.mkdtemp(prefix="fuzz_io_"))
atexit.register(shutil.rmtree, _WORK, True)


def _seed_files() -> dict[str, bytes]:
    a = upright_pattern(24, 16)
    ex = Image.Exif()
    ex[0x0112] = 6
    out = {}
    for fmt, kw in [("JPEG", dict(quality=80, exif=ex.tobytes(), icc_profile=adobe_rgb_icc())),
                    ("PNG", dict(icc_profile=adobe_rgb_icc())), ("TIFF", {}),
                    ("WEBP", dict(lossless=True)), ("GIF", {}), ("BMP", {})]:
        b = io.BytesIO()
        Image.fromarray(a).save(b, fmt, **kw)
        out[fmt] = b.getvalue()
    b = io.BytesIO()
    Image.fromarray(a).convert("RGBA").save(b, "PNG")
    out["PNGA"] = b.getvalue()
    b = io.BytesIO()
    Image.new("CMYK", (16, 8), (10, 200, 30, 5)).save(b, "JPEG")
    out["CMYK"] = b.getvalue()
    out["DNG"] = make_dng(np.full((24, 32, 3), 0.3))
    return out


SEEDS = _seed_files()
EXT = {"JPEG": ".jpg", "PNG": ".png", "PNGA": ".png", "TIFF": ".tif", "WEBP": ".webp",
       "GIF": ".gif", "BMP": ".bmp", "CMYK": ".jpg", "DNG": ".dng"}


def test_seeds_are_valid():
    for name, data in SEEDS.items():
        p = _WORK / f"seed_{name}{EXT[name]}"
        p.write_bytes(data)
        img = load_image(p)
        assert img.width > 0 and img.height > 0, name


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("junk"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("overwrite"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("header_big"), st.integers(0, 40), st.sampled_from([b"\xff\xff", b"\x7f\xff\xff\xff", b"\0\0"])),
)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, arg in ops:
        if not b:
            break
        pos %= len(b)
        if op == "flip":
            b[pos] ^= 1 << arg
        elif op == "truncate":
            del b[max(1, pos):]
        elif op == "junk":
            b[pos:pos] = arg
        elif op in ("overwrite", "header_big"):
            b[pos:pos + len(arg)] = arg
        elif op == "delete":
            del b[pos:pos + arg]
    return bytes(b)


def _check_load(data: bytes, ext: str) -> None:
    p = _WORK / f"mut{ext}"
    p.write_bytes(data)
    try:
        img = load_image(p, **LIMIT)
    except ImageLoadError as exc:
        msg = str(exc)
        assert msg.startswith("Cannot load 'mut") and len(msg) < 2000
        return
    assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
    assert img.rgb.flags.c_contiguous
    assert p.read_bytes() == data


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), ops=st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_mutated_images(seed, ops):
    _check_load(_mutate(SEEDS[seed], ops), EXT[seed])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.sampled_from(sorted(SEEDS)), ext=st.sampled_from([".jpg", ".png", ".nef", ".cr3", ".tif", ".txt"]),
       junk=st.binary(max_size=64))
def test_fuzz_wrong_extension_and_prefix(seed, ext, junk):
    _check_load(junk + SEEDS[seed], ext)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.binary(max_size=512))
def test_fuzz_random_bytes(data):
    _check_load(data, ".jpg")


# ---------------------------------------------------------------------------------------
# result documents
# ---------------------------------------------------------------------------------------
def _valid_doc() -> dict:
    kps = [{"name": n, "x": 10.0 + i, "y": 20.0 + i, "score": 0.9}
           for i, n in enumerate(R.KEYPOINT_NAMES)]
    return {
        "schema_version": 1,
        "source": {"path": "../in/IMG_1.jpg", "sha256": "ab" * 32, "width": 4000, "height": 6000},
        "kind": "person", "kind_confidence": 0.97, "mask": "mask.png", "keypoints": kps,
        "items": [
            {"zone": "top", "box": [10, 20, 300, 400], "file": "top.jpg",
             "swatch": {"rgb": [200, 10, 10], "hex": "#c80a0a", "family": "red", "file": "top_swatch.png"},
             "locked": False},
            {"zone": "full", "box": [0, 0, 4000, 6000], "file": "full.jpg", "swatch": None},
        ],
        "needs_review": False, "warnings": ["w"],
        "review": {"status": "pending", "note": ""}, "model_mask": None,
        "engines": {"pose": "blazepose"}, "kind_override": False,
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_docs(draw):
    doc = _valid_doc()
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "replace", "wrap"]))
        if not path:
            if action == "replace":
                doc = draw(json_values)
            continue
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            if action == "delete":
                del parent[key]
            elif action == "wrap":
                parent[key] = [parent[key]]
            else:
                parent[key] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            pass
        if not isinstance(doc, (dict, list)):
            break
    return doc


def _from_dict_ok_or_document_error(d):
    try:
        doc = R.ResultDocument.from_dict(d)
    except R.DocumentError as exc:
        assert str(exc)
        return None
    # what loads must be usable: it serialises, and reads back the same
    again = R.ResultDocument.from_dict(json.loads(json.dumps(doc.to_dict())))
    assert again.to_dict() == doc.to_dict() or _has_nan(doc.to_dict())
    return doc


def _has_nan(o) -> bool:
    if isinstance(o, float):
        return math.isnan(o)
    if isinstance(o, dict):
        return any(_has_nan(v) for v in o.values())
    if isinstance(o, list):
        return any(_has_nan(v) for v in o)
    return False


def test_valid_document_round_trips():
    doc = _from_dict_ok_or_document_error(_valid_doc())
    assert doc is not None and doc.item("top").swatch.family == "red"


@FUZZ
@given(d=mutated_docs())
def test_fuzz_result_from_dict(d):
    _from_dict_ok_or_document_error(copy.deepcopy(d))


@FUZZ
@given(ops=st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_result_load_mutated_text(ops):
    text = json.dumps(_valid_doc(), indent=1).encode()
    folder = _WORK / "doc"
    folder.mkdir(exist_ok=True)
    (folder / R.RESULT_NAME).write_bytes(_mutate(text, ops))
    try:
        R.load(folder)
    except R.DocumentError:
        pass


@pytest.mark.parametrize("text", [
    "[" * 100_000,                                            # nesting beyond the JSON parser
    '{"schema_version": 1, "source": {"path": "a", "sha256": "b", "width": Infinity, "height": 1}}',
    json.dumps({**_valid_doc(), "items": [{"zone": "top", "box": [float("nan"), 0, 1, 1], "file": "x"}]}),
    json.dumps({**_valid_doc(), "items": [{"zone": "top", "box": [0, 0, float("inf"), 1], "file": "x"}]}),
    "\ufeff" + json.dumps(_valid_doc()),
    b"\xff\xfe\x00garbage".decode("latin-1"),
])
def test_result_load_hostile_texts(tmp_path, text):
    (tmp_path / R.RESULT_NAME).write_text(text, encoding="utf-8")
    try:
        doc = R.load(tmp_path)
    except R.DocumentError as exc:
        assert str(exc)
    else:
        for it in doc.items:
            assert all(math.isfinite(v) for v in it.box)
        assert doc.source.width > 0
