"""Product-category quality: top-1, per-class recall and confusion matrix (issue 16).

    python bench/quality_category.py [--dev-per-class 40] [--json out.json]

Two sets, both scored through the real pipeline path (U2-Net-p mask at 320, cut-out on
white, backbone + head, ``other`` below the head's threshold):

* ``dev``: the dev split of ``train/products`` (other products than training), split by
  licence tier: ``permissive`` (what the shipped head was trained on, so its classes with
  data) and ``other tiers`` (third-party / copyleft photos: classes with no permissive data);
* ``on white``: white-background packshots from the dev image set (``../shared/data/dev``):
  Saleor shop cut-outs on studio sweeps, supermarket "iconic" photos, OpenCart electronics,
  Magento bags / watches / fitness gear, and the CC0 clothing phone photos for contrast.

Prints one table per set (to fold into ``bench/quality.py`` later) and the time the
classifier adds per photo. Folded into the ``routing`` branch's ``bench/quality.py`` later.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from bench.common import DEV, SHARED  # noqa: E402

from ml.category import CLASSES, OTHER  # noqa: E402

CLOTHING = {"dress": "dress", "hat": "headwear", "longsleeve": "top", "outwear": "top", "pants": "bottom",
            "shirt": "top", "shoes": "footwear", "shorts": "bottom", "skirt": "bottom", "t-shirt": "top"}
MAGENTO = {"gear/Gear/Bags": "bag", "gear/Gear/Fitness Equipment": "sports_gear", "gear/Gear/Watches": "accessory"}
SALEOR = (("drink", "food_drink"), ("book", "books_media"), ("mug", "kitchen_home"), ("cushion", "kitchen_home"),
          ("sunnies", "accessory"), ("plimsolls", "footwear"), ("dash-force", "footwear"),
          ("blanace", "footwear"), ("beanie", "headwear"), ("hoodie", "top"), ("tee", "top"),
          ("shirt", "top"), ("neck-warmer", "accessory"))


def saleor_class(name: str) -> str | None:
    for key, cls in SALEOR:
        if key in name:
            return cls
    return None          # gift cards, "digital product": not a physical product class


def on_white_set() -> list[tuple[Path, str, str]]:
    """(photo, class, source) of the white-background check set."""
    out = []
    for p in sorted((DEV / "cutouts/shop_saleor/images").glob("*.jpg")):
        cls = saleor_class(p.stem)
        if cls:
            out.append((p, cls, "saleor"))
    man = json.loads((DEV / "manifest.json").read_text())
    for f in man["files"]:
        rel, cat = f["file"], f.get("category") or ""
        if rel.startswith("products/grocery_iconic/"):
            out.append((DEV / rel, "food_drink", "grocery_iconic"))
        elif rel.startswith("products/opencart_demo/") and not f.get("person_visible"):
            out.append((DEV / rel, "electronics", "opencart"))
        elif rel.startswith("products/magento_luma/") and cat in MAGENTO:
            out.append((DEV / rel, MAGENTO[cat], "magento"))
    return out


def clothing_phone_set() -> list[tuple[Path, str, str]]:
    root = DEV / "products/clothing_small"
    return [(p, CLOTHING[d.name], "clothing_small") for d in sorted(root.iterdir()) if d.name in CLOTHING
            for p in sorted(d.glob("*.jpg"))]


def dev_split(per_class: int) -> list[tuple[Path, str, str]]:
    from ml.category import data
    recs = data.balanced(data.records(SHARED / "train/products", splits=("dev",), tiers=data.ALL_TIERS),
                         None, 0, dev_per_class=None)
    out, seen = [], {}
    for r in recs:
        key = (r.tier == "permissive", r.label)
        if seen.get(key, 0) < per_class:
            seen[key] = seen.get(key, 0) + 1
            out.append((r.path, CLASSES[r.label], "permissive" if r.tier == "permissive" else "other tiers"))
    return out


class Scorer:
    """The pipeline's own path for a product photo: working copy, U2-Net-p mask, classifier."""

    def __init__(self):
        from ml.category.inference import CategoryClassifier
        from ml.pipeline import working_copy
        from ml.stages.segment import ProductSegmenter, refine_mask
        self.seg = ProductSegmenter(None, "cpu")
        self.clf = CategoryClassifier(None, "cpu")
        self.working_copy, self.refine = working_copy, refine_mask
        self.ms: list[float] = []

    def __call__(self, path: Path) -> tuple[str, float, str]:
        from ml.io import load_image
        work, _ = self.working_copy(load_image(path).rgb)
        mask = self.refine(self.seg.predict(work), (work.shape[1], work.shape[0]), guide=work)
        t = time.perf_counter()
        res = self.clf.classify(work, mask)
        self.ms.append((time.perf_counter() - t) * 1000)
        return res.name, res.confidence, res.best


def score(items, scorer, labels) -> dict:
    from ml.category.evaluate import metrics
    y, p, wrong, best_ok = [], [], [], 0
    for path, cls, src in items:
        name, conf, best = scorer(path)
        best_ok += best == cls
        y.append(labels.index(cls))
        p.append(labels.index(name) if name in labels else labels.index(OTHER))
        if name != cls:
            wrong.append(f"{src}:{path.name}: {cls} -> {name} ({conf:.2f})")
    m = metrics(np.array(y), np.array(p), labels)
    m["wrong"] = wrong
    m["top1_best"] = best_ok / max(1, len(y))          # the most likely class, before `other`
    m["other_rate"] = sum(1 for q in p if q == labels.index(OTHER)) / max(1, len(p))
    m["confident_wrong"] = sum(1 for t, q in zip(y, p) if q != t and q != labels.index(OTHER))
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev-per-class", type=int, default=40, help="dev photos per class and tier group")
    ap.add_argument("--json", help="write every number here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", help="score only the sets whose name contains this (e.g. permissive)")
    args = ap.parse_args(argv)
    if not DEV.is_dir() or not (SHARED / "train/products/manifest.json").is_file():
        print(f"shared data not found under {SHARED} (set STUDIO_SHARED_DATA)", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(args.threads)
    from ml.category.evaluate import table
    labels = list(CLASSES) + [OTHER]
    scorer = Scorer()
    dev = dev_split(args.dev_per_class)
    sets = {"dev, permissive tier": [d for d in dev if d[2] == "permissive"],
            "dev, other licence tiers": [d for d in dev if d[2] != "permissive"],
            "on white (packshots)": on_white_set(),
            "clothing phone photos (dev set)": clothing_phone_set()}
    results = {}
    for name, items in sets.items():
        if args.only and args.only not in name:
            continue
        m = score(items, scorer, labels)
        results[name] = m
        print(table(m, f"== {name}"))
        print(f"top-1 of the most likely class (before `other`): {m['top1_best']:.3f}; "
              f"`other`: {m['other_rate']:.1%}; confident wrong class: {m['confident_wrong']} of {m['n']}\n")
    ms = float(np.median(scorer.ms)) if scorer.ms else 0.0
    print(f"classifier time per photo (median, {args.threads} thread(s), mask given): {ms:.1f} ms")
    if args.json:
        from ml.atomic import write_json
        write_json(args.json, {"sets": results, "ms_per_photo_median": ms})
    return 0


if __name__ == "__main__":
    sys.exit(main())
