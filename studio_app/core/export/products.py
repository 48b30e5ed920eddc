"""Export as a catalog of goods: items grouped by SKU, each product's images in the marketplace's
order, one swatch per product, and the completeness of every product.

* Where assignments come from: ``catalog.sqlite`` of the results folder (their one home) when there
  is one, else the ``sku``/``view``/``main`` each result document records; products from that
  catalog and/or a shot list (``--shot-list``; its rows win). :func:`open_view` builds a private,
  in-memory view of them; the export never changes the session's catalog.
* Order per product: the main image first, then the product's expected views in the shot list's
  order, then the rest (capture name, zone).
* Codes: a preset's ``image_codes`` (Amazon: ``MAIN``, ``PT01``..``PT08``, ``SWCH``) name the images
  by position; without it ``{view}`` is the catalog view (``front``, ``back``, ...; ``main`` for the
  main image). Images beyond a preset's ``max_other`` are left out and reported.
* Items without a SKU keep the per-photo naming (``{sku}`` = the result folder's name) and are
  reported; so is an item whose SKU is no longer in the catalog (deleted).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from studio_app.core.catalog import Assignment, Catalog, CatalogError, Product, shotlist
from studio_app.core.result import ResultDocument
from .presets import Preset


@dataclass(frozen=True)
class Placement:
    sku: str
    view: str | None          # catalog view (front, back, on-model, ...)
    code: str                 # {view} in the file name (MAIN, PT01, front, ...)
    position: int             # 1-based position among the product's images
    swatch: bool              # this item's swatch is the product's one swatch


@dataclass
class Arrangement:
    placements: dict[tuple[str, str], Placement] = field(default_factory=dict)   # (folder key, zone)
    left_out: list[tuple[str, str]] = field(default_factory=list)                 # (folder, why)
    warnings: list[str] = field(default_factory=list)
    products: dict[str, Product] = field(default_factory=dict)
    held: set = field(default_factory=set)                                        # (folder key, zone) left out
    active: bool = False      # any product or assignment at all: catalog mode

    def get(self, folder_key: str, zone: str) -> Placement | None:
        return self.placements.get((folder_key, zone))


def find_home(roots: list[Path]) -> Path | None:
    """The folder whose ``catalog.sqlite`` holds these results' assignments: a results root given,
    or the parent of a result folder given (the Studio exports single result folders)."""
    for r in roots:
        for cand in (Path(r), Path(r).parent):
            if cand.is_dir() and Catalog.exists(cand):
                return cand
    return None


def open_view(roots: list[Path], shot_list: str | os.PathLike | None) -> tuple[Catalog, list[str]]:
    """An in-memory catalog for this export: products of the results' ``catalog.sqlite`` and the
    shot list, and the catalog's assignments (see the module docstring)."""
    notes: list[str] = []
    home = find_home(roots)
    root = home or (Path(roots[0]) if roots and Path(roots[0]).is_dir() else Path.cwd())
    products: dict[str, Product] = {}
    rows: list[Assignment] = []
    if home is not None:
        with Catalog.open(home) as db:
            products.update({p.sku: p for p in db.products()})
            rows = db.assignments()
    if shot_list:
        sl = shotlist.read(shot_list)
        products.update({p.sku: p for p in sl.products})
        notes += [f"shot list: {n}" for n in sl.notes]
    view = Catalog.memory(root)
    view.replace_all(products.values(), rows, check=False)
    return view, notes


def add_documents(view: Catalog, docs: dict[str, ResultDocument]) -> None:
    """The ``sku``/``view``/``main`` recorded in documents the catalog has no row for."""
    have = view.assigned_folders()
    rows = [Assignment(key, it.zone, it.sku, it.view, it.main) for key, doc in docs.items() if key not in have
            for it in doc.items if it.sku]
    view.put_assignments(rows)


def arrange(entries: list[tuple[str, ResultDocument, list]], view: Catalog, preset: Preset) -> Arrangement:
    """``entries``: (folder key, document, items to export) in export order."""
    arr = Arrangement(products={p.sku: p for p in view.products()})
    arr.active = bool(arr.products) or bool(view.assignments())
    groups: dict[str, list[tuple[Assignment, str, object]]] = {}
    rows = {(a.folder, a.zone): a for a in view.assignments()}
    for key, doc, items in entries:
        loose = []
        for it in items:
            a = rows.get((key, it.zone))
            if a is None or not a.sku:
                if not (arr.active and _loose_face_held(key, it, arr, preset)):
                    loose.append(it.zone)
                continue
            if a.sku not in arr.products:
                arr.warnings.append(f"{Path(key).name}: {it.zone} is assigned to SKU {a.sku}, which is not in the "
                                    "catalog (deleted?); named per photo")
                continue
            groups.setdefault(a.sku, []).append((a, Path(doc.source.path).name, it))
        if loose and arr.active:
            arr.warnings.append(f"{Path(key).name}: no SKU for {', '.join(loose)}; named per photo")
    for sku, members in sorted(groups.items()):
        _place(sku, members, arr, preset)
    return arr


HEAD_CATEGORIES = ("headwear", "eyewear", "hat", "cap", "beanie", "glasses", "sunglasses", "helmet", "scarf",
                   "earring", "jewelry", "jewellery")


def shows_the_head(category: str) -> bool:
    """A product whose pictures are head crops (a hat, glasses, earrings)."""
    c = category.lower()
    return any(k in c for k in HEAD_CATEGORIES)


def _face_only(members: list, arr: Arrangement, preset: Preset, product: Product) -> list:
    """A head crop is not a view of a jacket: kept only for headwear / eyewear products."""
    sev = preset.severity("face_only")
    if sev == "off" or shows_the_head(product.category):
        return members
    kept = []
    for m in members:
        if m[2].zone != "head":
            kept.append(m)
            continue
        why = (f"{product.sku}: the head crop is a face, not a view of this product "
               f"(category {product.category or 'unknown'}; only headwear/eyewear use it)")
        if sev == "block":
            arr.held.add((m[0].folder, "head"))
            arr.left_out.append((m[0].folder, why))
        else:
            arr.warnings.append(why)
            kept.append(m)
    return kept


def _loose_face_held(key: str, it, arr: Arrangement, preset: Preset) -> bool:
    """In a catalog export, a head crop without a SKU is a face, not a product view, unless the item
    itself is headwear / eyewear (its garment category): held back (``face_only: block``) or warned
    about. (A plain per-photo export, with no products at all, keeps its head crops.)"""
    sev = preset.severity("face_only")
    if it.zone != "head" or sev == "off" or shows_the_head(it.category or ""):
        return False
    why = (f"{Path(key).name}: the head crop is a face, not a product view (no SKU, item category "
           f"{it.category or 'unknown'}; only headwear/eyewear use it)")
    if sev == "block":
        arr.held.add((key, "head"))
        arr.left_out.append((key, why))
        return True
    arr.warnings.append(why)
    return False


def _place(sku: str, members: list, arr: Arrangement, preset: Preset) -> None:
    product = arr.products[sku]
    members = _face_only(members, arr, preset, product)
    order = {v: i for i, v in enumerate(product.views)}
    members.sort(key=lambda m: (not m[0].main, order.get(m[0].view or "", len(order)), m[1], m[0].zone))
    codes = preset.image_codes
    with_swatch = next((m for m in members if m[2].swatch is not None), None)
    for pos, (a, _name, it) in enumerate(members, start=1):
        if codes:
            if pos == 1:
                code = codes["main"]
            elif pos - 1 > codes["max_other"]:
                arr.held.add((a.folder, it.zone))
                arr.left_out.append((a.folder, f"{sku}: {preset.name} takes at most {codes['max_other']} "
                                               f"images besides the main one; {it.zone} left out"))
                continue
            else:
                code = codes["other"].format(n=pos - 1)
        else:
            code = "main" if pos == 1 and a.main else (a.view or preset.view(it.zone))
        arr.placements[(a.folder, it.zone)] = Placement(sku, a.view, code, pos, with_swatch is not None
                                                        and with_swatch[0] is a)


# ---------------------------------------------------------------------------------------------
# completeness

def completeness(arr: Arrangement, rows: list[dict]) -> list[dict]:
    """Per product: expected views, the views exported, what is missing (every product of the
    catalog or shot list, also those with no image at all)."""
    got: dict[str, set] = {}
    count: dict[str, int] = {}
    for r in rows:
        if r.get("sku") in arr.products and r.get("catalog_view") is not None:
            got.setdefault(r["sku"], set()).add(r["catalog_view"])
            count[r["sku"]] = count.get(r["sku"], 0) + 1
    out = []
    for sku, p in sorted(arr.products.items()):
        have = got.get(sku, set())
        missing = [v for v in p.views if v not in have]
        n = count.get(sku, 0)
        out.append({"sku": sku, "name": p.name, "expected": list(p.views), "exported": sorted(v for v in have if v),
                    "images": n, "missing": missing if n else list(p.views) or ["(no images)"],
                    "complete": bool(n) and not missing})
    return out


def incomplete_before_export(arr: Arrangement) -> dict[str, list[str]]:
    """SKU -> missing views, judged from the plan (for ``--require-complete``)."""
    have: dict[str, set] = {}
    for pl in arr.placements.values():
        have.setdefault(pl.sku, set()).add(pl.view)
    out = {}
    for sku, p in arr.products.items():
        miss = [v for v in p.views if v not in have.get(sku, set())]
        if sku in have and miss:
            out[sku] = miss
    return out


def summary_lines(report_products: list[dict], limit: int = 20) -> list[str]:
    bad = [p for p in report_products if not p["complete"]]
    lines = [f"products: {len(report_products) - len(bad)} of {len(report_products)} complete"]
    for p in bad[:limit]:
        lines.append(f"incomplete {p['sku']}: missing {', '.join(p['missing'])}")
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more incomplete products (see the manifest)")
    return lines


__all__ = ["Arrangement", "CatalogError", "Placement", "arrange", "completeness", "incomplete_before_export",
           "open_view", "add_documents", "summary_lines"]
