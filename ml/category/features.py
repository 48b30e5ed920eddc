"""The feature cache: backbone features of every training view, computed once per photo.

``<cache>/features/<rel>.npy`` holds a float16 array ``V x FEATURE_DIM``, one row per view
of :func:`ml.category.views.training_views` (train photos) or of :data:`EVAL_VIEWS` (dev
photos). The mask is computed first if it is not cached (:mod:`ml.category.data`). The
cache is keyed by the backbone file's SHA-256 prefix, so another backbone never mixes in.
Each file is written atomically, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np

from ml.category import data, views

EVAL_VIEWS = ("white", "own_background")


def _views(rec: data.Record, rgb: np.ndarray, mask: np.ndarray, seed: int, size: int) -> list[np.ndarray]:
    if rec.split == "train":
        return views.training_views(rgb, mask, seed, size)
    return [views.compose(rgb, mask, size=size), views.compose(rgb, mask, size=size, use_mask=False)]


def feature_path(cache: Path, tag: str, rec: data.Record) -> Path:
    return cache / f"features-{tag}" / (rec.rel + ".npy")


def build(recs: list[data.Record], cache: Path, backbone, segmenter, tag: str,
          progress: Callable[[int, int, str], None] | None = None) -> None:
    """Make sure every record has its mask and features in ``cache``."""
    from ml.atomic import write_bytes
    for i, rec in enumerate(recs):
        fp = feature_path(cache, tag, rec)
        if not fp.is_file():
            rgb = data.reduced(data.read_rgb(rec.path))
            mp = data.mask_path(cache, rec)
            if mp.is_file():
                mask = data.load_mask(cache, rec)
            else:
                if segmenter is None:
                    raise FileNotFoundError(f"no cached mask for {rec.rel} and no segmenter given")
                mask = data.compute_mask(segmenter, rgb)
                _write_png(mp, mask)
            feats = np.concatenate([backbone.features(v[None]) for v in _views(rec, rgb, mask, i, backbone.input_size)])
            buf = io.BytesIO()
            np.save(buf, feats.astype(np.float16))
            fp.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(fp, buf.getvalue())
        if progress is not None:
            progress(i + 1, len(recs), rec.rel)


def _write_png(p: Path, mask: np.ndarray) -> None:
    import cv2

    from ml.atomic import write_bytes
    ok, png = cv2.imencode(".png", mask)
    if not ok:
        raise RuntimeError(f"could not encode the mask {p}")
    p.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(p, png.tobytes())


def load(recs: list[data.Record], cache: Path, tag: str) -> tuple[list[np.ndarray], np.ndarray]:
    """(per-record V x D float32 arrays, labels) for the records whose features exist."""
    feats, labels = [], []
    for rec in recs:
        fp = feature_path(cache, tag, rec)
        if fp.is_file():
            feats.append(np.load(fp).astype(np.float32))
            labels.append(rec.label)
    return feats, np.asarray(labels, np.int64)
