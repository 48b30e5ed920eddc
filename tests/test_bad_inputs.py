"""Every entry of the bad-input corpus (tests/badinputs.py) gives the right picture or a
clear ImageLoadError, and the source file is never modified."""
from __future__ import annotations

import hashlib
import os

import pytest
from PIL import ImageFile

from ml.io import ImageLoadError, load_image
from tests.badinputs import BUILDERS, make_corpus


def _fingerprint(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not os.path.isfile(path):
        return ("dir", st.st_mtime_ns)
    try:
        data = open(path, "rb").read()
    except PermissionError:
        return ("unreadable", st.st_mtime_ns, st.st_size)
    return (hashlib.sha256(data).hexdigest(), st.st_mtime_ns, st.st_size, st.st_mode)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__[2:])
def test_corpus_entry(builder, tmp_path):
    case = builder(tmp_path)
    before = _fingerprint(case.path)
    try:
        img = load_image(case.path, **case.kwargs)
    except ImageLoadError as exc:
        msg = str(exc)
        assert case.expect == "error", f"{case.name} should load but gave: {msg}"
        assert case.keyword.lower() in msg.lower(), f"{case.name}: {msg!r} lacks {case.keyword!r}"
        # the operator is told which file and what to do
        assert case.path.name in msg
        assert msg.startswith("Cannot load") and "Traceback" not in msg
        assert len(msg.split(". ")) >= 2
        assert exc.reason and exc.path == str(case.path)
    else:
        assert case.expect == "loads", f"{case.name} should fail with {case.keyword!r}"
        assert img.rgb.dtype.name == "uint8" and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
        assert img.rgb.flags.c_contiguous and img.rgb.flags.writeable
        if case.size is not None:
            assert (img.width, img.height) == case.size
        if case.check is not None:
            case.check(img)
        if case.note:
            assert any(case.note.lower() in n.lower() for n in img.notes), img.notes
        if case.warning:
            assert any(case.warning.lower() in w.lower() for w in img.warnings), img.warnings
        data = open(case.path, "rb").read()
        assert img.sha256 == hashlib.sha256(data).hexdigest()
    assert _fingerprint(case.path) == before, "the source file was modified"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corpus_builds_unique_files(tmp_path):
    cases = make_corpus(tmp_path / "corpus")
    names = [c.name for c in cases]
    assert len(names) == len(set(names))
    paths = [c.path for c in cases]
    assert len(paths) == len(set(paths))
    # every listed kind of trouble is present
    for wanted in ("empty", "truncated_jpeg", "png_named_jpg", "text_named_jpg", "png_bomb",
                   "huge_20000", "one_pixel", "tiff16_rgb", "cmyk_jpeg", "greyscale_jpeg",
                   "png_alpha", "animated_gif", "corrupt_exif", "corrupt_icc", "non_ascii_name",
                   "long_name", "deleted", "adobe_rgb_jpeg", "corrupt_cr2", "corrupt_nef",
                   *[f"orientation_{t}" for t in range(1, 9)]):
        assert wanted in names
    assert len(os.fsencode(next(c.path for c in cases if c.name == "long_name").name)) >= 250


def test_corpus_files_are_small(tmp_path):
    cases = make_corpus(tmp_path / "c")
    total = sum(c.path.stat().st_size for c in cases if c.path.is_file())
    assert total < 2_000_000     # cheap to generate in any test


def test_reduce_gives_ceil_size_for_every_loadable_entry(tmp_path):
    for case in make_corpus(tmp_path / "r"):
        if case.expect != "loads" or case.kwargs or case.size is None:
            continue
        img = load_image(case.path, reduce=4)
        w, h = case.size
        assert (img.width, img.height) == (-(-w // 4), -(-h // 4)), case.name
        assert img.rgb.flags.c_contiguous and img.rgb.flags.writeable
