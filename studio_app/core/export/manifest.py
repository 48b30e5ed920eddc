"""The batch manifest: ``manifest-<preset>.csv`` and ``manifest-<preset>.json`` in the export folder.

One row per catalog image kept (blocked images are not rows; the JSON lists them apart with
their reasons). Columns: see ``COLUMNS``. Both files are written atomically.
"""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from studio_app.core import atomic

from studio_app.core.categories import FEED_COLUMNS

# The category columns (issue 16) carry what a Google Merchant feed (google_product_category,
# product_type) and a Shopify product CSV (Product Category, Type) need; no feed file of its
# own is written yet.
COLUMNS = ("sku", "shot", "zone", "view", "file", "width", "height", "colour_hex", "family",
           "swatch_file", "source_path", "source_sha256", "preset", "preflight", "notes",
           "catalog_view", "position") + FEED_COLUMNS


def paths(out_dir: str | Path, preset_name: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    return out / f"manifest-{preset_name}.csv", out / f"manifest-{preset_name}.json"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    return buf.getvalue()


def write(out_dir: str | Path, preset, rows: list[dict], *, blocked: list[dict] | None = None,
          conflicts: list[dict] | None = None, errors: list[dict] | None = None,
          complete: bool = True, products: list[dict] | None = None,
          notes: list[str] | None = None) -> tuple[Path, Path]:
    """``products``: completeness per SKU (expected / exported / missing views); ``notes``: the
    catalog's warnings (items without a SKU, deleted SKUs)."""
    csv_path, json_path = paths(out_dir, preset.name)
    atomic.write_text(csv_path, to_csv(rows))
    atomic.write_json(json_path, {
        "preset": preset.name,
        "preset_title": preset.title,
        "preset_file": Path(preset.source).name if preset.source else "",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": complete,
        "columns": list(COLUMNS),
        "images": [{k: r.get(k) for k in COLUMNS} for r in rows],
        "blocked": blocked or [],
        "conflicts": conflicts or [],
        "errors": errors or [],
        "products": products or [],
        "catalog_notes": notes or [],
    })
    return csv_path, json_path


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
