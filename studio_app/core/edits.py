"""Operator edits of a result document. Qt-free.

Two layers:

* pure functions ``doc -> new doc`` (the input is never modified): :func:`move_keypoint`,
  :func:`set_box`, :func:`add_zone`, :func:`delete_zone`, :func:`set_locked`,
  :func:`set_swatch`, :func:`set_review`, and :func:`paint_mask` (mask array -> new array);
  fit-to-garment and the category in :mod:`studio_app.core.edits_apparel`;
* :class:`Editor`, bound to one result folder, which applies an edit, re-renders the item
  previews it affects and saves the document atomically at once (a crash loses nothing).
  ``snapshot()``/``restore()`` give exact undo/redo (the GUI's QUndoStack wraps them); masks
  are kept in the history compressed (:class:`PackedMask`), so an unlimited history of brush
  strokes on 24-MP photos costs kilobytes per stroke, not 2 x 24 MB.

Moving a keypoint re-frames every zone that depends on it (``ml.stages.crops.recompute_box``)
unless the item is ``locked``; setting a box by hand locks it. A person photo's swatch is measured
on its garment's pixels when the document has a garment map (as the pipeline does), else on the
person mask minus skin inside the box.
"""
from __future__ import annotations

import copy
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from ml.types import PERSON_ZONES, ZONES  # noqa: F401  (PERSON_ZONES re-exported)
from .edit_base import EditError, clone, keypoints_of  # noqa: F401  (re-exported)
from .edit_base import clip_box as _clip_box
from .edits_apparel import fit_box, garment_box, set_category
from .result import DocumentError, Item, ResultDocument, Swatch
from .result_folder import MODEL_MASK_NAME, ResultFolder, is_binary_mask, item_file, swatch_file


class PackedMask:
    """A uint8 mask held compressed and restored bit-exact: a 0/255 mask as packed bits, any other
    as raw bytes, then zlib (level 1). A 24-MP person mask: 24 MB as an array, tens of KB here."""

    __slots__ = ("shape", "binary", "data")

    def __init__(self, mask: np.ndarray):
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        self.shape = mask.shape
        self.binary = is_binary_mask(mask)
        raw = np.packbits(mask > 127) if self.binary else mask
        self.data = zlib.compress(raw.tobytes(), 1)

    @property
    def nbytes(self) -> int:
        return len(self.data)

    def unpack(self) -> np.ndarray:
        raw = np.frombuffer(zlib.decompress(self.data), np.uint8)
        if self.binary:
            n = int(np.prod(self.shape))
            return (np.unpackbits(raw, count=n).reshape(self.shape) * np.uint8(255))
        return raw.reshape(self.shape).copy()


def recompute(zone: str, doc: ResultDocument, mask: np.ndarray | None) -> list[float] | None:
    """The zone's box framed from the document's keypoints (None when it cannot be framed)."""
    from ml.stages.crops import recompute_box
    size = (doc.source.width, doc.source.height)
    box = recompute_box(zone, keypoints_of(doc), size, mask)
    if box is None:
        return None
    try:
        return _clip_box(box, *size)
    except EditError:
        return None


# ---- pure edits: doc -> new doc -----------------------------------------------------------------
def move_keypoint(doc: ResultDocument, name: str, x: float, y: float,
                  mask: np.ndarray | None = None, garments: np.ndarray | None = None
                  ) -> tuple[ResultDocument, set[str]]:
    """Move one keypoint (marked as sure: score 1). Returns (new doc, zones whose box changed).
    With a garment map, a garment zone stays framed on its garment (the keypoint box is its
    prior, as in the pipeline) instead of falling back to the keypoint rule."""
    if doc.kind != "person":
        raise EditError("only person photos have keypoints")
    new = clone(doc)
    k = new.keypoint(name)
    if k is None:
        raise EditError(f"unknown keypoint {name!r}")
    w, h = doc.source.width, doc.source.height
    k.x = round(min(max(float(x), 0.0), w - 1.0), 2)
    k.y = round(min(max(float(y), 0.0), h - 1.0), 2)
    k.score = 1.0
    changed: set[str] = set()
    for it in new.items:
        if it.locked or it.zone not in PERSON_ZONES:
            continue
        box = recompute(it.zone, new, mask)
        box = garment_box(new, it.zone, garments, box) or box
        if box is not None and box != it.box:
            it.box = box
            changed.add(it.zone)
    return new, changed


def set_box(doc: ResultDocument, zone: str, box, lock: bool = True) -> ResultDocument:
    new = clone(doc)
    it = new.item(zone)
    if it is None:
        raise EditError(f"there is no {zone} item")
    it.box = _clip_box(box, doc.source.width, doc.source.height)
    it.locked = it.locked or lock
    return new


def set_locked(doc: ResultDocument, zone: str, locked: bool) -> ResultDocument:
    new = clone(doc)
    it = new.item(zone)
    if it is None:
        raise EditError(f"there is no {zone} item")
    it.locked = bool(locked)
    return new


def add_zone(doc: ResultDocument, zone: str, box=None, mask: np.ndarray | None = None,
             garments: np.ndarray | None = None) -> ResultDocument:
    if zone not in ZONES:
        raise EditError(f"unknown zone {zone!r}")
    if doc.item(zone) is not None:
        raise EditError(f"the {zone} zone is already there")
    if (zone == "product") != (doc.kind == "product"):
        raise EditError(f"a {doc.kind} photo cannot have a {zone} zone")
    new = clone(doc)
    w, h = doc.source.width, doc.source.height
    if box is None and doc.kind == "person":      # the garment's own box, else the keypoints'
        prior = recompute(zone, new, mask)
        box = garment_box(new, zone, garments, prior) or prior
    if box is None:  # a centred half-size box the operator then drags into place
        box = [w * 0.25, h * 0.25, w * 0.75, h * 0.75]
    new.items.append(Item(zone=zone, box=_clip_box(box, w, h), file=item_file(zone), swatch=None,
                          locked=True))
    new.items.sort(key=lambda it: ZONES.index(it.zone))
    return new


def delete_zone(doc: ResultDocument, zone: str) -> ResultDocument:
    if doc.item(zone) is None:
        raise EditError(f"there is no {zone} item")
    new = clone(doc)
    new.items = [it for it in new.items if it.zone != zone]
    return new


def set_swatch(doc: ResultDocument, zone: str, rgb) -> ResultDocument:
    from ml.colour import family_name
    rgb = [int(v) for v in rgb]
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise EditError(f"a colour is three values 0..255, got {rgb!r}")
    new = clone(doc)
    it = new.item(zone)
    if it is None:
        raise EditError(f"there is no {zone} item")
    it.swatch = Swatch(rgb=rgb, hex="#{:02X}{:02X}{:02X}".format(*rgb), family=family_name(rgb),
                       file=swatch_file(zone))
    return new


def set_review(doc: ResultDocument, status: str, note: str | None = None) -> ResultDocument:
    from .result import REVIEW_STATES
    if status not in REVIEW_STATES:
        raise EditError(f"unknown review status {status!r}")
    new = clone(doc)
    new.review = {"status": status, "note": new.review.get("note", "") if note is None else note}
    return new


def paint_mask(mask: np.ndarray, points, radius: float, add: bool) -> np.ndarray:
    """A copy of ``mask`` with a round brush of ``radius`` px stroked through ``points`` (x, y)."""
    out = mask.copy()
    value = 255 if add else 0
    r = max(1, int(round(radius)))
    pts = [(int(round(x)), int(round(y))) for x, y in points]
    if not pts:
        return out
    cv2.circle(out, pts[0], r, value, -1, lineType=cv2.LINE_8)
    for a, b in zip(pts, pts[1:]):
        cv2.line(out, a, b, value, 2 * r, lineType=cv2.LINE_8)
        cv2.circle(out, b, r, value, -1, lineType=cv2.LINE_8)
    return out


# ---- the editor: apply + render + save -----------------------------------------------------------
def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """The oriented source photo as RGB uint8 (the same pixels the pipeline saw)."""
    try:
        from ml.io import load_image
    except ImportError:
        load_image = None
    if load_image is not None:
        return load_image(path).rgb
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


class Editor:
    """Edits one result folder. Every method saves the document (and files) before returning."""

    def __init__(self, folder: str | os.PathLike, doc: ResultDocument | None = None):
        self.folder = Path(folder)
        self.rf = ResultFolder(self.folder)
        self.doc = doc if doc is not None else self.rf.load()
        self._rgb: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._garments: np.ndarray | None | bool = False      # False: not read yet

    # ---- lazily loaded pixels ---------------------------------------------------------------
    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = load_rgb(self.doc.source.path)
        return self._rgb

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            try:
                self._mask = self.rf.mask_or_empty(self.doc)
            except DocumentError as exc:
                raise EditError(str(exc)) from exc
        return self._mask

    @property
    def garments(self) -> np.ndarray | None:
        """A person's garment map (read once; it never changes by an edit); None without one."""
        if self._garments is False:
            try:
                self._garments = self.rf.read_garments(self.doc)
            except DocumentError as exc:
                raise EditError(str(exc)) from exc
        return self._garments

    @property
    def cached_mask(self) -> np.ndarray | None:
        """The mask when it is loaded already (no read); None otherwise."""
        return self._mask

    # ---- snapshots (undo/redo) ---------------------------------------------------------------
    def snapshot(self, with_mask: bool = False) -> dict:
        snap = {"doc": copy.deepcopy(self.doc.to_dict())}
        if with_mask:
            snap["mask"] = PackedMask(self.mask)
        return snap

    def restore(self, snap: dict, adjust=None) -> None:
        """Back to ``snap``; ``adjust(doc)`` first brings in what lives elsewhere (the catalog's
        SKU assignments, which an undo must not take back)."""
        new = ResultDocument.from_dict(copy.deepcopy(snap["doc"]))
        if adjust is not None:
            adjust(new)
        mask_changed = False
        if "mask" in snap:
            mask = snap["mask"].unpack()
            mask_changed = not np.array_equal(mask, self.mask)
            if mask_changed:
                self._write_mask(mask)
        self._commit(new, force_zones={"product"} if mask_changed else set())

    # ---- internals ---------------------------------------------------------------------------
    def _changed_zones(self, new: ResultDocument) -> set[str]:
        old = {it.zone: it for it in self.doc.items}
        out = set()
        for it in new.items:
            o = old.get(it.zone)
            if o is None or o.box != it.box or o.swatch != it.swatch or not (self.folder / it.file).exists():
                out.add(it.zone)
        return out

    def _commit(self, new: ResultDocument, force_zones: set[str] = frozenset()) -> set[str]:
        zones = self._changed_zones(new) | {z for z in force_zones if new.item(z) is not None}
        if zones:
            self.rf.render_items(new, self.rgb, self.mask, zones=zones)
        self.rf.save(new)
        self.doc = new
        return zones

    def _write_mask(self, mask: np.ndarray) -> None:
        self.rf.write_mask(self.doc, mask)          # keeps the model's own mask once, before the first edit
        self._mask = mask

    # ---- edits -------------------------------------------------------------------------------
    def move_keypoint(self, name: str, x: float, y: float) -> set[str]:
        new, _ = move_keypoint(self.doc, name, x, y, self.mask, self.garments)
        return self._commit(new)

    def set_box(self, zone: str, box, lock: bool = True) -> None:
        self._commit(set_box(self.doc, zone, box, lock))

    def set_locked(self, zone: str, locked: bool) -> None:
        self._commit(set_locked(self.doc, zone, locked))

    def add_zone(self, zone: str, box=None) -> None:
        new = add_zone(self.doc, zone, box, self.mask, self.garments if self.doc.kind == "person" else None)
        if zone != "full":
            new = self._with_kmeans(new, zone)
        self._commit(new)

    def delete_zone(self, zone: str) -> None:
        self._commit(delete_zone(self.doc, zone))

    def set_swatch(self, zone: str, rgb) -> None:
        self._commit(set_swatch(self.doc, zone, rgb))

    def sample_colour(self, x: float, y: float, radius: int = 3) -> tuple[int, int, int]:
        """Eyedropper: the median colour of a small square of the photo around (x, y)."""
        h, w = self.rgb.shape[:2]
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < w and 0 <= yi < h):
            raise EditError("the eyedropper point is outside the photo")
        patch = self.rgb[max(0, yi - radius):yi + radius + 1, max(0, xi - radius):xi + radius + 1]
        med = np.median(patch.reshape(-1, 3), axis=0)
        return tuple(int(v) for v in med)

    def _with_kmeans(self, doc: ResultDocument, zone: str) -> ResultDocument:
        from ml.stages import swatch as swatch_stage
        it = doc.item(zone)
        if it is None:
            raise EditError(f"there is no {zone} item")
        region = None
        if doc.kind == "person" and self.garments is not None:     # that garment's pixels only,
            from ml.stages.garment_zones import swatch_region      # as the pipeline measures it
            region = swatch_region(self.garments, zone, it.box)
            region = region if region.any() else None
        if doc.kind == "person" and region is None:
            region = swatch_stage.garment_region(self.rgb, self.mask, it.box, keypoints_of(doc), zone=zone)
        else:
            region = self.mask > 127
        sw = swatch_stage.dominant_colour(self.rgb, region, box=it.box)
        if sw is None:
            raise EditError(f"no colour could be measured in the {zone} zone")
        new = clone(doc)
        new.item(zone).swatch = Swatch(rgb=[int(v) for v in sw.rgb], hex=sw.hex, family=sw.family,
                                       file=swatch_file(zone))
        return new

    def rerun_kmeans(self, zone: str) -> Swatch:
        self._commit(self._with_kmeans(self.doc, zone))
        return self.doc.item(zone).swatch

    def fit_to_garment(self, zone: str) -> None:
        """The zone's box on its garment's own pixels (locked), its colour measured again there."""
        new = set_box(self.doc, zone, fit_box(self.doc, zone, self.garments), lock=True)
        try:
            new = self._with_kmeans(new, zone)
        except EditError:
            pass                                  # no colour there: the swatch stays as it was
        self._commit(new)

    def set_category(self, name: str, zone: str | None = None) -> None:
        self._commit(set_category(self.doc, name, zone))

    def paint_mask(self, points, radius: float, add: bool) -> None:
        new_mask = paint_mask(self.mask, points, radius, add)
        new = clone(self.doc)
        if new.model_mask is None:
            new.model_mask = MODEL_MASK_NAME
        self._write_mask(new_mask)
        self._commit(new, force_zones={"product"})

    def reset_mask(self) -> None:
        """Back to the model's own mask."""
        if self.doc.model_mask is None:
            return
        try:
            model = self.rf.read_mask(self.doc, "model_mask")
        except DocumentError as exc:
            raise EditError(str(exc)) from exc
        if model is None:
            raise EditError(f"the model's mask {self.doc.model_mask} is not there any more")
        self.rf.write_mask(self.doc, model)
        self._mask = model
        new = clone(self.doc)
        self._commit(new, force_zones={"product"})

    def set_review(self, status: str, note: str | None = None) -> None:
        self._commit(set_review(self.doc, status, note))
