"""COCO evaluation of YOLACT models with pycocotools: AP, AP50, AP75, AP_S, AP_M, AP_L for boxes
and masks, plus FPS, printed as a table shaped like the paper's Table 1.

    python -m ml.yolact.evaluate --model runs/base/model_final.pth runs/ws/model_final.pth \
        --images <data_root> --ann <data_root>/instances_val.json

FPS = images per second of network + post-processing (Fast NMS, mask assembly) at the config's
input size, batch 1, on the chosen device, after warm-up; image decoding is not counted.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..training.command import run_command

METRICS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")


def detections_to_coco(det, image_id: int, category_ids: Sequence[int]) -> tuple[list[dict], list[dict]]:
    """One image's :class:`~ml.yolact.detect.Detections` -> COCO result dicts (bbox, segm)."""
    from pycocotools import mask as mask_util
    boxes, segms = [], []
    for j in range(len(det)):
        x1, y1, x2, y2 = (float(v) for v in det.boxes[j])
        cat = int(category_ids[int(det.classes[j])])
        score = float(det.scores[j])
        boxes.append({"image_id": int(image_id), "category_id": cat, "bbox": [x1, y1, x2 - x1, y2 - y1],
                      "score": score})
        rle = mask_util.encode(np.asfortranarray(det.masks[j].astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        segms.append({"image_id": int(image_id), "category_id": cat, "segmentation": rle, "score": score})
    return boxes, segms


def _summarize(coco_gt, results: list[dict], iou_type: str, img_ids: Sequence[int] | None,
               cat_ids: Sequence[int] | None = None) -> dict[str, float]:
    from pycocotools.cocoeval import COCOeval
    if not results:
        return {k: 0.0 for k in METRICS}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, dt, iou_type)
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        if cat_ids is not None:          # only the classes the model knows
            ev.params.catIds = list(cat_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # pycocotools reports -1 where a size range has no ground truth: keep it visible as NaN
    return {k: (float(v) if v >= 0 else float("nan")) for k, v in zip(METRICS, ev.stats[:6])}


def coco_metrics(coco_gt, bbox_results: list[dict], segm_results: list[dict],
                 img_ids: Sequence[int] | None = None, cat_ids: Sequence[int] | None = None
                 ) -> dict[str, dict[str, float]]:
    """pycocotools AP table (fractions 0..1) for boxes and masks, over ``cat_ids`` (default all)."""
    return {"box": _summarize(coco_gt, bbox_results, "bbox", img_ids, cat_ids),
            "mask": _summarize(coco_gt, segm_results, "segm", img_ids, cat_ids)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_fps(model, n: int = 20, warmup: int = 3) -> float:
    """Images/s of forward + post-processing at the config size, batch 1."""
    s = model.cfg.max_size
    img = (np.random.default_rng(0).random((s, s, 3)) * 255).astype(np.uint8)
    dev = model.device
    x = model.preprocess([img])
    with torch.no_grad():
        model.eval()
        for _ in range(warmup):
            model.postprocess(model(x), [(s, s)])
        _sync(dev)
        t = time.perf_counter()
        for _ in range(n):
            model.postprocess(model(x), [(s, s)])
        _sync(dev)
    return n / (time.perf_counter() - t)


def evaluate(model, data_root: str | os.PathLike, ann_file: str | os.PathLike, *, device="auto",
             image_ids: Sequence[int] | None = None, max_images: int | None = None,
             fps_iters: int = 20, progress=None) -> dict[str, Any]:
    """Evaluate a model (a :class:`Yolact` or a weight file) on a COCO instances file.

    Returns ``{"box": {AP..AP_L}, "mask": {...}, "fps": float, "images": n, "name": str}``.
    """
    from .checkpoint import load_model
    from .data import CocoInstances
    if isinstance(model, (str, os.PathLike)):
        name = Path(model).stem
        model = load_model(model, device=device)
    else:
        name = model.cfg.name
    cfg = model.cfg
    cats = list(cfg.category_ids) or None
    ds = CocoInstances(data_root, ann_file, cfg.max_size, train=False, category_ids=cats,
                       image_ids=image_ids, augment=False, skip_empty=False)
    if cats is None and len(ds.category_ids) != cfg.num_classes - 1:
        raise ValueError(f"the model has {cfg.num_classes - 1} classes, the annotations "
                         f"{len(ds.category_ids)}, and the model names no category ids")
    ids = ds.ids[:max_images] if max_images else ds.ids
    bbox_res, segm_res = [], []
    model.eval()
    for n, img_id in enumerate(ids):
        rgb = ds.load_raw(ds.ids.index(img_id))[0]
        det = model.predict([rgb])[0]
        b, s = detections_to_coco(det, img_id, ds.category_ids)
        bbox_res += b
        segm_res += s
        if progress is not None:
            progress(n + 1, len(ids))
    res = coco_metrics(ds.coco, bbox_res, segm_res, ids, ds.category_ids)
    res["fps"] = measure_fps(model, fps_iters) if fps_iters else float("nan")
    res["images"] = len(ids)
    res["name"] = name
    res["device"] = str(model.device)
    return res


def _fmt(v: float, scale: float = 100.0) -> str:
    return "–" if v != v else f"{v * scale:.1f}"


def markdown_table(rows: dict[str, dict[str, Any]], kind: str = "mask") -> str:
    """The paper's Table 1 layout: Method | FPS | AP | AP50 | AP75 | AP_S | AP_M | AP_L (in %)."""
    head = "| Method | FPS | AP | AP<sub>50</sub> | AP<sub>75</sub> | AP<sub>S</sub> | AP<sub>M</sub> | AP<sub>L</sub> |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        m = r[kind]
        fps = r.get("fps", float("nan"))
        fps_s = "–" if fps != fps else (f"{fps:.1f}" if fps >= 10 else f"{fps:.2f}")   # CPU FPS < 1
        lines.append(f"| {name} | {fps_s} | "
                     + " | ".join(_fmt(m[k]) for k in METRICS) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ml.yolact.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True, help="model files (one table row each)")
    p.add_argument("--images", required=True, help="image root")
    p.add_argument("--ann", required=True, help="COCO instances annotation file")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-images", type=int)
    p.add_argument("--fps-iters", type=int, default=50)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    def body() -> int:
        rows = {}
        for path in args.model:
            rows[Path(path).parent.name or Path(path).stem] = evaluate(
                path, args.images, args.ann, device=args.device, max_images=args.max_images,
                fps_iters=args.fps_iters)
        print("Masks\n\n" + markdown_table(rows, "mask") + "\n\nBoxes\n\n" + markdown_table(rows, "box"))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0

    return run_command(body, "interrupted; nothing was written")


if __name__ == "__main__":
    raise SystemExit(main())
