"""Photo -> result document on disk. The one code path the CLI, the GUI worker and tests use.

``Processor.process(photo, out_root)`` loads the photo, runs ``ml.pipeline.Pipeline``,
and writes ``<out_root>/<folder>/`` through ``ResultFolder`` (its one owner): ``result.json``,
``mask.png`` (source size, 255 = subject), ``garments.png`` for a person (source size, pixel =
garment class index), one image per item (``<zone>.jpg``) and its swatch (``<zone>_swatch.png``).
Every file is written atomically; the source photo is only ever read.

Item images are *previews* for the operator and the catalogue's generic preset: zone
crops of the photo (person) or the product on pure white, square (product), capped at
``ITEM_MAX_SIDE``. The exporter renders final images from the source photo itself.
"""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ml.types import Analysis, LoadedImage
from . import atomic
from ml.types import Cancelled  # the one cancel type (studio_app.core.processor re-exports it)
from .result import DocumentError, Item, Keypoint, ResultDocument, Source, Swatch
from .result_folder import (ITEM_MAX_SIDE, JPEG_QUALITY, MASK_NAME, PRODUCT_FILL,  # noqa: F401 (re-exported)
                            NAMED_FILES, PRODUCT_MIN_SIDE, SWATCH_SIZE, ResultFolder, cap_side as _cap, encode_image,
                            is_binary_mask, item_file, render_item, safe_folder_name, swatch_file)


UNREAD = "not read"     # Outcome.card of a processor that does not look for barcode cards


@dataclass
class Outcome:
    photo: Path
    folder: Path | None
    doc: ResultDocument | None
    error: str | None = None
    skipped: bool = False          # an up-to-date result already existed
    timings: dict = field(default_factory=dict)   # seconds per stage (load, pipeline stages, write)
    card: object = UNREAD          # the barcode card read on the photo (catalog.binding.CardRead), None: none

    @property
    def ok(self) -> bool:
        return self.error is None


def folder_for(photo: Path, out_root: Path, sha256: str | None = None) -> Path:
    """``out_root/<stem>``; a different photo with the same stem gets ``<stem>-2`` etc."""
    return ResultFolder.for_photo(photo, out_root, sha256).path


def document_from_analysis(img: LoadedImage, a: Analysis) -> ResultDocument:
    items = []
    for ci in a.items:
        sw = None
        if ci.swatch is not None:
            sw = Swatch(rgb=[int(v) for v in ci.swatch.rgb], hex=ci.swatch.hex, family=ci.swatch.family,
                        file=swatch_file(ci.zone))
        items.append(Item(zone=ci.zone, box=[round(float(v), 2) for v in ci.box],
                          file=item_file(ci.zone), swatch=sw, category=ci.category))
    from ml.types import KEYPOINT_NAMES
    kps = []
    if a.kind == "person":
        kps = [Keypoint(name=n, x=round(float(a.keypoints.xy[i, 0]), 2), y=round(float(a.keypoints.xy[i, 1]), 2),
                        score=round(float(a.keypoints.score[i]), 4)) for i, n in enumerate(KEYPOINT_NAMES)]
    return ResultDocument(
        source=Source(path=str(Path(img.path).resolve()), sha256=img.sha256, width=img.width, height=img.height),
        kind=a.kind, kind_confidence=round(a.kind_confidence, 4), mask=MASK_NAME, keypoints=kps, items=items,
        needs_review=a.needs_review, warnings=list(dict.fromkeys(a.warnings)),
        engines=dict(a.engines), category=_category(a), garments=_garments_entry(a))


def _category(a: Analysis) -> dict | None:
    cat = a.category
    return {"name": cat[0], "confidence": float(cat[1])} if cat else None


def _garments_entry(a: Analysis) -> dict | None:
    if a.kind != "person" or a.garments is None:
        return None
    from ml.garments.labels import CLASSES
    return {"file": NAMED_FILES["garments"], "classes": list(CLASSES)}


def _read_card(rgb: np.ndarray):
    """The barcode card on the photo's working copy (the Studio binds the photos after a card to
    its SKU), or None; a reader failure only means no card."""
    try:
        from .catalog.binding import read_card
        return read_card(rgb)
    except Exception:         # zxing missing or failing must not fail the photo
        return None


def _takes_work(pipeline) -> bool:
    """Whether ``pipeline.analyze`` accepts a reduced decode (``work=``), as ``ml.pipeline``'s does."""
    import inspect
    try:
        return "work" in inspect.signature(pipeline.analyze).parameters
    except (TypeError, ValueError):
        return False


class _Ahead:
    """The next photo of a batch, read, hashed and decoded on a background thread while the
    current photo's outputs are encoded and written (both are native code that releases the GIL,
    so on two cores they overlap). Only a photo whose size and modification time are unchanged
    when it is taken is used; anything else (an error, another photo) is read again as usual."""

    def __init__(self):
        self._next: Path | None = None      # to read once the current photo has been analysed
        self._job = None                    # (photo, thread, result box) of a read in flight or done

    @staticmethod
    def _key(photo: Path):
        st = photo.stat()
        return (str(photo), st.st_size, st.st_mtime_ns)

    def expect(self, photo: Path | None) -> None:
        self._next = photo

    def start(self) -> None:
        photo, self._next = self._next, None
        if photo is None or (self._job is not None and self._job[0] == photo):
            return
        self.drop()
        box: list = []

        def work():
            try:
                from ml.io import load_two_scale, read_photo
                from ml.pipeline import WORK_SIDE
                key = self._key(photo)
                data = read_photo(photo)
                box.append((key, data.sha256, *load_two_scale(data, work_side=WORK_SIDE)))
            except Exception:          # the normal path reads it again and reports the error
                pass
        from ml import background
        t = background.start(work, "studio-read-ahead")
        self._job = (photo, t, box)

    def take(self, photo: Path):
        """(sha256, small, pending) read ahead for ``photo``, or None (then it is read as usual)."""
        job, self._job = self._job, None
        if job is None:
            return None
        job[1].join()
        if job[0] != photo or not job[2]:
            return None
        got = job[2][0]
        try:
            return got[1:] if got[0] == self._key(photo) else None
        except OSError:
            return None

    def drop(self) -> None:
        """Forget the read-ahead, once its thread and the full decode it started are done."""
        job, self._job = self._job, None
        if job is not None:
            job[1].join()
            if job[2]:
                job[2][0][-1].wait()


class Processor:
    """Loads models once and turns photos into result documents."""

    def __init__(self, device: str = "auto", weights_dir: str | Path | None = None,
                 pose_engine: str = "blazepose", seg_engine: str = "u2netp", pipeline=None):
        if pipeline is None:
            from ml.pipeline import Pipeline
            pipeline = Pipeline(weights_dir=weights_dir, device=device,
                                pose_engine=pose_engine, seg_engine=seg_engine)
        self.pipeline = pipeline
        self._ahead = _Ahead()

    def prefetch(self, photo: str | os.PathLike | None) -> None:
        """The photo that comes after the next ``process`` call (None: none): it is read and
        decoded while that call writes its outputs. Optional for a processor; the Studio calls it."""
        self._ahead.expect(Path(photo) if photo is not None else None)

    def process(self, photo: str | os.PathLike, out_root: str | os.PathLike, *, force_kind: str | None = None,
                skip_existing: bool = False, progress: Callable[[str, float], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> Outcome:
        """Never raises for a bad photo: the reason is in ``Outcome.error`` (one line).
        ``ml.pipeline.Cancelled`` propagates so a batch can stop."""
        from ml.io import ImageLoadError, load_two_scale, read_photo
        from ml.pipeline import WORK_SIDE
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
            ahead = self._ahead.take(photo)
            sha256, data = (ahead[0], None) if ahead else (None, read_photo(photo))
            sha256 = sha256 or data.sha256
            rf = ResultFolder.for_photo(photo, out_root, sha256)
            folder = rf.path
            prev = rf.load() if rf.has_document() else None   # DocumentError: corrupt / newer / unsafe: not overwritten
            if skip_existing and prev is not None and prev.source.sha256 == sha256:
                return Outcome(photo, folder, prev, skipped=True)
            small, pending = ahead[1:] if ahead else load_two_scale(data, work_side=WORK_SIDE)
            del data, ahead
            timings["load"] = time.perf_counter() - t
            if _takes_work(self.pipeline):
                analysis = self.pipeline.analyze(pending, work=small, force_kind=force_kind,
                                                 progress=progress, cancel=cancel)
            else:                                   # a pipeline without the fast path
                analysis = self.pipeline.analyze(pending.result(), force_kind=force_kind,
                                                 progress=progress, cancel=cancel)
            t = time.perf_counter()
            card = _read_card(small.rgb)      # on the working copy: no second decode
            timings["card"] = time.perf_counter() - t
            del small
            timings.update(analysis.timings)
            t = time.perf_counter()
            img = pending.result()
            timings["wait_decode"] = timings.get("wait_decode", 0.0) + time.perf_counter() - t
            timings["decode_full"] = pending.seconds      # on the background thread, overlapped
            for w in img.warnings:               # anything only the full decode noticed
                if w not in analysis.warnings:
                    analysis.warnings.append(w)
            self._ahead.start()            # the next photo decodes while this one is written
            doc = document_from_analysis(img, analysis)
            if prev is not None:
                doc.review = prev.review if prev.review.get("status") != "exported" else {"status": "pending", "note": ""}
            t = time.perf_counter()
            rf.write_all(doc, img.rgb, analysis.mask, garments=analysis.garments if doc.garments else None)
            timings["write"] = time.perf_counter() - t
            return Outcome(photo, folder, doc, timings=timings, card=card)
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
        """Files first, the document last (``ResultFolder.write_all``)."""
        ResultFolder(folder).write_all(doc, rgb, mask, garments=garments)

    def describe(self) -> str:
        from ml.device import describe
        return describe(self.pipeline.device) if hasattr(self.pipeline, "device") else "test processor"

    def close(self) -> None:
        """The models are freed with the object (nothing to stop in this process)."""
        self._ahead.expect(None)
        self._ahead.drop()
