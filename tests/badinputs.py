"""Generator of the bad-input corpus: awkward, damaged and hostile image files, written into
a folder on demand (nothing binary lives in git).

Each builder writes one file and returns a :class:`Case` saying what ``ml.io.load_image``
must do with it: ``"loads"`` (with the expected upright size and an optional pixel check)
or ``"error"`` (an ``ImageLoadError`` whose message contains ``keyword``).

    from tests.badinputs import make_corpus
    for case in make_corpus(tmp_path): ...

GUI/CLI tests can use the same corpus to check that a bad file is reported, not fatal.
Builders are cheap (the biggest, a 20000 x 20000 PNG, is a 1-bit image of ~60 KB made in
well under a second).
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

__all__ = [
    "Case", "make_corpus", "BUILDERS", "QUADRANT_COLOURS", "upright_pattern", "stored_for_orientation",
    "adobe_rgb_icc", "write_tiff", "adobe_rgb_to_srgb", "make_dng", "jpeg_bytes", "png_bytes",
    "tiff_bytes", "webp_bytes",
]


@dataclass
class Case:
    name: str
    path: Path
    expect: str                                   # "loads" or "error"
    size: tuple[int, int] | None = None           # (width, height) of the upright result
    keyword: str | None = None                    # in the error message (lower-case match)
    check: Callable[[object], None] | None = None  # extra assertions on the LoadedImage
    note: str | None = None                       # substring expected in notes
    warning: str | None = None                    # substring expected in warnings
    kwargs: dict = field(default_factory=dict)    # extra load_image arguments

    def __repr__(self) -> str:  # short ids in pytest output
        return f"Case({self.name})"


# ---------------------------------------------------------------------------------------
# pixel helpers
# ---------------------------------------------------------------------------------------
QUADRANT_COLOURS = {
    "top_left": (220, 30, 30),      # red
    "top_right": (30, 200, 30),     # green
    "bottom_left": (30, 30, 220),   # blue
    "bottom_right": (240, 240, 40),  # yellow
}


def upright_pattern(w: int = 96, h: int = 64) -> np.ndarray:
    """A landscape picture whose four quadrants have different colours (asymmetric under
    every flip/rotation)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = QUADRANT_COLOURS["top_left"]
    a[: h // 2, w // 2:] = QUADRANT_COLOURS["top_right"]
    a[h // 2:, : w // 2] = QUADRANT_COLOURS["bottom_left"]
    a[h // 2:, w // 2:] = QUADRANT_COLOURS["bottom_right"]
    return a


def stored_for_orientation(upright: np.ndarray, tag: int) -> np.ndarray:
    """The pixels a camera stores so that a viewer applying EXIF orientation ``tag`` shows
    ``upright`` (EXIF 2.3, tag 0x0112: 1 normal, 2 mirror H, 3 rotate 180, 4 mirror V,
    5 transpose, 6 'rotate 90 CW to view', 7 transverse, 8 'rotate 90 CCW to view')."""
    u = upright
    inverse = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, 1),      # viewer rotates CW, so the camera stored it CCW
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, -1),
    }[tag]
    return np.ascontiguousarray(inverse(u))


def _noise(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    return np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def jpeg_bytes(a: np.ndarray | Image.Image, **kw) -> bytes:
    im = a if isinstance(a, Image.Image) else Image.fromarray(a)
    b = io.BytesIO()
    kw.setdefault("quality", 95)
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def png_bytes(a: np.ndarray | Image.Image, **kw) -> bytes:
    im = a if isinstance(a, Image.Image) else Image.fromarray(a)
    b = io.BytesIO()
    im.save(b, "PNG", **kw)
    return b.getvalue()


def tiff_bytes(a: np.ndarray | Image.Image, **kw) -> bytes:
    im = a if isinstance(a, Image.Image) else Image.fromarray(a)
    b = io.BytesIO()
    im.save(b, "TIFF", **kw)
    return b.getvalue()


def webp_bytes(a: np.ndarray | Image.Image, **kw) -> bytes:
    im = a if isinstance(a, Image.Image) else Image.fromarray(a)
    b = io.BytesIO()
    kw.setdefault("lossless", True)
    im.save(b, "WEBP", **kw)
    return b.getvalue()


def _exif_with_orientation(tag: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = tag
    ex[0x010F] = "BadInputs"     # Make
    return ex.tobytes()


# ---------------------------------------------------------------------------------------
# colour: a real Adobe RGB (1998) ICC profile, built byte by byte
# ---------------------------------------------------------------------------------------
_D65 = np.array([0.95047, 1.0, 1.08883])
_D50 = np.array([0.96422, 1.0, 0.82521])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])
ADOBE_GAMMA = 563 / 256          # 2.19921875, exactly representable in u8Fixed8
ADOBE_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))


def rgb_to_xyz_matrix(primaries, white=_D65) -> np.ndarray:
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    s = np.linalg.solve(xyz, white)
    return xyz * s


def _bradford(src=_D65, dst=_D50) -> np.ndarray:
    lms_s, lms_d = _BRADFORD @ src, _BRADFORD @ dst
    return np.linalg.inv(_BRADFORD) @ np.diag(lms_d / lms_s) @ _BRADFORD


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _icc_xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _icc_desc(text: str) -> bytes:
    a = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(a)) + a
            + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67)


def _icc_text(text: str) -> bytes:
    return b"text" + b"\0" * 4 + text.encode("ascii") + b"\0"


def _icc_curve_gamma(g: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(round(g * 256))) + b"\0\0"


def adobe_rgb_icc(description: str = "Compatible with Adobe RGB (1998) - test") -> bytes:
    """ICC v2 matrix/TRC display profile for Adobe RGB (1998): D50-adapted colorants
    (Bradford), gamma 563/256."""
    m = _bradford() @ rgb_to_xyz_matrix(ADOBE_PRIMARIES)
    curve = _icc_curve_gamma(ADOBE_GAMMA)
    tags = [
        (b"desc", _icc_desc(description)),
        (b"cprt", _icc_text("No copyright, test data")),
        (b"wtpt", _icc_xyz(*_D50)),
        (b"rXYZ", _icc_xyz(*m[:, 0])),
        (b"gXYZ", _icc_xyz(*m[:, 1])),
        (b"bXYZ", _icc_xyz(*m[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    table = struct.pack(">I", len(tags))
    body = b""
    for sig, blob in tags:
        while (offset + len(body)) % 4:
            body += b"\0"
        table += sig + struct.pack(">II", offset + len(body), len(blob))
        body += blob
    size = 128 + table_len + len(body)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr"
              + b"RGB " + b"XYZ " + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp"
              + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0)
              + _s15(_D50[0]) + _s15(_D50[1]) + _s15(_D50[2]) + b"\0" * 4)
    header += b"\0" * (128 - len(header))
    return header + table + body


def _srgb_encode(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def adobe_rgb_to_srgb(rgb) -> np.ndarray:
    """Reference conversion done with plain matrix algebra in D65 (no ICC machinery):
    Adobe RGB 8-bit -> sRGB 8-bit (relative colorimetric, clipped)."""
    v = np.asarray(rgb, np.float64) / 255.0
    lin = v ** ADOBE_GAMMA
    xyz = rgb_to_xyz_matrix(ADOBE_PRIMARIES) @ lin
    srgb_lin = np.linalg.solve(rgb_to_xyz_matrix(SRGB_PRIMARIES), xyz)
    return np.rint(_srgb_encode(srgb_lin) * 255).astype(int)


# ---------------------------------------------------------------------------------------
# a minimal TIFF writer (16-bit TIFF and DNG without extra packages)
# ---------------------------------------------------------------------------------------
_TIFF_TYPES = {"BYTE": (1, "B"), "ASCII": (2, "s"), "SHORT": (3, "H"), "LONG": (4, "I"),
               "RATIONAL": (5, "II"), "SRATIONAL": (10, "ii")}


def write_tiff(entries: list[tuple[int, str, object]], pixel_data: bytes) -> bytes:
    """Little-endian single-IFD TIFF. ``entries``: (tag, type, values). Tags 273
    (StripOffsets) and 279 (StripByteCounts) are filled in for one strip."""
    entries = [e for e in entries if e[0] not in (273, 279)]
    entries += [(273, "LONG", [0]), (279, "LONG", [len(pixel_data)])]
    entries.sort(key=lambda e: e[0])
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_offset = ifd_offset + ifd_size
    extra = b""
    packed = []
    for tag, typ, vals in entries:
        code, fmt = _TIFF_TYPES[typ]
        if typ == "ASCII":
            raw = str(vals).encode("ascii") + b"\0"
            count = len(raw)
        elif typ in ("RATIONAL", "SRATIONAL"):
            raw = b"".join(struct.pack("<" + fmt, *v) for v in vals)
            count = len(vals)
        else:
            raw = struct.pack("<%d%s" % (len(vals), fmt), *vals)
            count = len(vals)
        packed.append([tag, code, count, raw])
    for p in packed:
        if len(p[3]) > 4:
            while len(extra) % 2:
                extra += b"\0"
            p.append(extra_offset + len(extra))
            extra += p[3]
    data_offset = extra_offset + len(extra)
    data_offset += data_offset % 2
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(entries))
    for p in packed:
        tag, code, count, raw = p[:4]
        if tag == 273:
            raw = struct.pack("<I", data_offset)
        if len(raw) > 4:
            out += struct.pack("<HHII", tag, code, count, p[4])
        else:
            out += struct.pack("<HHI", tag, code, count) + raw.ljust(4, b"\0")
    out += struct.pack("<I", 0)
    out += extra
    while len(out) < data_offset:
        out += b"\0"
    out += pixel_data
    return bytes(out)


def tiff16_rgb(a16: np.ndarray) -> bytes:
    h, w, _ = a16.shape
    return write_tiff([(256, "LONG", [w]), (257, "LONG", [h]), (258, "SHORT", [16, 16, 16]),
                       (259, "SHORT", [1]), (262, "SHORT", [2]), (277, "SHORT", [3]),
                       (278, "LONG", [h]), (284, "SHORT", [1])],
                      a16.astype("<u2").tobytes())


def make_dng(scene: np.ndarray, orientation: int = 1, white: int = 4095) -> bytes:
    """A tiny valid DNG: 16-bit RGGB Bayer mosaic of ``scene`` (HxWx3 float in 0..1, linear
    camera RGB, W and H even), camera RGB = linear sRGB primaries, neutral white balance."""
    h, w, _ = scene.shape
    cfa = np.zeros((h, w), np.float64)
    cfa[0::2, 0::2] = scene[0::2, 0::2, 0]
    cfa[0::2, 1::2] = scene[0::2, 1::2, 1]
    cfa[1::2, 0::2] = scene[1::2, 0::2, 1]
    cfa[1::2, 1::2] = scene[1::2, 1::2, 2]
    raw = np.clip(np.rint(cfa * white), 0, white).astype("<u2")
    xyz_to_cam = np.linalg.inv(rgb_to_xyz_matrix(SRGB_PRIMARIES))
    cm = [(int(round(v * 10000)), 10000) for v in xyz_to_cam.ravel()]
    entries = [
        (254, "LONG", [0]), (256, "LONG", [w]), (257, "LONG", [h]), (258, "SHORT", [16]),
        (259, "SHORT", [1]), (262, "SHORT", [32803]), (271, "ASCII", "BadInputs"),
        (272, "ASCII", "TinyDNG"), (274, "SHORT", [orientation]), (277, "SHORT", [1]),
        (278, "LONG", [h]), (284, "SHORT", [1]),
        (33421, "SHORT", [2, 2]), (33422, "BYTE", [0, 1, 1, 2]),
        (50706, "BYTE", [1, 4, 0, 0]), (50707, "BYTE", [1, 1, 0, 0]),
        (50708, "ASCII", "BadInputs TinyDNG"), (50714, "LONG", [0]), (50717, "LONG", [white]),
        (50721, "SRATIONAL", cm), (50728, "RATIONAL", [(1, 1), (1, 1), (1, 1)]),
        (50778, "SHORT", [21]),
    ]
    return write_tiff(entries, raw.tobytes())


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_header_only(w: int, h: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A tiny PNG whose header claims w x h pixels (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) \
        + _png_chunk(b"IEND", b"")


def png_uniform_1bit(w: int, h: int) -> bytes:
    """A real, complete 1-bit PNG of w x h black pixels, streamed (little memory)."""
    row = b"\0" + b"\0" * ((w + 7) // 8)
    comp = zlib.compressobj(9)
    parts = []
    block = row * 256
    left = h
    while left > 0:
        n = min(256, left)
        parts.append(comp.compress(block if n == 256 else row * n))
        left -= n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts)) \
        + _png_chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------
# the builders: each (folder) -> Case
# ---------------------------------------------------------------------------------------
def _write(folder: Path, name: str, data: bytes) -> Path:
    p = Path(folder) / name
    p.write_bytes(data)
    return p


def _near(actual, expected, tol: int, what: str) -> None:
    a = np.asarray(actual, int)
    e = np.asarray(expected, int)
    assert np.all(np.abs(a - e) <= tol), f"{what}: got {a.tolist()}, expected {e.tolist()} (±{tol})"


def _centre(img, fx: float, fy: float):
    return img.rgb[int(img.height * fy), int(img.width * fx)]


def b_empty(d):
    return Case("empty", _write(d, "empty.jpg", b""), "error", keyword="empty")


def b_zeros(d):
    return Case("zeros", _write(d, "zeros.jpg", b"\0" * 4096), "error", keyword="zero bytes")


def b_truncated_jpeg(d):
    data = jpeg_bytes(_noise(320, 240))
    return Case("truncated_jpeg", _write(d, "truncated.jpg", data[: int(len(data) * 0.6)]),
                "error", keyword="truncated")


def b_truncated_jpeg_header(d):
    data = jpeg_bytes(_noise(64, 48))
    return Case("truncated_jpeg_header", _write(d, "cut_header.jpg", data[:300]), "error",
                keyword="truncated")


def b_truncated_png(d):
    data = png_bytes(_noise(200, 150))
    return Case("truncated_png", _write(d, "truncated.png", data[: len(data) // 2]), "error",
                keyword="truncated")


def b_png_named_jpg(d):
    a = upright_pattern(40, 30)
    def check(img):
        _near(_centre(img, 0.25, 0.25), QUADRANT_COLOURS["top_left"], 0, "top-left")
    return Case("png_named_jpg", _write(d, "really_a_png.jpg", png_bytes(a)), "loads",
                size=(40, 30), note="content is PNG", check=check)


def b_jpeg_named_nef(d):
    return Case("jpeg_named_nef", _write(d, "not_raw.nef", jpeg_bytes(_noise(32, 24))), "loads",
                size=(32, 24), note="content is JPEG")


def b_text_named_jpg(d):
    return Case("text_named_jpg",
                _write(d, "notes.jpg", "Shoot list:\n1. red dress\n2. blue jeans\n".encode()),
                "error", keyword="text file")


def b_html_named_jpg(d):
    return Case("html_named_jpg",
                _write(d, "download.jpg", b"<!DOCTYPE html><html><body>404 Not Found</body></html>"),
                "error", keyword="text file")


def b_unknown_binary(d):
    rng = np.random.default_rng(7)
    data = b"\x13\x37" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return Case("unknown_binary", _write(d, "mystery.jpg", data), "error", keyword="not recognised")


def b_heic(d):
    data = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 200
    return Case("heic", _write(d, "IMG_0001.HEIC", data), "error", keyword="heic")


def b_png_bomb(d):
    return Case("png_bomb", _write(d, "bomb.png", png_header_only(100_000, 100_000)), "error",
                keyword="100000 x 100000")


def b_jpeg_bomb(d):
    # a real JPEG header (SOF) patched to claim 60000 x 60000 pixels
    data = bytearray(jpeg_bytes(_noise(16, 16)))
    i = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, i + 5, 60000, 60000)
    return Case("jpeg_bomb", _write(d, "bomb.jpg", bytes(data)), "error", keyword="60000 x 60000")


def b_huge_20000(d):
    return Case("huge_20000", _write(d, "huge_20000.png", png_uniform_1bit(20000, 20000)), "error",
                keyword="20000 x 20000")


def b_huge_allowed_by_limit(d):
    # the same kind of file, smaller: 8192 x 6144 = 50.3 MP must pass the default limit
    def check(img):
        assert int(img.rgb.max()) == 0
    return Case("large_50mp", _write(d, "large_50mp.png", png_uniform_1bit(8192, 6144)), "loads",
                size=(1024, 768), check=check, kwargs={"reduce": 8})


def b_small_limit(d):
    return Case("over_custom_limit", _write(d, "limit.png", png_bytes(_noise(100, 100))), "error",
                keyword="100 x 100", kwargs={"max_pixels": 5000})


def b_one_pixel(d):
    def check(img):
        _near(img.rgb[0, 0], (10, 200, 30), 0, "pixel")
    return Case("one_pixel", _write(d, "one.png", png_bytes(np.array([[[10, 200, 30]]], np.uint8))),
                "loads", size=(1, 1), check=check)


def b_one_pixel_jpeg(d):
    return Case("one_pixel_jpeg", _write(d, "one.jpg", jpeg_bytes(np.full((1, 1, 3), 128, np.uint8))),
                "loads", size=(1, 1), kwargs={"reduce": 8})


def b_tiff16(d):
    a = np.zeros((20, 30, 3), np.uint16)
    a[..., 0] = 65535
    a[..., 1] = 128 * 257
    a[..., 2] = 1000
    def check(img):
        _near(img.rgb[10, 15], (255, 128, 4), 1, "16-bit TIFF colour")
    return Case("tiff16_rgb", _write(d, "sixteen.tif", tiff16_rgb(a)), "loads", size=(30, 20),
                check=check, note="16-bit")


def b_png16_grey(d):
    ramp = np.array([[0, 257 * 100, 32768, 65535]], np.uint16).repeat(4, axis=0)
    def check(img):
        _near(img.rgb[0, :, 0], (0, 100, 128, 255), 0, "16-bit grey ramp")
        assert (img.rgb[..., 0] == img.rgb[..., 1]).all() and (img.rgb[..., 1] == img.rgb[..., 2]).all()
    return Case("png16_grey", _write(d, "grey16.png", png_bytes(Image.fromarray(ramp))), "loads",
                size=(4, 4), check=check, note="16-bit")


def b_cmyk_jpeg(d):
    c = np.zeros((32, 64, 4), np.uint8)
    c[:, :32] = (255, 0, 0, 0)       # cyan ink
    c[:, 32:] = (0, 255, 255, 0)     # magenta + yellow = red
    def check(img):
        _near(_centre(img, 0.25, 0.5), (0, 255, 255), 8, "cyan")
        _near(_centre(img, 0.75, 0.5), (255, 0, 0), 8, "red")
    return Case("cmyk_jpeg", _write(d, "cmyk.jpg", jpeg_bytes(Image.fromarray(c, "CMYK"))), "loads",
                size=(64, 32), check=check, note="CMYK")


def b_greyscale_jpeg(d):
    g = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (24, 1))
    def check(img):
        assert (img.rgb[..., 0] == img.rgb[..., 2]).all()
    return Case("greyscale_jpeg", _write(d, "grey.jpg", jpeg_bytes(Image.fromarray(g, "L"))), "loads",
                size=(48, 24), check=check, note="greyscale")


def b_png_alpha(d):
    a = np.zeros((20, 40, 4), np.uint8)
    a[:, :20] = (255, 0, 0, 128)     # half-transparent red
    a[:, 20:] = (0, 0, 255, 0)       # fully transparent blue
    def check(img):
        _near(img.rgb[10, 5], (255, 127, 127), 1, "half-transparent red on white")
        _near(img.rgb[10, 30], (255, 255, 255), 0, "transparent -> white")
    return Case("png_alpha", _write(d, "alpha.png", png_bytes(Image.fromarray(a, "RGBA"))), "loads",
                size=(40, 20), check=check, note="white")


def b_palette_png(d):
    im = Image.fromarray(upright_pattern(40, 20)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    def check(img):
        _near(_centre(img, 0.25, 0.25), QUADRANT_COLOURS["top_left"], 2, "palette colour")
    return Case("palette_png", _write(d, "palette.png", png_bytes(im)), "loads", size=(40, 20),
                check=check, note="palette")


def b_bmp(d):
    b = io.BytesIO()
    Image.fromarray(upright_pattern(30, 20)).save(b, "BMP")
    def check(img):
        _near(_centre(img, 0.75, 0.75), QUADRANT_COLOURS["bottom_right"], 0, "BMP colour")
    return Case("bmp", _write(d, "plain.bmp", b.getvalue()), "loads", size=(30, 20), check=check)


def b_webp(d):
    def check(img):
        _near(_centre(img, 0.25, 0.75), QUADRANT_COLOURS["bottom_left"], 0, "WebP colour")
    return Case("webp", _write(d, "lossless.webp", webp_bytes(upright_pattern(30, 20))), "loads",
                size=(30, 20), check=check)


def _orientation_builder(tag: int):
    def build(d):
        up = upright_pattern(96, 64)
        stored = stored_for_orientation(up, tag)
        data = jpeg_bytes(stored, exif=_exif_with_orientation(tag))
        def check(img):
            for q, (fx, fy) in {"top_left": (0.25, 0.25), "top_right": (0.75, 0.25),
                                "bottom_left": (0.25, 0.75), "bottom_right": (0.75, 0.75)}.items():
                _near(_centre(img, fx, fy), QUADRANT_COLOURS[q], 12, f"orientation {tag} {q}")
        return Case(f"orientation_{tag}", _write(d, f"orient_{tag}.jpg", data), "loads",
                    size=(96, 64), check=check)
    build.__name__ = f"b_orientation_{tag}"
    return build


def b_animated_gif(d):
    frames = [Image.new("RGB", (24, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    b = io.BytesIO()
    frames[0].save(b, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    def check(img):
        _near(img.rgb[8, 12], (255, 0, 0), 0, "first frame")
    return Case("animated_gif", _write(d, "anim.gif", b.getvalue()), "loads", size=(24, 16),
                check=check, warning="first frame")


def b_corrupt_exif(d):
    junk = b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + bytes(range(256)) * 2
    data = jpeg_bytes(upright_pattern(48, 32), exif=junk)
    return Case("corrupt_exif", _write(d, "bad_exif.jpg", data), "loads", size=(48, 32))


def b_corrupt_icc(d):
    data = jpeg_bytes(upright_pattern(48, 32), icc_profile=b"\0\0\2\0ThisIsNotAProfile" * 20)
    def check(img):
        _near(_centre(img, 0.75, 0.25), QUADRANT_COLOURS["top_right"], 12, "colour kept")
    return Case("corrupt_icc", _write(d, "bad_icc.jpg", data), "loads", size=(48, 32), check=check,
                warning="profile")


def b_truncated_icc(d):
    data = jpeg_bytes(upright_pattern(48, 32), icc_profile=adobe_rgb_icc()[:200])
    return Case("truncated_icc", _write(d, "cut_icc.jpg", data), "loads", size=(48, 32),
                warning="profile")


ADOBE_TEST_COLOUR = (60, 170, 90)


def b_adobe_rgb(d):
    a = np.zeros((32, 32, 3), np.uint8)
    a[:] = ADOBE_TEST_COLOUR
    data = jpeg_bytes(a, icc_profile=adobe_rgb_icc(), quality=100, subsampling=0)
    want = adobe_rgb_to_srgb(ADOBE_TEST_COLOUR)
    def check(img):
        _near(img.rgb[16, 16], want, 3, "Adobe RGB -> sRGB")
        assert img.icc_profile and img.icc_profile[36:40] == b"acsp"
    return Case("adobe_rgb_jpeg", _write(d, "adobe_rgb.jpg", data), "loads", size=(32, 32),
                check=check, note="to sRGB")


def b_non_ascii_name(d):
    return Case("non_ascii_name", _write(d, "платье_красное_夏_é.jpg", jpeg_bytes(_noise(20, 10))),
                "loads", size=(20, 10))


def b_long_name(d):
    name = "x" * 250 + ".jpg"          # 254 bytes, just under the usual 255-byte limit
    return Case("long_name", _write(d, name, jpeg_bytes(_noise(20, 10))), "loads", size=(20, 10))


def b_long_non_ascii_name(d):
    name = "ф" * 125 + ".jpg"          # 254 bytes of UTF-8
    return Case("long_non_ascii_name", _write(d, name, jpeg_bytes(_noise(20, 10))), "loads",
                size=(20, 10))


def b_deleted(d):
    p = _write(d, "deleted.jpg", jpeg_bytes(_noise(20, 10)))
    p.unlink()
    return Case("deleted", p, "error", keyword="does not exist")


def b_directory(d):
    p = Path(d) / "folder.jpg"
    p.mkdir(exist_ok=True)
    return Case("directory", p, "error", keyword="folder")


def b_unreadable(d):
    p = _write(d, "locked.jpg", jpeg_bytes(_noise(20, 10)))
    p.chmod(0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # root reads anything
        return Case("unreadable", p, "loads", size=(20, 10))
    return Case("unreadable", p, "error", keyword="permission")


def b_corrupt_cr2(d):
    data = b"II*\0\x10\0\0\0CR\x02\0" + bytes(range(256)) * 8
    return Case("corrupt_cr2", _write(d, "IMG_0001.CR2", data), "error", keyword="raw")


def b_corrupt_nef(d):
    rng = np.random.default_rng(3)
    data = b"MM\0*\0\0\0\x08" + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    return Case("corrupt_nef", _write(d, "DSC_0001.NEF", data), "error", keyword="raw")


def b_truncated_dng(d):
    data = make_dng(np.full((32, 48, 3), 0.4))
    return Case("truncated_dng", _write(d, "cut.dng", data[: len(data) // 3]), "error", keyword="raw")


def b_multipage_tiff(d):
    b = io.BytesIO()
    pages = [Image.new("RGB", (20, 10), c) for c in ((0, 0, 255), (255, 0, 0))]
    pages[0].save(b, "TIFF", save_all=True, append_images=pages[1:])
    def check(img):
        _near(img.rgb[5, 10], (0, 0, 255), 0, "first page")
    return Case("multipage_tiff", _write(d, "pages.tif", b.getvalue()), "loads", size=(20, 10),
                check=check, warning="first frame")


def b_mpo(d):
    b = io.BytesIO()
    frames = [Image.new("RGB", (40, 30), (200, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 200))]
    frames[0].save(b, "MPO", save_all=True, append_images=frames[1:])
    def check(img):
        _near(img.rgb[15, 20], (200, 0, 0), 4, "main image of the MPO")
    return Case("mpo_jpeg", _write(d, "camera_mpo.jpg", b.getvalue()), "loads", size=(40, 30),
                check=check, note="multi-picture")


BUILDERS: list[Callable[[Path], Case]] = [
    b_empty, b_zeros, b_truncated_jpeg, b_truncated_jpeg_header, b_truncated_png,
    b_png_named_jpg, b_jpeg_named_nef, b_text_named_jpg, b_html_named_jpg, b_unknown_binary,
    b_heic, b_png_bomb, b_jpeg_bomb, b_huge_20000, b_huge_allowed_by_limit, b_small_limit,
    b_one_pixel, b_one_pixel_jpeg, b_tiff16, b_png16_grey, b_cmyk_jpeg, b_greyscale_jpeg,
    b_png_alpha, b_palette_png, b_bmp, b_webp,
    *[_orientation_builder(t) for t in range(1, 9)],
    b_animated_gif, b_corrupt_exif, b_corrupt_icc, b_truncated_icc, b_adobe_rgb,
    b_non_ascii_name, b_long_name, b_long_non_ascii_name, b_deleted, b_directory, b_unreadable,
    b_corrupt_cr2, b_corrupt_nef, b_truncated_dng, b_multipage_tiff, b_mpo,
]


def make_corpus(folder: str | os.PathLike) -> list[Case]:
    """Write every corpus file into ``folder`` (created if needed) and return the cases."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [b(folder) for b in BUILDERS]
