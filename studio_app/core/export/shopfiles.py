"""Shop import files written beside the images, as a shop accepts them (preset ``shop_file``).

* ``shopify``: ``shopify-products.csv``, Shopify's product CSV - one row per image: the product's
  first row carries ``Title``, the option (``Color`` = the product's colour, else Shopify's
  ``Title``/``Default Title``) and ``Variant SKU``; every row has ``Handle``, ``Image Src``,
  ``Image Position`` and ``Image Alt Text``.
* ``google_merchant``: ``google-merchant-feed.tsv``, a Merchant Center feed (tab-separated, header
  row): ``id``, ``title``, ``image_link`` (the main image), ``additional_image_link`` (the others,
  comma-separated, at most 10), ``color``; plus ``google_product_category`` and ``product_type`` when
  a product has a category.

A product's category is the shot list's, else the category the analysis gave its images (the
classifier's for a packshot, the garment zone's for an on-model item); the shop fields come from
the one mapping table ``resources/categories.json`` (``studio_app.core.categories``). A category
the table does not know (a studio's own word from its shot list) is passed on as ``product_type``.

Only images that belong to a product (SKU) are listed. Image links are ``--image-base-url`` +
file name; without it they are the bare file names and the export says so.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from urllib.parse import quote

from studio_app.core import atomic
from studio_app.core.categories import CategoryTableError, feed_fields

SHOPIFY_NAME = "shopify-products.csv"
MERCHANT_NAME = "google-merchant-feed.tsv"
SHOPIFY_COLUMNS = ("Handle", "Title", "Option1 Name", "Option1 Value", "Variant SKU", "Image Src",
                   "Image Position", "Image Alt Text", "Product Category", "Type")
MERCHANT_COLUMNS = ("id", "title", "image_link", "additional_image_link", "color")
MERCHANT_CATEGORY_COLUMNS = ("google_product_category", "product_type")
MAX_ADDITIONAL = 10


def handle(sku: str) -> str:
    """Shopify's URL handle: lowercase letters, digits and hyphens."""
    h = re.sub(r"[^a-z0-9]+", "-", sku.lower()).strip("-")
    return h or "product"


def _link(base: str | None, name: str) -> str:
    if not base:
        return name
    return f"{quote(base.strip().rstrip('/'), safe=':/?#[]@!$&()*+,;=%~')}/{quote(name)}"


def product_images(rows: list[dict]) -> dict[str, list[dict]]:
    """SKU -> its image rows in position order (rows of items that belong to a product)."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("catalog_view") is not None and r.get("position") not in (None, ""):
            out.setdefault(r["sku"], []).append(r)
    for v in out.values():
        v.sort(key=lambda r: int(r["position"]))
    return out


def _colour(product, imgs: list[dict]) -> str:
    return product.colour or next((r.get("family") for r in imgs if r.get("family") not in (None, "", "mixed")), "")


def shopify_csv(rows: list[dict], products: dict, base: str | None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHOPIFY_COLUMNS)
    for sku, imgs in sorted(product_images(rows).items()):
        p = products[sku]
        colour = _colour(p, imgs)
        shop = shop_fields(category_of(p, imgs))
        for i, r in enumerate(imgs, start=1):
            alt = " - ".join(x for x in (p.title(), colour, r.get("catalog_view") or "") if x)
            first = i == 1
            w.writerow([handle(sku), p.title() if first else "",
                        ("Color" if colour else "Title") if first else "",
                        (colour or "Default Title") if first else "", sku if first else "",
                        _link(base, r["file"]), i, alt,
                        shop["shopify_product_category"] if first else "", shop["shopify_type"] if first else ""])
    return buf.getvalue()


def _tsv(v: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", str(v or "")).strip()


def merchant_tsv(rows: list[dict], products: dict, base: str | None) -> str:
    imgs_by = product_images(rows)
    cats = {s: category_of(products[s], imgs) for s, imgs in imgs_by.items()}
    with_cat = any(cats.values())
    cols = MERCHANT_COLUMNS + (MERCHANT_CATEGORY_COLUMNS if with_cat else ())
    lines = ["\t".join(cols)]
    for sku, imgs in sorted(imgs_by.items()):
        p = products[sku]
        vals = [sku, p.title(), _link(base, imgs[0]["file"]),
                ",".join(_link(base, r["file"]) for r in imgs[1:1 + MAX_ADDITIONAL]), _colour(p, imgs)]
        if with_cat:
            f = shop_fields(cats[sku])
            vals += [f["google_product_category"], f["product_type"]]
        lines.append("\t".join(_tsv(v) for v in vals))
    return "\n".join(lines) + "\n"


def category_of(product, imgs: list[dict]) -> str:
    """The shot list's category, else the one the analysis gave the product's images."""
    return product.category or next((r["category"] for r in imgs if r.get("category")), "")


def shop_fields(category: str) -> dict[str, str]:
    """The shop columns of a category (``studio_app.core.categories.feed_fields``); a name the
    mapping table does not know is kept as ``product_type``."""
    if not category:
        return feed_fields(None)
    try:
        f = feed_fields(category)
    except CategoryTableError:              # a broken studio table: the name still goes out
        f = feed_fields(category, table={})
    if not f["product_type"] and category != "other":
        f["product_type"] = category
    return f


def write(out: Path, preset, rows: list[dict], arrangement, base: str | None, report) -> Path | None:
    kind = getattr(preset, "shop_file", None)
    if not kind or not arrangement.active:
        return None
    products = arrangement.products
    if kind == "shopify":
        path, text = out / SHOPIFY_NAME, shopify_csv(rows, products, base)
    else:
        path, text = out / MERCHANT_NAME, merchant_tsv(rows, products, base)
    atomic.write_text(path, text)
    if not base:
        report.catalog_notes.append(f"{path.name}: image links are file names; pass --image-base-url with "
                                    "the address the images will be uploaded to")
    return path
