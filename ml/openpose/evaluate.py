"""COCO OKS keypoint evaluation (pycocotools) + speed, as a table shaped like the paper's Table 2.

    python -m ml.openpose.evaluate --ann test_coco.json --images DIR \
        --checkpoint "Smart Cropping=weights/openpose_attention.pth" \
        --checkpoint "OpenPose=runs/plain/last.pth" [--foot-ann wholebody.json] [--blazepose]

For each engine: AP, AP50, AP75, AP_M, AP_L (COCO OKS over the 17 body points, pycocotools'
sigmas) and FPS (whole photo in -> people out: resize, network, grouping; after one warm-up
image). With ``--foot-ann`` (COCO-WholeBody ``foot_kpts``) a second set of columns evaluates all
23 points with the COCO-WholeBody foot sigmas appended. ``--json`` writes the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import COCO17_SIGMAS, SIGMAS_23
from .data import ann_to_keypoints23, read_rgb

METRICS = ("AP", "AP50", "AP75", "AP_M", "AP_L")


def _coco_from_dict(d: dict):
    from pycocotools.coco import COCO
    c = COCO()
    c.dataset = copy.deepcopy(d)
    with contextlib.redirect_stdout(io.StringIO()):
        c.createIndex()
    return c


def oks_ap(gt: dict, results: list[dict], sigmas: Sequence[float] | None = None,
           image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """pycocotools keypoint AP. ``sigmas`` (len = keypoints per person) default COCO-17."""
    from pycocotools.cocoeval import COCOeval
    if not results:
        return {m: 0.0 for m in METRICS}
    coco_gt = _coco_from_dict(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats   # AP, AP50, AP75, AP_M, AP_L, AR, ...
    return {m: float(max(s[i], 0.0)) for i, m in enumerate(METRICS)}


def gt_23(gt: dict, foot_gt: dict | None = None) -> dict:
    """A COCO GT dict whose person keypoints are the 23 points (17 + WholeBody foot)."""
    feet = {}
    if foot_gt is not None:
        feet = {a["id"]: a for a in foot_gt.get("annotations", [])}
    out = copy.deepcopy(gt)
    anns = []
    for a in out["annotations"]:
        src = feet.get(a["id"], a)
        if "foot_kpts" in src:
            a = dict(a, foot_kpts=src["foot_kpts"], foot_valid=src.get("foot_valid", True))
        kp, has_foot = ann_to_keypoints23(a)
        if not has_foot:   # no foot labels: the person is evaluated on 23 points of which 6 unlabelled
            kp[17:] = 0
        v = np.where(kp[:, 2] > 0, 2, 0)
        flat = np.concatenate([kp[:, :2], v[:, None]], 1).reshape(-1)
        a = {k: val for k, val in a.items() if k not in ("foot_kpts", "foot_valid")}
        a["keypoints"] = [float(x) for x in flat]
        a["num_keypoints"] = int((v > 0).sum())
        anns.append(a)
    out["annotations"] = anns
    for c in out.get("categories", []):
        if c.get("name") == "person":
            c["keypoints"] = list(c.get("keypoints", []))[:17] + [
                "left_big_toe", "left_small_toe", "left_heel",
                "right_big_toe", "right_small_toe", "right_heel"]
    return out


def people_to_results(image_id: int, people: list, n_points: int) -> list[dict]:
    """people: objects with ``keypoints`` (23,3) and ``score`` -> COCO result entries."""
    res = []
    for p in people:
        k = np.asarray(p.keypoints, np.float32)[:n_points]
        flat = np.concatenate([k[:, :2], (k[:, 2:3] > 0).astype(np.float32)], 1).reshape(-1)
        res.append({"image_id": int(image_id), "category_id": 1,
                    "keypoints": [float(x) for x in flat], "score": float(p.score)})
    return res


def run_engine(predict: Callable[[np.ndarray], list], gt: dict, image_dir: str | Path,
               foot_gt: dict | None = None) -> dict:
    """Run ``predict(rgb) -> people`` over the GT images; AP (17 and 23 points) and FPS."""
    image_dir = Path(image_dir)
    res17, res23, times = [], [], []
    imgs = gt["images"]
    for i, im in enumerate(imgs):
        rgb = read_rgb(image_dir / im["file_name"])
        if i == 0:
            predict(rgb)            # warm-up (allocations, cudnn autotune)
        t0 = time.perf_counter()
        people = predict(rgb)
        times.append(time.perf_counter() - t0)
        res17 += people_to_results(im["id"], people, 17)
        res23 += people_to_results(im["id"], people, 23)
    out = {"images": len(imgs), "people_found": len(res17),
           "fps": float(len(times) / max(sum(times), 1e-9)),
           "coco17": oks_ap(gt, res17, COCO17_SIGMAS_FRAC)}
    if foot_gt is not None:
        out["coco23"] = oks_ap(gt_23(gt, foot_gt), res23, SIGMAS_23)
    return out


COCO17_SIGMAS_FRAC = tuple(s / 10.0 for s in COCO17_SIGMAS)


def markdown_table(rows: dict[str, dict]) -> str:
    has23 = any("coco23" in r for r in rows.values())
    head = ["Method", "AP", "AP<sup>50</sup>", "AP<sup>75</sup>", "AP<sup>M</sup>", "AP<sup>L</sup>", "FPS"]
    if has23:
        head += ["AP (23 pts)", "AP<sup>50</sup> (23)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        a = r["coco17"]
        cells = [name] + [f"{100 * a[m]:.1f}" for m in METRICS] + [f"{r['fps']:.2f}"]
        if has23:
            b = r.get("coco23")
            cells += [f"{100 * b['AP']:.1f}", f"{100 * b['AP50']:.1f}"] if b else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _blazepose_predict(device: str) -> Callable[[np.ndarray], list]:
    from ml.stages.pose import PoseEstimator   # the pretrained BlazePose stage (single person)
    from .grouping import Person
    repo = Path(__file__).resolve().parents[2]
    from ml.device import resolve_device
    est = PoseEstimator(repo / "weights", resolve_device(device))

    def predict(rgb):
        r = est.estimate(rgb)
        if r.person_score <= 0:
            return []
        k = np.concatenate([r.keypoints.xy, r.keypoints.score[:, None]], 1).astype(np.float32)
        k[k[:, 2] < 0.05, 2] = 0
        return [Person(k, float(r.person_score), int((k[:, 2] > 0).sum()))]
    return predict


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m ml.openpose.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--ann", required=True, help="COCO person-keypoints GT JSON")
    ap.add_argument("--images", required=True, help="image folder of --ann")
    ap.add_argument("--foot-ann", help="COCO-WholeBody GT (foot_kpts) for the 23-point AP")
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="NAME=PATH of an OpenPose checkpoint (repeatable)")
    ap.add_argument("--blazepose", action="store_true", help="also evaluate the pretrained BlazePose stage")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--input-size", type=int, help="inference size (longer side); default the config's")
    ap.add_argument("--json", help="write the numbers here")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    gt = json.loads(Path(args.ann).read_text())
    foot = json.loads(Path(args.foot_ann).read_text()) if args.foot_ann else None
    rows: dict[str, dict] = {}
    from .engine import OpenPoseEstimator
    for spec in args.checkpoint:
        name, _, path = spec.rpartition("=")
        name = name or Path(path).stem
        est = OpenPoseEstimator(path, args.device, input_size=args.input_size)
        rows[name] = run_engine(est.estimate_all, gt, args.images, foot)
        print(f"{name}: {rows[name]}", file=sys.stderr)
    if args.blazepose:
        rows["BlazePose (pretrained, 1 person)"] = run_engine(_blazepose_predict(args.device), gt,
                                                              args.images, foot)
    if not rows:
        raise SystemExit("nothing to evaluate: give --checkpoint NAME=PATH and/or --blazepose")
    print(markdown_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
