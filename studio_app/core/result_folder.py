"""The one owner of a result folder: ``<out>/<photo stem>/`` with ``result.json`` and the files it
names. Qt-free. Processing, edits, export and the GUI all go through :class:`ResultFolder`:

* **names**: ``result.json``, ``mask.png``, ``model_mask.png``, ``<zone>.jpg`` (item preview),
  ``<zone>_swatch.png`` — defined here once (:data:`NAMED_FILES`, :func:`item_file`,
  :func:`swatch_file`);
* **where**: the folder of a photo under an output root (``<stem>``, ``<stem>-2``, ... — one
  search, :meth:`ResultFolder.find` / :meth:`ResultFolder.for_photo`);
* **safety**: every file a document names must stay inside its folder. A document whose
  ``mask`` (or any field in :data:`FILE_FIELDS`) is absolute or climbs out
  (``"../../other/mask.png"``) is refused on load and on save, naming the field;
* **I/O**: atomic writes (``ml.atomic``), the document last so that a document on disk always
  names files that exist; the mask read in one place (:meth:`ResultFolder.read_mask`);
* **render**: item previews and swatches (:func:`render_item`), re-rendered after edits.

Adding a named file is one line in :data:`NAMED_FILES` plus its field in :data:`FILE_FIELDS`
(``garments.file``: a person's garment map, schema 2).
"""
from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from ml import resample

from . import atomic
from .result import (RESULT_NAME, DocumentError, ResultDocument, load as load_document, read_data,
                     save as save_document)

NAMED_FILES = {"mask": "mask.png", "model_mask": "model_mask.png", "garments": "garments.png"}
# Document fields that name a file of the folder ("[]": every element of a list). Validated on load/save.
FILE_FIELDS = ("mask", "model_mask", "garments.file", "items[].file", "items[].swatch.file")
MASK_NAME = NAMED_FILES["mask"]
MODEL_MASK_NAME = NAMED_FILES["model_mask"]
SEARCH_LIMIT = 1000                 # <stem>, <stem>-2, ... <stem>-999
ITEM_MAX_SIDE = 2048
PRODUCT_MIN_SIDE = 1000             # generic product preview: square, >= 500 (paper), 1000 for zoom
PRODUCT_FILL = 0.85
SWATCH_SIZE = 50
JPEG_QUALITY = 92


def item_file(zone: str) -> str:
    return f"{zone}.jpg"


def swatch_file(zone: str) -> str:
    return f"{zone}_swatch.png"


def safe_folder_name(stem: str) -> str:
    """A folder name from the photo stem: keeps unicode, drops path separators and control chars,
    and stays well under the 255-byte file-name limit."""
    name = re.sub(r'[\x00-\x1f/\\:*?"<>|]', "_", stem).strip(" .") or "photo"
    b = name.encode("utf-8")
    if len(b) > 120:
        digest = hashlib.sha1(b).hexdigest()[:8]
        name = b[:110].decode("utf-8", "ignore") + "-" + digest
    return name


# ---- file references ------------------------------------------------------------------------------
def _values(d: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield where, d
        return
    head, rest = parts[0], parts[1:]
    many = head.endswith("[]")
    key = head[:-2] if many else head
    v = d.get(key) if isinstance(d, dict) else None
    if v is None:
        return
    if many:
        for i, el in enumerate(v if isinstance(v, list) else []):
            yield from _values(el, rest, f"{where}{key}[{i}].")
    else:
        yield from _values(v, rest, f"{where}{key}.")


def file_references(data: dict) -> Iterator[tuple[str, str]]:
    """(field, file name) for every file a document (as a dict) names, e.g. ``("items[2].file", "top.jpg")``."""
    for spec in FILE_FIELDS:
        for where, v in _values(data, spec.split("."), ""):
            if v is not None:
                yield where.rstrip("."), v


def check_references(data: dict, folder: Path) -> None:
    """DocumentError naming the field when a file reference is not a plain name inside ``folder``."""
    root = folder.resolve()
    for where, name in file_references(data):
        _check_inside(root, where, name)


def _check_inside(root: Path, where: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise DocumentError(f"the result document's {where} is not a file name: {name!r}")
    p = Path(name)
    if p.is_absolute() or not (root / p).resolve().is_relative_to(root):
        raise DocumentError(f"the result document's {where} points outside its folder ({name!r}); "
                            "it was not used. Process the photo again to rewrite the result.")


# ---- images ----------------------------------------------------------------------------------------
def is_binary_mask(a: np.ndarray) -> bool:
    """A 2-D uint8 array holding only 0 and 255."""
    if a.ndim != 2 or a.dtype != np.uint8 or a.size == 0:
        return False
    return cv2.countNonZero(cv2.inRange(a, 1, 254)) == 0      # one SIMD pass (~5 ms for 24 MP)


def encode_label_map(path: Path, labels: np.ndarray) -> None:
    """Atomic 8-bit PNG of a label map: run-length strategy (fast on large flat regions) and the
    "up" filter only (a map scaled up from the working size repeats its rows, which "up" turns
    into zeros): a 24-MP map in ~55 ms instead of ~180 ms with libpng's adaptive filter choice,
    the same size."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):        # OpenCV >= 4.11
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(labels, dtype=np.uint8), params)
    if not ok:
        raise OSError(f"could not encode {path.name}")
    atomic.write_bytes(path, buf.tobytes())


def encode_image(path: Path, rgb: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """Atomic image write chosen by extension (.jpg/.png); a 0/255 mask as a 1-bit PNG."""
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


def cap_side(img: np.ndarray, side: int = ITEM_MAX_SIDE) -> np.ndarray:
    """Downscale (never up) so the long side is at most ``side``: integer-factor area averaging
    (OpenCV's fast path), then the remaining < 2x bilinearly. A fractional INTER_AREA step on a
    24-MP crop took 25-55 ms per item; bilinear for the last < 2x takes 4-14 ms and differs
    from it by 55-59 dB PSNR on the benchmark's 24-MP person (item images are previews; exports
    render from the original)."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    f = int(1.0 / s)
    if f >= 2 and h >= 2 * f and w >= 2 * f:
        img = resample.shrink(img, f)
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


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
    return cap_side(rgb[y0:y1, x0:x1])


# ---- the folder --------------------------------------------------------------------------------------
class ResultFolder:
    """One result folder. Cheap to create; nothing is read until asked."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultFolder({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ResultFolder) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(self.path.resolve())

    # ---- where ----------------------------------------------------------------------------------
    @staticmethod
    def _scan(photo: Path, out_root: Path, sha256: str | None) -> tuple["ResultFolder | None", Path | None]:
        """(the folder whose document is this photo's, the first folder this photo may take)."""
        photo = photo.resolve()
        base = safe_folder_name(photo.stem)
        usable = None
        for i in range(1, SEARCH_LIMIT):
            cand = out_root / (base if i == 1 else f"{base}-{i}")
            if not cand.exists():
                return None, usable or cand
            try:
                doc = load_document(cand)
            except DocumentError:       # unfinished run, corrupt or newer: processing reports it
                usable = usable or cand
                continue
            if Path(doc.source.path).resolve() == photo or (sha256 and doc.source.sha256 == sha256):
                return ResultFolder(cand), None
        return None, usable

    @classmethod
    def find(cls, photo: str | os.PathLike, out_root: str | os.PathLike) -> "ResultFolder | None":
        """The folder under ``out_root`` whose document names ``photo`` as its source, or None."""
        return cls._scan(Path(photo), Path(out_root), None)[0]

    @classmethod
    def for_photo(cls, photo: str | os.PathLike, out_root: str | os.PathLike,
                  sha256: str | None = None) -> "ResultFolder":
        """Where the result of ``photo`` goes: its existing folder (same source path, or same bytes
        when ``sha256`` is given), else ``<stem>`` or the first free ``<stem>-N``. DocumentError
        when that folder would resolve outside ``out_root`` (a link leading elsewhere): refused."""
        found, free = cls._scan(Path(photo), Path(out_root), sha256)
        if found is None and free is None:
            raise RuntimeError(f"too many photos named {Path(photo).stem!r} in {out_root}")
        rf = found or cls(free)
        root = Path(out_root).resolve()
        if not rf.path.resolve().is_relative_to(root):
            raise DocumentError(f"its result folder {rf.path.name} resolves outside the output folder {root}; refused")
        return rf

    # ---- files ------------------------------------------------------------------------------------
    @property
    def result_path(self) -> Path:
        return self.path / RESULT_NAME

    def has_document(self) -> bool:
        return self.result_path.exists()

    def file(self, name: str, field: str = "file") -> Path:
        """The path of a file named by the document; DocumentError when it would leave the folder."""
        _check_inside(self.path.resolve(), field, name)
        return self.path / name

    def load(self) -> ResultDocument:
        """The document, with every file reference checked (DocumentError names the bad field)."""
        data = read_data(self.path)
        doc = ResultDocument.from_dict(data)      # version and schema first: a newer document says so
        check_references(data, self.path)
        return doc

    def try_load(self) -> ResultDocument | None:
        try:
            return self.load()
        except DocumentError:
            return None

    def save(self, doc: ResultDocument, *, replace_unreadable: bool = False) -> Path:
        """Write ``result.json`` atomically (refuses to overwrite an unreadable document)."""
        check_references(doc.to_dict(), self.path)
        return save_document(doc, self.path, replace_unreadable=replace_unreadable)

    def read_mask(self, doc: ResultDocument, which: str = "mask") -> np.ndarray | None:
        """The mask (``which``: ``mask`` or ``model_mask``) as uint8 (H, W); None when the document
        names none or the file is not there. DocumentError when it cannot be decoded."""
        name = getattr(doc, which)
        if not name:
            return None
        p = self.file(name, which)
        if not p.is_file():
            return None
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise DocumentError(f"the mask {p.name} cannot be read")
        return m

    def read_garments(self, doc: ResultDocument) -> np.ndarray | None:
        """A person's garment map (uint8, source size) with pixel values in the order of
        ``ml.garments.CLASSES`` (a document listing its classes in another order is remapped by
        name; unknown names read as background). None when the document names none or the file
        is not there; DocumentError when it cannot be decoded or has the wrong size."""
        if not doc.garments:
            return None
        p = self.file(doc.garments["file"], "garments.file")
        if not p.is_file():
            return None
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise DocumentError(f"the garment map {p.name} cannot be read")
        if m.shape != (doc.source.height, doc.source.width):
            raise DocumentError(f"the garment map {p.name} is {m.shape[1]} x {m.shape[0]}, not the photo's "
                                f"{doc.source.width} x {doc.source.height}; process the photo again")
        from ml.garments.labels import CLASS_INDEX, CLASSES
        names = doc.garments["classes"]
        if tuple(names) != CLASSES:
            lut = np.zeros(256, np.uint8)
            for i, n in enumerate(names[:256]):
                lut[i] = CLASS_INDEX.get(n, 0)
            m = lut[m]
        return m

    def mask_or_empty(self, doc: ResultDocument) -> np.ndarray:
        m = self.read_mask(doc)
        return m if m is not None else np.zeros((doc.source.height, doc.source.width), np.uint8)

    def write_mask(self, doc: ResultDocument, mask: np.ndarray) -> None:
        """Rewrite the operator's mask; the model's own mask is kept once (``model_mask.png``)
        before the first edit. The caller sets ``doc.model_mask`` and saves the document."""
        cur = self.file(doc.mask, "mask")
        if doc.model_mask is None and cur.exists():
            atomic.write_bytes(self.path / MODEL_MASK_NAME, cur.read_bytes())
        encode_image(cur, mask)

    def render_items(self, doc: ResultDocument, rgb: np.ndarray, mask: np.ndarray,
                     zones: Iterable[str] | None = None) -> None:
        """(Re)render the item previews and swatches ``doc`` names (only ``zones`` when given)."""
        from ml.stages.swatch import render_swatch
        zones = None if zones is None else set(zones)
        for it in doc.items:
            if zones is not None and it.zone not in zones:
                continue
            encode_image(self.file(it.file, f"{it.zone} file"), render_item(rgb, mask, it.zone, it.box))
            if it.swatch is not None:
                encode_image(self.file(it.swatch.file, f"{it.zone} swatch"),
                             render_swatch(tuple(it.swatch.rgb), SWATCH_SIZE))

    def missing_items(self, doc: ResultDocument) -> set[str]:
        return {it.zone for it in doc.items if not (self.path / it.file).exists()}

    def write_all(self, doc: ResultDocument, rgb: np.ndarray, mask: np.ndarray,
                  garments: np.ndarray | None = None) -> None:
        """A new result: mask (and a person's garment map), items, swatches, then the document. Temporaries left by a killed run
        are removed first. When a write fails (disk full, read-only) for a folder that had no
        document yet, the files of this attempt are removed again: no partial folder is left."""
        check_references(doc.to_dict(), self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise atomic.WriteError(exc.errno, atomic.explain(exc, self.result_path)) from exc
        atomic.remove_stale_temporaries(self.path)
        had_doc = self.has_document()
        try:
            # The full-size mask is encoded on a second thread while the items are rendered
            # (OpenCV and zlib release the GIL): the two largest writes overlap on two cores;
            # a person's garment map (garments.png) gets its own thread beside them.
            with ThreadPoolExecutor(max_workers=1 + (garments is not None), thread_name_prefix="mask-png") as pool:
                mask_job = pool.submit(encode_image, self.path / doc.mask, mask)
                map_job = None
                if garments is not None and doc.garments:
                    map_job = pool.submit(encode_label_map, self.path / doc.garments["file"], garments)
                try:
                    self.render_items(doc, rgb, mask)
                finally:
                    mask_job.result()         # (re-)raises a failed mask write
                    if map_job is not None:
                        map_job.result()
            self.save(doc)
        except BaseException:
            if not had_doc:
                self._remove_attempt(doc)
            raise

    def _remove_attempt(self, doc: ResultDocument) -> None:
        names = [doc.mask] + ([doc.garments["file"]] if doc.garments else []) + [it.file for it in doc.items] + [it.swatch.file for it in doc.items if it.swatch]
        for n in names:
            try:
                (self.path / n).unlink()
            except OSError:
                pass
        try:
            self.path.rmdir()          # only when empty
        except OSError:
            pass
