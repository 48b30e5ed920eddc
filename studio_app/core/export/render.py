"""Render one catalog image for a preset from the SOURCE photo at full resolution, and encode it.

* person zones: the zone's box is cut from the oriented sRGB photo, then fitted to the preset's
  canvas — ``fit: "pad"`` letterboxes it on the preset's background, ``fit: "crop"`` widens
  (or, at the photo's edge, trims) the box to the canvas aspect first;
* product: ``ml.stages.product.compose_on_white`` puts the masked product, centred, on the
  preset's background, its longest side filling ``fill`` of the canvas.

The canvas is the preset's size. With ``upscale: false`` (the default) a source too small for
it gives a proportionally smaller canvas — never smaller than the preset's minimum — instead
of blown-up pixels (marketplaces reject upscaled thumbnails).

Files are sRGB with an embedded sRGB ICC profile. ``ml.io`` has already converted the source's
own profile to sRGB and applied EXIF orientation, so the pixels are written as they are; kept
EXIF gets Orientation = 1.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageCms

from . import framing
from .presets import Preset

PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MIN_QUALITY = 60          # lowest JPEG/WebP quality tried to meet a file-size limit


@functools.lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    """The sRGB profile embedded in catalog files. LittleCMS stamps the creation time into the
    header; a fixed date keeps the bytes identical from run to run, so that a file written just
    before a crash is recognised (adopted) by the next export instead of reported as a conflict."""
    import hashlib
    import struct
    b = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    b[24:36] = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
    if any(b[84:100]):         # a v4 profile ID (MD5 with flags, intent and ID zeroed) is kept valid
        z = bytearray(b)
        z[44:48] = z[64:68] = b"\0" * 4
        z[84:100] = b"\0" * 16
        b[84:100] = hashlib.md5(bytes(z)).digest()
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# geometry

def min_scale(preset: Preset) -> float:
    """The smallest canvas factor that still meets the preset's minimum size."""
    W, H = preset.width, preset.height
    return max(preset.min_long_side / max(W, H), preset.min_width / W, preset.min_height / H, 0.0)


def canvas_size(preset: Preset, native_factor: float) -> tuple[int, int]:
    """Canvas for a source whose pixels would be 1:1 at ``native_factor`` x the preset size."""
    f = 1.0 if preset.upscale else min(1.0, native_factor)
    f = max(f, min_scale(preset))
    if f >= 1.0:
        return preset.width, preset.height
    w = max(1, round(preset.width * f))
    h = max(1, round(w / preset.aspect))
    # rounding must not drop below the minimum
    while max(w, h) < preset.min_long_side or w < preset.min_width or h < preset.min_height:
        w += 1
        h = max(1, round(w / preset.aspect))
    return w, h


def clip_box(box, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
    x1, y1 = min(w, max(x0 + 1, x1)), min(h, max(y0 + 1, y1))
    return x0, y0, x1, y1


def box_to_aspect(box: tuple[int, int, int, int], aspect: float, w: int, h: int) -> tuple[int, int, int, int]:
    """Grow the box to ``aspect`` (width/height) around its centre, inside the photo;
    where the photo is too small, trim the other side instead."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if bw / bh < aspect:                 # too narrow: widen
        nw = bh * aspect
        if nw > w:
            nw, nh = w, w / aspect
        else:
            nh = bh
    else:                                # too flat: heighten
        nh = bw / aspect
        if nh > h:
            nh, nw = h, h * aspect
        else:
            nw = bw
    nw, nh = max(1, round(nw)), max(1, round(nh))
    nx0 = int(round(min(max(0, cx - nw / 2), w - nw)))
    ny0 = int(round(min(max(0, cy - nh / 2), h - nh)))
    return nx0, ny0, nx0 + nw, ny0 + nh


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if (img.shape[1], img.shape[0]) == (w, h):
        return img
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(img, (w, h), interpolation=interp)


def render_zone(rgb: np.ndarray, box, preset: Preset, background=None) -> np.ndarray:
    h, w = rgb.shape[:2]
    b = clip_box(box, w, h)
    if preset.fit == "crop":
        b = box_to_aspect(b, preset.aspect, w, h)
    x0, y0, x1, y1 = b
    bw, bh = x1 - x0, y1 - y0
    s = min(preset.width / bw, preset.height / bh)          # preset canvas scale for this crop
    cw, ch = canvas_size(preset, 1.0 / s)
    crop = rgb[y0:y1, x0:x1]
    if preset.fit == "crop":
        return np.ascontiguousarray(_resize(crop, (cw, ch)))
    k = min(cw / bw, ch / bh)
    tw, th = min(cw, max(1, round(bw * k))), min(ch, max(1, round(bh * k)))
    out = np.empty((ch, cw, 3), np.uint8)
    out[:] = preset.background if background is None else background
    ox, oy = (cw - tw) // 2, (ch - th) // 2
    out[oy:oy + th, ox:ox + tw] = _resize(crop, (tw, th))
    return out


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    pts = cv2.findNonZero((mask > 127).view(np.uint8))
    if pts is None:
        return None
    x, y, w, h = cv2.boundingRect(pts)
    return x, y, x + w, y + h


def render_product(rgb: np.ndarray, mask: np.ndarray, preset: Preset, category: str | None = None,
                   background=None) -> np.ndarray:
    """The product on the preset's canvas (``background`` overrides the preset's colour: the
    pre-flight renders the mask itself on black to know where the subject landed)."""
    bg = preset.background if background is None else background
    box = _mask_box(mask)
    if box is None:
        raise ValueError("the product mask is empty: nothing to place on the background")
    bw, bh = box[2] - box[0], box[3] - box[1]
    rule = framing.choose(preset.category_framing, category, bw, bh)
    if rule is None:
        # preset canvas: the product's limiting side fills `fill` of the canvas
        s = preset.fill * min(preset.width / bw, preset.height / bh)
        cw, ch = canvas_size(preset, 1.0 / s)
        return compose(rgb, mask, cw, ch, preset.fill, bg)
    s = min(rule.fill_x * preset.width / bw, rule.fill_y * preset.height / bh)
    cw, ch = canvas_size(preset, 1.0 / s)
    fill = s * cw / preset.width / min(cw / bw, ch / bh)   # the same scale, as compose's `fill`
    img = compose(rgb, mask, cw, ch, min(1.0, fill), bg)
    if rule.baseline is not None:
        img = _to_baseline(img, bh * s * cw / preset.width, rule.baseline, bg)
    return img


def _to_baseline(img: np.ndarray, product_h: float, baseline: float, background) -> np.ndarray:
    """Move the centred product up or down so its bottom edge lies at ``baseline`` of the
    height (never out of the frame); the uncovered rows are background."""
    h = img.shape[0]
    bottom = (h + product_h) / 2.0
    dy = int(round(baseline * h - bottom))
    dy = max(-int((h - product_h) / 2), min(int((h - product_h) / 2), dy))
    if dy == 0:
        return img
    out = np.empty_like(img)
    out[:] = np.asarray(background, np.uint8)
    if dy > 0:
        out[dy:] = img[:h - dy]
    else:
        out[:h + dy] = img[-dy:]
    return out


def compose(rgb: np.ndarray, mask: np.ndarray, width: int, height: int, fill: float,
            background: tuple[int, int, int]) -> np.ndarray:
    """The product on ``background``, centred, on a ``width`` x ``height`` canvas."""
    try:
        from ml.stages.product import compose_on_white
    except ImportError:
        compose_on_white = None
    if compose_on_white is not None:
        img, _box = compose_on_white(rgb, mask, out_size=(width, height), fill=fill,
                                     background=tuple(background))
        img = np.asarray(img)
        if img.shape[:2] != (height, width):
            if abs(img.shape[1] / img.shape[0] - width / height) > 0.01:
                raise RuntimeError(f"compose_on_white gave {img.shape[1]}x{img.shape[0]} "
                                   f"for a {width}x{height} canvas")
            img = _resize(img, (width, height))
        return np.ascontiguousarray(img, dtype=np.uint8)
    return _compose_local(rgb, mask, width, height, fill, background)


def _compose_local(rgb, mask, width, height, fill, background) -> np.ndarray:
    """Used only while ``ml.stages.product`` is unavailable: alpha-composite the masked
    product onto the background, centred, limiting side = ``fill`` of the canvas."""
    x0, y0, x1, y1 = _mask_box(mask)
    bw, bh = x1 - x0, y1 - y0
    k = fill * min(width / bw, height / bh)
    tw, th = max(1, min(width, round(bw * k))), max(1, min(height, round(bh * k)))
    crop = _resize(rgb[y0:y1, x0:x1], (tw, th)).astype(np.float32)
    alpha = _resize(mask[y0:y1, x0:x1], (tw, th)).astype(np.float32)[..., None] / 255.0
    bg = np.asarray(background, np.float32)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = background
    ox, oy = (width - tw) // 2, (height - th) // 2
    out[oy:oy + th, ox:ox + tw] = np.clip(crop * alpha + bg * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return out


def render_item(rgb: np.ndarray, mask: np.ndarray | None, zone: str, box, preset: Preset,
                category: str | None = None) -> np.ndarray:
    return render_full(rgb, mask, zone, box, preset, category).image


@dataclass
class Rendered:
    image: np.ndarray
    subject: np.ndarray | None      # uint8, canvas size: > 0 where the subject is (background check)
    upscale: float                  # output pixels per source pixel (> 1: enlarged)
    white: bool                     # everything outside the subject must be the preset's background


def _zone_scale(box, preset: Preset, shape) -> float:
    h, w = shape[:2]
    x0, y0, x1, y1 = clip_box(box, w, h)
    if preset.fit == "crop":
        x0, y0, x1, y1 = box_to_aspect((x0, y0, x1, y1), preset.aspect, w, h)
    bw, bh = x1 - x0, y1 - y0
    cw, ch = canvas_size(preset, 1.0 / min(preset.width / bw, preset.height / bh))
    return cw / bw if preset.fit == "crop" else min(cw / bw, ch / bh)


def render_full(rgb: np.ndarray, mask: np.ndarray | None, zone: str, box, preset: Preset,
                category: str | None = None) -> Rendered:
    """The catalog image with what pre-flight needs to check it: the subject's mask on the canvas
    (products, and on-model images when the preset puts them on white) and the enlargement."""
    from . import cutout
    if zone == "product":
        if mask is None:
            raise ValueError("a product needs its mask")
        region = _mask_box(mask)
        if region is None:
            raise ValueError("the product mask is empty: nothing to place on the background")
        x0, y0, x1, y1 = _grow(region, 0.02, rgb.shape)
        F, a = cutout.clean(rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1])
        clean = rgb.copy()
        clean[y0:y1, x0:x1] = F
        soft = mask.copy()
        soft[y0:y1, x0:x1] = np.where(a > 0.5, 255, 0).astype(np.uint8)
        if _mask_box(soft) is None:
            soft = mask
        img = render_product(clean, soft, preset, category)
        subject = render_product(np.repeat(soft[..., None], 3, axis=2), soft, preset, category,
                                 background=(0, 0, 0))[..., 0]
        if preset.shadow != "off":
            from . import shadow
            img, subject = shadow.apply(img, subject, preset.shadow, clean, soft)
        bw, bh = region[2] - region[0], region[3] - region[1]
        return Rendered(img, subject, preset.fill * min(img.shape[1] / bw, img.shape[0] / bh), True)
    if preset.on_model == "white" and mask is not None:
        return _zone_on_white(rgb, mask, box, preset)
    return Rendered(render_zone(rgb, box, preset), None, _zone_scale(box, preset, rgb.shape), False)


def _grow(box, frac: float, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    m = max(4, int(round(frac * max(x1 - x0, y1 - y0))))
    return max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)


def _zone_on_white(rgb: np.ndarray, mask: np.ndarray, box, preset: Preset) -> Rendered:
    """The person inside the zone on pure background: soft decontaminated edge, the preset's margin
    (``fill``) around the person so that it does not touch the frame."""
    from . import cutout
    h, w = rgb.shape[:2]
    b = clip_box(box, w, h)
    x0, y0, x1, y1 = _grow(b, 0.03, rgb.shape)
    piece, alpha = cutout.on_background(rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1], preset.background)
    inside = alpha[b[1] - y0:b[3] - y0, b[0] - x0:b[2] - x0]
    pb = _mask_box(inside)
    if pb is None:                                   # no person in this zone: as before
        return Rendered(render_zone(rgb, box, preset), None, _zone_scale(box, preset, rgb.shape), False)
    # the person's part of the zone, with the preset's margin, on a canvas of background
    px0, py0, px1, py1 = pb[0] + b[0] - x0, pb[1] + b[1] - y0, pb[2] + b[0] - x0, pb[3] + b[1] - y0
    bw, bh = px1 - px0, py1 - py0
    side_w, side_h = bw / preset.fill, bh / preset.fill
    k = max(side_w / preset.width, side_h / preset.height)       # source px per canvas px
    fw, fh = int(round(preset.width * k)), int(round(preset.height * k))
    cx, cy = (px0 + px1) / 2, (py0 + py1) / 2
    fx0, fy0 = int(round(cx - fw / 2)), int(round(cy - fh / 2))
    frame = np.empty((fh, fw, 3), np.uint8)
    frame[:] = preset.background
    fmask = np.zeros((fh, fw), np.uint8)
    sx0, sy0 = max(0, fx0), max(0, fy0)
    sx1, sy1 = min(piece.shape[1], fx0 + fw), min(piece.shape[0], fy0 + fh)
    falpha = fmask.copy()
    frame[sy0 - fy0:sy1 - fy0, sx0 - fx0:sx1 - fx0] = piece[sy0:sy1, sx0:sx1]
    falpha[sy0 - fy0:sy1 - fy0, sx0 - fx0:sx1 - fx0] = alpha[sy0:sy1, sx0:sx1]
    # pre-flight judges the background against the document's own mask, not the compositor's alpha
    r = int(math.ceil(3 * cutout.EDGE_SIGMA))          # the soft edge reaches this far beyond the mask
    doc_mask = cv2.dilate(mask[y0:y1, x0:x1], np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    fmask[sy0 - fy0:sy1 - fy0, sx0 - fx0:sx1 - fx0] = doc_mask[sy0:sy1, sx0:sx1]
    cw, ch = canvas_size(preset, k)
    img = np.ascontiguousarray(_resize(frame, (cw, ch)))
    img[cv2.resize(falpha, (cw, ch), interpolation=cv2.INTER_LINEAR) == 0] = preset.background   # no ringing
    subject = cv2.resize(fmask, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return Rendered(img, subject, cw / fw, True)


# ---------------------------------------------------------------------------------------------
# encoding

def encode(rgb: np.ndarray, fmt: str, quality: int, *, exif: bytes | None = None,
           max_bytes: int = 0) -> tuple[bytes, int]:
    """Encoded file bytes (sRGB ICC embedded) and the quality used. With ``max_bytes`` a lossy
    format steps its quality down (not below MIN_QUALITY) until the file fits; the caller's
    pre-flight check reports a file that still does not."""
    im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    q = quality
    while True:
        buf = io.BytesIO()
        kw = {"icc_profile": srgb_icc()}
        if exif:
            kw["exif"] = exif
        if fmt == "jpeg":
            im.save(buf, "JPEG", quality=q, optimize=True, subsampling=0 if q >= 90 else 2, **kw)
        elif fmt == "webp":
            im.save(buf, "WEBP", quality=q, method=4, **kw)
        elif fmt == "png":
            im.save(buf, "PNG", compress_level=6, **kw)
        else:
            raise ValueError(f"unsupported format {fmt!r}")
        data = buf.getvalue()
        if not max_bytes or len(data) <= max_bytes or fmt == "png" or q <= MIN_QUALITY:
            return data, q
        q = max(MIN_QUALITY, q - max(5, int(math.ceil(q * 0.08))))


def swatch_image(rgb_tuple, size: int) -> np.ndarray:
    from ml.stages.swatch import render_swatch
    return render_swatch(tuple(rgb_tuple), size)
