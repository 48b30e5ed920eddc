"""Mask conventions shared by the stages: any mask a stage receives (bool, 0/1, 0/255 uint8,
or a float probability map, optionally HxWx1) is read through ``as_u8``."""
from __future__ import annotations

import numpy as np


def as_u8(mask: np.ndarray) -> np.ndarray:
    """A 2-D uint8 mask with 255 = subject. Float maps are scaled from [0, 1]."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype == bool:
        return m.astype(np.uint8) * 255
    if np.issubdtype(m.dtype, np.floating):
        return (np.clip(m, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if m.dtype != np.uint8:
        m = np.clip(m, 0, 255).astype(np.uint8)
    if m.max(initial=0) <= 1:
        return m * 255
    return m
