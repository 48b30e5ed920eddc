"""The per-photo result document: ``<out>/<photo stem>/result.json`` plus the files it names.

This is the single source of truth. The pipeline writes it, the GUI edits it (every edit
is saved at once), the exporter reads it. Paths inside are relative to the document's
folder; coordinates are pixels of the *oriented* source photo.

Schema version 2 (keys marked * are the external contract and always present)::

    {"schema_version": 2,                                             *
     "source": {"path", "sha256", "width", "height"},                 *
     "kind": "person" | "product", "kind_confidence": float,          *
     "mask": "mask.png",                                              *
     "keypoints": [{"name", "x", "y", "score"}],                      *
     "items": [{"zone", "box": [x0,y0,x1,y1], "file",                 *
                "swatch": {"rgb", "hex", "family", "file"} | null,    *
                "locked": bool,        # box fixed by hand: keypoint edits leave it alone
                "sku": str | null, "view": str | null, "main": bool}],   # catalog (schema 2; absent = unassigned)
     "needs_review": bool, "warnings": [str],                         *
     "review": {"status": "pending"|"approved"|"rejected"|"exported", "note": str},
     "model_mask": str | null,         # the model's own mask, kept once the operator edits
     "engines": {stage: model id},
     "kind_override": bool,
     "card": {"code": str, "format": str} | null,   # a barcode/QR card photo (schema 2): "items": []
     "category": {"name": str, "confidence": float,           # schema 2, product photos
                  "by_hand": true (only when the operator chose it)} | null,
     "garments": {"file": "garments.png", "classes": [11 names]}}   # schema 2, person photos

The catalog fields (item ``sku``/``view``/``main``, ``card``) mirror ``<out>/catalog.sqlite``
(``studio_app.core.catalog``), which is their one home; older documents read them as absent.

Schema 2 adds the product category (issue 16): ``category`` of a product photo (a class of
``ml.category.CLASSES`` or "other", with the classifier's calibrated confidence) and
``category`` (a name) on each item: the product's for the product item, the garment zone's
for a person's items. Both are optional: documents of schema 1 read as "no category".

Schema 2 also adds ``garments`` (an 8-bit PNG at source size whose pixel value is the index
into ``classes``, see ``ml.garments.CLASSES``) and the zones ``dress`` and ``bag``. A version-1
document is read as version 2 without these (upgraded in memory; saving it writes a valid
version-2 document).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import atomic

SCHEMA_VERSION = 2
RESULT_NAME = "result.json"

from ml.types import KEYPOINT_NAMES, ZONES  # noqa: F401  (re-exported for callers)

KINDS = ("person", "product")
REVIEW_STATES = ("pending", "approved", "rejected", "exported")


class DocumentError(ValueError):
    """A result document that cannot be used; the message says why, for an operator."""


class NewerSchemaError(DocumentError):
    pass


@dataclass
class Swatch:
    rgb: list[int]
    hex: str
    family: str
    file: str

    @classmethod
    def from_dict(cls, d: dict) -> "Swatch":
        rgb = [int(v) for v in d["rgb"]]
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise DocumentError(f"swatch rgb must be three values 0..255, got {d['rgb']!r}")
        return cls(rgb=rgb, hex=str(d["hex"]), family=str(d["family"]), file=str(d["file"]))


@dataclass
class Item:
    zone: str
    box: list[float]
    file: str
    swatch: Swatch | None = None
    locked: bool = False
    sku: str | None = None          # catalog assignment (mirrors catalog.sqlite)
    view: str | None = None
    main: bool = False
    category: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "Item":
        zone = d["zone"]
        if zone not in ZONES:
            raise DocumentError(f"unknown zone {zone!r} (expected one of {', '.join(ZONES)})")
        box = [float(v) for v in d["box"]]
        if len(box) != 4 or not all(math.isfinite(v) for v in box) \
                or box[2] <= box[0] or box[3] <= box[1]:
            raise DocumentError(f"item {zone!r} has an invalid box {d['box']!r}")
        sw = d.get("swatch")
        sku, view = d.get("sku"), d.get("view")
        return cls(zone=zone, box=box, file=str(d["file"]),
                   swatch=Swatch.from_dict(sw) if sw else None,
                   locked=bool(d.get("locked", False)),
                   sku=str(sku) if sku else None, view=str(view) if view else None,
                   main=bool(d.get("main", False)),
                   category=_category_name(d.get("category")))


def _category_name(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise DocumentError(f"a category must be a non-empty name, got {v!r}")
    return v


def category_from_dict(v: Any) -> dict | None:
    """``{"name", "confidence"}`` checked (None when absent: older documents, person photos)."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise DocumentError(f"the category must be an object with name and confidence, got {v!r}")
    conf = float(v.get("confidence", 1.0))
    if not 0.0 <= conf <= 1.0:
        raise DocumentError(f"the category confidence must be within 0..1, got {conf!r}")
    out = {"name": _category_name(v.get("name")), "confidence": conf}
    if v.get("by_hand"):
        out["by_hand"] = True          # the operator chose it (edits.SetCategory)
    return out


@dataclass
class Keypoint:
    name: str
    x: float
    y: float
    score: float


@dataclass
class Source:
    path: str
    sha256: str
    width: int
    height: int


@dataclass
class ResultDocument:
    source: Source
    kind: str
    kind_confidence: float
    mask: str = "mask.png"
    keypoints: list[Keypoint] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    needs_review: bool = False
    warnings: list[str] = field(default_factory=list)
    review: dict = field(default_factory=lambda: {"status": "pending", "note": ""})
    model_mask: str | None = None
    engines: dict = field(default_factory=dict)
    kind_override: bool = False
    card: dict | None = None        # {"code", "format"}: a barcode card photo (not exported)
    category: dict | None = None
    garments: dict | None = None
    schema_version: int = SCHEMA_VERSION

    # ---- (de)serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        ordered = {"schema_version": self.schema_version}
        ordered.update({k: v for k, v in d.items() if k != "schema_version"})
        if self.garments is None:
            del ordered["garments"]
        return ordered

    @classmethod
    def from_dict(cls, d: Any) -> "ResultDocument":
        if not isinstance(d, dict):
            raise DocumentError("the result document is not a JSON object")
        version = d.get("schema_version")
        if not isinstance(version, int):
            raise DocumentError("the result document has no schema_version")
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"this result document was written by a newer Studio Catalog (schema {version}; "
                f"this version reads up to {SCHEMA_VERSION}). Update the app to open it; "
                "the document was left untouched.")
        try:
            src = d["source"]
            source = Source(path=str(src["path"]), sha256=str(src["sha256"]),
                            width=int(src["width"]), height=int(src["height"]))
            kind = d["kind"]
            if kind not in KINDS:
                raise DocumentError(f"unknown kind {kind!r}")
            review = dict(d.get("review") or {})
            review.setdefault("status", "pending")
            review.setdefault("note", "")
            if review["status"] not in REVIEW_STATES:
                raise DocumentError(f"unknown review status {review['status']!r}")
            return cls(
                schema_version=SCHEMA_VERSION,     # older versions are upgraded in memory
                source=source,
                kind=kind,
                kind_confidence=float(d["kind_confidence"]),
                mask=str(d["mask"]),
                keypoints=[Keypoint(name=str(k["name"]), x=float(k["x"]), y=float(k["y"]),
                                    score=float(k["score"])) for k in d["keypoints"]],
                items=[Item.from_dict(it) for it in d["items"]],
                needs_review=bool(d["needs_review"]),
                warnings=[str(w) for w in d.get("warnings", [])],
                review=review,
                model_mask=d.get("model_mask"),
                engines=dict(d.get("engines") or {}),
                kind_override=bool(d.get("kind_override", False)),
                card=_card(d.get("card")),
                category=category_from_dict(d.get("category")),
                garments=_garments(d.get("garments")),
            )
        except DocumentError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise DocumentError(f"the result document is malformed: {type(exc).__name__}: {exc}") from exc

    # ---- helpers -------------------------------------------------------------------
    def item(self, zone: str) -> Item | None:
        for it in self.items:
            if it.zone == zone:
                return it
        return None

    def keypoint(self, name: str) -> Keypoint | None:
        for k in self.keypoints:
            if k.name == name:
                return k
        return None

    @property
    def status(self) -> str:
        return self.review.get("status", "pending")


def _card(c: Any) -> dict | None:
    if not c:
        return None
    if not isinstance(c, dict) or "code" not in c:
        raise DocumentError(f"card must be {{\"code\", \"format\"}}, got {c!r}")
    return {"code": str(c["code"]), "format": str(c.get("format", ""))}


def _garments(g: Any) -> dict | None:
    if g is None:
        return None
    if not isinstance(g, dict) or not isinstance(g.get("file"), str) or not g["file"] \
            or not isinstance(g.get("classes"), list) or not all(isinstance(c, str) for c in g["classes"]):
        raise DocumentError(f"garments must be {{\"file\": name, \"classes\": [names]}}, got {g!r}")
    return {"file": g["file"], "classes": list(g["classes"])}


def result_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / RESULT_NAME


def load(folder_or_file: str | os.PathLike) -> ResultDocument:
    """Read a document. Raises DocumentError (with a readable reason) when it cannot be used.
    (``ResultFolder.load`` also checks that the files it names are inside its folder.)"""
    return ResultDocument.from_dict(read_data(folder_or_file))


def read_data(folder_or_file: str | os.PathLike) -> Any:
    """The parsed JSON of a document (not validated). DocumentError when it cannot be read."""
    p = Path(folder_or_file)
    if p.is_dir():
        p = p / RESULT_NAME
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"no result document at {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"cannot read {p}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{p} is corrupt (not valid JSON: {exc.msg} at line {exc.lineno})") from exc
    except RecursionError:
        raise DocumentError(f"{p} is corrupt (JSON nested too deeply)") from None
    return data


def save(doc: ResultDocument, folder: str | os.PathLike, *, replace_unreadable: bool = False) -> Path:
    """Write atomically.

    An existing document that this version cannot read (corrupt, or from a newer schema)
    is never overwritten silently: DocumentError is raised unless ``replace_unreadable``.
    """
    p = result_path(folder)
    if p.exists() and not replace_unreadable:
        load(p)  # raises DocumentError / NewerSchemaError when unreadable
    atomic.write_json(p, doc.to_dict())
    return p
