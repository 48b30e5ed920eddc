"""``<out>/catalog.sqlite``: the session's products and the one home of assignments.

An embedded SQLite database (WAL journal, so the GUI reads while an export reads too), as
Lightroom and Capture One keep theirs. Two tables:

* ``products(sku, name, colour, category, views, origin)`` — ``views`` is ``front|back|...``;
* ``assignments(folder, zone, sku, view, main)`` — one row per item of a result document that
  belongs to a SKU. ``folder`` is the result folder relative to the catalog's folder (absolute when
  outside it), so a moved output folder keeps its catalog.

The result documents mirror each item's ``sku``/``view``/``main`` (so a results folder stays
self-describing) and :meth:`Catalog.rebuild` recreates the database from them and a shot list.
This module only holds the data; :mod:`.service` keeps the documents in step.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

from .model import Assignment, CatalogError, Product, ProductStatus, check_sku, normalise_view

CATALOG_NAME = "catalog.sqlite"
SCHEMA = 1
_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS products(
    sku TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', colour TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '', views TEXT NOT NULL DEFAULT '', origin TEXT NOT NULL DEFAULT 'manual',
    present TEXT NOT NULL DEFAULT '', images INTEGER NOT NULL DEFAULT 0, has_main INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS assignments(
    folder TEXT NOT NULL, zone TEXT NOT NULL, sku TEXT NOT NULL, view TEXT, main INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(folder, zone));
CREATE INDEX IF NOT EXISTS assignments_sku ON assignments(sku, view, main);
"""
# The product panel reads one table: each product row carries its completeness (views present,
# image count, main image), kept up to date by triggers on assignments (and on a re-imported product).
_SUMMARY = """UPDATE products SET
    images = (SELECT count(*) FROM assignments WHERE sku = {x}),
    present = coalesce((SELECT group_concat(v, '|') FROM (SELECT DISTINCT view AS v FROM assignments
                        WHERE sku = {x} AND view IS NOT NULL ORDER BY v)), ''),
    has_main = coalesce((SELECT max(main) FROM assignments WHERE sku = {x}), 0),
    done = (SELECT count(DISTINCT a.view) FROM assignments a WHERE a.sku = {x} AND a.view IS NOT NULL
            AND instr('|' || products.views || '|', '|' || a.view || '|') > 0)
    WHERE sku = {x};"""
_STATUS = ("CASE WHEN images = 0 THEN 'no images' WHEN done >= (CASE WHEN views = '' THEN 0 ELSE "
           "length(views) - length(replace(views, '|', '')) + 1 END) THEN 'complete' ELSE 'incomplete' END")
_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS assignment_added AFTER INSERT ON assignments BEGIN {_SUMMARY.format(x="NEW.sku")} END;
CREATE TRIGGER IF NOT EXISTS assignment_removed AFTER DELETE ON assignments BEGIN {_SUMMARY.format(x="OLD.sku")} END;
CREATE TRIGGER IF NOT EXISTS assignment_changed AFTER UPDATE ON assignments BEGIN
    {_SUMMARY.format(x="OLD.sku")} {_SUMMARY.format(x="NEW.sku")} END;
CREATE TRIGGER IF NOT EXISTS product_added AFTER INSERT ON products BEGIN {_SUMMARY.format(x="NEW.sku")} END;
"""
_PRODUCT_COLS = "sku, name, colour, category, views, origin"


def _views(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split("|") if v)


def _product(row) -> Product:
    return Product(sku=row[0], name=row[1], colour=row[2], category=row[3], views=_views(row[4]), origin=row[5])


class Catalog:
    """Products and assignments of one output folder. Safe to use from several threads."""

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike | None = None):
        self.path = str(path)
        self.root = Path(root) if root is not None else (Path(path).parent if path != ":memory:" else Path.cwd())
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA recursive_triggers=ON")     # INSERT OR REPLACE fires the delete trigger
            self._db.executescript(_DDL + _TRIGGERS)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES('schema', ?)", (str(SCHEMA),))
                self._db.commit()
            elif int(row[0]) > SCHEMA:
                raise CatalogError(f"{self.path} was written by a newer Studio Catalog (catalog schema {row[0]})")
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"cannot open the catalog {self.path}: {exc} "
                               "(rebuild it with `studio-catalog catalog rebuild`)") from exc

    @classmethod
    def open(cls, out_root: str | os.PathLike) -> "Catalog":
        root = Path(out_root)
        root.mkdir(parents=True, exist_ok=True)
        return cls(root / CATALOG_NAME, root)

    @classmethod
    def memory(cls, root: str | os.PathLike) -> "Catalog":
        """A throw-away catalog (an export of results that have no catalog.sqlite)."""
        return cls(":memory:", root)

    @staticmethod
    def exists(out_root: str | os.PathLike) -> bool:
        return (Path(out_root) / CATALOG_NAME).is_file()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def key(self, folder: str | os.PathLike) -> str:
        """The key of a result folder: relative to the catalog's folder when inside it."""
        p = Path(folder).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return p.as_posix()

    def folder(self, key: str) -> Path:
        p = Path(key)
        return p if p.is_absolute() else self.root / p

    # ---- products ----------------------------------------------------------------------------
    def add_products(self, products: Iterable[Product], *, replace: bool = True) -> int:
        """Insert (or update, ``replace``) products in one transaction: all or nothing."""
        rows = []
        for p in products:
            check_sku(p.sku)
            rows.append((p.sku, p.name, p.colour, p.category, "|".join(p.views), p.origin))
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock, self._db:
            self._db.executemany(f"{verb} INTO products({_PRODUCT_COLS}) VALUES(?,?,?,?,?,?)", rows)
        return len(rows)

    def product(self, sku: str) -> Product | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_PRODUCT_COLS} FROM products WHERE sku=?", (sku,)).fetchone()
        return _product(row) if row else None

    def products(self) -> list[Product]:
        with self._lock:
            return [_product(r) for r in self._db.execute(f"SELECT {_PRODUCT_COLS} FROM products ORDER BY sku")]

    def fill_category(self, sku: str, category: str) -> bool:
        """Give ``sku`` a category only when it has none (a category the studio gave is never
        overwritten). True when it was filled in."""
        with self._lock, self._db:
            cur = self._db.execute("UPDATE products SET category=? WHERE sku=? AND category=''", (category, sku))
        return cur.rowcount > 0

    def follow_category(self, sku: str, category: str, was: str) -> bool:
        """Change ``sku``'s category to ``category`` only while it is empty or ``was`` (the
        category its photo had: filled in from the photos). A category the studio gave (another
        word) is never overwritten. True when it changed."""
        with self._lock, self._db:
            cur = self._db.execute("UPDATE products SET category=? WHERE sku=? AND category IN ('', ?)",
                                   (category, sku, was))
        return cur.rowcount > 0

    def uncategorised(self, skus: Iterable[str] | None = None) -> list[str]:
        """SKUs (among ``skus``, else all) without a category that have assigned images."""
        q = "SELECT sku FROM products WHERE category='' AND images > 0"
        args: list = []
        if skus is not None:
            skus = list(skus)[:500]
            q += f" AND sku IN ({','.join('?' * len(skus))})" if skus else " AND 0"
            args = skus
        with self._lock:
            return [r[0] for r in self._db.execute(q + " ORDER BY sku", args)]

    def delete_product(self, sku: str) -> list[Assignment]:
        """Remove a product; its items become unassigned (returned, so the caller updates documents)."""
        with self._lock, self._db:
            gone = self.assignments(sku=sku)
            self._db.execute("DELETE FROM assignments WHERE sku=?", (sku,))
            self._db.execute("DELETE FROM products WHERE sku=?", (sku,))
        return gone

    # ---- assignments -------------------------------------------------------------------------
    def assign(self, folder: str | os.PathLike, zone: str, sku: str | None, view: str | None = None,
               main: bool = False) -> Assignment:
        """Item ``zone`` of the result in ``folder`` belongs to ``sku`` (None: unassign). ``main``:
        the product's main image (any other main of that SKU is cleared)."""
        k = self.key(folder)
        view = normalise_view(view) if view else None
        with self._lock, self._db:
            if sku is None:
                self._db.execute("DELETE FROM assignments WHERE folder=? AND zone=?", (k, zone))
                return Assignment(k, zone, None)
            if self.product(sku) is None:
                raise CatalogError(f"SKU {sku!r} is not in the catalog; add the product first")
            if main:
                self._db.execute("UPDATE assignments SET main=0 WHERE sku=?", (sku,))
            self._db.execute("INSERT OR REPLACE INTO assignments VALUES(?,?,?,?,?)", (k, zone, sku, view, int(main)))
        return Assignment(k, zone, sku, view, bool(main))

    def assignment(self, folder: str | os.PathLike, zone: str) -> Assignment | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM assignments WHERE folder=? AND zone=?",
                                 (self.key(folder), zone)).fetchone()
        return Assignment(r[0], r[1], r[2], r[3], bool(r[4])) if r else None

    def assignments(self, *, folder: str | os.PathLike | None = None, sku: str | None = None) -> list[Assignment]:
        q, args = "SELECT * FROM assignments", []
        if folder is not None:
            q, args = q + " WHERE folder=?", [self.key(folder)]
        elif sku is not None:
            q, args = q + " WHERE sku=?", [sku]
        with self._lock:
            rows = self._db.execute(q + " ORDER BY sku, main DESC, folder, zone", args).fetchall()
        return [Assignment(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def put_assignments(self, rows: Iterable[Assignment]) -> None:
        """Store rows as they are (no product check): an export's private view."""
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO assignments VALUES(?,?,?,?,?)",
                                 [(a.folder, a.zone, a.sku, a.view, int(a.main)) for a in rows if a.sku])

    def assigned_folders(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT DISTINCT folder FROM assignments")}

    # ---- the product panel -------------------------------------------------------------------
    def panel(self, *, sku_contains: str = "", status: str | None = None, limit: int | None = None,
              offset: int = 0, skus: Iterable[str] | None = None) -> list[ProductStatus]:
        """Products with their completeness (expected views present / missing), by SKU. ``status``:
        complete | incomplete | no images; ``limit``/``offset``: one page (a list view fetches the
        rows it shows); ``skus``: only these products (a panel refreshing the rows an event named).
        One indexed table scan: the completeness is kept by triggers."""
        where, args = self._panel_filter(sku_contains, status)
        if skus is not None:
            skus = list(skus)[:500]
            cond = f"sku IN ({','.join('?' * len(skus))})" if skus else "0"
            where = f"{where} AND {cond}" if where else f" WHERE {cond}"
            args += skus
        q = f"SELECT sku, name, colour, category, views, origin, present, images, has_main FROM products{where} ORDER BY sku"
        if limit is not None:
            q += " LIMIT ? OFFSET ?"
            args += [int(limit), int(offset)]
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        return [ProductStatus(r[0], r[1], r[2], r[3], _views(r[4]), _views(r[6]), r[7], bool(r[8]), r[5])
                for r in rows]

    def panel_size(self, *, sku_contains: str = "", status: str | None = None) -> int:
        """How many products the panel's filter lets through (the list's length before paging)."""
        where, args = self._panel_filter(sku_contains, status)
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM products{where}", args).fetchone()[0]

    def panel_counts(self, *, sku_contains: str = "") -> dict[str, int]:
        """{"complete": n, "incomplete": n, "no images": n} (the panel's filter badges)."""
        where, args = self._panel_filter(sku_contains, None)
        with self._lock:
            rows = self._db.execute(f"SELECT {_STATUS}, count(*) FROM products{where} GROUP BY 1", args).fetchall()
        out = {"complete": 0, "incomplete": 0, "no images": 0}
        out.update({k: n for k, n in rows})
        return out

    @staticmethod
    def _panel_filter(sku_contains: str, status: str | None) -> tuple[str, list]:
        conds, args = [], []
        if sku_contains:
            conds.append("sku LIKE ? ESCAPE '\\'")
            args.append("%" + sku_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if status:
            conds.append(f"{_STATUS} = ?")
            args.append(status)
        return (" WHERE " + " AND ".join(conds) if conds else ""), args

    # ---- rebuild -----------------------------------------------------------------------------
    def replace_all(self, products: Iterable[Product], assignments: Iterable[Assignment], *,
                    check: bool = True) -> None:
        """Start over with these products and assignments (one transaction). ``check=False`` keeps
        assignments to SKUs that are not among the products (an export reports them)."""
        prows = [(p.sku, p.name, p.colour, p.category, "|".join(p.views), p.origin) for p in products]
        skus = {r[0] for r in prows}
        arows = [(a.folder, a.zone, a.sku, a.view, int(a.main)) for a in assignments
                 if a.sku and (not check or a.sku in skus)]
        with self._lock, self._db:
            self._db.execute("DELETE FROM assignments")
            self._db.execute("DELETE FROM products")
            self._db.executemany(f"INSERT OR REPLACE INTO products({_PRODUCT_COLS}) VALUES(?,?,?,?,?,?)", prows)
            self._db.executemany("INSERT OR REPLACE INTO assignments VALUES(?,?,?,?,?)", arows)
