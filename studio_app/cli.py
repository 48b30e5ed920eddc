"""The `studio-catalog` command line. Every sub-command calls the same Qt-free code as the GUI."""
from __future__ import annotations

import argparse
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
        """``i`` photos finished; ``name`` is at ``stage`` (``frac`` of it done)."""
        if not self.tty:
            return
        done = (i + frac) / max(1, self.total)
        bar = "#" * int(done * 24)
        msg = f"\r[{bar:<24}] {min(i + 1, self.total)}/{self.total}{self.rate(i)} {name[:32]}: {stage}".ljust(100)
        self.stream.write(msg)
        self.stream.flush()

    def rate(self, finished: int) -> str:
        """`` 1.4 photos/s, ETA 3:20`` once a photo has finished (empty before)."""
        dt = time.perf_counter() - self.t0
        if finished < 1 or dt <= 0:
            return ""
        per_s = finished / dt
        left = max(0, self.total - finished) / per_s
        return f" {per_s:.2f} photos/s, ETA {int(left // 60)}:{int(left % 60):02d}"

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


def collect_photos(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files and folders (recursive) -> photos; the app's one rule (``studio_app.core.photos``)."""
    from studio_app.core.photos import collect_photos as collect
    return collect(paths)


def cmd_process(args) -> int:
    """Process photos through the same ``Studio`` the desktop app drives: one line per photo, in
    order; Ctrl+C stops after the current photo (exit 130), a second Ctrl+C at once."""
    from ml.device import configure_cpu_threads
    from ml.weights import WeightsError
    from studio_app.core.processing import Processor
    from studio_app.core.progress import sigint_cancels
    from studio_app.core.session import Session
    from studio_app.core.studio import Studio

    photos, errors = collect_photos(args.photos)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if not photos:
        print("error: nothing to process", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        if args.cluster:
            proc = _cluster_processor(args)
        else:
            configure_cpu_threads()
            proc = Processor(device=args.device, pose_engine=args.pose_engine, seg_engine=args.seg_engine)
            proc.pipeline.warm_up()
    except (WeightsError, RuntimeError, ValueError) as exc:     # ClusterError is a RuntimeError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    studio = Studio(out, proc, session=Session(out, autosave=False), skip_existing=args.skip_existing)
    report = _BatchReport(studio, photos)
    t0 = time.perf_counter()
    try:
        with sigint_cancels(studio.cancel) as cancelled:
            for photo in photos:
                studio.enqueue(photo, force_kind=args.kind)
            studio.start()
            while not studio.wait_idle(0.1):     # short waits: Ctrl+C is handled between them
                pass
    finally:
        studio.close()
    if cancelled.is_set():
        report.prog.line(f"cancelled after {report.finished} of {len(photos)} photos; finished results are kept")
        return 130
    dt = time.perf_counter() - t0
    print(f"{len(photos) - report.failed} of {len(photos)} photos done in {dt:.1f} s "
          f"({report.review} need review, {report.failed} failed); results in {out}", file=sys.stderr)
    return 1 if report.failed or errors else 0


def _cluster_processor(args):
    """Workers started and their models loaded before the first photo (a failure is one line)."""
    from studio_app.cluster import ClusterError
    from studio_app.cluster.processor import ClusterProcessor
    from studio_app.core.processor import ProcessorSpec
    spec = ProcessorSpec(device=args.device, pose_engine=args.pose_engine, seg_engine=args.seg_engine)
    proc = ClusterProcessor(args.cluster, workers=args.workers, spec=spec)
    try:
        proc.pool.wait_ready()
    except ClusterError:
        proc.close()
        raise
    print(f"processing on {proc.describe()}", file=sys.stderr)
    return proc


class _BatchReport:
    """The CLI's view of a Studio batch: the progress line and one line per finished photo."""

    def __init__(self, studio, photos: list[Path]):
        self.photos = photos
        self.names = {str(p.resolve()): p for p in photos}
        self.prog = ProgressLine(len(photos))
        self.finished = self.failed = self.review = 0
        studio.events.batch_progress.connect(self.on_progress)
        studio.events.job_finished.connect(self.on_finished)

    def on_progress(self, ev) -> None:
        if ev.photo is not None:
            self.prog.update(self.finished, Path(ev.photo).name, ev.stage, ev.photo_fraction)

    def on_finished(self, ev) -> None:
        if ev.cancelled:
            return
        i, o = self.finished, ev.outcome
        self.finished += 1
        photo = self.names.get(ev.photo, Path(ev.photo))
        n = len(self.photos)
        if o.ok:
            d = o.doc
            zones = ",".join(it.zone for it in d.items) or "-"
            flag = "  NEEDS REVIEW: " + "; ".join(d.warnings[:2]) if d.needs_review else ""
            self.review += d.needs_review
            state = "up to date" if o.skipped else f"{d.kind} [{zones}]"
            self.prog.line(f"[{i + 1}/{n}] ok    {photo}: {state}{flag}")
        else:
            self.failed += 1
            self.prog.line(f"[{i + 1}/{n}] FAIL  {o.error}")


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
    if not getattr(args, "cluster", None) or getattr(args, "list_presets", False):
        return run_export(args)
    from studio_app.cluster import ClusterError
    from studio_app.cluster.export import ClusterRenderer
    renderer = None
    try:
        renderer = ClusterRenderer(args.cluster, workers=args.workers)
        renderer.pool.wait_ready()
    except ClusterError as exc:
        if renderer is not None:
            renderer.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"rendering on {renderer.describe()}", file=sys.stderr)
    try:
        return run_export(args, render_elsewhere=renderer)
    finally:
        renderer.close()


def cmd_gui(args) -> int:
    from studio_app.core.syslibs import gui_preflight_message
    message = gui_preflight_message()
    if message:                       # Qt would abort with "Could not load the Qt platform plugin xcb"
        print(message, file=sys.stderr)
        return 2
    # the models' child process starts now (default engines), while Qt is imported and the window
    # built: ~0.3-0.4 s earlier than from inside the app (which adopts it, or replaces it when
    # Settings name other engines)
    # (a models process the previous run kept loaded is adopted instead: studio_app.core.resident;
    # the app's own setting decides at its close whether this one stays loaded in turn)
    from studio_app.core.processor import KEEP_LOADED_MIN, app_spec
    app_spec(keep_loaded_s=60.0 * KEEP_LOADED_MIN).prestart()
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
    elif args.network == "category":
        from ml.category.train import main as train_main
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
    from studio_app.cluster.cli import add_cluster_args
    add_cluster_args(pp)
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
    pe.add_argument("--shot-list", default=None, metavar="FILE",
                    help="products (CSV/XLSX: sku,name,colour,category,views) besides the results' catalog")
    pe.add_argument("--require-complete", action="store_true",
                    help="hold back products that miss an expected view (the rest is exported)")
    pe.add_argument("--image-base-url", default=None, metavar="URL",
                    help="where the images will be hosted: the shop import file's image links")
    add_cluster_args(pe)
    pe.set_defaults(func=cmd_export)

    from studio_app.core.catalog.cli import add_parser as add_catalog_parser
    add_catalog_parser(sub)

    pg = sub.add_parser("gui", help="start the desktop app")
    pg.add_argument("photos", nargs="*", help="photos to open at start")
    pg.add_argument("--hot-folder", default=None, help="watch this folder for new photos")
    pg.add_argument("--out", default=None, help="results folder")
    pg.set_defaults(func=cmd_gui)

    pt = sub.add_parser("train", help="train a network (yolact | openpose | garments | category); --help after the name")
    pt.add_argument("network", choices=["yolact", "openpose", "garments", "category"])
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
