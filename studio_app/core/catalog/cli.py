"""``studio-catalog catalog ACTION RESULTS ...``: the catalog of goods from the command line.

    import  RESULTS FILE          shot list (CSV/XLSX) -> products (all or nothing)
    bind    RESULTS [--no-cards] [--names PATTERN]   barcode cards and {sku}_{view} file names
    assign  RESULTS FOLDER ZONE SKU [--view V] [--main] [--create]
    list    RESULTS [--sku TEXT] [--status complete|incomplete|"no images"]
    rebuild RESULTS [--shot-list FILE]   recreate catalog.sqlite from the documents (+ shot list)

RESULTS is the results folder (``process --out``); its ``catalog.sqlite`` is the one home of
assignments, and the documents mirror them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .model import CatalogError
from .store import Catalog


def add_parser(sub) -> None:
    pc = sub.add_parser("catalog", help="products, shot lists, barcode cards and SKU assignments",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pc.add_argument("action", choices=["import", "bind", "assign", "list", "rebuild"])
    pc.add_argument("results", help="the results folder (process --out)")
    pc.add_argument("args", nargs="*", help="import: FILE; assign: FOLDER ZONE SKU")
    pc.add_argument("--view", default=None)
    pc.add_argument("--main", action="store_true")
    pc.add_argument("--create", action="store_true", help="assign: an unknown SKU becomes a new product")
    pc.add_argument("--no-cards", action="store_true", help="bind: file names only")
    pc.add_argument("--names", default="{sku}_{view}", help="bind: file-name pattern ('' for none)")
    pc.add_argument("--sku", default="", help="list: SKUs containing this text")
    pc.add_argument("--status", default=None, choices=["complete", "incomplete", "no images"])
    pc.add_argument("--shot-list", default=None, help="rebuild: the shot list's products")
    pc.set_defaults(func=run)


def _folders(root: Path) -> list[Path]:
    from studio_app.core.result import RESULT_NAME
    return sorted(p.parent for p in root.rglob(RESULT_NAME))


def run(args) -> int:
    root = Path(args.results)
    if not root.is_dir():
        print(f"error: {root}: no such results folder", file=sys.stderr)
        return 2
    try:
        with Catalog.open(root) as cat:
            return _ACTIONS[args.action](cat, root, args)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _import(cat: Catalog, root: Path, args) -> int:
    from . import shotlist
    if len(args.args) != 1:
        raise CatalogError("import takes one shot-list file")
    sl = shotlist.read(args.args[0])
    cat.add_products(sl.products)
    _fill(cat, [p.sku for p in sl.products])
    for n in sl.notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"{len(sl.products)} products imported from {sl.path.name}")
    return 0


def _fill(cat: Catalog, skus) -> None:
    """Products without a category take their photos' (and the operator is told)."""
    from .service import fill_categories, filled_line
    line = filled_line(fill_categories(cat, skus=skus))
    if line:
        print(f"note: {line}", file=sys.stderr)


def _bind(cat: Catalog, root: Path, args) -> int:
    from .binding import bind
    rep = bind(cat, _folders(root), cards=not args.no_cards, names=args.names or None)
    for line in rep.lines():
        print(line, file=sys.stderr)
    _fill(cat, None)
    print(f"{len(rep.assigned)} photos bound, {len(rep.cards)} cards, {len(rep.review)} for review, "
          f"{rep.kept} already assigned")
    return 1 if rep.review else 0


def _assign(cat: Catalog, root: Path, args) -> int:
    from .service import CatalogService
    if len(args.args) != 3:
        raise CatalogError("assign takes FOLDER ZONE SKU")
    folder, zone, sku = args.args
    f = Path(folder) if Path(folder).is_dir() else root / folder
    res = CatalogService(cat).assign(f, zone, sku, args.view, args.main, create=args.create)
    _fill(cat, [sku])
    if res.created:
        print(f"note: new product {sku}", file=sys.stderr)
    print(f"{f.name} {zone} -> {sku}" + (f" ({args.view})" if args.view else "") + (" main" if args.main else ""))
    return 0


def _list(cat: Catalog, root: Path, args) -> int:
    for p in cat.panel(sku_contains=args.sku, status=args.status):
        miss = f"  missing: {', '.join(p.missing)}" if p.missing and p.images else ""
        print(f"{p.sku:<24} {p.status:<10} {p.images:>3} images  {p.name}{miss}")
    return 0


def _rebuild(cat: Catalog, root: Path, args) -> int:
    from . import shotlist
    from .service import rebuild
    prods = shotlist.read(args.shot_list).products if args.shot_list else cat.products()
    for w in rebuild(cat, _folders(root), prods):
        print(f"note: {w}", file=sys.stderr)
    print(f"{len(cat.products())} products, {len(cat.assignments())} assignments")
    return 0


_ACTIONS = {"import": _import, "bind": _bind, "assign": _assign, "list": _list, "rebuild": _rebuild}
