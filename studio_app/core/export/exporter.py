"""Export result documents to a catalog folder for one marketplace preset.

``export(result_folders, preset, out_dir, ...) -> ExportReport`` is the one code path used by
the GUI's export panel and by ``studio-catalog export``.

* Streams photo by photo: one source photo (full resolution) is in memory at a time.
* Every file is written atomically (temporary file, pre-flight checks on the written file,
  then rename); a file that fails a ``block`` check never appears under its final name.
* A per-export state file (``.studio-catalog-export-<preset>.json``) records, for every
  file written: the item it belongs to, a fingerprint of its inputs (source hash, mask,
  box, colour, preset) and the SHA-256 of its bytes. Re-running after an interruption
  skips files that are already there and identical, and completes the rest; re-running
  after an edit re-renders only what changed; names given once stay the same.
* An existing file this export did not produce (or that was changed since) is reported as a
  conflict and left untouched — unless ``overwrite=True``. A file whose bytes are exactly
  what this export would write (e.g. written just before a crash) is adopted.
* Exported documents get review status "exported" (``studio_app.core.result.save``).
* Source photos are only ever read.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator


from studio_app.core import atomic
from studio_app.core.paths import unique_paths
from studio_app.core.result import RESULT_NAME, DocumentError, ResultDocument
from studio_app.core.result_folder import ResultFolder
from studio_app.core.catalog import CatalogError
from . import manifest, naming, preflight, products, render, shopfiles
from .encoding import SourceError, encode_item, load_source
from . import plan as plan_mod
from .plan import Output as _Output, _file_sha, _sha
from .presets import Preset, load as load_preset

log = logging.getLogger(__name__)

STATE_VERSION = 1

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]
# Renders export images elsewhere (a cluster): given [(result folder, document, item indices)] and the
# preset, yields per document {index: (bytes, facts)} or {"error": reason}, in order (encoding.encode_items).
RenderFn = Callable[[list, Preset], Iterator[dict]]


class ExportError(ValueError):
    """The export cannot start (bad preset, template, output folder); the message says why."""


@dataclass
class ExportReport:
    preset: str
    out_dir: Path
    written: list[str] = field(default_factory=list)        # files written this run
    unchanged: list[str] = field(default_factory=list)      # already there, identical: skipped
    warned: list[tuple[str, str]] = field(default_factory=list)     # (file, reasons) kept with warnings
    blocked: list[tuple[str, str]] = field(default_factory=list)    # (file, reasons) not kept
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) left untouched
    errors: list[tuple[str, str]] = field(default_factory=list)     # (result folder, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)    # (result folder, why not exported)
    documents_exported: int = 0
    documents_total: int = 0
    cancelled: bool = False
    manifest_csv: Path | None = None
    manifest_json: Path | None = None
    rows: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)      # completeness per SKU (catalog of goods)
    catalog_notes: list[str] = field(default_factory=list)  # unassigned items, deleted SKUs, shot-list notes
    shop_file: Path | None = None                           # Shopify CSV / Merchant Center feed

    @property
    def ok(self) -> bool:
        return not (self.blocked or self.conflicts or self.errors or self.cancelled)

    def failure_lines(self) -> list[str]:
        out = [f"blocked   {f}: {r}" for f, r in self.blocked]
        out += [f"conflict  {f}: {r}" for f, r in self.conflicts]
        out += [f"error     {f}: {r}" for f, r in self.errors]
        return out

    def summary(self) -> str:
        s = (f"{len(self.rows)} images in the catalog ({len(self.written)} written, {len(self.unchanged)} "
             f"unchanged) from {self.documents_exported} of {self.documents_total} results; "
             f"{len(self.blocked)} blocked, {len(self.conflicts)} conflicts, {len(self.errors)} errors, "
             f"{len(self.warned)} with warnings")
        s += " - CANCELLED, run again to complete" if self.cancelled else ""
        if self.products:
            s += "\n" + "\n".join(products.summary_lines(self.products))
        return s


# ---------------------------------------------------------------------------------------------

def find_results(paths: Iterable[str | os.PathLike], exclude: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Result folders from folders (a result folder, or a folder holding them at any depth)."""
    found: list[Path] = []
    errors: list[tuple[str, str]] = []
    ex = exclude.resolve() if exclude else None
    for raw in paths:
        p = Path(raw)
        if p.is_file() and p.name == RESULT_NAME:
            p = p.parent
        if (p / RESULT_NAME).is_file():
            found.append(p)
        elif p.is_dir():
            sub = sorted(q.parent for q in p.rglob(RESULT_NAME))
            sub = [q for q in sub if not (ex and (q.resolve() == ex or ex in q.resolve().parents))]
            if not sub:
                errors.append((str(p), "no result documents in this folder"))
            found.extend(sub)
        else:
            errors.append((str(p), "no such result folder"))
    return unique_paths(found), errors


_UMASK: list[int] = []


def _make_readable(p: Path) -> None:
    """Temporary files are created 0600; catalog files get the usual umask-based mode."""
    if os.name != "posix":
        return
    if not _UMASK:
        old = os.umask(0o022)
        os.umask(old)
        _UMASK.append(old)
    try:
        os.chmod(p, 0o666 & ~_UMASK[0])
    except OSError:
        pass


class _State:
    def __init__(self, path: Path, preset: Preset):
        self.path = path
        self.names: dict[str, dict] = {}
        self.files: dict[str, dict] = {}
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(d, dict) and d.get("version") == STATE_VERSION and d.get("preset") == preset.name:
                self.names = d.get("names") or {}
                self.files = d.get("files") or {}
        except (OSError, ValueError):
            pass      # no state (first export) or unreadable: files on disk are then treated as foreign/adopted
        self.preset = preset.name

    def save(self) -> None:
        atomic.write_json(self.path, {"version": STATE_VERSION, "preset": self.preset,
                                      "names": self.names, "files": self.files})


class _Blocked(Exception):
    def __init__(self, findings):
        super().__init__("; ".join(map(str, findings)))
        self.findings = findings


def export(result_folders: Iterable[str | os.PathLike], preset: Preset | str, out_dir: str | os.PathLike, *,
           template: str | None = None, sku: str | None = None, only_approved: bool = True,
           overwrite: bool = False, progress: ProgressFn | None = None,
           cancel: CancelFn | None = None, shot_list: str | os.PathLike | None = None,
           require_complete: bool = False, image_base_url: str | None = None,
           render_elsewhere: RenderFn | None = None) -> ExportReport:
    """``shot_list``: products (CSV/XLSX) besides the results' ``catalog.sqlite``; ``require_complete``:
    a product missing an expected view is held back; ``image_base_url``: where the images will be
    hosted (the shop import file's image links); ``render_elsewhere``: the images are rendered by
    it (a cluster), everything else (names, pre-flight, writing, the record) happens here."""
    if not isinstance(preset, Preset):
        try:
            preset = load_preset(preset)
        except ValueError as exc:
            raise ExportError(str(exc)) from exc
    template = template or preset.template
    terr = naming.validate_template(template)
    if terr:
        raise ExportError(f"file-name template {template!r}: {terr}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output folder {out}: {exc.strerror or exc}") from exc
    atomic.remove_stale_temporaries(out)

    report = ExportReport(preset=preset.name, out_dir=out)
    roots = [Path(r) for r in result_folders]
    folders, errs = find_results(roots, exclude=out)
    report.errors.extend(errs)
    state = _State(out / f".studio-catalog-export-{preset.name}.json", preset)
    namer = naming.Namer(state.names)
    try:
        the_plan = plan_mod.build(folders, preset, template, namer, sku=sku, only_approved=only_approved,
                                  roots=roots, shot_list=shot_list, require_complete=require_complete)
    except CatalogError as exc:
        raise ExportError(str(exc)) from exc
    report.errors.extend(the_plan.errors)
    report.skipped.extend(the_plan.skipped)
    arr = the_plan.arrangement
    report.skipped.extend(arr.left_out)
    report.catalog_notes = the_plan.notes + arr.warnings
    plan = [(f, d, [(p.item, p.image, p.swatch, p.row) for p in outs]) for f, d, outs in the_plan.documents]
    _prune_renamed(state, namer, out)
    state.names = namer.records
    report.documents_total = len(plan)

    # ---- render photo by photo --------------------------------------------------------------
    this_run_rows: list[dict] = []
    blocked_json: list[dict] = []
    rendered = render_elsewhere(_render_jobs(plan, out, state), preset) if render_elsewhere else None
    try:
        for i, (folder, doc, outs) in enumerate(plan):
            if cancel and cancel():
                report.cancelled = True
                break
            if progress:
                progress(i, len(plan), folder.name)
            ok = _export_document(folder, doc, outs, preset, out, state, report, overwrite, cancel,
                                  this_run_rows, blocked_json, next(rendered) if rendered else None)
            _save_state(state, report, out)
            if ok is None:          # cancelled mid-document
                report.cancelled = True
                break
            if ok:
                report.documents_exported += 1
                if doc.status != "exported":
                    doc.review = dict(doc.review, status="exported")
                    try:
                        ResultFolder(folder).save(doc)
                    except (DocumentError, OSError) as exc:
                        report.errors.append((str(folder), f"exported, but the review status could not be saved: {exc}"))
    finally:
        if rendered is not None:
            rendered.close()
        # the manifest always describes what is in the folder, also after a cancel or a crash
        _save_state(state, report, out)
        rows = _manifest_rows(this_run_rows, state, out)
        report.rows = rows
        report.products = products.completeness(arr, rows) if arr.active else []
        try:
            report.shop_file = shopfiles.write(out, preset, rows, arr, image_base_url, report)
            report.manifest_csv, report.manifest_json = manifest.write(
                out, preset, rows, blocked=blocked_json, products=report.products,
                notes=report.catalog_notes,
                conflicts=[{"file": f, "reason": r} for f, r in report.conflicts],
                errors=[{"result": f, "reason": r} for f, r in report.errors],
                complete=not report.cancelled)
            _make_readable(report.manifest_csv)
            _make_readable(report.manifest_json)
        except atomic.WriteError as exc:
            report.errors.append((str(out), f"manifest not written: {exc.strerror or exc}"))
    if progress and not report.cancelled:
        progress(len(plan), len(plan), "done")
    return report


def _save_state(state: "_State", report: ExportReport, out: Path) -> None:
    """Save the export record; a failed write (disk full, read-only) is reported once, not raised:
    files already in the catalog are adopted by the next run (their bytes match)."""
    try:
        state.save()
    except atomic.WriteError as exc:
        msg = f"the export record was not saved: {exc.strerror or exc}"
        if (str(out), msg) not in report.errors:
            report.errors.append((str(out), msg))


def _prune_renamed(state: "_State", namer: naming.Namer, out: Path) -> None:
    """Files this export wrote under a name their item no longer has (it was re-assigned, or became
    another product's main image) are taken out, so the folder holds each product's images once."""
    current = {rec["name"] for rec in namer.records.values()}
    for name, rec in list(state.files.items()):
        if name in current:
            continue
        target = out / name
        if target.is_file() and _file_sha(target) == rec.get("sha256"):
            try:
                target.unlink()
            except OSError:
                continue
        state.files.pop(name, None)


def _manifest_rows(this_run: list[dict], state: _State, out: Path) -> list[dict]:
    rows = list(this_run)
    have = {r["file"] for r in rows}
    older = [rec["row"] for name, rec in sorted(state.files.items())
             if rec.get("row") and name not in have and (out / name).is_file()]
    return rows + older


def _render_jobs(plan, out: Path, state: _State) -> list[tuple[Path, ResultDocument, list[int]]]:
    """Per document, the indices (in ``doc.items``) of the images that are not already in the catalog."""
    jobs = []
    for folder, doc, outs in plan:
        todo = [_index(doc, it) for it, img_out, _sw, _row in outs if not _is_current(img_out, out, state)]
        jobs.append((folder, doc, todo))
    return jobs


def _index(doc: ResultDocument, it) -> int:
    return next(i for i, x in enumerate(doc.items) if x is it)


def _is_current(o: _Output, out: Path, state: _State) -> bool:
    """Whether this export wrote ``o`` with the same inputs and the file is unchanged (not made again)."""
    rec = state.files.get(o.name)
    target = out / o.name
    return bool(rec and rec.get("key") == o.key and rec.get("fingerprint") == o.fingerprint
                and target.is_file() and rec.get("sha256") == _file_sha(target))


def _export_document(folder: Path, doc: ResultDocument, outs, preset: Preset, out: Path, state: _State,
                     report: ExportReport, overwrite: bool, cancel: CancelFn | None,
                     rows: list[dict], blocked_json: list[dict], rendered: dict | None = None) -> bool | None:
    """True when every item of the document is in the catalog; None when cancelled. ``rendered``:
    images made elsewhere (``RenderFn``); the others are rendered here."""
    loaded = None            # (rgb, mask, exif) loaded on first need
    all_ok = True

    def source():
        nonlocal loaded
        if loaded is None:
            loaded = load_source(folder, doc, preset)
        return loaded

    def image(it):
        if rendered and "error" in rendered:
            raise SourceError(rendered["error"])
        made = rendered.get(_index(doc, it)) if rendered else None
        return made if made is not None else encode_item(source(), doc, it, preset)

    for it, img_out, sw_out, naming_row in outs:
        if cancel and cancel():
            return None
        row = {**naming_row, "shot": Path(doc.source.path).stem, "zone": it.zone, "file": img_out.name,
               "colour_hex": it.swatch.hex if it.swatch else "", "family": it.swatch.family if it.swatch else "",
               "swatch_file": "", "source_path": doc.source.path, "source_sha256": doc.source.sha256,
               "preset": preset.name}
        row.update(_category_fields(doc, it))
        family = it.swatch.family if it.swatch else None
        try:
            res = _produce(img_out, out, state, report, overwrite, preset,
                           lambda: image(it), role="image", zone=it.zone,
                           family=family)
            if res is None:
                all_ok = False
                continue
            status, notes, dims = res
            if sw_out is not None:
                sres = _produce(sw_out, out, state, report, overwrite, preset,
                                lambda: render.encode(render.swatch_image(it.swatch.rgb, preset.swatch.size),
                                                      preset.swatch.format, preset.quality)[0],
                                role="swatch", zone=it.zone, family=family)
                if sres is not None:
                    row["swatch_file"] = sw_out.name
                    if sres[1]:
                        notes = "; ".join(filter(None, [notes, "swatch " + sres[1]]))
                else:
                    all_ok = False
            row.update(width=dims[0], height=dims[1], preflight=status, notes=notes)
            state.files[img_out.name]["row"] = row
            rows.append(row)
        except SourceError as exc:
            report.errors.append((str(folder), str(exc)))
            return False
        except _Blocked as exc:
            report.blocked.append((img_out.name, str(exc)))
            blocked_json.append({"file": img_out.name, "result": str(folder), "zone": it.zone,
                                 "reasons": [str(f) for f in exc.findings]})
            all_ok = False
        except atomic.WriteError as exc:
            report.errors.append((str(folder), exc.strerror or str(exc)))
            return False
    return all_ok


def _category_fields(doc: ResultDocument, it) -> dict:
    """Shop-feed columns of one item (studio_app.core.categories): the photo's category for
    the product, the garment zone's for a person's items; empty when there is none."""
    from studio_app.core.categories import CategoryTableError, feed_fields
    cat = getattr(doc, "category", None)
    if it.zone != "product" or cat is None:
        cat = getattr(it, "category", None)
    try:
        return feed_fields(cat)
    except CategoryTableError as exc:     # a broken studio table: the name still goes out
        log.warning("%s", exc)
        return feed_fields(cat, table={})


def _produce(o: _Output, out: Path, state: _State, report: ExportReport, overwrite: bool, preset: Preset,
             make: Callable[[], bytes | tuple[bytes, dict]], *, role: str, zone: str, family: str | None):
    """Write one output file unless it is already there. Returns (status, notes, (w, h)) when the
    file is in the catalog, None when it was left out (conflict). Raises _Blocked."""
    target = out / o.name
    rec = state.files.get(o.name)
    disk_sha = _file_sha(target) if target.exists() else None
    made_here = bool(rec and disk_sha and rec.get("sha256") == disk_sha)     # by this export (maybe another item)
    ours = made_here and rec.get("key") == o.key
    if ours and rec.get("fingerprint") == o.fingerprint:
        report.unchanged.append(o.name)
        return rec.get("status", "ok"), rec.get("notes", ""), tuple(rec.get("size", (0, 0)))
    if target.exists() and not target.is_file():
        report.conflicts.append((o.name, "a folder with this name is in the way"))
        return None
    made = make()
    data, facts = made if isinstance(made, tuple) else (made, {})
    new_sha = _sha(data)
    if disk_sha is not None and not made_here:
        if disk_sha == new_sha:
            pass      # exactly what we would write (e.g. written just before an interruption): adopt it
        elif not overwrite:
            report.conflicts.append((o.name, "a different file with this name is already there and was not "
                                             "made by this export; left untouched (remove it, or export with overwrite)"))
            return None
    findings: list = []
    meta: dict = {}
    if disk_sha == new_sha:
        findings, meta = preflight.check(target, preset, role=role, zone=zone, family=family, **facts)
        if preflight.status(findings) == "blocked":
            raise _Blocked([f for f in findings if f.severity == "block"])
        report.unchanged.append(o.name)
    else:
        try:
            with atomic.atomic_path(target) as tmp:
                tmp.write_bytes(data)
                _make_readable(tmp)
                findings, meta = preflight.check(tmp, preset, role=role, zone=zone, family=family, **facts)
                if preflight.status(findings) == "blocked":
                    raise _Blocked([f for f in findings if f.severity == "block"])
        except _Blocked:
            if made_here:     # our earlier version of this file no longer passes: take it out
                try:
                    target.unlink()
                except OSError:
                    pass
                state.files.pop(o.name, None)
            raise
        except OSError as exc:
            if isinstance(exc, atomic.WriteError):
                raise
            raise atomic.WriteError(exc.errno, str(exc)) from exc
        report.written.append(o.name)
    warns = [f for f in findings if f.severity == "warn"]
    notes = "; ".join(str(f) for f in warns)
    st = preflight.status(findings)
    if warns and role == "image":
        report.warned.append((o.name, notes))
    size = (meta.get("width", 0), meta.get("height", 0))
    state.files[o.name] = {"key": o.key, "role": role, "sha256": new_sha, "fingerprint": o.fingerprint,
                           "status": st, "notes": notes, "size": list(size),
                           "row": (state.files.get(o.name) or {}).get("row")}
    return st, notes, size
