"""The category mapping table: our product category -> shop feed fields.

``resources/categories.json`` (built in) maps each class of the category classifier
(``ml.category.CLASSES`` + ``other``) to the Google Merchant ``google_product_category``
(taxonomy id + path) and ``product_type``, and to the Shopify product CSV ``Product
Category`` and ``Type``. A studio edits it, or puts its own copy at
``<user config>/categories.json`` (or the file named by ``STUDIO_CATALOG_CATEGORIES``):
rows there replace the built-in rows one by one, and may add categories of their own.

:func:`feed_fields` gives the export columns for one category name.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

ENV_VAR = "STUDIO_CATALOG_CATEGORIES"
FILE_NAME = "categories.json"
FEED_COLUMNS = ("category", "category_confidence", "google_product_category", "product_type",
                "shopify_product_category", "shopify_type")


class CategoryTableError(ValueError):
    """The mapping table cannot be used; the message names the file and the row."""


def builtin_path() -> Path:
    from studio_app.core.paths import resources_dir
    return resources_dir() / FILE_NAME


def user_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from studio_app.core.paths import user_config_dir
    return user_config_dir() / FILE_NAME


def _read(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CategoryTableError(f"the category table {path} cannot be read: {exc}") from exc
    rows = raw.get("categories") if isinstance(raw, dict) else None
    if not isinstance(rows, dict):
        raise CategoryTableError(f"the category table {path} has no 'categories' object")
    for name, row in rows.items():
        _check_row(path, name, row)
    return rows


def _check_row(path: Path, name: str, row) -> None:
    if not isinstance(row, dict):
        raise CategoryTableError(f"{path}: category {name!r} must be an object")
    g = row.get("google_product_category")
    if g is not None and not (isinstance(g, dict) and isinstance(g.get("id"), int) and g.get("path")):
        raise CategoryTableError(f"{path}: category {name!r}: google_product_category must be "
                                 "null or {\"id\": integer, \"path\": text}")
    if not isinstance(row.get("shopify", {}), dict):
        raise CategoryTableError(f"{path}: category {name!r}: shopify must be an object")


def load_table(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """The table: the built-in rows, replaced row by row by the user's file when there is
    one (or by ``path`` when given). Raises CategoryTableError for a broken file."""
    if path is not None:
        return _read(Path(path))
    return dict(_cached(str(builtin_path()), str(user_path()), _mtime(user_path())))


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


@lru_cache(maxsize=4)
def _cached(builtin: str, user: str, _user_mtime: float) -> dict[str, dict]:
    rows = _read(Path(builtin))
    if Path(user).is_file():
        rows.update(_read(Path(user)))
    return rows


def feed_fields(category: dict | str | None, table: dict[str, dict] | None = None) -> dict[str, str]:
    """The :data:`FEED_COLUMNS` values for a document's category (``{"name", "confidence"}``,
    a name, or None). An unknown name keeps its name and leaves the shop fields empty."""
    if category is None:
        return {k: "" for k in FEED_COLUMNS}
    name = category["name"] if isinstance(category, dict) else str(category)
    conf = category.get("confidence") if isinstance(category, dict) else None
    row = (table if table is not None else load_table()).get(name, {})
    g = row.get("google_product_category")
    shop = row.get("shopify") or {}
    return {"category": name, "category_confidence": "" if conf is None else f"{float(conf):.2f}",
            "google_product_category": f"{g['id']}" if g else "",
            "product_type": str(row.get("product_type", "")),
            "shopify_product_category": str(shop.get("product_category", "")),
            "shopify_type": str(shop.get("type", ""))}
