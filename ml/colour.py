"""Colour helpers: sRGB <-> CIELAB (D65, float, no 8-bit quantisation), LCh, ΔE, and the
colour-family name used on swatches.

Families are Google Shopping's 13 colour filters: red, pink, orange, yellow, purple, green,
cyan, blue, brown, white, gray, black, mixed ("mixed" is decided by the swatch stage from the
cluster structure, never by :func:`family_name`, which names one colour).

How :func:`family_name` decides (CIELAB L in 0..100, chroma C = sqrt(a²+b²), hue h in degrees
from +a towards +b; for reference the sRGB primaries sit at red h≈40, yellow h≈102, green
h≈136, cyan h≈196, blue h≈306, magenta h≈328):

1. Achromatic — chroma below a lightness-dependent limit (``_achromatic_limit``: 9 in the
   mid-tones, rising to 13 near white and to 14 near black, where tints are hard to see;
   camera white balance leaves greys with a chroma of 5-10):
   ``white`` if L >= 82 (white fabric in studio light measures L 82-90), ``black`` if
   L < 25 (on the Magento photos black garments measure L <= 24.4, charcoal ones >= 25.5),
   else ``gray``. Very light, faintly tinted colours (L >= 90, C < 18: cream,
   ivory) are ``white`` too.
2. Hue sectors: red [350, 45), orange [45, 78), yellow [78, 118), green [118, 178)
   (bottle and emerald greens reach h≈175), cyan [178, 226), blue [226, b), purple [b, 350) where the blue/purple border b moves with
   chroma from 295 (C <= 45) to 310 (C >= 80): CIELAB bends saturated blue (sRGB blue,
   navy: h≈306) into the region where muted violets sit (h≈300).
3. Then the lightness/chroma variants:
   * ``brown``  — orange/yellow hues that are dark or muted (L < 52, or L < 68 with C < 40,
     or L < 82 with C < 30: tan, khaki, camel), and red hues that are dark and muted
     (L < 42, C < 45, h >= 15: rust, chestnut; a saturated dark red such as maroon stays
     ``red``);
   * ``pink``   — red hues that are light and not fully saturated (L >= 62 and C < 75:
     rose, salmon, baby pink, hot pink); magenta-pinks (h in [335, 350), L >= 50) and light
     purples with h >= 320 (L >= 62, C < 75);
   * dark yellows are ``green`` (olive, h >= 95) or ``brown`` (h < 95).

The thresholds were set on canonical web colours (tests/test_swatch.py) and checked on the
Magento catalogue colour labels and CCP garments in the dev set.
"""
from __future__ import annotations

import numpy as np

FAMILIES = ("red", "pink", "orange", "yellow", "purple", "green", "cyan", "blue",
            "brown", "white", "gray", "black", "mixed")

# D65 reference white (2°), sRGB primaries.
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]], dtype=np.float64)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0

# 256-entry table: 8-bit sRGB code -> linear light (avoids pow() per pixel).
_LIN_LUT = np.where(np.arange(256) / 255.0 <= 0.04045, (np.arange(256) / 255.0) / 12.92,
                    (((np.arange(256) / 255.0) + 0.055) / 1.055) ** 2.4)


def srgb_to_lab(rgb) -> np.ndarray:
    """sRGB (uint8 0..255, or float 0..1 when a float array is given) ``(..., 3)`` -> Lab float64."""
    a = np.asarray(rgb)
    if a.dtype == np.uint8:
        lin = _LIN_LUT[a]
    else:
        a = np.clip(a.astype(np.float64), 0.0, 1.0)
        lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB2XYZ.T / _WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    A = 500.0 * (f[..., 0] - f[..., 1])
    B = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, A, B], axis=-1)


def lab_to_srgb(lab) -> np.ndarray:
    """Lab ``(..., 3)`` -> sRGB uint8 (out-of-gamut values are clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f ** 3 > _EPS, f ** 3, (116.0 * f - 16.0) / _KAPPA) * _WHITE
    lin = np.clip(xyz @ _XYZ2RGB.T, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1.0 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def lab_to_lch(lab) -> np.ndarray:
    lab = np.asarray(lab, dtype=np.float64)
    c = np.hypot(lab[..., 1], lab[..., 2])
    h = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0
    return np.stack([lab[..., 0], c, h], axis=-1)


def delta_e(lab1, lab2) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in Lab); ~2.3 is a just-noticeable step."""
    d = np.asarray(lab1, dtype=np.float64) - np.asarray(lab2, dtype=np.float64)
    return np.sqrt((d * d).sum(axis=-1))


def to_hex(rgb) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _achromatic_limit(L: float) -> float:
    """Chroma under which a colour reads as white/gray/black (higher near the extremes)."""
    if L >= 80.0:
        return 9.0 + 4.0 * min(1.0, (L - 80.0) / 15.0)
    if L <= 35.0:
        return 9.0 + 5.0 * min(1.0, (35.0 - L) / 20.0)
    return 9.0


_SECTORS = ((45.0, "orange"), (78.0, "yellow"), (118.0, "green"), (178.0, "cyan"),
            (226.0, "blue"), (310.0, "purple"), (350.0, "red"))


def _hue_sector(h: float, C: float = 100.0) -> str:
    if h >= 350.0 or h < 45.0:
        return "red"
    # CIELAB bends blue towards purple: saturated blues (sRGB blue, navy) sit at h≈306 while
    # muted violets sit at h≈300, so the blue/purple border moves with chroma.
    blue_end = 295.0 + 15.0 * min(1.0, max(0.0, (C - 45.0) / 35.0))
    if 226.0 <= h < 310.0:
        return "blue" if h < blue_end else "purple"
    for start, name in reversed(_SECTORS):
        if h >= start:
            return name
    return "red"


def family_from_lab(lab) -> str:
    """The colour family of one Lab colour (see the module docstring for the rules)."""
    L, C, h = (float(v) for v in lab_to_lch(np.asarray(lab, dtype=np.float64).reshape(3)))
    if C < _achromatic_limit(L):
        if L >= 82.0:
            return "white"
        if L < 25.0:
            return "black"
        return "gray"
    if L >= 90.0 and C < 18.0:
        return "white"                   # cream, ivory, off-white
    sector = _hue_sector(h, C)
    if sector in ("orange", "yellow"):
        if L < 52.0 or (L < 68.0 and C < 40.0) or (L < 82.0 and C < 30.0):
            if sector == "yellow" and h >= 95.0 and L >= 35.0:
                return "green"           # olive / khaki-green
            return "brown"
        if sector == "yellow" and L < 60.0:
            return "green"
        return sector
    if sector == "red":
        if L < 42.0 and C < 45.0 and 15.0 <= h < 45.0:
            return "brown"
        if L >= 62.0 and C < 75.0:
            return "pink"
        return "red"
    if sector == "purple":
        if h >= 335.0 and L >= 50.0:
            return "pink"
        if L >= 62.0 and C < 75.0 and h >= 320.0:
            return "pink"
        return "purple"
    return sector


def family_name(rgb) -> str:
    """Colour family (one of :data:`FAMILIES` except ``mixed``) of an sRGB colour (0..255)."""
    rgb = np.asarray(rgb, dtype=np.float64).reshape(3)
    return family_from_lab(srgb_to_lab(rgb / 255.0))
