"""Pipeline stage 1: read a photo file into an upright 8-bit sRGB array.

Public entry points::

    load_image(path, *, max_pixels=250_000_000, reduce=1) -> ml.types.LoadedImage
    ImageLoadError                  # the only exception load_image raises
    sha256_file(path) -> str        # streamed hash (same value load_image reports)
    DECODERS (extension -> decoder, the one table), SUPPORTED_EXTENSIONS, RAW_EXTENSIONS,
    JPEG_EXTENSIONS, is_supported(path)
    exif_for_export(exif) -> bytes | None   # EXIF with Orientation reset to 1

What ``load_image`` guarantees:

* the source file is opened read-only and read exactly once into memory; ``sha256`` is
  the hash of exactly those bytes;
* the format is decided by the file's content (magic bytes), not its name; a name that
  disagrees with the content is accepted with a note;
* the image size is checked against ``max_pixels`` from the header, *before* any pixel
  is decoded (decompression bombs are refused with their dimensions in the message);
* truncated / damaged files raise ``ImageLoadError`` - Pillow's ``LOAD_TRUNCATED_IMAGES``
  is never switched on, so a half-written file never becomes a grey picture;
* EXIF orientation (1-8) is applied exactly once; the embedded ICC profile is converted
  to sRGB (the original profile bytes are kept in ``icc_profile``); CMYK, 16-bit,
  greyscale, palette and alpha (composited on white) images all become HxWx3 uint8
  C-contiguous sRGB; camera RAW files are developed by LibRaw (rawpy) with the camera
  white balance into 8-bit sRGB;
* ``exif`` keeps the original EXIF block bytes untouched. Its Orientation tag still holds
  the *source* value while the pixels are already upright: whoever writes a file with
  this EXIF must reset Orientation to 1 first - use :func:`exif_for_export`;
* ``reduce`` (1, 2, 4 or 8) gives a smaller image, about ``ceil(size / reduce)``, for
  previews and inference. JPEG is then decoded at reduced scale by libjpeg (fast, little
  memory); other formats are decoded fully and then box-reduced; RAW uses half-size
  demosaicing. Coordinates from a reduced image must be scaled by the caller.

Warnings emitted by Pillow while decoding (corrupt EXIF, ...) are recorded in
``LoadedImage.warnings``; they are captured with ``warnings.catch_warnings`` which is
process-global state, so do not rely on warning filters of other threads meanwhile.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import stat
import struct
import threading
import time
import warnings

import numpy as np
from PIL import Image, ImageCms, ImageFile

from .types import LoadedImage

__all__ = [
    "load_image", "ImageLoadError", "sha256_file", "SUPPORTED_EXTENSIONS", "RAW_EXTENSIONS",
    "JPEG_EXTENSIONS", "DECODERS",
    "is_supported", "exif_for_export", "DEFAULT_MAX_PIXELS", "load_two_scale", "PendingImage", "read_photo",
    "PhotoBytes",
]

DEFAULT_MAX_PIXELS = 250_000_000
MAX_FILE_BYTES = 2 * 1024 ** 3          # larger files are refused before reading
ORIENTATION_TAG = 0x0112

# The one table of supported photo types: extension -> decoder ("RAW" = LibRaw via rawpy, else the
# Pillow format). The hot folder, File > Open, drag and drop and the CLI accept exactly these, so a
# file is taken by all of them or by none (a .heic is refused everywhere: no decoder is installed).
DECODERS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
    ".bmp": "BMP", ".dib": "BMP", ".gif": "GIF", ".avif": "AVIF",
    ".cr2": "RAW", ".cr3": "RAW", ".nef": "RAW", ".nrw": "RAW", ".arw": "RAW", ".srf": "RAW",
    ".sr2": "RAW", ".dng": "RAW", ".raf": "RAW", ".orf": "RAW", ".rw2": "RAW", ".pef": "RAW",
    ".srw": "RAW", ".3fr": "RAW", ".iiq": "RAW", ".erf": "RAW", ".kdc": "RAW", ".mrw": "RAW",
}
SUPPORTED_EXTENSIONS = frozenset(DECODERS)
RAW_EXTENSIONS = frozenset(e for e, d in DECODERS.items() if d == "RAW")
JPEG_EXTENSIONS = frozenset(e for e, d in DECODERS.items() if d == "JPEG")
_PIL_EXTENSIONS = {e: d for e, d in DECODERS.items() if d != "RAW"}

# Pillow formats load_image accepts (MPO = multi-picture JPEG written by many cameras).
_PIL_FORMATS = ("JPEG", "MPO", "PNG", "TIFF", "WEBP", "BMP", "GIF", "AVIF")
_REDUCE_FACTORS = (1, 2, 4, 8)
_PIL_LIMIT_LOCK = threading.Lock()


class ImageLoadError(Exception):
    """A photo that cannot be loaded. ``str(exc)`` is a complete sentence for an operator:
    the file name, what is wrong and what to do. ``reason`` is a short machine code
    (``not_found``, ``permission``, ``empty``, ``truncated``, ``too_large``, ``text``,
    ``unknown_format``, ``corrupt``, ``raw``, ``changed``, ``not_a_file``, ``read_error``,
    ``memory``, ``bad_argument``)."""

    def __init__(self, message: str, *, path: str | None = None, reason: str = "corrupt"):
        super().__init__(message)
        self.path = path
        self.reason = reason


def _fail(path: str, what: str, todo: str, reason: str) -> ImageLoadError:
    name = os.path.basename(path) or path
    return ImageLoadError(f"Cannot load '{name}': {what}. {todo}", path=path, reason=reason)


# ---------------------------------------------------------------------------------------
# small public helpers
# ---------------------------------------------------------------------------------------
def is_supported(path: str | os.PathLike) -> bool:
    """True when the file name has an extension load_image handles (case-insensitive).

    macOS resource-fork companions (``._IMG_0001.JPG``) are not photos and return False.
    """
    name = os.path.basename(os.fspath(path))
    if name.startswith("._"):
        return False
    return os.path.splitext(name)[1].lower() in SUPPORTED_EXTENSIONS


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed (constant memory). Raises OSError like open()."""
    h = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def exif_for_export(exif: bytes | None) -> bytes | None:
    """Return ``exif`` with the Orientation tag set to 1 (pixels written are upright).

    Returns None when there is no EXIF or it cannot be parsed (better to drop a damaged
    block than to write it into a catalogue image).
    """
    if not exif:
        return None
    try:
        ex = Image.Exif()
        ex.load(exif)
        if ORIENTATION_TAG in ex:
            ex[ORIENTATION_TAG] = 1
        return ex.tobytes()
    except Exception:
        return None


# ---------------------------------------------------------------------------------------
# content sniffing
# ---------------------------------------------------------------------------------------
def _sniff(data: bytes) -> str | None:
    """Container format from magic bytes: JPEG PNG GIF WEBP BMP TIFF RAW AVIF HEIC, or None."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP"
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAW"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR", b"IIU\x00"):      # Olympus ORF, Panasonic RW2
        return "RAW"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        if head[8:10] == b"CR" or _tiff_ifd0_has_tag(data, 50706):   # Canon CR2, DNG
            return "RAW"
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":                                    # Canon CR3
            return "RAW"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    return None


def _tiff_ifd0_has_tag(data: bytes, tag: int) -> bool:
    """Whether the first IFD of a TIFF container holds ``tag`` (bounds-checked)."""
    try:
        bo = "<" if data[:2] == b"II" else ">"
        off = struct.unpack_from(bo + "I", data, 4)[0]
        n = struct.unpack_from(bo + "H", data, off)[0]
        if n > 4096:
            return False
        for i in range(n):
            if struct.unpack_from(bo + "H", data, off + 2 + 12 * i)[0] == tag:
                return True
    except struct.error:
        return False
    return False


def _looks_like_text(data: bytes) -> bool:
    sample = data[:1024]
    if not sample or b"\x00" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the sample end is still text
        try:
            text = sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def _ext_format(ext: str) -> str | None:
    if ext in RAW_EXTENSIONS:
        return "RAW"
    return _PIL_EXTENSIONS.get(ext)


# ---------------------------------------------------------------------------------------
# reading the file
# ---------------------------------------------------------------------------------------
def _read_bytes(path: str) -> bytes:
    """Read the whole file, read-only, with operator-readable errors."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise _fail(path, "the file does not exist (it was moved, renamed or deleted before it "
                          "could be read)", "Check that the photo is still in the folder and "
                          "add it again.", "not_found") from None
    except PermissionError:
        raise _fail(path, "permission denied - this user account may not read the file",
                    "Fix the file's permissions or copy the photo to a folder you can read, "
                    "then try again.", "permission") from None
    except IsADirectoryError:
        raise _fail(path, "this is a folder, not a photo file",
                    "Select the image files inside the folder.", "not_a_file") from None
    except OSError as exc:
        raise _fail(path, f"the system could not open it ({exc.strerror or exc})",
                    "Check the disk or network share and try again.", "read_error") from None
    try:
        st = os.fstat(fd)
        problem = None
        if stat.S_ISDIR(st.st_mode):
            problem = _fail(path, "this is a folder, not a photo file",
                            "Select the image files inside the folder.", "not_a_file")
        elif not stat.S_ISREG(st.st_mode):
            problem = _fail(path, "this is not a regular file (a device, pipe or socket)",
                            "Select the photo files themselves.", "not_a_file")
        elif st.st_size > MAX_FILE_BYTES:
            problem = _fail(path, f"the file is too large ({st.st_size / 1e9:.1f} GB; the "
                                  f"limit is {MAX_FILE_BYTES / 1e9:.1f} GB)",
                            "Export a smaller version of the photo.", "too_large")
        if problem is not None:
            os.close(fd)
            raise problem
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    except ImageLoadError:
        raise
    except MemoryError:
        raise _fail(path, "there is not enough memory to read the file",
                    "Close other programs or process fewer photos at once.", "memory") from None
    except OSError as exc:
        raise _fail(path, f"reading the file failed ({exc.strerror or exc}); it may have been "
                          "deleted or the disk/share disconnected while loading",
                    "Check the file and try again.", "read_error") from None
    if len(data) != st.st_size:
        raise _fail(path, f"the file changed while it was being read ({st.st_size} bytes "
                          f"expected, {len(data)} read)",
                    "It is probably still being copied; wait until the copy has finished and "
                    "try again.", "changed")
    return data


# ---------------------------------------------------------------------------------------
# colour management
# ---------------------------------------------------------------------------------------
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_PROFILE_SPACE_MODE = {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}


@functools.lru_cache(maxsize=16)
def _profile_info(icc: bytes) -> tuple[object, str, str]:
    prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    space = str(prof.profile.xcolor_space).strip().upper()
    try:
        desc = (ImageCms.getProfileDescription(prof) or "").strip()
    except Exception:
        desc = ""
    return prof, space, desc


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform:
    prof = _profile_info(icc)[0]
    flags = ImageCms.Flags.BLACKPOINTCOMPENSATION
    return ImageCms.buildTransform(prof, _SRGB, in_mode, "RGB",
                                   renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                   flags=flags)


def _apply_icc(im: Image.Image, icc: bytes | None, notes: list[str], warns: list[str]) -> Image.Image | None:
    """Convert ``im`` (mode RGB, CMYK or L) to sRGB RGB with its profile; None if not done."""
    if not icc:
        return None
    try:
        _prof, space, desc = _profile_info(icc)
    except Exception:
        warns.append("the embedded colour profile (ICC) is damaged and was ignored; "
                     "colours are assumed to be sRGB")
        return None
    want = _PROFILE_SPACE_MODE.get(space)
    if want != im.mode:
        warns.append(f"the embedded colour profile is for {space or 'an unknown space'} but the "
                     f"image is {im.mode}; the profile was ignored")
        return None
    label = desc or "unnamed profile"
    if space == "RGB" and desc.lower().startswith("srgb"):
        notes.append(f"colour profile '{label}' is sRGB: no conversion needed")
        return None
    try:
        if im.mode == "RGB":     # in place: a 24 MP photo needs no second full-size buffer
            ImageCms.applyTransform(im, _transform(icc, im.mode), inPlace=True)
            out = im
        else:
            out = ImageCms.applyTransform(im, _transform(icc, im.mode))
    except Exception as exc:
        warns.append(f"converting with the embedded colour profile '{label}' failed ({exc}); "
                     "colours are assumed to be sRGB")
        return None
    notes.append(f"converted from embedded colour profile '{label}' ({space}) to sRGB")
    return out


def _to_array(im: Image.Image, band_rows: int = 256) -> np.ndarray:
    """Pillow image (L or RGB) -> new writable numpy array.

    ``np.asarray(im)`` goes through ``im.tobytes()``, which briefly holds the pixels twice
    (chunks + joined bytes) and gives a read-only array; copying row bands into one
    preallocated array keeps the peak at image + array (a 24 MP photo: ~170 MB, not ~240).
    """
    w, h = im.size
    if w * h <= 4_000_000:
        return np.array(im)
    shape = (h, w) if im.mode == "L" else (h, w, len(im.getbands()))
    out = np.empty(shape, np.uint8)
    for y in range(0, h, band_rows):
        y1 = min(h, y + band_rows)
        out[y:y1] = np.asarray(im.crop((0, y, w, y1)))
    return out


def _cmyk_naive(im: Image.Image) -> np.ndarray:
    c = np.asarray(im, dtype=np.uint16)
    k = 255 - c[..., 3:4]
    rgb = ((255 - c[..., :3]) * k + 127) // 255
    return rgb.astype(np.uint8)


def _scale16(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Pillow path
# ---------------------------------------------------------------------------------------
def _open_pil(data: bytes, fmt: str) -> Image.Image:
    formats = [fmt]      # JPEG's factory itself returns an MPO image where there is one
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:
        # Pillow's own (global) limit is lower than ours: read the header without it and let
        # the caller compare the size with max_pixels. Nothing is decoded here.
        with _PIL_LIMIT_LOCK:
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(io.BytesIO(data), formats=formats)
            finally:
                Image.MAX_IMAGE_PIXELS = old


def _bits_per_sample(im: Image.Image, data: bytes, fmt: str) -> int:
    try:
        if fmt == "PNG" and len(data) > 25:
            return int(data[24])
        if fmt == "TIFF":
            bps = im.tag_v2.get(258)
            if isinstance(bps, tuple):
                return int(max(bps))
            if bps is not None:
                return int(bps)
    except Exception:
        pass
    return 8


def _pil_to_rgb(im: Image.Image, icc: bytes | None, bits: int, reduce: int,
                notes: list[str], warns: list[str]) -> np.ndarray:
    """Decoded Pillow image of any mode -> HxWx3 uint8 sRGB (alpha composited on white)."""
    alpha: np.ndarray | None = None
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        notes.append("palette image expanded to RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
        notes.append("palette image expanded to RGB")
    elif mode == "1":
        im = im.convert("L")
        notes.append("1-bit image expanded to greyscale")
    elif mode in ("La", "RGBa"):
        im = im.convert("RGBA")

    mode = im.mode
    if mode.startswith("I;16") or mode == "I" or mode == "F":
        a = np.asarray(im)
        if mode.startswith("I;16"):
            g8 = _scale16(a.astype(np.uint16))
            notes.append("16-bit greyscale scaled to 8-bit")
        elif mode == "I":
            a = a.astype(np.int64)
            top = int(a.max()) if a.size else 0
            if bits > 8 or top > 255:
                a = np.clip(a, 0, 65535)
                g8 = _scale16(a.astype(np.uint16))
                notes.append("16-bit greyscale scaled to 8-bit")
            else:
                g8 = np.clip(a, 0, 255).astype(np.uint8)
        else:
            a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            top = float(a.max()) if a.size else 0.0
            scale = 255.0 if top <= 1.0 else (1.0 if top <= 255.0 else 255.0 / top)
            g8 = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
            notes.append("floating-point greyscale scaled to 8-bit")
        im = Image.fromarray(g8, "L")
        mode = "L"
    elif bits > 8:
        notes.append(f"{bits}-bit per channel scaled to 8-bit")

    if reduce > 1:
        if im.mode in ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr"):
            im = im.reduce(reduce)
        else:
            im = im.convert("RGB").reduce(reduce)
        notes.append(f"reduced by {reduce} for preview/inference")

    mode = im.mode
    if mode in ("RGBA", "LA"):
        alpha = np.asarray(im.getchannel("A"))
        im = im.convert("RGB" if mode == "RGBA" else "L")
        mode = im.mode

    out: np.ndarray | None = None
    if mode == "CMYK":
        conv = _apply_icc(im, icc, notes, warns)
        if conv is not None:
            out = _to_array(conv if conv.mode == "RGB" else conv.convert("RGB"))
        else:
            out = _cmyk_naive(im)
            notes.append("CMYK converted to RGB without a colour profile (approximate)")
    elif mode in ("RGB", "L"):
        conv = _apply_icc(im, icc, notes, warns)
        if conv is not None:
            out = _to_array(conv if conv.mode == "RGB" else conv.convert("RGB"))
        elif mode == "L":
            out = np.repeat(_to_array(im)[..., None], 3, axis=2)
            notes.append("greyscale expanded to RGB")
        else:
            out = _to_array(im)
    elif mode == "LAB":
        lab = ImageCms.createProfile("LAB")
        out = np.asarray(ImageCms.profileToProfile(im, lab, _SRGB, outputMode="RGB"))
        notes.append("CIELAB converted to sRGB")
    else:  # YCbCr, HSV, ...
        out = np.asarray(im.convert("RGB"))
        notes.append(f"{mode} converted to RGB")

    if alpha is not None and alpha.size and int(alpha.min()) < 255:
        a = alpha.astype(np.uint32)[..., None]
        out = ((out.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
        notes.append("transparent areas composited on white")
    return out


def _orientation(im: Image.Image, warns: list[str]) -> tuple[int, bytes | None]:
    exif_bytes = im.info.get("exif")
    if isinstance(exif_bytes, str):
        exif_bytes = exif_bytes.encode("latin-1", "replace")
    try:
        ex = im.getexif()
        value = ex.get(ORIENTATION_TAG, 1)
        if exif_bytes is None and len(ex):
            exif_bytes = ex.tobytes()
    except Exception:
        warns.append("the EXIF block is damaged; orientation could not be read, the photo is "
                     "shown as stored")
        return 1, exif_bytes if isinstance(exif_bytes, bytes) else None
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 8:
        warns.append(f"invalid EXIF orientation value {ex.get(ORIENTATION_TAG)!r} ignored")
        value = 1
    return value, exif_bytes if isinstance(exif_bytes, bytes) else None


def _apply_orientation(a: np.ndarray, value: int) -> np.ndarray:
    """Apply EXIF orientation ``value`` (the transform that makes the stored image upright)."""
    if value == 2:
        a = a[:, ::-1]
    elif value == 3:
        a = a[::-1, ::-1]
    elif value == 4:
        a = a[::-1]
    elif value == 5:
        a = a.transpose(1, 0, 2)
    elif value == 6:
        a = np.rot90(a, -1)
    elif value == 7:
        a = a[::-1, ::-1].transpose(1, 0, 2)
    elif value == 8:
        a = np.rot90(a, 1)
    return a


_ORIENT_NAMES = {2: "mirrored", 3: "rotated 180°", 4: "flipped vertically", 5: "transposed",
                 6: "rotated 90° clockwise", 7: "transversed", 8: "rotated 90° counter-clockwise"}


def _box_reduce(a: np.ndarray, r: int) -> np.ndarray:
    if r == 1:
        return a
    return np.asarray(Image.fromarray(a).reduce(r))


def _size_check(path: str, w: int, h: int, max_pixels: int) -> None:
    if w <= 0 or h <= 0:
        raise _fail(path, f"the file header claims an impossible size ({w} x {h} pixels)",
                    "The file is damaged; re-export or re-copy it.", "corrupt")
    if w * h > max_pixels:
        raise _fail(path, f"the image is too large ({w} x {h} = {w * h / 1e6:.3g} megapixels; "
                          f"the limit is {max_pixels / 1e6:.3g} megapixels). It was refused "
                          "before decoding because it could exhaust memory (a damaged or "
                          "malicious file can claim a huge size)",
                    "If the photo is genuine, export a smaller version or raise the pixel "
                    "limit in the settings.", "too_large")


def _icc_needs_no_conversion(icc: bytes | None) -> tuple[bool, str | None]:
    """(True, the note :func:`_apply_icc` would write) when the embedded profile needs no
    conversion: none at all, or sRGB itself."""
    if not icc:
        return True, None
    try:
        _prof, space, desc = _profile_info(icc)
    except Exception:
        return False, None
    if space == "RGB" and desc.lower().startswith("srgb"):
        return True, f"colour profile '{desc}' is sRGB: no conversion needed"
    return False, None


@functools.lru_cache(maxsize=1)
def _opencv_decodes_like_pillow() -> bool:
    """Whether OpenCV's JPEG decoder gives Pillow's pixels here (same libjpeg-turbo settings:
    accurate integer IDCT, smooth chroma upsampling), checked once on a small 4:2:0 and 4:4:4
    JPEG. The full-resolution decode uses OpenCV only when it does (see :func:`_load_pil`)."""
    try:
        import cv2
        rng = np.random.default_rng(7)
        a = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
        for sub in (2, 0):
            b = io.BytesIO()
            Image.fromarray(a).save(b, "JPEG", quality=88, subsampling=sub)
            data = b.getvalue()
            with Image.open(io.BytesIO(data)) as im:
                ref = np.asarray(im.convert("RGB"))
            got = cv2.imdecode(np.frombuffer(data, np.uint8),
                               cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
            if got is None or not np.array_equal(got, ref):
                return False
        return True
    except Exception:
        return False


def _opencv_full_jpeg(data: bytes, w: int, h: int) -> np.ndarray | None:
    """The stored (not yet upright) pixels of an 8-bit YCbCr JPEG decoded by OpenCV straight
    into one array, or None (then Pillow decodes it). Pillow decodes into its own 4-byte pixel
    buffer and copies that out (24 MP: ~85 ms + ~60-100 ms); OpenCV: ~125 ms in all, and one
    72-MB array less at the peak."""
    import cv2
    if not hasattr(cv2, "IMREAD_COLOR_RGB") or not _opencv_decodes_like_pillow():
        return None
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if out is None or out.shape != (h, w, 3):
        return None
    return out


def _load_pil(path: str, data: bytes, fmt: str, reduce: int, max_pixels: int,
              notes: list[str], warns: list[str], *,
              checked_stream: bool = False) -> tuple[np.ndarray, str, bytes | None, bytes | None]:
    """``checked_stream``: the same bytes are decoded by Pillow at reduced scale beside this
    decode (:func:`load_two_scale`), so a damaged stream is refused there; this full decode
    may then use OpenCV for a plain 8-bit sRGB JPEG (same pixels, see
    :func:`_opencv_full_jpeg`)."""
    im = _open_pil(data, fmt)
    try:
        w, h = im.size
        _size_check(path, w, h, max_pixels)
        real_fmt = im.format or fmt
        n_frames = int(getattr(im, "n_frames", 1) or 1)
        if n_frames > 1:
            if real_fmt == "MPO":
                notes.append(f"multi-picture JPEG: the main image of {n_frames} was used")
            else:
                kind = "animated" if real_fmt in ("GIF", "WEBP", "PNG", "AVIF") else "multi-page"
                warns.append(f"{kind} {real_fmt} with {n_frames} frames: only the first frame "
                             "was used")
            im.seek(0)
        icc = im.info.get("icc_profile") or None
        if isinstance(icc, str):
            icc = icc.encode("latin-1", "replace")
        orient, exif = _orientation(im, warns)
        bits = _bits_per_sample(im, data, fmt)
        r = reduce
        if reduce > 1 and real_fmt in ("JPEG", "MPO"):
            im.draft(None, (max(1, w // reduce), max(1, h // reduce)))
            # libjpeg gives exactly 1/scale; reduce what is left (none for 1/2/4/8)
            r = max(1, reduce // max(1, round(w / im.size[0])))
            notes.append(f"decoded at reduced scale 1/{round(w / im.size[0])} ({im.size[0]} x "
                         f"{im.size[1]})")
        rgb = None
        if checked_stream and reduce == 1 and real_fmt == "JPEG" and n_frames == 1 and im.mode == "RGB" \
                and bits == 8:
            plain, note = _icc_needs_no_conversion(icc)
            if plain:
                rgb = _opencv_full_jpeg(data, w, h)
                if rgb is not None and note:
                    notes.append(note)
        if rgb is None:
            im.load()
            rgb = _pil_to_rgb(im, icc, bits, r, notes, warns)
    finally:
        im.close()
    if orient != 1:
        rgb = _apply_orientation(rgb, orient)
        notes.append(f"EXIF orientation {orient} applied ({_ORIENT_NAMES[orient]})")
    return rgb, ("JPEG" if real_fmt == "MPO" else real_fmt), exif, icc


# ---------------------------------------------------------------------------------------
# RAW path
# ---------------------------------------------------------------------------------------
def _load_raw(path: str, data: bytes, reduce: int, max_pixels: int,
              notes: list[str], warns: list[str]) -> tuple[np.ndarray, bytes | None]:
    try:
        import rawpy
    except ImportError:
        raise _fail(path, "camera RAW support (the 'rawpy' package) is not installed",
                    "Install rawpy, or convert the RAW file to JPEG/TIFF in your RAW "
                    "developer.", "raw") from None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            s = raw.sizes
            w, h = int(s.width), int(s.height)
            if s.flip in (5, 6):
                w, h = h, w
            _size_check(path, w, h, max_pixels)
            rgb = raw.postprocess(use_camera_wb=True, output_bps=8,
                                  output_color=rawpy.ColorSpace.sRGB,
                                  half_size=reduce >= 2, user_flip=None)
    except ImageLoadError:
        raise
    except rawpy.LibRawError as exc:
        msg = exc.args[0] if exc.args else exc
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise _fail(path, f"it cannot be decoded as a camera RAW file ({msg}); the file is "
                          "damaged, incomplete, or from a camera this version of LibRaw "
                          f"({rawpy.libraw_version and '.'.join(map(str, rawpy.libraw_version))}) "
                          "does not support",
                    "Re-copy it from the memory card, or convert it to DNG/TIFF/JPEG in "
                    "your RAW developer.", "raw") from None
    rgb = np.asarray(rgb)
    notes.append("camera RAW developed by LibRaw: camera white balance, sRGB, 8-bit")
    if reduce >= 2:
        notes.append("RAW developed at half size for preview/inference")
        rgb = _box_reduce(np.ascontiguousarray(rgb), reduce // 2)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    # EXIF of TIFF-based RAW files (for export presets keeping metadata); optional.
    exif = None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data), formats=["TIFF"]) as t:
                    exif = t.getexif().tobytes() or None
        except Exception:
            exif = None
    return rgb, exif


# ---------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               reduce: int = 1) -> LoadedImage:
    """Load a photo as upright 8-bit sRGB. Raises only :class:`ImageLoadError`.

    ``max_pixels``: images whose header claims more pixels are refused before decoding
    (default 250 MP, enough for any 100 MP+ camera). ``reduce``: 1, 2, 4 or 8 (see the
    module docstring). The source file is only read, never written.
    """
    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if reduce not in _REDUCE_FACTORS:
        raise ImageLoadError(f"Cannot load '{os.path.basename(p)}': reduce must be one of "
                             f"1, 2, 4, 8 (got {reduce!r}). This is a program error.",
                             path=p, reason="bad_argument")
    data = _read_bytes(p)
    return _decode_guarded(p, data, max_pixels=max_pixels, reduce=reduce)


def _decode_guarded(p: str, data: bytes, *, max_pixels: int, reduce: int,
                    digest: str | None = None, checked_stream: bool = False) -> LoadedImage:
    """:func:`_decode` with every failure turned into an :class:`ImageLoadError`."""
    try:
        return _decode(p, data, max_pixels=max_pixels, reduce=reduce, digest=digest,
                       checked_stream=checked_stream)
    except ImageLoadError:
        raise
    except MemoryError:
        raise _fail(p, "there is not enough memory to decode this image",
                    "Close other programs, process fewer photos at once, or use a smaller "
                    "version of the photo.", "memory") from None
    except Image.DecompressionBombError as exc:
        raise _fail(p, f"the image is too large ({exc})", "Export a smaller version.",
                    "too_large") from None
    except Exception as exc:
        # OSError, SyntaxError, ValueError, EOFError, struct.error, ... from the decoders;
        # also the last line of defence: a bad file never gives a raw traceback.
        raise _decode_error(p, exc) from None


def _decode_error(path: str, exc: BaseException) -> ImageLoadError:
    msg = str(exc) or type(exc).__name__
    low = msg.lower()
    if "truncated" in low or isinstance(exc, EOFError) or "premature end" in low \
            or "end of file" in low or "not enough data" in low:
        return _fail(path, f"the file is truncated - the image data stops before the end "
                           f"({msg})",
                     "It was probably not copied completely or is still being written; "
                     "copy it again from the original.", "truncated")
    return _fail(path, f"the image data is damaged and cannot be decoded ({type(exc).__name__}: "
                       f"{msg})",
                 "Re-export or re-copy the photo from the original.", "corrupt")


def _decode(path: str, data: bytes, *, max_pixels: int, reduce: int,
            digest: str | None = None, checked_stream: bool = False) -> LoadedImage:
    notes: list[str] = []
    warns: list[str] = []
    if digest is None:
        digest = hashlib.sha256(data).hexdigest()
    name = os.path.basename(path)
    ext = os.path.splitext(name)[1].lower()
    if not data:
        raise _fail(path, "the file is empty (0 bytes)",
                    "It was probably not copied completely; copy it again from the camera "
                    "card or the original source.", "empty")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        warns.append("Pillow's LOAD_TRUNCATED_IMAGES is switched on in this process, so a "
                     "truncated file may load as a partly grey image")
    fmt = _sniff(data)
    ext_fmt = _ext_format(ext)
    if fmt is None and ext_fmt == "RAW":
        fmt = "RAW"        # many RAW containers have no fixed magic; let LibRaw decide
    if fmt is None:
        if _looks_like_text(data):
            start = data[:40].decode("utf-8", "replace").splitlines()[0] if data.strip() else ""
            raise _fail(path, f"this is a text file, not an image (it starts with {start!r})",
                        "Remove it from the photo folder or replace it with the real photo.",
                        "text")
        if not data.strip(b"\x00"):
            raise _fail(path, f"the file contains only zero bytes ({len(data)} bytes), the "
                              "typical result of an interrupted copy or a damaged card",
                        "Copy it again from the original.", "corrupt")
        hexstart = data[:8].hex(" ")
        raise _fail(path, f"the file format is not recognised (it starts with bytes {hexstart}); "
                          "supported are JPEG, PNG, TIFF, WebP, BMP, GIF and camera RAW",
                    "Check that it is really a photo; convert it to JPEG or PNG.",
                    "unknown_format")
    if fmt == "HEIC":
        raise _fail(path, "it is a HEIC/HEIF photo, which is not supported",
                    "Export it as JPEG (or set the camera/phone to 'Most compatible').",
                    "unknown_format")
    if ext_fmt != fmt and not (fmt == "TIFF" and ext_fmt == "RAW"):
        shown = ext or "(no extension)"
        notes.append(f"the file name ends in {shown} but the content is {fmt}; loaded as {fmt}")
    if fmt == "TIFF" and ext_fmt == "RAW":
        fmt = "RAW"     # NEF, ARW, DNG, ... are TIFF containers

    # catch_warnings swaps process-global state: a decode running on a background thread
    # (load_two_scale) must not use it, or the two threads would restore each other's state.
    capture = threading.current_thread() is not getattr(_BACKGROUND, "thread", None)
    with (warnings.catch_warnings(record=True) if capture else contextlib.nullcontext([])) as caught:
        if capture:
            warnings.simplefilter("always")
        exif = icc = None
        if fmt == "RAW":
            rgb, exif = _load_raw(path, data, reduce, max_pixels, notes, warns)
            out_fmt = "RAW"
        else:
            rgb, out_fmt, exif, icc = _load_pil(path, data, fmt, reduce, max_pixels,
                                                notes, warns, checked_stream=checked_stream)
    for w in caught:
        if issubclass(w.category, Image.DecompressionBombWarning):
            continue
        text = str(w.message)
        if text and text not in warns:
            warns.append(f"decoder warning: {text}")

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if not rgb.flags.writeable:        # arrays made from Pillow buffers are read-only
        rgb = rgb.copy()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise _fail(path, f"decoding produced an unusable array of shape {rgb.shape}",
                    "Re-export the photo as JPEG or PNG.", "corrupt")
    return LoadedImage(rgb=rgb, path=path, sha256=digest, format=out_fmt, notes=notes,
                       warnings=warns, exif=exif, icc_profile=icc)



# ---------------------------------------------------------------------------------------
# two scales from one read: a small decode for inference now, the full one in the background
# ---------------------------------------------------------------------------------------
_BACKGROUND = threading.local()      # .thread is set on a background decode thread
BACKGROUND_NICE = 10                 # the full decode's thread priority below the analysis threads


def _yield_to_foreground() -> None:
    """Lower the calling thread's scheduling priority (Linux: threads have their own nice value).

    The full-resolution decode is needed only when the outputs are written; while it runs, the
    networks (the pose models on the caller's thread, the garment parser on its own) compete
    with it for the cores. At a lower priority it fills the time they leave, and the analysis --
    which decides when the photo can be written -- runs at full speed. Elsewhere a no-op."""
    if os.environ.get("STUDIO_DECODE_NICE", "1") == "0":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
    except (AttributeError, OSError):       # not Linux, or not allowed: the default priority
        pass


class PendingImage:
    """The full-resolution decode of a photo, running on a background thread.

    Made by :func:`load_two_scale`. ``width``/``height`` (of the upright photo), ``path``,
    ``sha256``, ``format`` and ``warnings`` are known at once (from the header and the small
    decode of the same bytes); :meth:`result` waits for the pixels and returns the full
    :class:`LoadedImage` (or raises its :class:`ImageLoadError`). ``rgb`` is ``result().rgb``.
    """

    def __init__(self, path: str, sha256: str, fmt: str, width: int, height: int,
                 warnings_: list[str], *, done: LoadedImage | None = None,
                 job=None):
        self.path, self.sha256, self.format = path, sha256, fmt
        self.width, self.height = int(width), int(height)
        self.warnings = list(warnings_)
        self._value = done
        self._error: BaseException | None = None
        self.seconds = 0.0          # how long the background decode took (0: none was needed)
        self._event = threading.Event()
        if done is not None or job is None:
            self._event.set()
        else:
            def run():
                _BACKGROUND.thread = threading.current_thread()
                _yield_to_foreground()
                t0 = time.perf_counter()
                try:
                    self._value = job()
                except BaseException as exc:       # handed to whoever calls result()
                    self._error = exc
                finally:
                    self.seconds = time.perf_counter() - t0
                    self._event.set()
            from . import background
            self._thread = background.start(run, "full-decode")

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the decode to end (done or failed) without taking its result."""
        return self._event.wait(timeout)

    def result(self, timeout: float | None = None) -> LoadedImage:
        if not self._event.wait(timeout):
            raise TimeoutError("the full-resolution decode has not finished")
        if self._error is not None:
            raise self._error
        assert self._value is not None
        for w in self.warnings:          # decoder warnings, recorded by the small decode
            if w not in self._value.warnings:
                self._value.warnings.append(w)
        return self._value

    @property
    def rgb(self) -> np.ndarray:
        return self.result().rgb


def reduce_for(width: int, height: int, work_side: int) -> int:
    """The largest JPEG DCT scale (1, 2, 4 or 8) that keeps the long side >= ``work_side``."""
    long_side = max(int(width), int(height))
    for r in (8, 4, 2):
        if -(-long_side // r) >= work_side:
            return r
    return 1


def _is_raw_data(data: bytes, path: str) -> bool:
    """Whether :func:`_decode` would develop these bytes with LibRaw."""
    fmt = _sniff(data)
    ext_fmt = _ext_format(os.path.splitext(path)[1].lower())
    return fmt == "RAW" or (fmt in (None, "TIFF") and ext_fmt == "RAW")


class PhotoBytes:
    """A photo file read once into memory (``data``) with its ``sha256``: see :func:`read_photo`."""

    __slots__ = ("path", "data", "sha256")

    def __init__(self, path: str, data: bytes, sha256: str):
        self.path, self.data, self.sha256 = path, data, sha256


def read_photo(path: str | os.PathLike) -> PhotoBytes:
    """Read and hash a photo file without decoding it (e.g. to skip a photo whose result is
    up to date); pass the result to :func:`load_two_scale`. Raises :class:`ImageLoadError`."""
    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    data = _read_bytes(p)
    return PhotoBytes(p, data, hashlib.sha256(data).hexdigest())


def load_two_scale(path: str | os.PathLike | PhotoBytes, *, work_side: int = 1024,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[LoadedImage, PendingImage]:
    """Read a photo once and return ``(small, pending_full)``.

    ``small`` is an upright sRGB :class:`LoadedImage` whose long side is at least
    ``work_side`` (or the photo itself when it is not larger): for a JPEG it is decoded by
    libjpeg at 1/2, 1/4 or 1/8 scale (DCT scaling: a 24-MP photo in ~1/10 of the time and
    memory of a full decode). ``pending_full`` decodes the same bytes at full resolution on
    a background thread meanwhile (libjpeg releases the GIL), so inference on ``small`` and
    the full decode overlap; the result is exactly ``load_image(path)``. Both report the same
    ``sha256`` (the bytes are read and hashed once). A camera RAW file is developed by
    LibRaw at half size (no demosaicing) for ``small`` while the full demosaic runs in the
    background. Other formats (PNG, TIFF, ...) are decoded once at full size and ``small``
    is that same image. Decoder warnings are recorded by the small decode (the background
    thread leaves Python's process-global warning state alone) and copied to the full image.

    Raises :class:`ImageLoadError` for anything :func:`load_image` would refuse; a failure
    that only the full decode finds is raised by ``pending_full.result()``.
    """
    pb = path if isinstance(path, PhotoBytes) else read_photo(path)
    p, data, digest = pb.path, pb.data, pb.sha256
    r, upright = 1, (0, 0)
    if _sniff(data) == "JPEG":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _open_pil(data, "JPEG") as im:
                    w, h = im.size
                    orient, _ = _orientation(im, [])
            upright = (h, w) if orient in (5, 6, 7, 8) else (w, h)
            if 0 < w * h <= max_pixels:
                r = reduce_for(w, h, work_side)
        except Exception:
            r = 1          # let the full decode below report what is wrong
    elif _is_raw_data(data, p):
        try:
            import rawpy
            with rawpy.imread(io.BytesIO(data)) as raw:
                sz = raw.sizes
                w, h = int(sz.width), int(sz.height)
                upright = (h, w) if sz.flip in (5, 6) else (w, h)
            if 0 < w * h <= max_pixels:
                # LibRaw's half-size development (no demosaicing) for inference, the full
                # demosaic on the background thread (LibRaw releases the GIL)
                r = min(reduce_for(w, h, work_side), 4)
        except Exception:
            r = 1
    if r == 1:
        full = _decode_guarded(p, data, max_pixels=max_pixels, reduce=1, digest=digest)
        return full, PendingImage(p, digest, full.format, full.width, full.height,
                                  full.warnings, done=full)
    # Start the full decode first: it is the long one; the small decode runs beside it.
    job = functools.partial(_decode_guarded, p, data, max_pixels=max_pixels, reduce=1,
                            digest=digest, checked_stream=True)
    pending = PendingImage(p, digest, "?", upright[0], upright[1], [], job=job)
    try:
        small = _decode_guarded(p, data, max_pixels=max_pixels, reduce=r, digest=digest)
    except ImageLoadError:
        pending._event.wait()           # do not leave a decoder running on a refused file
        raise
    pending.format = small.format
    pending.warnings = list(small.warnings)
    return small, pending
