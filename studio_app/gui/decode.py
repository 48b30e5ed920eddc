"""Decoding photos for the screen off the GUI thread, without holding the GIL.

``QImageReader.read()`` keeps the GIL for the whole decode, so a loader thread decoding a
24-MP JPEG freezes the window for that long. OpenCV lets go of it and decodes JPEGs at 1/2, 1/4
or 1/8 size directly (DCT scaling), which is also faster. EXIF orientation is applied by OpenCV."""
from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage, QImageReader

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def decode_scaled(path: str, longest: int) -> QImage | None:
    """The photo with its long side at most ``longest`` px (RGB32), or None when OpenCV cannot
    read it (the caller falls back to Qt / the project's loader: RAW files, odd formats)."""
    size = QImageReader(path).size()              # reads the header only
    if not size.isValid() or size.width() <= 0:
        return None
    full = max(size.width(), size.height())
    flag = next((f for k, f in _REDUCED if full // k >= longest), cv2.IMREAD_COLOR)
    bgr = cv2.imread(path, flag)
    if bgr is None or bgr.ndim != 3:
        return None
    h, w = bgr.shape[:2]
    s = longest / max(h, w)
    if s < 1:
        bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).convertToFormat(QImage.Format_RGB32)
