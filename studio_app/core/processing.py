"""Photo -> result document on disk. The one code path the CLI, the GUI worker and tests use.

``Processor.process(photo, out_root)`` loads the photo, runs ``ml.pipeline.Pipeline``,
and writes ``<out_root>/<folder>/``: ``result.json``, ``mask.png`` (source size, 255 =
subject), ``garments.png`` for a person (source size, pixel = garment class index), one
image per item (``<zone>.jpg``) and its swatch (``<zone>_swatch.png``).
Every file is written atomically; the source photo is only ever read.

Item images are *previews* for the operator and the catalogue's generic preset: zone
crops of the photo (person) or the product on pure white, square (product), capped at
``ITEM_MAX_SIDE``. The exporter renders final images from the source photo itself.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ml.types import Analysis, LoadedImage
from . import atomic
from .result import (DocumentError, Item, Keypoint, ResultDocument, Source, Swatch, load,
                     result_path, save)

ITEM_MAX_SIDE = 2048
PRODUCT_MIN_SIDE = 1000       # generic product preview: square, >= 500 (paper), 1000 for zoom
PRODUCT_FILL = 0.85
SWATCH_SIZE = 50
JPEG_QUALITY = 92
GARMENTS_NAME = "garments.png"


@dataclass
class Outcome:
    photo: Path
    folder: Path | None
    doc: ResultDocument | None
    error: str | None = None
    skipped: bool = False          # an up-to-date result already existed
    timings: dict = field(default_factory=dict)   # seconds per stage (load, pipeline stages, write)

    @property
    def ok(self) -> bool:
        return self.error is None


def safe_folder_name(stem: str) -> str:
    """A folder name from the photo stem: keeps unicode, drops path separators and control chars,
    and stays well under the 255-byte file-name limit."""
    name = re.sub(r'[\x00-\x1f/\\:*?"<>|]', "_", stem).strip(" .") or "photo"
    b = name.encode("utf-8")
    if len(b) > 120:
        digest = hashlib.sha1(b).hexdigest()[:8]
        name = b[:110].decode("utf-8", "ignore") + "-" + digest
    return name


def folder_for(photo: Path, out_root: Path, sha256: str | None = None) -> Path:
    """``out_root/<stem>``; a different photo with the same stem gets ``<stem>-2`` etc."""
    base = safe_folder_name(photo.stem)
    for i in range(1, 1000):
        cand = out_root / (base if i == 1 else f"{base}-{i}")
        rp = result_path(cand)
        if not rp.exists() and not cand.exists():
            return cand
        try:
            doc = load(cand)
        except DocumentError:
            # No document (an unfinished run): reuse the folder. A corrupt or newer document:
            # return it too, so that process() reports it instead of silently working around it.
            return cand
        if Path(doc.source.path).resolve() == photo.resolve() or (sha256 and doc.source.sha256 == sha256):
            return cand
    raise RuntimeError(f"too many photos named {photo.stem!r} in {out_root}")


def encode_image(path: Path, rgb: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """Atomic image write chosen by extension (.jpg/.png)."""
    ext = path.suffix.lower()
    bgr = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if ext in (".jpg", ".jpeg"):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        if is_binary_mask(bgr):
            # 1-bit PNG: a 24-MP mask encodes in ~30 ms instead of ~200 ms and is 3x smaller;
            # readers (cv2.IMREAD_GRAYSCALE) get exactly the same 0/255 array back.
            params += [cv2.IMWRITE_PNG_BILEVEL, 1]
        ok, buf = cv2.imencode(".png", bgr, params)
    else:
        raise ValueError(f"unsupported output format {ext}")
    if not ok:
        raise OSError(f"could not encode {path.name}")
    atomic.write_bytes(path, buf.tobytes())


def encode_label_map(path: Path, labels: np.ndarray) -> None:
    """Atomic 8-bit PNG of a label map (run-length strategy: fast on large flat regions)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(labels, dtype=np.uint8),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    atomic.write_bytes(path, buf.tobytes())


def is_binary_mask(a: np.ndarray) -> bool:
    """A 2-D uint8 array holding only 0 and 255."""
    if a.ndim != 2 or a.dtype != np.uint8 or a.size == 0:
        return False
    return cv2.countNonZero(cv2.inRange(a, 1, 254)) == 0      # one SIMD pass (~5 ms for 24 MP)


def _cap(img: np.ndarray, side: int = ITEM_MAX_SIDE) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    f = int(1.0 / s)
    if f >= 2 and h >= 2 * f and w >= 2 * f:
        # integer-factor area averaging first (OpenCV's fast path), then the remaining < 2x:
        # ~2.5x faster than one fractional area resize, within 0.2 grey levels of it.
        hh, ww = h - h % f, w - w % f
        img = cv2.resize(img[:hh, :ww], (ww // f, hh // f), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def render_item(rgb: np.ndarray, mask: np.ndarray, item_zone: str, box) -> np.ndarray:
    """The preview image of one item, from the oriented source pixels."""
    if item_zone == "product":
        from ml.stages.product import compose_on_white
        img, _ = compose_on_white(rgb, mask, out_size=PRODUCT_MIN_SIDE, fill=PRODUCT_FILL)
        return img
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = rgb.shape[:2]
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(w, max(x0 + 1, x1)), min(h, max(y0 + 1, y1))
    return _cap(rgb[y0:y1, x0:x1])


def write_item_files(doc: ResultDocument, folder: Path, rgb: np.ndarray, mask: np.ndarray,
                     zones: set[str] | None = None) -> None:
    """(Re)render item images and swatches named in ``doc`` — after processing, and after edits."""
    from ml.stages.swatch import render_swatch
    for it in doc.items:
        if zones is not None and it.zone not in zones:
            continue
        encode_image(folder / it.file, render_item(rgb, mask, it.zone, it.box))
        if it.swatch is not None:
            encode_image(folder / it.swatch.file, render_swatch(tuple(it.swatch.rgb), SWATCH_SIZE))


def document_from_analysis(img: LoadedImage, a: Analysis) -> ResultDocument:
    items = []
    for ci in a.items:
        sw = None
        if ci.swatch is not None:
            sw = Swatch(rgb=[int(v) for v in ci.swatch.rgb], hex=ci.swatch.hex, family=ci.swatch.family,
                        file=f"{ci.zone}_swatch.png")
        items.append(Item(zone=ci.zone, box=[round(float(v), 2) for v in ci.box],
                          file=f"{ci.zone}.jpg", swatch=sw))
    from ml.types import KEYPOINT_NAMES
    kps = []
    if a.kind == "person":
        kps = [Keypoint(name=n, x=round(float(a.keypoints.xy[i, 0]), 2), y=round(float(a.keypoints.xy[i, 1]), 2),
                        score=round(float(a.keypoints.score[i]), 4)) for i, n in enumerate(KEYPOINT_NAMES)]
    return ResultDocument(
        source=Source(path=str(Path(img.path).resolve()), sha256=img.sha256, width=img.width, height=img.height),
        kind=a.kind, kind_confidence=round(a.kind_confidence, 4), mask="mask.png", keypoints=kps, items=items,
        needs_review=a.needs_review, warnings=list(dict.fromkeys(a.warnings)),
        engines=dict(a.engines), garments=_garments_entry(a))


def _garments_entry(a: Analysis) -> dict | None:
    if a.kind != "person" or a.garments is None:
        return None
    from ml.garments.labels import CLASSES
    return {"file": GARMENTS_NAME, "classes": list(CLASSES)}


def _takes_work(pipeline) -> bool:
    """Whether ``pipeline.analyze`` accepts a reduced decode (``work=``), as ``ml.pipeline``'s does."""
    import inspect
    try:
        return "work" in inspect.signature(pipeline.analyze).parameters
    except (TypeError, ValueError):
        return False


class Processor:
    """Loads models once and turns photos into result documents."""

    def __init__(self, device: str = "auto", weights_dir: str | Path | None = None,
                 pose_engine: str = "blazepose", seg_engine: str = "u2netp", pipeline=None):
        if pipeline is None:
            from ml.pipeline import Pipeline
            pipeline = Pipeline(weights_dir=weights_dir, device=device,
                                pose_engine=pose_engine, seg_engine=seg_engine)
        self.pipeline = pipeline

    def process(self, photo: str | os.PathLike, out_root: str | os.PathLike, *, force_kind: str | None = None,
                skip_existing: bool = False, progress: Callable[[str, float], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> Outcome:
        """Never raises for a bad photo: the reason is in ``Outcome.error`` (one line).
        ``ml.pipeline.Cancelled`` propagates so a batch can stop."""
        from ml.io import ImageLoadError, load_two_scale, read_photo
        from ml.pipeline import WORK_SIDE, Cancelled
        photo = Path(photo)
        out_root = Path(out_root)
        folder = None
        timings: dict[str, float] = {}
        try:
            if progress:
                progress("load", 0.0)
            # The file is read and hashed once; the networks run on a DCT-reduced decode while
            # the full-resolution decode of the same bytes runs on a background thread.
            t = time.perf_counter()
            data = read_photo(photo)
            folder = folder_for(photo, out_root, data.sha256)
            if skip_existing and result_path(folder).exists():
                try:
                    doc = load(folder)
                    if doc.source.sha256 == data.sha256:
                        return Outcome(photo, folder, doc, skipped=True)
                except DocumentError:
                    pass
            if result_path(folder).exists():
                load(folder)   # refuse to overwrite a corrupt / newer document (raises DocumentError)
            small, pending = load_two_scale(data, work_side=WORK_SIDE)
            del data
            timings["load"] = time.perf_counter() - t
            if _takes_work(self.pipeline):
                analysis = self.pipeline.analyze(pending, work=small, force_kind=force_kind,
                                                 progress=progress, cancel=cancel)
            else:                                   # a pipeline without the fast path
                analysis = self.pipeline.analyze(pending.result(), force_kind=force_kind,
                                                 progress=progress, cancel=cancel)
            del small
            timings.update(analysis.timings)
            t = time.perf_counter()
            img = pending.result()
            timings["wait_decode"] = timings.get("wait_decode", 0.0) + time.perf_counter() - t
            timings["decode_full"] = pending.seconds      # on the background thread, overlapped
            for w in img.warnings:               # anything only the full decode noticed
                if w not in analysis.warnings:
                    analysis.warnings.append(w)
            doc = document_from_analysis(img, analysis)
            if result_path(folder).exists():
                prev = load(folder)
                doc.review = prev.review if prev.review.get("status") != "exported" else {"status": "pending", "note": ""}
            t = time.perf_counter()
            self.write(doc, folder, img.rgb, analysis.mask,
                       garments=analysis.garments if doc.garments else None)
            timings["write"] = time.perf_counter() - t
            return Outcome(photo, folder, doc, timings=timings)
        except Cancelled:
            raise
        except ImageLoadError as exc:     # nothing was written for a photo that cannot be read
            return Outcome(photo, None, None, error=str(exc))
        except DocumentError as exc:
            return Outcome(photo, folder, None, error=f"{photo.name}: {exc}")
        except atomic.WriteError as exc:
            return Outcome(photo, folder, None, error=f"{photo.name}: {exc.strerror or exc}")
        except MemoryError:
            return Outcome(photo, folder, None, error=f"{photo.name}: not enough memory to process this photo")
        except Exception:  # a bug must not stop the batch; keep the details for the log
            detail = traceback.format_exc(limit=3).strip().splitlines()[-1]
            return Outcome(photo, folder, None, error=f"{photo.name}: processing failed ({detail})")

    @staticmethod
    def write(doc: ResultDocument, folder: Path, rgb: np.ndarray, mask: np.ndarray,
              garments: np.ndarray | None = None) -> None:
        """Files first, the document last: a document on disk always names files that exist.

        Temporaries left in this folder by a killed run are removed first. When a write fails
        (disk full, read-only folder) for a photo that had no document yet, the files of this
        attempt are removed again, so no partial result folder is left behind."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise atomic.WriteError(exc.errno, atomic.explain(exc, result_path(folder))) from exc
        atomic.remove_stale_temporaries(folder)
        had_doc = result_path(folder).exists()
        try:
            # The full-size mask is encoded on a second thread while the items are rendered
            # (OpenCV and zlib release the GIL): the two largest writes overlap on two cores;
            # a person's garment map (garments.png) gets its own thread beside them.
            with ThreadPoolExecutor(max_workers=1 + (garments is not None), thread_name_prefix="mask-png") as pool:
                mask_job = pool.submit(encode_image, folder / doc.mask, mask)
                map_job = None
                if garments is not None and doc.garments:
                    map_job = pool.submit(encode_label_map, folder / doc.garments["file"], garments)
                try:
                    write_item_files(doc, folder, rgb, mask)
                finally:
                    mask_job.result()         # (re-)raises a failed mask write
                    if map_job is not None:
                        map_job.result()
            save(doc, folder)
        except BaseException:
            if not had_doc:
                names = [doc.mask] + ([doc.garments["file"]] if doc.garments else []) + [it.file for it in doc.items] + [it.swatch.file for it in doc.items if it.swatch]
                for n in names:
                    try:
                        (folder / n).unlink()
                    except OSError:
                        pass
                try:
                    folder.rmdir()          # only when empty
                except OSError:
                    pass
            raise
