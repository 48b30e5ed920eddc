"""The product panel's data: the catalog's products with their completeness, one page at a time.

Rows come from ``studio.products_panel(limit=, offset=)`` (one indexed query on the catalog's
products table, whose completeness columns triggers keep up to date): the list view asks for the
next page when it scrolls there (``canFetchMore`` / ``fetchMore``), so 10,000 products cost one
page, never a full read. A ``catalog_changed`` event re-reads only the rows it names when they are
loaded and the filter cannot drop them; anything else (new or deleted products, a status filter
that a change may flip) reloads the pages already shown. No result document is read here.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtGui import QColor

from . import theme

PAGE = 200
SKU_ROLE = Qt.UserRole
STATUS_ROW_ROLE = Qt.UserRole + 1       # the ProductStatus
STATUS_FILTERS = (("All products", None), ("Complete", "complete"), ("Incomplete", "incomplete"),
                  ("Empty (no images)", "no images"))
_COLOURS = {"complete": "approved", "incomplete": "needs_review", "no images": "queued"}


class ProductsModel(QAbstractListModel):
    def __init__(self, studio, parent=None):
        super().__init__(parent)
        self.studio = studio
        self.sku_contains = ""
        self.status: str | None = None
        self._rows: list = []
        self._index: dict[str, int] = {}
        self.total = 0

    # ---- Qt model API -------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        p = self._rows[index.row()]
        if role == Qt.DisplayRole:
            title = f"{p.sku}  ·  {p.name}" if p.name and p.name != p.sku else p.sku
            return f"{title}\n{p.completeness()}"
        if role == SKU_ROLE:
            return p.sku
        if role == STATUS_ROW_ROLE:
            return p
        if role == Qt.ForegroundRole:
            return QColor(theme.STATUS_COLOURS.get(_COLOURS.get(p.status, ""), theme.TEXT))
        if role == Qt.ToolTipRole:
            bits = [p.sku, p.name, p.colour, p.category and f"category {p.category}",
                    "expected: " + (", ".join(p.expected) or "any views"),
                    "present: " + (", ".join(p.present) or "none"), f"{p.images} image(s)",
                    "main image set" if p.has_main else "no main image"]
            return "\n".join(b for b in bits if b)
        return None

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and len(self._rows) < self.total

    def fetchMore(self, parent=QModelIndex()) -> None:
        if parent.isValid():
            return
        page = self._query(limit=PAGE, offset=len(self._rows))
        if not page:
            self.total = len(self._rows)
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        self._append(page)
        self.endInsertRows()

    # ---- what the panel asks -------------------------------------------------------------------
    def set_filter(self, sku_contains: str, status: str | None) -> None:
        self.sku_contains, self.status = sku_contains.strip(), status
        self.reload()

    def reload(self, keep: int = 0) -> None:
        """Read the first page again (or as many rows as were loaded, ``keep``)."""
        self.beginResetModel()
        self.total = self.studio.catalog.panel_size(sku_contains=self.sku_contains, status=self.status)
        self._rows, self._index = [], {}
        self._append(self._query(limit=max(PAGE, keep), offset=0))
        self.endResetModel()

    def catalog_changed(self, ev) -> None:
        """Re-read the rows the event names (in place), or reload the loaded pages."""
        structural = ev.reason not in ("assign", "bind", "card") or self.status is not None
        skus = [s for s in ev.skus if s]
        if structural or not skus or any(s not in self._index for s in skus if self._matches(s)):
            self.reload(keep=len(self._rows))
            return
        loaded = [s for s in skus if s in self._index]
        for p in self._query(skus=loaded):
            i = self._index[p.sku]
            self._rows[i] = p
            ix = self.index(i)
            self.dataChanged.emit(ix, ix)

    def row_of(self, sku: str | None) -> int:
        return self._index.get(sku, -1) if sku else -1

    def product_at(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    # ---- helpers ---------------------------------------------------------------------------------
    def _matches(self, sku: str) -> bool:
        return self.sku_contains.lower() in sku.lower()

    def _query(self, **kw) -> list:
        return self.studio.products_panel(sku_contains=self.sku_contains, status=self.status, **kw)

    def _append(self, rows: list) -> None:
        for p in rows:
            self._index[p.sku] = len(self._rows)
            self._rows.append(p)
