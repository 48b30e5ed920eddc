"""Which files are photos, and which photos are one shot. Qt-free; the one home of both rules.

* A photo is a file whose extension the loader reads (``ml.io.SUPPORTED_EXTENSIONS``, one table
  extension -> decoder); :func:`is_photo_name` adds the names that are never photos yet (hidden,
  ``~``, partial downloads, macOS ``._`` companions). The hot folder, drag and drop, File › Open
  and the CLI all use it, so a file is accepted by all of them or by none.
* RAW+JPEG of one shot (same folder, same stem): the JPEG is processed and the RAW is kept as its
  source reference (:func:`pair_shots`). A RAW alone is processed itself.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ml.io import JPEG_EXTENSIONS, RAW_EXTENSIONS, SUPPORTED_EXTENSIONS

TEMP_SUFFIXES = (".part", ".tmp", ".temp", ".crdownload", ".download", ".partial", ".filepart", ".!ut")


def is_raw(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in RAW_EXTENSIONS


def is_jpeg(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in JPEG_EXTENSIONS


def is_photo_name(path: str | os.PathLike) -> bool:
    """True for a finished photo's name: a supported extension, not hidden / temporary / partial."""
    name = Path(path).name
    low = name.lower()
    if not name or name.startswith((".", "~")) or name.endswith("~") or low.endswith(TEMP_SUFFIXES):
        return False
    return Path(low).suffix in SUPPORTED_EXTENSIONS


def shot_key(path: Path) -> tuple[Path, str]:
    """Photos with the same key are one shot (RAW + JPEG written by the camera)."""
    return (path.parent, path.stem)


def pair_shots(photos: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """(photo to process, its RAW or None) per shot, in the given order: a RAW whose JPEG is among
    ``photos`` is not processed itself but becomes that JPEG's pair."""
    photos = list(photos)
    jpegs = {shot_key(p) for p in photos if is_jpeg(p)}
    raws = {shot_key(p): p for p in photos if is_raw(p)}
    out = []
    for p in photos:
        if is_raw(p) and shot_key(p) in jpegs:
            continue
        out.append((p, raws.get(shot_key(p)) if is_jpeg(p) else None))
    return out


def collect_photos(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Expand folders recursively into photos, in a stable order; each file once. Files named
    explicitly are kept even with an unknown extension (the loader then says why it cannot read
    them). Returns (photos, error lines)."""
    from .paths import unique_paths
    photos: list[Path] = []
    errors: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and is_photo_name(q))
            if not found:
                errors.append(f"{p}: no photos found in this folder")
            photos.extend(found)
        elif p.is_file():
            photos.append(p)
        else:
            errors.append(f"{p}: no such file or folder")
    return unique_paths(photos), errors
