"""The `studio-catalog` command line. Every sub-command calls the same Qt-free code as the GUI."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

DESCRIPTION = """\
Studio Catalog turns studio photos into catalog-ready e-commerce images.

Each photo is classified as a person (a model wearing goods) or a product. People get
23 body keypoints and one crop per garment zone (head, top, bottom, shoes, full look);
products are cut out and centred on pure white. Every item gets a dominant-colour swatch.
Results go to OUT/<photo name>/result.json plus the mask, crops and swatches it names;
the original photos are never modified.

Typical use:
  studio-catalog models fetch                       # once: download and verify the models
  studio-catalog process shoot/ --out results/      # photos or folders (recursive)
  studio-catalog gui                                # the desktop app (hot folder, review, export)
  studio-catalog export results/ --preset amazon --out catalog/
"""


class ProgressLine:
    """One updating progress line on a terminal; plain lines otherwise (logs, CI)."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr    # the stderr of now, not of import time
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()

    def update(self, i: int, name: str, stage: str, frac: float) -> None:
        if not self.tty:
            return
        done = (i + frac) / max(1, self.total)
        bar = "#" * int(done * 24)
        msg = f"\r[{bar:<24}] {i + 1}/{self.total} {name[:40]}: {stage}".ljust(100)
        self.stream.write(msg)
        self.stream.flush()

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


def collect_photos(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Expand folders recursively into supported photos, in a stable order."""
    from ml.io import is_supported
    photos: list[Path] = []
    errors: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".") and is_supported(q))
            if not found:
                errors.append(f"{p}: no photos found in this folder")
            photos.extend(found)
        elif p.is_file():
            photos.append(p)
        else:
            errors.append(f"{p}: no such file or folder")
    from studio_app.core.paths import unique_paths
    return unique_paths(photos), errors


def cmd_process(args) -> int:
    from ml.device import configure_cpu_threads
    from ml.pipeline import Cancelled
    from ml.weights import WeightsError
    from studio_app.core.processing import Processor

    photos, errors = collect_photos(args.photos)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if not photos:
        print("error: nothing to process", file=sys.stderr)
        return 2
    configure_cpu_threads()
    out = Path(args.out)
    try:
        proc = Processor(device=args.device, pose_engine=args.pose_engine, seg_engine=args.seg_engine)
        proc.pipeline.warm_up()
    except (WeightsError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    cancelled = {"flag": False}

    def on_sigint(signum, frame):
        if cancelled["flag"]:
            raise KeyboardInterrupt
        cancelled["flag"] = True
    old = signal.signal(signal.SIGINT, on_sigint)

    prog = ProgressLine(len(photos))
    failed = 0
    review = 0
    t0 = time.perf_counter()
    try:
        for i, photo in enumerate(photos):
            try:
                outcome = proc.process(
                    photo, out, force_kind=args.kind, skip_existing=args.skip_existing,
                    progress=lambda stage, frac, i=i, n=photo.name: prog.update(i, n, stage, frac),
                    cancel=lambda: cancelled["flag"])
            except Cancelled:
                prog.line(f"cancelled after {i} of {len(photos)} photos; finished results are kept")
                return 130
            if outcome.ok:
                d = outcome.doc
                zones = ",".join(it.zone for it in d.items) or "-"
                flag = "  NEEDS REVIEW: " + "; ".join(d.warnings[:2]) if d.needs_review else ""
                review += d.needs_review
                state = "up to date" if outcome.skipped else f"{d.kind} [{zones}]"
                prog.line(f"[{i + 1}/{len(photos)}] ok    {photo}: {state}{flag}")
            else:
                failed += 1
                prog.line(f"[{i + 1}/{len(photos)}] FAIL  {outcome.error}")
    finally:
        signal.signal(signal.SIGINT, old)
    dt = time.perf_counter() - t0
    print(f"{len(photos) - failed} of {len(photos)} photos done in {dt:.1f} s "
          f"({review} need review, {failed} failed); results in {out}", file=sys.stderr)
    return 1 if failed or errors else 0


def cmd_models(args) -> int:
    from ml import weights
    if args.action == "fetch":
        try:
            weights.fetch(progress=lambda s: print(s, file=sys.stderr, flush=True), force=args.force)
        except weights.WeightsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("all models present and verified", file=sys.stderr)
        return 0
    rows = weights.status()
    bad = 0
    for r in rows:
        ok = r.get("verified")
        bad += not ok
        state = "ok" if ok else ("missing" if not r.get("present") else "HASH MISMATCH")
        print(f"{r['id']:<22} {state:<14} {r['licence']:<40} {r.get('source', '')}")
    return 1 if (args.action == "verify" and bad) else 0


def cmd_export(args) -> int:
    from studio_app.core.export.cli import run_export
    return run_export(args)


def cmd_gui(args) -> int:
    from studio_app.gui.app import main as gui_main
    argv = []
    if args.hot_folder:
        argv += ["--hot-folder", args.hot_folder]
    if args.out:
        argv += ["--out", args.out]
    argv += list(args.photos)
    return gui_main(argv)


def cmd_train(args, rest: list[str]) -> int:
    if args.network == "yolact":
        from ml.yolact.train import main as train_main
    elif args.network == "garments":
        from ml.garments.train import main as train_main
    else:
        from ml.openpose.train import main as train_main
    return int(train_main(rest) or 0)


def cmd_eval(args, rest: list[str]) -> int:
    if args.network == "yolact":
        from ml.yolact.evaluate import main as eval_main
    elif args.network == "garments":
        from ml.garments.evaluate import main as eval_main
    else:
        from ml.openpose.evaluate import main as eval_main
    return int(eval_main(rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio-catalog", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from studio_app import __version__
    p.add_argument("--version", action="version", version=f"studio-catalog {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pp = sub.add_parser("process", help="process photos or folders into result documents",
                        description="Process photos (or folders, recursively) into OUT/<photo>/result.json.")
    pp.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders")
    pp.add_argument("--out", "-o", required=True, help="folder for the results")
    pp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where the models run (default: the GPU when there is one)")
    pp.add_argument("--kind", choices=["person", "product"], default=None,
                    help="skip the person/product decision and treat every photo as this")
    pp.add_argument("--skip-existing", action="store_true",
                    help="leave photos whose result is already up to date")
    pp.add_argument("--pose-engine", default="blazepose",
                    help="'blazepose' (default) or a trained OpenPose checkpoint in weights/")
    pp.add_argument("--seg-engine", default="u2netp",
                    help="'u2netp' (default) or a trained YOLACT checkpoint in weights/")
    pp.set_defaults(func=cmd_process)

    pm = sub.add_parser("models", help="fetch, list or verify the model files",
                        description="Models live in weights/ (see weights/manifest.json for sources and licences).")
    pm.add_argument("action", choices=["fetch", "list", "verify"])
    pm.add_argument("--force", action="store_true", help="fetch again even if present")
    pm.set_defaults(func=cmd_models)

    pe = sub.add_parser("export", help="export approved results to a catalog for a marketplace preset",
                        description="Turn result documents into catalog files for a marketplace preset.")
    pe.add_argument("results", nargs="+", help="result folders, or a folder holding them")
    pe.add_argument("--preset", required=True, help="preset name (see --list-presets) or a preset file")
    pe.add_argument("--out", "-o", required=True, help="catalog output folder")
    pe.add_argument("--all", action="store_true", help="export every result, not only approved ones")
    pe.add_argument("--template", default=None, help="file-name template, e.g. '{sku}_{zone}_{view}'")
    pe.add_argument("--sku", default=None, help="SKU to use instead of the shot name")
    pe.add_argument("--overwrite", action="store_true",
                    help="replace files in OUT that this export did not write (default: report and keep them)")
    pe.add_argument("--list-presets", action="store_true", help="list the available presets and exit")
    pe.set_defaults(func=cmd_export)

    pg = sub.add_parser("gui", help="start the desktop app")
    pg.add_argument("photos", nargs="*", help="photos to open at start")
    pg.add_argument("--hot-folder", default=None, help="watch this folder for new photos")
    pg.add_argument("--out", default=None, help="results folder")
    pg.set_defaults(func=cmd_gui)

    pt = sub.add_parser("train", help="train a network (yolact | openpose | garments); --help after the name")
    pt.add_argument("network", choices=["yolact", "openpose", "garments"])
    pt.set_defaults(func=cmd_train, passthrough=True)
    pv = sub.add_parser("eval", help="evaluate a trained network (yolact | openpose: COCO metrics; garments: IoU)")
    pv.add_argument("network", choices=["yolact", "openpose", "garments"])
    pv.set_defaults(func=cmd_eval, passthrough=True)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("train", "eval"):
        args, rest = parser.parse_known_args(argv[:2])
        return args.func(args, argv[2:])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
