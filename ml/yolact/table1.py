"""Reproduce the paper's Table 1: the three YOLACT variants trained at an equal budget, then compared.

    python -m ml.yolact.table1 --images <train_root> --ann <train.json> \
        --val-images <val_root> --val-ann <val.json> --out runs/table1 --iterations 20000 \
        --report docs/table1

Each configuration (default: ``yolact_r101_baseline``, ``yolact_r101_ws``,
``yolact_r101_attention``) is trained with the same data, classes, input size, batch size,
iterations, learning-rate schedule and seed; the validation set is evaluated every
``--eval-every`` iterations (mask and box AP, pycocotools) for the learning curves; FPS is measured
for each network at ``--fps-size`` (800, the paper's size) on the same device, batch 1, network +
Fast NMS + mask assembly. The report folder gets ``README.md`` (tables, budget, seed, machine),
``results.json``, ``loss.png``, ``ap50_mask.png``, ``ap50_box.png``.

Interrupted runs continue where they stopped (``--resume`` is implied: a finished configuration is
not retrained, an unfinished one resumes from its ``last.pth``).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..atomic import write_json, write_text
from ..device import cpu_model, resolve_device
from ..training.command import run_command
from ..training.loop import read_log
from ..training.plot import line_chart, smooth
from .checkpoint import load_model
from .config import TABLE1_CONFIGS
from .evaluate import METRICS, evaluate, markdown_table, measure_fps
from .model import Yolact
from .train import train

EVAL_LOG = "eval.jsonl"
LABELS = {"yolact_r101_baseline": "YOLACT (ResNet-101)",
          "yolact_r101_ws": "YOLACT + weight standardisation",
          "yolact_r101_attention": "YOLACT + attention (split attention)"}


def machine_line(device: torch.device) -> str:
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{cpu_model()}, {torch.get_num_threads()} threads")
    return f"{name}; torch {torch.__version__}; Python {platform.python_version()}"


def fps_at(model: Yolact, size: int, iters: int) -> float:
    """FPS of this network at ``size`` × ``size`` (anchor scales follow), its own trained weights."""
    net = Yolact(model.cfg.rescaled(size))
    net.load_state_dict(model.state_dict())
    net.to(model.device).eval()
    return measure_fps(net, iters, warmup=2)


def run_key(name: str) -> str:
    """The run folder's name: a named config as is, a config file by its stem."""
    return Path(name).stem if name.endswith(".json") else name


def run_one(name: str, args, out: Path, device: torch.device) -> dict[str, Any]:
    key = run_key(name)
    run_dir = out / key
    run_dir.mkdir(parents=True, exist_ok=True)
    evals_path = run_dir / EVAL_LOG
    final = run_dir / "model_final.pth"
    done = final.is_file() and (run_dir / "summary.json").is_file()
    if not done:
        seen = {r["iteration"] for r in read_log(run_dir, EVAL_LOG)}

        def on_eval(it: int, model: Yolact) -> None:
            if it in seen:
                return
            t = time.monotonic()
            r = evaluate(model, args.val_images, args.val_ann, max_images=args.val_max_images, fps_iters=0)
            rec = {"iteration": it, "mask": r["mask"], "box": r["box"], "eval_seconds": time.monotonic() - t}
            with open(evals_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            seen.add(it)
            print(f"  [{name}] iteration {it}: mask AP {100 * r['mask']['AP']:.1f}, "
                  f"AP50 {100 * r['mask']['AP50']:.1f}; box AP {100 * r['box']['AP']:.1f}", flush=True)

        def show(info) -> None:
            if info.iteration % args.log_every == 0 or info.iteration == info.max_iters:
                print(f"  [{name}] {info.iteration}/{info.max_iters} loss={info.losses.get('loss', 0):.3f} "
                      f"lr={info.lr:.2e} {info.seconds:.0f}s", flush=True)

        t0 = time.monotonic()
        res = train(name, args.images, args.ann, run_dir, iterations=args.iterations, resume=True,
                    device=device, batch_size=args.batch_size, category_ids=args.categories,
                    num_workers=args.workers, checkpoint_every=args.checkpoint_every,
                    log_every=args.log_every, seed=args.seed, max_size=args.max_size, lr=args.lr,
                    progress=show, eval_every=args.eval_every, on_eval=on_eval)
        if res["cancelled"]:
            raise KeyboardInterrupt
        write_json(run_dir / "summary.json", {**res, "train_seconds_this_run": time.monotonic() - t0})
    model = load_model(final, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    fps = fps_at(model, args.fps_size, args.fps_iters) if args.fps_iters else float("nan")
    evals = read_log(run_dir, EVAL_LOG)
    last = max(evals, key=lambda r: r["iteration"]) if evals else None
    log = read_log(run_dir)
    return {"name": key, "label": LABELS.get(key, key), "params": n_params, "fps": fps,
            "fps_size": args.fps_size, "final": last, "evals": evals,
            "train_seconds": log[-1]["seconds"] if log else None,
            "summary": json.loads((run_dir / "summary.json").read_text())}


def write_report(rows: list[dict[str, Any]], args, device: torch.device, report: Path) -> None:
    report.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    loss = {}
    for r in rows:
        log = read_log(out / r["name"])
        xs = [e["iteration"] for e in log]
        loss[r["label"]] = (xs, smooth([e["loss"] for e in log], max(1, len(xs) // 8)))
    line_chart(loss, report / "loss.png", title="Training loss (moving average)", xlabel="iteration",
               ylabel="total loss")
    for kind in ("mask", "box"):
        ap = {r["label"]: ([e["iteration"] for e in r["evals"]], [100 * e[kind]["AP50"] for e in r["evals"]])
              for r in rows if r["evals"]}
        if ap:
            line_chart(ap, report / f"ap50_{kind}.png", title=f"Validation {kind} AP50 (%)",
                       xlabel="iteration", ylabel="AP50", y_min=0)
    first = json.loads((out / rows[0]["name"] / "config.json").read_text())
    size = first.get("max_size")
    classes = ", ".join(first.get("class_names", [])) or "all"
    table = {r["label"]: {"mask": r["final"]["mask"], "box": r["final"]["box"], "fps": r["fps"]}
             for r in rows if r["final"]}
    lines = [
        "# Table 1 — YOLACT variants at an equal budget",
        "",
        f"Generated by `python -m ml.yolact.table1` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"- Machine: {machine_line(device)}",
        f"- Training data: `{Path(args.ann).name}` ({first.get('num_classes', 0) - 1} classes: {classes})",
        f"- Validation data: `{Path(args.val_ann).name}`"
        + (f" (first {args.val_max_images} images)" if args.val_max_images else ""),
        f"- Budget, equal for every row: {args.iterations} iterations × batch {first.get('batch_size')} "
        f"at {size}×{size} px, SGD lr {first.get('lr')} (warm-up + step decay rescaled to the budget), "
        f"seed {first.get('seed')}, backbone from scratch (no ImageNet weights are reachable here)",
        f"- FPS: batch 1 at {args.fps_size}×{args.fps_size}, network + Fast NMS + mask assembly, "
        f"on the machine above (the paper: 28.31 FPS on a Tesla T4 for all three rows)",
        "",
        "## Masks", "", markdown_table(table, "mask"), "",
        "## Boxes", "", markdown_table(table, "box"), "",
        "## Cost", "",
        "| Method | parameters (M) | wall time incl. evaluations (s) | s / iteration |",
        "|---|---|---|---|",
    ]
    for r in rows:
        ts = r["train_seconds"]
        per = f"{ts / max(1, args.iterations):.2f}" if ts else "–"
        lines.append(f"| {r['label']} | {r['params'] / 1e6:.1f} | {ts:.0f} | {per} |" if ts else
                     f"| {r['label']} | {r['params'] / 1e6:.1f} | – | – |")
    lines += ["", "## Curves", "", "![training loss](loss.png)", ""]
    if (report / "ap50_mask.png").is_file():
        lines += ["![validation mask AP50](ap50_mask.png)", "", "![validation box AP50](ap50_box.png)", ""]
    lines += ["## Validation AP over training (mask AP / AP50, %)", "",
              "| iteration | " + " | ".join(r["label"] for r in rows) + " |",
              "|---|" + "---|" * len(rows)]
    its = sorted({e["iteration"] for r in rows for e in r["evals"]})
    for it in its:
        cells = []
        for r in rows:
            e = next((e for e in r["evals"] if e["iteration"] == it), None)
            cells.append(f"{100 * e['mask']['AP']:.1f} / {100 * e['mask']['AP50']:.1f}" if e else "–")
        lines.append(f"| {it} | " + " | ".join(cells) + " |")
    lines.append("")
    write_text(report / "README.md", "\n".join(lines))
    write_json(report / "results.json", {"rows": rows, "args": {k: v for k, v in vars(args).items()},
                                         "machine": machine_line(device), "metrics": list(METRICS)})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.yolact.table1", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(TABLE1_CONFIGS))
    p.add_argument("--images", required=True)
    p.add_argument("--ann", required=True)
    p.add_argument("--val-images", required=True)
    p.add_argument("--val-ann", required=True)
    p.add_argument("--out", required=True, help="run folder (one sub-folder per configuration)")
    p.add_argument("--report", help="folder for README.md, results.json and the curves (default: <out>/report)")
    p.add_argument("--iterations", type=int, required=True, help="the equal budget, in iterations")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-size", type=int, help="training/evaluation input size (default: the config's 800)")
    p.add_argument("--lr", type=float)
    p.add_argument("--categories", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=0, help="validation AP every N iterations (0: at the end)")
    p.add_argument("--val-max-images", type=int)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--fps-size", type=int, default=800)
    p.add_argument("--fps-iters", type=int, default=20, help="0 skips the FPS measurement")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    def body() -> int:
        device = resolve_device(args.device)
        rows = []
        for name in args.configs:
            print(f"== {name}", flush=True)
            rows.append(run_one(name, args, Path(args.out), device))
        report = Path(args.report) if args.report else Path(args.out) / "report"
        write_report(rows, args, device, report)
        print((report / "README.md").read_text())
        return 0

    return run_command(body, "interrupted; run the same command again to continue")


if __name__ == "__main__":
    raise SystemExit(main())
