"""Shot lists: the products a session is meant to photograph, from CSV or XLSX.

Columns (header row, any order, case-insensitive): ``sku`` and ``name`` are required;
``colour`` (or ``color``), ``category`` and ``views`` (``front|back|detail``) are optional.
CSV may be UTF-8 (with or without a BOM), Windows-1252 / Latin-1 (as Excel writes it), with
``,`` ``;`` or tab separators. XLSX: the first sheet; formulas give their saved values, merged
cells give their value to every cell they cover.

:func:`read` validates the whole file first and raises :class:`ShotListError` listing every
problem with its row number; nothing is imported from a file with problems.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from .model import CatalogError, Product, parse_views, sku_problem

REQUIRED = ("sku", "name")
ALIASES = {"sku": "sku", "name": "name", "title": "name", "colour": "colour", "color": "colour",
           "colour name": "colour", "color name": "colour", "category": "category", "views": "views",
           "view": "views"}
MAX_ERRORS_SHOWN = 20


class ShotListError(CatalogError):
    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_ERRORS_SHOWN]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{path.name}: nothing imported, fix these first:\n  " + "\n  ".join(shown) + more)


@dataclass
class ShotList:
    path: Path
    products: list[Product]
    notes: list[str] = field(default_factory=list)      # e.g. "read as Windows-1252", "2 empty rows skipped"


def read(path: str | os.PathLike) -> ShotList:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such shot list")
    notes: list[str] = []
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path)
    elif path.suffix.lower() in (".csv", ".txt", ".tsv"):
        rows = _csv_rows(path, notes)
    else:
        raise CatalogError(f"{path.name}: a shot list must be .csv or .xlsx")
    return ShotList(path, _products(path, rows, notes), notes)


def _decode(data: bytes, notes: list[str]) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogError(f"the file says it is UTF-8 (it starts with a BOM) but byte {exc.start + 4} is not; "
                               "save it again as 'CSV UTF-8'") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
        notes.append("not UTF-8: read as Windows-1252 (Latin-1)")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        notes.append("not UTF-8: read as Latin-1")
    return text


def _csv_rows(path: Path, notes: list[str]) -> list[list]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path.name}: cannot read it ({exc.strerror or exc})") from exc
    if b"\x00" in data[:4096]:
        raise CatalogError(f"{path.name}: this is not a text CSV (UTF-16 or a binary file?); "
                           "save it from the spreadsheet as 'CSV UTF-8'")
    text = _decode(data, notes)
    first = text.split("\n", 1)[0]
    delim = max((";", ",", "\t"), key=first.count) if any(d in first for d in ";,\t") else ","
    return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim)]


def _xlsx_rows(path: Path) -> list[list]:
    try:
        import openpyxl
    except ImportError as exc:       # pragma: no cover - a declared dependency
        raise CatalogError("reading .xlsx needs openpyxl (pip install openpyxl)") from exc
    try:
        wb = openpyxl.load_workbook(path, data_only=True, read_only=False)
    except Exception as exc:         # openpyxl raises many types for a damaged file
        raise CatalogError(f"{path.name}: cannot read this workbook ({type(exc).__name__}: {exc})") from exc
    ws = wb.worksheets[0]
    grid = [[c.value for c in row] for row in ws.iter_rows()]
    for rng in ws.merged_cells.ranges:       # the top-left value covers the whole merged range
        v = ws.cell(rng.min_row, rng.min_col).value
        for r in range(rng.min_row, rng.max_row + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                grid[r - 1][c - 1] = v
    formulas = _formula_cells_without_value(path, grid)
    wb.close()
    if formulas:
        raise ShotListError(path, [f"row {r}: column {c} holds a formula with no saved value; open the file "
                                   "in a spreadsheet and save it (or paste values)" for r, c in formulas])
    return [["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
             for v in row] for row in grid]


def _formula_cells_without_value(path: Path, grid: list[list]) -> list[tuple[int, str]]:
    import openpyxl
    from openpyxl.utils import get_column_letter
    wb = openpyxl.load_workbook(path, data_only=False)
    out = []
    for r, row in enumerate(wb.worksheets[0].iter_rows(), start=1):
        for c, cell in enumerate(row, start=1):
            if isinstance(cell.value, str) and cell.value.startswith("=") and grid[r - 1][c - 1] is None:
                out.append((r, get_column_letter(c)))
    wb.close()
    return out


def _products(path: Path, rows: list[list], notes: list[str]) -> list[Product]:
    rows_n = [(i, [str(c).strip() for c in r]) for i, r in enumerate(rows, start=1)]
    rows_n = [(i, r) for i, r in rows_n if any(r)]
    if not rows_n:
        raise CatalogError(f"{path.name}: the shot list is empty")
    hrow, header = rows_n[0]
    cols: dict[str, int] = {}
    for j, h in enumerate(header):
        key = ALIASES.get(h.strip().lower())
        if key and key not in cols:
            cols[key] = j
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        found = ", ".join(h for h in header if h) or "nothing"
        raise CatalogError(f"{path.name}: row {hrow} (the header) has no column {', '.join(map(repr, missing))} "
                           f"(found: {found}); columns: sku, name, colour, category, views")
    skipped = len(rows) - len(rows_n)
    if skipped:
        notes.append(f"{skipped} empty row{'s' if skipped != 1 else ''} skipped")
    problems: list[str] = []
    seen: dict[str, int] = {}
    out: list[Product] = []
    for i, r in rows_n[1:]:
        def get(k: str) -> str:
            j = cols.get(k)
            return r[j] if j is not None and j < len(r) else ""
        sku = get("sku")
        why = sku_problem(sku)
        if why:
            problems.append(f"row {i}: {why}")
            continue
        if sku in seen:
            problems.append(f"row {i}: SKU {sku!r} is already on row {seen[sku]}")
            continue
        seen[sku] = i
        try:
            views = parse_views(get("views"))
        except CatalogError as exc:
            problems.append(f"row {i}: {exc}")
            continue
        out.append(Product(sku=sku, name=get("name"), colour=get("colour"), category=get("category"),
                           views=views, origin="shot_list"))
    if problems:
        raise ShotListError(path, problems)
    if not out:
        raise CatalogError(f"{path.name}: the shot list has a header but no products")
    return out
