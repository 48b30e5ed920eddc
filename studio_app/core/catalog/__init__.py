"""The catalog of goods: products (SKUs) and which items of which photos show them.

``Catalog`` (``<out>/catalog.sqlite``) is the one home of products and assignments; the result
documents mirror each item's ``sku``/``view``/``main`` (:mod:`.service`). Shot lists come from
CSV/XLSX (:mod:`.shotlist`); barcode cards and file names bind shots to SKUs (:mod:`.binding`).
Qt-free.
"""
from .model import (Assignment, CatalogError, Product, ProductStatus, check_sku, normalise_view, parse_views,
                    sku_problem)
from .service import CatalogService, mirror_into, rebuild
from .store import CATALOG_NAME, Catalog
from . import shotlist

__all__ = ["Assignment", "Catalog", "CatalogError", "CatalogService", "CATALOG_NAME", "Product",
           "ProductStatus", "check_sku", "mirror_into", "normalise_view", "parse_views", "rebuild",
           "shotlist", "sku_problem"]
