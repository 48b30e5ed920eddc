"""The catalog of goods: products (SKUs) and which items of which photos show them.

``Catalog`` (``<out>/catalog.sqlite``) is the one home of products and assignments; the result
documents mirror each item's ``sku``/``view``/``main`` (:mod:`.service`). Shot lists come from
CSV/XLSX (:mod:`.shotlist`); barcode cards and file names bind shots to SKUs (:mod:`.binding`).
Qt-free.
"""
from .model import (Assignment, CatalogError, Product, ProductStatus, check_sku, normalise_view, parse_views,
                    sku_problem)
from .store import CATALOG_NAME, Catalog
from . import shotlist

# The service (result documents, images: numpy, OpenCV) loads on first use, so that the command
# line's parser -- which names the catalog commands -- does not import them at every start
# (`studio-catalog gui` starts the models' process ~0.2 s sooner).
_LAZY = {"CatalogService": ".service", "mirror_into": ".service", "rebuild": ".service"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Assignment", "Catalog", "CatalogError", "CatalogService", "CATALOG_NAME", "Product",
           "ProductStatus", "check_sku", "mirror_into", "normalise_view", "parse_views", "rebuild",
           "shotlist", "sku_problem"]
