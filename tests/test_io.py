"""ml.io.load_image: orientation, colour management, bit depth, CMYK, RAW, reduce, safety,
and the real photos of the dev set."""
from __future__ import annotations

import hashlib
import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from ml.io import (RAW_EXTENSIONS, SUPPORTED_EXTENSIONS, ImageLoadError, exif_for_export,
                   is_supported, load_image, sha256_file)
from tests.badinputs import (ADOBE_TEST_COLOUR, QUADRANT_COLOURS, adobe_rgb_icc, adobe_rgb_to_srgb,
                             jpeg_bytes, make_dng, png_bytes, stored_for_orientation,
                             upright_pattern, webp_bytes)
from tests.conftest import dev_file


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _exif(tag):
    ex = Image.Exif()
    ex[0x0112] = tag
    return ex.tobytes()


def _quadrants(rgb):
    h, w = rgb.shape[:2]
    return {"top_left": rgb[h // 4, w // 4], "top_right": rgb[h // 4, 3 * w // 4],
            "bottom_left": rgb[3 * h // 4, w // 4], "bottom_right": rgb[3 * h // 4, 3 * w // 4]}


def _assert_upright(rgb, tol=12):
    for q, got in _quadrants(rgb).items():
        assert np.abs(got.astype(int) - QUADRANT_COLOURS[q]).max() <= tol, (q, got)


# ---------------------------------------------------------------------------------------
# orientation
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_exif_orientation_gives_upright_photo(tmp_path, tag, fmt):
    stored = stored_for_orientation(upright_pattern(96, 64), tag)
    writer = {"jpeg": jpeg_bytes, "png": png_bytes, "webp": webp_bytes}[fmt]
    p = _write(tmp_path, f"o{tag}.{fmt}", writer(stored, exif=_exif(tag)))
    img = load_image(p)
    assert (img.width, img.height) == (96, 64)
    _assert_upright(img.rgb)
    # independent cross-check with Pillow's own exif_transpose
    ref = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
    assert ref.shape == img.rgb.shape
    assert np.abs(ref.astype(int) - img.rgb).max() <= 1
    assert (tag == 1) != any("orientation" in n for n in img.notes)


@pytest.mark.parametrize("tag", [3, 6, 8])
def test_orientation_with_reduce_is_applied_once(tmp_path, tag):
    stored = stored_for_orientation(upright_pattern(320, 192), tag)
    p = _write(tmp_path, "o.jpg", jpeg_bytes(stored, exif=_exif(tag)))
    img = load_image(p, reduce=4)
    assert (img.width, img.height) == (80, 48)
    _assert_upright(img.rgb, tol=20)


def test_exif_bytes_kept_and_export_resets_orientation(tmp_path):
    stored = stored_for_orientation(upright_pattern(48, 32), 6)
    p = _write(tmp_path, "o6.jpg", jpeg_bytes(stored, exif=_exif(6)))
    img = load_image(p)
    assert img.exif is not None
    ex = Image.Exif()
    ex.load(img.exif)
    assert ex[0x0112] == 6                        # original bytes, untouched
    out = exif_for_export(img.exif)
    ex2 = Image.Exif()
    ex2.load(out)
    assert ex2[0x0112] == 1
    # writing the upright pixels with that EXIF gives a file every viewer shows upright
    b = io.BytesIO()
    Image.fromarray(img.rgb).save(b, "JPEG", exif=out, quality=95)
    again = load_image(_write(tmp_path, "again.jpg", b.getvalue()))
    assert (again.width, again.height) == (48, 32)
    _assert_upright(again.rgb, tol=20)
    assert exif_for_export(None) is None
    assert exif_for_export(b"garbage") is None


def test_invalid_orientation_value_is_ignored_with_warning(tmp_path):
    p = _write(tmp_path, "o9.jpg", jpeg_bytes(upright_pattern(48, 32), exif=_exif(9)))
    img = load_image(p)
    assert (img.width, img.height) == (48, 32)
    _assert_upright(img.rgb)
    assert any("orientation" in w for w in img.warnings)


# ---------------------------------------------------------------------------------------
# colour management
# ---------------------------------------------------------------------------------------
def test_adobe_rgb_colour_converted_to_srgb(tmp_path):
    want = adobe_rgb_to_srgb(ADOBE_TEST_COLOUR)
    # the test is meaningful: ignoring the profile would be far off
    assert np.abs(want - np.array(ADOBE_TEST_COLOUR)).max() > 15
    icc = adobe_rgb_icc()
    a = np.full((32, 32, 3), ADOBE_TEST_COLOUR, np.uint8)
    for name, data in [("a.jpg", jpeg_bytes(a, icc_profile=icc, quality=100, subsampling=0)),
                       ("a.png", png_bytes(a, icc_profile=icc)),
                       ("a.tif", (lambda b: (Image.fromarray(a).save(b, "TIFF", icc_profile=icc),
                                             b.getvalue())[1])(io.BytesIO()))]:
        img = load_image(_write(tmp_path, name, data))
        got = img.rgb[16, 16].astype(int)
        assert np.abs(got - want).max() <= 3, (name, got, want)
        assert img.icc_profile == icc                       # original profile kept
        assert any("to sRGB" in n for n in img.notes)


def test_srgb_profile_is_not_converted(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    a = np.full((16, 16, 3), (12, 200, 99), np.uint8)
    img = load_image(_write(tmp_path, "s.png", png_bytes(a, icc_profile=srgb)))
    assert tuple(img.rgb[8, 8]) == (12, 200, 99)
    assert img.icc_profile == srgb


def test_alpha_and_adobe_profile_together(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., :3] = ADOBE_TEST_COLOUR
    a[..., 3] = 255
    a[:, 4:, 3] = 0
    img = load_image(_write(tmp_path, "aa.png", png_bytes(Image.fromarray(a, "RGBA"),
                                                          icc_profile=adobe_rgb_icc())))
    assert np.abs(img.rgb[4, 1].astype(int) - adobe_rgb_to_srgb(ADOBE_TEST_COLOUR)).max() <= 3
    assert tuple(img.rgb[4, 6]) == (255, 255, 255)


def test_icc_of_wrong_colour_space_is_ignored(tmp_path):
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    a = np.full((8, 8, 3), (40, 90, 160), np.uint8)
    img = load_image(_write(tmp_path, "w.jpg", jpeg_bytes(a, icc_profile=lab)))
    assert np.abs(img.rgb[4, 4].astype(int) - (40, 90, 160)).max() <= 3
    assert img.warnings


# ---------------------------------------------------------------------------------------
# bit depth, CMYK, greyscale
# ---------------------------------------------------------------------------------------
def test_16bit_rgb_png_is_scaled_not_clipped(tmp_path):
    a = np.zeros((4, 6, 3), np.uint16)
    a[..., 0] = 65535
    a[..., 1] = 128 * 257
    a[..., 2] = 20 * 257
    ok, buf = cv2.imencode(".png", a[..., ::-1])
    assert ok
    img = load_image(_write(tmp_path, "rgb16.png", buf.tobytes()))
    assert tuple(int(v) for v in img.rgb[2, 3]) == (255, 128, 20)


def test_16bit_grey_tiff_full_range(tmp_path):
    ramp = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16)[None].repeat(2, axis=0)
    b = io.BytesIO()
    Image.fromarray(ramp).save(b, "TIFF")
    img = load_image(_write(tmp_path, "g16.tif", b.getvalue()))
    assert (img.rgb[0, :, 0] == np.arange(256)).all()


@pytest.mark.parametrize("ink,want", [
    ((255, 0, 0, 0), (0, 255, 255)),        # cyan
    ((0, 255, 0, 0), (255, 0, 255)),        # magenta
    ((0, 0, 255, 0), (255, 255, 0)),        # yellow
    ((0, 0, 0, 255), (0, 0, 0)),            # black
    ((0, 0, 0, 0), (255, 255, 255)),        # paper white
    ((0, 0, 0, 128), (127, 127, 127)),      # 50 % black
    ((128, 0, 0, 128), (64, 127, 127)),     # inks multiply, they do not add
])
def test_cmyk_jpeg_colours(tmp_path, ink, want):
    data = jpeg_bytes(Image.new("CMYK", (16, 16), ink), quality=100)
    assert b"Adobe" in data          # libjpeg writes Adobe (inverted) CMYK
    img = load_image(_write(tmp_path, "c.jpg", data))
    assert np.abs(img.rgb[8, 8].astype(int) - want).max() <= 4, img.rgb[8, 8]
    assert any("CMYK" in n for n in img.notes)


def test_cmyk_tiff(tmp_path):
    b = io.BytesIO()
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(b, "TIFF")
    img = load_image(_write(tmp_path, "c.tif", b.getvalue()))
    assert tuple(img.rgb[5, 5]) == (255, 0, 0)


def test_greyscale_becomes_three_equal_channels(tmp_path):
    g = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    img = load_image(_write(tmp_path, "g.png", png_bytes(Image.fromarray(g, "L"))))
    assert (img.rgb[..., 0] == g).all() and (img.rgb[..., 1] == g).all() and (img.rgb[..., 2] == g).all()


# ---------------------------------------------------------------------------------------
# reduce
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduce", [1, 2, 4, 8])
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_reduce_sizes(tmp_path, reduce, fmt):
    a = upright_pattern(803, 601)
    data = jpeg_bytes(a) if fmt == "jpeg" else png_bytes(a)
    img = load_image(_write(tmp_path, f"r.{fmt}", data), reduce=reduce)
    assert (img.width, img.height) == (-(-803 // reduce), -(-601 // reduce))
    _assert_upright(img.rgb, tol=20)
    if reduce > 1 and fmt == "jpeg":
        assert any("reduced scale" in n for n in img.notes)


def test_reduce_must_be_power_of_two(tmp_path):
    p = _write(tmp_path, "x.jpg", jpeg_bytes(upright_pattern(16, 16)))
    with pytest.raises(ImageLoadError, match="reduce"):
        load_image(p, reduce=3)


# ---------------------------------------------------------------------------------------
# RAW
# ---------------------------------------------------------------------------------------
def _dng_scene():
    sc = np.zeros((48, 64, 3))
    sc[:, :32] = (0.6, 0.08, 0.05)     # red object (linear camera RGB)
    sc[:, 32:] = 0.18                  # grey card
    return sc


def test_dng_is_developed_to_srgb(tmp_path):
    img = load_image(_write(tmp_path, "tiny.dng", make_dng(_dng_scene())))
    assert img.format == "RAW"
    assert (img.width, img.height) == (64, 48)
    red = img.rgb[24, 8].astype(int)
    grey = img.rgb[24, 56].astype(int)
    assert red[0] > 200 and red[0] - red[1] > 100 and red[0] - red[2] > 100
    assert np.ptp(grey) <= 6 and 60 < grey.mean() < 200    # neutral: camera white balance
    assert any("RAW" in n for n in img.notes)


def test_dng_orientation_and_half_size(tmp_path):
    p = _write(tmp_path, "rot.dng", make_dng(_dng_scene(), orientation=6))
    img = load_image(p)
    assert (img.width, img.height) == (48, 64)        # rotated 90° clockwise by LibRaw
    top, bottom = img.rgb[8, 24].astype(int), img.rgb[56, 24].astype(int)
    assert top[0] - top[2] > 100 and np.ptp(bottom) <= 8   # red (left) is now on top
    small = load_image(p, reduce=2)
    assert (small.width, small.height) == (24, 32)


def test_dng_named_tif_is_developed_as_raw(tmp_path):
    img = load_image(_write(tmp_path, "scan.tif", make_dng(_dng_scene())))
    assert img.format == "RAW" and (img.width, img.height) == (64, 48)


@pytest.mark.parametrize("name", ["IMG_0001.CR2", "DSC_0001.NEF", "A7_0001.ARW", "X.RAF",
                                  "P.ORF", "P.RW2", "IMG.CR3", "x.dng"])
def test_corrupt_raw_gives_clear_error(tmp_path, name):
    rng = np.random.default_rng(1)
    p = _write(tmp_path, name, b"II*\0\x08\0\0\0" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageLoadError) as ei:
        load_image(p)
    msg = str(ei.value)
    assert name in msg and "RAW" in msg and ei.value.reason == "raw"


# ---------------------------------------------------------------------------------------
# files, hashing, errors
# ---------------------------------------------------------------------------------------
def test_sha256_matches_file_and_file_untouched(tmp_path):
    data = jpeg_bytes(upright_pattern(64, 48))
    p = _write(tmp_path, "h.jpg", data)
    st = os.stat(p)
    img = load_image(p)
    assert img.sha256 == hashlib.sha256(data).hexdigest() == sha256_file(p)
    assert p.read_bytes() == data and os.stat(p).st_mtime_ns == st.st_mtime_ns
    assert img.path == str(p) and img.format == "JPEG"


def test_accepts_pathlike_and_str(tmp_path):
    p = _write(tmp_path, "p.png", png_bytes(upright_pattern(8, 8)))
    assert load_image(str(p)).sha256 == load_image(p).sha256


def test_permission_denied_message(tmp_path, monkeypatch):
    p = _write(tmp_path, "secret.jpg", jpeg_bytes(upright_pattern(8, 8)))
    import ml.io as mio

    def deny(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(mio.os, "open", deny)
    with pytest.raises(ImageLoadError) as ei:
        load_image(p)
    assert "secret.jpg" in str(ei.value) and "permission" in str(ei.value).lower()
    assert ei.value.reason == "permission"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_real(tmp_path):
    p = _write(tmp_path, "locked.jpg", jpeg_bytes(upright_pattern(8, 8)))
    p.chmod(0)
    with pytest.raises(ImageLoadError, match="permission"):
        load_image(p)


def test_file_growing_while_read_is_reported(tmp_path, monkeypatch):
    p = _write(tmp_path, "copying.jpg", jpeg_bytes(upright_pattern(8, 8)))
    import ml.io as mio
    real_fstat = os.fstat

    def fake(fd):
        st = real_fstat(fd)
        vals = list(st)
        vals[6] = st.st_size + 1000               # st_size: the copy is still going on
        return os.stat_result(vals)
    monkeypatch.setattr(mio.os, "fstat", fake)
    with pytest.raises(ImageLoadError) as ei:
        load_image(p)
    assert ei.value.reason == "changed" and "copied" in str(ei.value)


def test_custom_max_pixels_refuses_before_decoding(tmp_path):
    p = _write(tmp_path, "big.jpg", jpeg_bytes(upright_pattern(400, 300)))
    with pytest.raises(ImageLoadError, match="400 x 300"):
        load_image(p, max_pixels=100_000)
    assert load_image(p, max_pixels=120_000).width == 400


def test_default_limit_allows_large_camera_files():
    import inspect
    default = inspect.signature(load_image).parameters["max_pixels"].default
    assert default >= 60_000_000 * 3       # a 61 MP full frame with margin


def test_supported_extensions():
    for ext in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif",
                ".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2"):
        assert ext in SUPPORTED_EXTENSIONS
        assert is_supported(f"IMG_0001{ext.upper()}")
    assert RAW_EXTENSIONS <= SUPPORTED_EXTENSIONS
    assert not is_supported("notes.txt") and not is_supported("IMG_1.xmp")
    assert not is_supported("._IMG_0001.JPG")        # macOS resource fork companion
    assert not is_supported("jpg")


# ---------------------------------------------------------------------------------------
# real photos
# ---------------------------------------------------------------------------------------
def test_dev_photos_load_with_manifest_sizes(dev_manifest):
    files = dev_manifest["files"]
    by_folder: dict[str, list] = {}
    for f in files:
        by_folder.setdefault(os.path.dirname(f["file"]), []).append(f)
    picks = [fs[0] for fs in by_folder.values()]
    picks += [f for f in files if f["file"].endswith(".png")]
    assert len(picks) >= 10
    for f in picks:
        img = load_image(dev_file(f["file"]))
        assert (img.width, img.height) == (f["width"], f["height"]), f["file"]
        assert img.rgb.dtype == np.uint8 and img.rgb.flags.c_contiguous
        assert 5 < float(img.rgb.mean()) < 250, f["file"]     # a real picture, not blank


def test_dev_large_photo_reduced():
    p = dev_file("persons/u2net_humans/julia_trotti_17.jpg")
    full = load_image(p)
    small = load_image(p, reduce=4)
    assert (small.width, small.height) == (-(-full.width // 4), -(-full.height // 4))
    # the reduced decode is the same picture
    ref = cv2.resize(full.rgb, (small.width, small.height), interpolation=cv2.INTER_AREA)
    assert np.abs(ref.astype(int) - small.rgb).mean() < 4
    assert full.icc_profile and full.sha256 == sha256_file(p)


def test_dev_rgba_png_composited_on_white():
    img = load_image(dev_file("cutouts/pymatting/lemur.png"))
    assert (img.width, img.height) == (680, 440)
    assert any("white" in n for n in img.notes) or img.rgb.mean() > 0
