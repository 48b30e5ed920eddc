"""Pre-flight checks on the WRITTEN file, re-read from disk (what the marketplace will get).

Each check that fails gives a ``Finding`` with the preset's severity for it: ``block`` (the
file is not kept and not in the manifest; the reason is reported) or ``warn`` (kept, flagged
in the manifest). Checks (names as in a preset's ``checks``):

========== ====================================================================================
format     the file decodes as the preset's format (JPEG / PNG / WebP)
srgb       an sRGB ICC profile is embedded
file_size  at most ``max_file_mb``
min_long_side / max_long_side / min_size / max_pixels   pixel dimensions
aspect     width/height within 1 % of the preset's canvas
background images on the preset's background (products; on-model images with ``on_model: white``):
           every pixel outside the subject (its mask on the canvas, grown by SUBJECT_MARGIN for
           JPEG ringing) is exactly the preset's background colour; without the mask: the border
upscale    the image is not enlarged from the photo by more than UPSCALE_SLACK (``upscale: false``)
fill       product images: the product's extent (pixels differing from the background by more
           than FILL_TOLERANCE) covers at least ``min_fill`` of the frame on its longest side
colour     the item has a colour family (not missing, not "mixed") - e.g. Google apparel
========== ====================================================================================
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from .presets import Preset
from .render import PIL_FORMAT

ASPECT_TOLERANCE = 0.01
FILL_TOLERANCE = 16        # levels: JPEG ringing around the product is not "product"
FILL_SLACK = 0.005
SUBJECT_MARGIN = 17        # canvas pixels around the subject where JPEG ringing is allowed (16-px chroma blocks)
UPSCALE_SLACK = 1.05


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str      # block | warn
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


def status(findings: list[Finding]) -> str:
    if any(f.severity == "block" for f in findings):
        return "blocked"
    return "warn" if findings else "ok"


def is_srgb_profile(icc: bytes | None) -> bool:
    if not icc:
        return False
    try:
        prof = ImageCms.ImageCmsProfile(__import__("io").BytesIO(icc))
        desc = ImageCms.getProfileDescription(prof) or ""
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return False
    return "srgb" in desc.lower().replace(" ", "")


def measure(path: str | os.PathLike, background: tuple[int, int, int], subject=None) -> dict:
    """Facts about the written file: format, size, profile, border, background outside the
    subject (when its canvas mask is given) and fill."""
    path = Path(path)
    info: dict = {"bytes": path.stat().st_size}
    with Image.open(path) as im:
        info["format"] = im.format
        info["width"], info["height"] = im.size
        info["icc"] = im.info.get("icc_profile")
        a = np.asarray(im.convert("RGB"))
    bg = np.asarray(background, np.int16)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).astype(np.int16)
    info["border_ok"] = bool(np.all(border == bg))
    info["border_bad_pixels"] = int(np.count_nonzero(np.any(border != bg, axis=1)))
    if subject is not None and subject.shape == a.shape[:2]:
        grown = cv2.dilate((subject > 0).astype(np.uint8), np.ones((2 * SUBJECT_MARGIN + 1,) * 2, np.uint8))
        off = np.any(a != np.asarray(background, np.uint8), axis=2) & (grown == 0)
        info["outside_bad_pixels"] = int(np.count_nonzero(off))
        info["outside_pixels"] = int(np.count_nonzero(grown == 0))
    bg_img = np.empty_like(a)
    bg_img[:] = background
    diff = cv2.absdiff(a, bg_img).max(axis=2) > FILL_TOLERANCE
    rows, cols = diff.any(axis=1), diff.any(axis=0)
    if rows.any():
        y = np.nonzero(rows)[0]
        x = np.nonzero(cols)[0]
        ext_w, ext_h = int(x[-1] - x[0] + 1), int(y[-1] - y[0] + 1)
        info["fill"] = max(ext_w / a.shape[1], ext_h / a.shape[0])
    else:
        info["fill"] = 0.0
    return info


def check(path: str | os.PathLike, preset: Preset, *, role: str = "image", zone: str = "product",
          family: str | None = None, subject=None, upscale: float = 1.0,
          white: bool | None = None) -> tuple[list[Finding], dict]:
    """Findings for a written file. ``role`` is "image" or "swatch" (swatches: format, profile, size only)."""
    findings: list[Finding] = []

    def fail(name: str, msg: str) -> None:
        sev = preset.severity(name)
        if sev != "off":
            findings.append(Finding(name, sev, msg))

    fmt = preset.swatch.format if role == "swatch" and preset.swatch else preset.format
    try:
        m = measure(path, preset.background, subject)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return [Finding("format", "block", f"the written file cannot be read back ({exc})")], {}
    if m["format"] != PIL_FORMAT[fmt]:
        fail("format", f"is {m['format']}, the preset wants {PIL_FORMAT[fmt]}")
    if not is_srgb_profile(m["icc"]):
        fail("srgb", "no sRGB ICC profile embedded")
    if preset.max_file_bytes and m["bytes"] > preset.max_file_bytes:
        fail("file_size", f"{m['bytes'] / 1048576:.1f} MB is over the {preset.max_file_bytes / 1048576:g} MB limit")
    if role == "swatch":
        return findings, m
    w, h = m["width"], m["height"]
    if max(w, h) < preset.min_long_side:
        fail("min_long_side", f"longest side {max(w, h)} px is under {preset.min_long_side} px")
    if max(w, h) > preset.max_long_side:
        fail("max_long_side", f"longest side {max(w, h)} px is over {preset.max_long_side} px")
    if w < preset.min_width or h < preset.min_height:
        fail("min_size", f"{w}x{h} px is under the minimum {preset.min_width}x{preset.min_height} px")
    if preset.max_pixels and w * h > preset.max_pixels:
        fail("max_pixels", f"{w * h / 1e6:.1f} MP is over {preset.max_pixels / 1e6:g} MP")
    if abs(w / h - preset.aspect) > ASPECT_TOLERANCE * preset.aspect:
        fail("aspect", f"{w}x{h} is not the {preset.width}:{preset.height} aspect")
    if not preset.upscale and upscale > UPSCALE_SLACK:
        fail("upscale", f"enlarged {upscale:.1f}x from the photo to reach {max(w, h)} px (the zone is only "
                        f"{max(w, h) / upscale:.0f} px in the photo; the preset allows no upscaling)")
    if white if white is not None else zone == "product":
        rgb = ",".join(map(str, preset.background))
        if "outside_bad_pixels" in m:
            if m["outside_bad_pixels"]:
                share = m["outside_bad_pixels"] / max(1, m["outside_pixels"])
                fail("background", f"{m['outside_bad_pixels']} pixels ({share:.1%}) outside the subject are not "
                                   f"exactly RGB {rgb}")
        elif not m["border_ok"]:
            fail("background", f"{m['border_bad_pixels']} border pixels are not exactly RGB {rgb}")
    if zone == "product":
        if preset.min_fill > 0 and m["fill"] + FILL_SLACK < preset.min_fill:
            fail("fill", f"the product fills {m['fill']:.0%} of the frame (at least {preset.min_fill:.0%} needed)")
    if not family or family == "mixed":
        fail("colour", "no colour name for this item" if not family else "the colour is 'mixed': give a colour name")
    return findings, m
