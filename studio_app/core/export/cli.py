"""``studio-catalog export RESULTS... --preset NAME --out DIR`` (and ``--list-presets``)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import presets as _presets
from ..progress import sigint_cancels
from .exporter import ExportError, export


def print_presets(stream=None) -> int:
    stream = stream if stream is not None else sys.stdout    # the stdout of now, not of import time
    rows = _presets.list_presets()
    if not rows:
        print("no presets found", file=stream)
        return 1
    bad = 0
    for name, title, path, err in rows:
        if err:
            bad += 1
            print(f"{name:<18} BROKEN: {err}", file=stream)
            continue
        p = _presets.load_file(path)
        size = f"{p.width}x{p.height}"
        print(f"{name:<18} {size:>10} {p.format:<5} {title}  [{path.parent.name}/{path.name}]", file=stream)
    print(f"user presets folder: {_presets.user_dirs()[0] if _presets.user_dirs() else '-'}", file=stream)
    return 1 if bad else 0


def run_export(args, render_elsewhere=None) -> int:
    """``render_elsewhere``: a cluster renders the images (``exporter.RenderFn``)."""
    if getattr(args, "list_presets", False):
        return print_presets()
    tty = sys.stderr.isatty()

    def progress(i: int, n: int, text: str) -> None:
        if tty:
            bar = "#" * int(24 * i / max(1, n))
            sys.stderr.write(f"\r[{bar:<24}] {min(i + 1, n)}/{n} {text[:50]}".ljust(100))
            sys.stderr.flush()
        elif i < n:
            print(f"[{i + 1}/{n}] {text}", file=sys.stderr, flush=True)

    try:
        with sigint_cancels() as cancelled:     # Ctrl+C: stop after the current image; twice: at once
            report = export(args.results, args.preset, args.out, template=getattr(args, "template", None),
                            sku=getattr(args, "sku", None), only_approved=not getattr(args, "all", False),
                            overwrite=getattr(args, "overwrite", False), progress=progress,
                            cancel=cancelled.is_set, shot_list=getattr(args, "shot_list", None),
                            require_complete=getattr(args, "require_complete", False),
                            image_base_url=getattr(args, "image_base_url", None),
                            render_elsewhere=render_elsewhere)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if tty:
        sys.stderr.write("\r" + " " * 100 + "\r")
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    for f, r in report.warned:
        print(f"warning   {f}: {r}", file=sys.stderr)
    for f, r in report.skipped:
        print(f"skipped   {Path(f).name}: {r}", file=sys.stderr)
    for line in report.catalog_notes:
        print(f"warning   {line}", file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    if report.manifest_csv:
        print(f"manifest: {report.manifest_csv}", file=sys.stderr)
    if report.shop_file:
        print(f"shop import file: {report.shop_file}", file=sys.stderr)
    if getattr(args, "require_complete", False) and any(not p["complete"] for p in report.products):
        return 1
    if report.cancelled:
        return 130
    return 0 if report.ok else 1
