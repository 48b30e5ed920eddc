"""COCO-format keypoint pseudo-labels from the pretrained BlazePose stage.

    python -m ml.openpose.pseudolabel --images shared/data/train/ccp/photos --out ccp_pose.json

For every photo the pretrained single-person pose stage (``ml.stages.pose.PoseEstimator``,
MediaPipe BlazePose) is run at a working size (long side ``--max-side``); its 23 keypoints
become a COCO person annotation: ``keypoints`` (17 x (x, y, v)) and COCO-WholeBody style
``foot_kpts`` (6 x (x, y, v)) with ``foot_valid``; v = 2 where the point's score reaches
``--kp-threshold``, else 0 (= unlabelled, so it is neither taught as present nor as absent).
BlazePose has no small-toe point: small toes are always unlabelled. ``bbox``/``area`` come from
the person mask when the stage gives one, else from the keypoints. The per-point scores are kept
in ``pseudo_scores``. Photos with no confident person (``--min-person-score``) or fewer than
``--min-points`` confident points are skipped and listed in ``info.skipped``.

Limits: one person per photo (BlazePose is single-person); other people in a photo are left
unlabelled — use photos with one main person (CCP street fashion, studio shots).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from ml.types import KEYPOINT_NAMES, PoseResult

from .data import read_rgb

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def pose_to_annotation(pose: PoseResult, image_id: int, ann_id: int, width: int, height: int,
                       kp_threshold: float = 0.5, scale: float = 1.0) -> dict:
    """One COCO keypoint annotation from a PoseResult (coordinates divided by ``scale``)."""
    xy = np.asarray(pose.keypoints.xy, np.float64) / scale
    sc = np.asarray(pose.keypoints.score, np.float64)
    ok = (sc >= kp_threshold) & (xy[:, 0] >= 0) & (xy[:, 0] <= width - 1) & (xy[:, 1] >= 0) \
        & (xy[:, 1] <= height - 1)
    trip = np.zeros((23, 3))
    trip[ok, :2] = np.round(xy[ok], 2)
    trip[ok, 2] = 2
    box = None
    area = None
    if pose.mask_prob is not None:
        m = cv2.resize(np.asarray(pose.mask_prob, np.float32), (width, height),
                       interpolation=cv2.INTER_LINEAR) > 0.5
        ys, xs = np.nonzero(m)
        if len(xs):
            box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                   float(ys.max() - ys.min() + 1)]
            area = float(m.sum())
    if box is None:
        v = trip[ok, :2]
        if len(v) == 0:
            v = np.array([[0.0, 0.0]])
        x0, y0 = v.min(0)
        x1, y1 = v.max(0)
        pad = 0.1 * max(x1 - x0, y1 - y0)
        x0, y0 = max(0.0, x0 - pad), max(0.0, y0 - pad)
        x1, y1 = min(width - 1.0, x1 + pad), min(height - 1.0, y1 + pad)
        box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        area = float(box[2] * box[3]) * 0.6   # a person fills about 60% of their box
    return {
        "id": int(ann_id), "image_id": int(image_id), "category_id": 1, "iscrowd": 0,
        "keypoints": [float(x) for x in trip[:17].reshape(-1)],
        "num_keypoints": int(ok[:17].sum()),
        "foot_kpts": [float(x) for x in trip[17:].reshape(-1)],
        "foot_valid": bool(ok[17:].any()),
        "bbox": box, "area": area,
        "person_score": float(pose.person_score),
        "pseudo_scores": [round(float(s), 4) for s in sc],
    }


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    it: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in IMAGE_EXT)


def pseudolabel_images(paths: Sequence[Path], root: Path, estimate: Callable[[np.ndarray], PoseResult],
                       max_side: int = 1024, kp_threshold: float = 0.5,
                       min_person_score: float = 0.5, min_points: int = 8,
                       progress: Callable[[int, int], None] | None = None) -> dict:
    """Run ``estimate(rgb)`` over the photos and build a COCO keypoint dict."""
    images, anns, skipped = [], [], []
    t0 = time.monotonic()
    for i, p in enumerate(paths):
        rgb = read_rgb(p)
        h, w = rgb.shape[:2]
        s = min(1.0, max_side / max(h, w))
        work = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
        pose = estimate(work)
        image_id = i + 1
        ann = pose_to_annotation(pose, image_id, len(anns) + 1, w, h, kp_threshold, scale=s)
        n_ok = ann["num_keypoints"] + sum(1 for v in ann["foot_kpts"][2::3] if v > 0)
        if pose.person_score < min_person_score or n_ok < min_points:
            skipped.append({"file_name": str(p.relative_to(root)), "person_score": float(pose.person_score),
                            "points": int(n_ok)})
        else:
            images.append({"id": image_id, "file_name": str(p.relative_to(root)), "width": w, "height": h})
            anns.append(ann)
        if progress is not None:
            progress(i + 1, len(paths))
    return {
        "info": {"description": "keypoint pseudo-labels from the pretrained BlazePose stage "
                                "(ml.openpose.pseudolabel)", "kp_threshold": kp_threshold,
                 "min_person_score": min_person_score, "seconds": round(time.monotonic() - t0, 1),
                 "skipped": skipped},
        "licenses": [],
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(KEYPOINT_NAMES[:17]),
                        "foot_keypoints": list(KEYPOINT_NAMES[17:])}],
        "images": images, "annotations": anns,
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m ml.openpose.pseudolabel", description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True, help="folder of photos")
    ap.add_argument("--out", required=True, help="COCO JSON to write (file_name relative to --images)")
    ap.add_argument("--weights", help="weights folder of the BlazePose models (default: repo weights/)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--recursive", action="store_true")
    ap.add_argument("--limit", type=int, help="only the first N photos")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--kp-threshold", type=float, default=0.5)
    ap.add_argument("--min-person-score", type=float, default=0.5)
    ap.add_argument("--min-points", type=int, default=8)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ml.device import resolve_device
    from ml.stages.pose import PoseEstimator
    wdir = Path(args.weights) if args.weights else Path(__file__).resolve().parents[2] / "weights"
    est = PoseEstimator(wdir, resolve_device(args.device))
    root = Path(args.images)
    paths = list_images(root, args.recursive)[: args.limit]
    if not paths:
        raise SystemExit(f"no photos in {root}")

    def prog(i: int, n: int) -> None:
        if i % 25 == 0 or i == n:
            print(f"[{i}/{n}]", file=sys.stderr, flush=True)

    d = pseudolabel_images(paths, root, est.estimate, args.max_side, args.kp_threshold,
                           args.min_person_score, args.min_points, prog)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(d))
    tmp.replace(out)
    print(f"{len(d['annotations'])} people labelled, {len(d['info']['skipped'])} photos skipped -> {out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
