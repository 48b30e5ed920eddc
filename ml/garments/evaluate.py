"""Measure the garment parser on a labelled CCP folder (+ product photos for the person head).

    studio-catalog eval garments --ccp DATA/dev/persons/ccp --products DATA/train/products \
        [--weights runs/garments/garments_u2netp.pt] [--long-side 224] [--limit N]

Prints per-class IoU (intersection and union summed over all photos, at the photo's own
size), the mIoU over skin/hair/top/bottom/dress/shoes, the person-head accuracy at 0.5 on
the CCP photos (positives) and the ``permissive`` dev product photos (negatives), and, for
weights with a one-piece head, how often it tells outfits with a one-piece (``dress`` >= 5 % of
the labelled person) from those without.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .infer import ONEPIECE_OFF
from .labels import CLASSES, MIOU_CLASSES, ccp_pairs, product_negatives, read_ccp_lookup
from .model import ONEPIECE_SHARE


def confusion(pred: np.ndarray, truth: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    return np.bincount(truth.astype(np.int64).ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)


def iou_table(conf: np.ndarray) -> dict[str, float]:
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    return {c: float(inter[i] / union[i]) if union[i] else float("nan") for i, c in enumerate(CLASSES)}


def mean_iou(ious: dict[str, float], classes: Sequence[str] = MIOU_CLASSES) -> float:
    vals = [ious[c] for c in classes if not np.isnan(ious[c])]
    return float(np.mean(vals)) if vals else float("nan")


def evaluate(parser, ccp_dir: str | Path, products_dir: str | Path | None = None,
             limit: int | None = None, products_limit: int | None = None) -> dict:
    lut = read_ccp_lookup(ccp_dir)
    conf = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    person_hits = person_n = 0
    onepiece = []                 # (truth, called) per photo, for weights with the head
    dress = CLASSES.index("dress")
    for photo, label in ccp_pairs(ccp_dir)[:limit]:
        rgb = cv2.cvtColor(cv2.imread(str(photo), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        truth = lut[cv2.imread(str(label), cv2.IMREAD_GRAYSCALE)]
        res = parser.parse(rgb)
        conf += confusion(res.labels, truth)
        person_hits += res.person_prob >= 0.5
        person_n += 1
        if res.onepiece_prob is not None:
            body = int(np.count_nonzero(truth))
            onepiece.append((body > 0 and np.count_nonzero(truth == dress) >= ONEPIECE_SHARE * body,
                             res.onepiece_prob >= ONEPIECE_OFF))
    ious = iou_table(conf)
    out = {"iou": ious, "miou": mean_iou(ious), "photos": person_n, "confusion": conf.tolist(),
           "person_recall": person_hits / max(1, person_n)}
    if onepiece:
        t = np.array(onepiece, bool)
        out["onepiece"] = {"accuracy": float(np.mean(t[:, 0] == t[:, 1])), "with": int(t[:, 0].sum()),
                           "found": int((t[:, 0] & t[:, 1]).sum()), "false": int((~t[:, 0] & t[:, 1]).sum())}
    if products_dir:
        files = product_negatives(products_dir, "dev")
        if products_limit and len(files) > products_limit:      # an even spread over the classes
            files = [files[int(i * len(files) / products_limit)] for i in range(products_limit)]
        probs = [parser.parse(cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)).person_prob
                 for f in files]
        neg_ok = sum(p < 0.5 for p in probs)
        out["product_specificity"] = neg_ok / max(1, len(probs))
        out["products"] = len(probs)
        out["product_false_persons"] = [str(f.relative_to(Path(products_dir))) for f, p in zip(files, probs) if p >= 0.5]
        out["person_accuracy"] = (person_hits + neg_ok) / max(1, person_n + len(probs))
    return out


def format_report(r: dict) -> str:
    lines = [f"{c:<11} IoU {v:.3f}" for c, v in r["iou"].items()]
    lines.append(f"mIoU ({'/'.join(MIOU_CLASSES)}): {r['miou']:.3f} on {r['photos']} photos")
    lines.append(f"person recall on persons: {r['person_recall']:.3f}")
    if "onepiece" in r:
        o = r["onepiece"]
        lines.append(f"one-piece head: accuracy {o['accuracy']:.3f}; {o['found']} of {o['with']} outfits with a "
                     f"one-piece found, {o['false']} called one-piece without")
    if "products" in r:
        lines.append(f"product specificity: {r['product_specificity']:.3f} on {r['products']} products; "
                     f"person accuracy {r['person_accuracy']:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from ml.training.command import run_command
    ap = argparse.ArgumentParser(prog="studio-catalog eval garments", description=__doc__.split("\n")[0])
    ap.add_argument("--ccp", required=True, help="labelled CCP folder (e.g. the dev set)")
    ap.add_argument("--products", help="product folder (manifest.json); its permissive dev photos are negatives")
    ap.add_argument("--weights", help="weights file (default: the verified weights/garments_u2netp.pt)")
    ap.add_argument("--long-side", type=int, default=None)
    ap.add_argument("--limit", type=int, help="only the first N CCP photos")
    ap.add_argument("--products-limit", type=int, help="N product photos spread over the dev split")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args(argv)

    def body() -> int:
        from .infer import GarmentParser
        parser = GarmentParser(weights_file=args.weights, long_side=args.long_side)
        r = evaluate(parser, args.ccp, args.products, args.limit, args.products_limit)
        print(format_report(r))
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2))
        return 0
    return run_command(body, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
