"""The export plan: which result documents and items go out, under which names.

Reads the (small) documents, leaves out what is not exported (rejected, not approved, the same
photo twice, barcode card photos, no items for the preset), arranges the rest as a catalog of
goods (:mod:`.products`) and gives every output file its name - stable across re-exports
(:class:`.naming.Namer`); when an item's name changes (it became another product's ``MAIN``), its
old name is released first so that the product's new main image gets ``MAIN`` itself.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from studio_app.core.result import DocumentError, ResultDocument
from studio_app.core.catalog.service import category_name
from studio_app.core.result_folder import ResultFolder
from . import naming, products
from .presets import FORMATS, Preset

RENDER_VERSION = 2             # bump when rendering changes so old exports re-render
ZONE_ORDER = {z: i for i, z in enumerate(("product", "full", "top", "bottom", "shoes", "head"))}


@dataclass
class Output:
    role: str            # image | swatch
    name: str
    key: str
    fingerprint: str


@dataclass
class Planned:
    item: object
    image: Output
    swatch: Output | None
    row: dict            # sku, view (file-name code), catalog_view, position


@dataclass
class Plan:
    documents: list[tuple[Path, ResultDocument, list[Planned]]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    arrangement: products.Arrangement | None = None
    notes: list[str] = field(default_factory=list)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(p: Path) -> str | None:
    try:
        from ml.io import sha256_file
        return sha256_file(p)
    except OSError:
        return None


def _include(doc: ResultDocument, only_approved: bool) -> str | None:
    if doc.card is not None:
        code = doc.card.get("code") or "unreadable"
        return f"barcode card photo ({code}): recorded, not exported"
    st = doc.status
    if st == "rejected":
        return "rejected in review"
    if only_approved and st not in ("approved", "exported"):
        return f"not approved (review status: {st}); use --all to export it anyway"
    return None


def build(folders: list[Path], preset: Preset, template: str, namer: naming.Namer, *, sku: str | None,
          only_approved: bool, roots: list[Path], shot_list=None, require_complete: bool = False) -> Plan:
    plan = Plan()
    entries: list[tuple[Path, ResultDocument, list]] = []
    seen_src: dict[str, Path] = {}
    for folder in folders:
        try:
            doc = ResultFolder(folder).load()        # refuses file references outside the folder
        except DocumentError as exc:
            plan.errors.append((str(folder), str(exc)))
            continue
        why = _include(doc, only_approved)
        if why:
            plan.skipped.append((str(folder), why))
            continue
        if doc.source.sha256 in seen_src:
            plan.skipped.append((str(folder), f"same photo as {seen_src[doc.source.sha256]}"))
            continue
        seen_src[doc.source.sha256] = folder
        items = sorted((it for it in doc.items if it.zone in preset.zones), key=lambda it: ZONE_ORDER.get(it.zone, 99))
        if not items:
            plan.skipped.append((str(folder), f"no items for this preset (zones: {', '.join(preset.zones)})"))
            continue
        entries.append((folder, doc, items))
    view, plan.notes = products.open_view(roots, shot_list)
    keys = {folder: view.key(folder) for folder, _d, _i in entries}
    products.add_documents(view, {keys[f]: d for f, d, _i in entries})
    arr = products.arrange([(keys[f], d, i) for f, d, i in entries], view, preset)
    view.close()
    plan.arrangement = arr
    if require_complete:
        _hold_incomplete(arr, plan)
    cands = []
    for folder, doc, items in entries:
        cands.append((folder, doc, [(it, *_candidates(folder, doc, it, arr.get(keys[folder], it.zone), preset,
                                                      template, sku)) for it in items
                                    if (keys[folder], it.zone) not in arr.held]))
    _release_changed(namer, [c for _f, _d, its in cands for _it, key, cand, _row, sw in its
                             for c in ((key, cand), (key + "/swatch", sw))])
    for folder, doc, its in cands:
        mask_sha = _file_sha(folder / doc.mask) or "missing"
        outs = [_outputs(doc, it, key, cand, row, sw, mask_sha, preset, namer) for it, key, cand, row, sw in its]
        if outs:
            plan.documents.append((folder, doc, outs))
    return plan


def _hold_incomplete(arr: products.Arrangement, plan: Plan) -> None:
    missing = products.incomplete_before_export(arr)
    for k, pl in list(arr.placements.items()):
        if pl.sku in missing:
            del arr.placements[k]
            arr.held.add(k)
            arr.left_out.append((k[0], f"{pl.sku} is incomplete (missing {', '.join(missing[pl.sku])}); "
                                       "--require-complete holds it back"))


def _candidates(folder: Path, doc: ResultDocument, it, pl, preset: Preset, template: str, sku: str | None):
    """(key, image candidate name, row, swatch candidate or None)."""
    key = f"{doc.source.sha256}/{it.zone}"
    if pl is not None:
        row = {"sku": pl.sku, "view": pl.code, "catalog_view": pl.view or "", "position": pl.position}
    else:
        row = {"sku": sku or folder.name, "view": preset.view(it.zone), "catalog_view": None, "position": ""}
    fields = {"sku": row["sku"], "shot": Path(doc.source.path).stem, "zone": it.zone, "view": row["view"],
              "colour": (it.swatch.hex.lstrip("#").lower() if it.swatch else ""),
              "family": it.swatch.family if it.swatch else "", "preset": preset.name, "ext": preset.ext}
    cand = naming.render(template, fields)
    sw = None
    if preset.swatch and it.swatch and (pl is None or pl.swatch):
        sf = dict(fields, view=preset.swatch.view, ext=FORMATS[preset.swatch.format])
        sw = naming.render(template, sf)
        if sw == naming.render(template, dict(fields, ext=sf["ext"])):     # template has no {view}
            sw = naming.render(template.replace("{ext}", "").rstrip(".") + "_" + preset.swatch.view, sf)
    return key, cand, row, sw


def _release_changed(namer: naming.Namer, pairs: list[tuple[str, str | None]]) -> None:
    """Names whose item now wants another name (or none: its swatch is no longer the product's)."""
    for key, cand in pairs:
        rec = namer.records.get(key)
        if rec and rec["candidate"] != cand:
            namer.release(key)


def _outputs(doc, it, key, cand, row, sw_cand, mask_sha, preset: Preset, namer: naming.Namer) -> Planned:
    fp_base = {"v": RENDER_VERSION, "src": doc.source.sha256, "mask": mask_sha, "zone": it.zone,
               "box": [round(v, 2) for v in it.box], "preset": preset.digest}
    if preset.category_framing and it.zone == "product":   # a changed category may re-frame
        fp_base["category"] = category_name(doc, it)
    img = Output("image", namer.assign(key, cand), key, _sha(json.dumps(fp_base, sort_keys=True).encode()))
    sw = None
    if sw_cand:
        fp = dict(fp_base, role="swatch", rgb=list(it.swatch.rgb), size=preset.swatch.size)
        fp.pop("box"), fp.pop("mask")
        sw = Output("swatch", namer.assign(key + "/swatch", sw_cand), key + "/swatch",
                    _sha(json.dumps(fp, sort_keys=True).encode()))
    return Planned(it, img, sw, row)
