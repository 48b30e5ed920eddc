"""Quality on the shared dev set, in one table: what the pipeline gets right, not how fast.

Every photo goes once through the real pipeline (``ml.pipeline.Pipeline.analyze``, CPU unless
``--device``), and each row is scored from that one pass:

* **routing accuracy**: person vs product. Persons = every ``kind: person`` photo plus the
  on-model catalogue shots flagged ``person_visible``; products = every other product photo
  (incl. ``products/clothing_small`` flat garments) plus the ``cutouts/shop_saleor`` packshots;
* **garment IoU / mIoU** on the CCP dev photos (when the pipeline has a garment parser: the
  CCP labels are mapped to its 11 classes with ``ml.garments``' own mapping; else the row is
  skipped);
* **zone coverage** on CCP: the share of a labelled garment group's pixels (head/top/bottom/
  shoes, ``labels.json``'s suggested mapping) that lie inside the zone box produced for it
  (0 when the zone is missing);
* **swatch family** vs the catalogue ``colour_label`` of the Magento photos (the swatch of the
  zone the catalogue category names: Bottoms -> bottom, Tops -> top, else the product);
* **PCK@0.1** on the COCO persons (``persons/mmpose_coco/test_coco.json``): a visible labelled
  joint is correct when ours lies within 0.1 x the person box's long side (the largest person);
* **cut-out IoU / boundary F1 (2 px) / alpha MAE** on ``cutouts/shop_saleor`` (exact alpha),
  side by side with rembg's u2netp on the same photos (same model file, no download);
* **product category** (``bench/quality_category.py``'s sets, through the app's own path):
  top-1 (``other`` counted wrong, and of the most likely class), per-class recall and the
  confusion matrix on the ``dev`` split of ``train/products`` (permissive tier = the classes
  with training data; the other licence tiers = other products, mostly classes without), and
  on white-background packshots of the dev image set. ``--no-category`` skips it.

    python bench/quality.py [--limit N] [--json out.json] [--cache records.jsonl] [--no-rembg] [--device cpu]
    python bench/quality.py --compare before.json after.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SALEOR = common.DEV / "cutouts" / "shop_saleor"
COCO_KP = common.DEV / "persons" / "mmpose_coco" / "test_coco.json"
CCP = common.DEV / "persons" / "ccp"
ZONE_GROUPS = ("head", "top", "bottom", "shoes")
PARSE_EVAL = ("skin", "hair", "top", "bottom", "dress", "shoes")   # the mIoU classes


# ---- the photo list ---------------------------------------------------------------------------

def routing_truth(entry: dict) -> str | None:
    """'person' / 'product' for a manifest entry, None when it is neither (a general scene)."""
    if entry["kind"] == "person" or entry.get("person_visible"):
        return "person"
    return "product" if entry["kind"] == "product" else None


# Labels of the shared dev set that do not describe the file, each checked by eye. Applied unless
# ``--raw-labels``; the table says which were applied.
LABEL_CORRECTIONS = {
    "products/magento_luma/wb04-blue-0.jpg": {
        "person_visible": False, "colour_label": None,
        "why": "the file shows a grey and light-blue messenger bag on white, no person: not the "
               "catalogue's 'Prima Compete Bra Top' (blue) that the entry names",
    },
}


def corrected(entry: dict) -> dict:
    fix = LABEL_CORRECTIONS.get(entry["file"])
    return entry if fix is None else {**entry, **{k: v for k, v in fix.items() if k != "why"}}


def group_of(rel: str) -> str:
    parts = rel.split("/")
    return "/".join(parts[:2])


def photo_list(limit: int | None, raw_labels: bool = False) -> list[dict]:
    man = json.loads((common.DEV / "manifest.json").read_text())
    rows = []
    for e in man["files"]:
        if not raw_labels:
            e = corrected(e)
        truth = routing_truth(e)
        if truth is None:
            continue
        grp = group_of(e["file"])
        if grp == "products/magento_luma":
            grp += "/on-model" if e.get("person_visible") else "/gear"
        rows.append({"file": e["file"], "truth": truth, "group": grp, "category": e.get("category", ""),
                     "colour_label": e.get("colour_label")})
    for p in sorted((SALEOR / "images").glob("*.jpg")):
        rows.append({"file": str(p.relative_to(common.DEV)), "truth": "product", "group": "cutouts/shop_saleor"})
    if limit:       # an even spread over each group, not its first N
        by: dict[str, list[dict]] = {}
        for r in rows:
            by.setdefault(r["group"], []).append(r)
        rows = [r for g in by.values() for r in g[::max(1, -(-len(g) // limit))]]
    return rows


# ---- metrics ------------------------------------------------------------------------------------

def boundary_f1(pred: np.ndarray, gt: np.ndarray, tol: int = 2) -> float:
    """F1 of the two outlines matched within ``tol`` pixels."""
    k = np.ones((3, 3), np.uint8)

    def edge(m):
        m = m.astype(np.uint8)
        return (m - cv2.erode(m, k)) > 0

    pe, ge = edge(pred), edge(gt)
    if not pe.any() or not ge.any():
        return float(pe.any() == ge.any())
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    ge_d = cv2.dilate(ge.astype(np.uint8), disk) > 0
    pe_d = cv2.dilate(pe.astype(np.uint8), disk) > 0
    prec = (pe & ge_d).sum() / pe.sum()
    rec = (ge & pe_d).sum() / ge.sum()
    return float(2 * prec * rec / (prec + rec)) if prec + rec > 0 else 0.0


def cutout_scores(alpha_pred: np.ndarray, alpha_gt: np.ndarray) -> dict:
    """IoU at alpha 0.5, boundary F1 (2 px), mean |alpha error|; alphas float in [0, 1]."""
    p, g = alpha_pred >= 0.5, alpha_gt >= 0.5
    union = (p | g).sum()
    return {"iou": float((p & g).sum() / union) if union else 1.0,
            "bf1": boundary_f1(p, g), "mae": float(np.abs(alpha_pred - alpha_gt).mean())}


def box_coverage(region: np.ndarray, box) -> float:
    n = int(region.sum())
    if n == 0:
        return float("nan")
    if box is None:
        return 0.0
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return float(region[max(0, y0):max(0, y1), max(0, x0):max(0, x1)].sum() / n)


def pck(pred_xy: np.ndarray, pred_score: np.ndarray, ann: dict, thr: float = 0.1) -> tuple[int, int]:
    """(correct, labelled) over the visible COCO-17 joints of one annotated person."""
    g = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
    bw, bh = ann["bbox"][2], ann["bbox"][3]
    tol = thr * max(bw, bh)
    vis = g[:, 2] > 0
    ok = (pred_score[:17] >= 0.3) & (np.linalg.norm(pred_xy[:17] - g[:, :2], axis=1) <= tol)
    return int((ok & vis).sum()), int(vis.sum())


def family_of_label(label: str) -> str:
    lab = label.strip().lower()
    return {"light blue": "blue", "grey": "gray"}.get(lab, lab)


def swatch_zone(category: str) -> str:
    if "/Bottoms/" in category:
        return "bottom"
    if "/Tops/" in category:
        return "top"
    return "product"


def ccp_names_and_zones() -> tuple[list[str], dict[str, list[str]]]:
    d = json.loads((CCP / "labels.json").read_text())
    return d["labels"], d["suggested_zone_mapping"]


def garment_mapping(ccp_names: list[str]):
    """(classes, lookup CCP label index -> class index) from ``ml.garments`` (the mapping the
    parser was trained with), or None when this build has no garment parser."""
    try:
        from ml.garments import CLASSES
        from ml.garments.labels import ccp_lookup
    except ImportError:
        return None
    return tuple(CLASSES), np.asarray(ccp_lookup(ccp_names))


# ---- one pass over the photos -------------------------------------------------------------------

class Context:
    """What scoring a photo needs besides the photo: CCP names/zones, the parser mapping, COCO."""

    def __init__(self):
        self.names, self.zones = ccp_names_and_zones()
        self.gmap = garment_mapping(self.names)
        coco = json.loads(COCO_KP.read_text()) if COCO_KP.exists() else {"images": [], "annotations": []}
        self.coco_anns: dict[str, list[dict]] = {}
        for im in coco["images"]:
            self.coco_anns[im["file_name"]] = [an for an in coco["annotations"] if an["image_id"] == im["id"]]


def score_photo(r: dict, a, ctx: Context) -> dict:
    """Everything measured on one analysed photo (a JSON-able record)."""
    why = "; ".join(w for w in a.warnings if "person or a product" in w)
    rec = {"file": r["file"], "group": r["group"], "truth": r["truth"], "kind": a.kind,
           "conf": round(a.kind_confidence, 3), "review": a.needs_review, "why": why}
    boxes = {it.zone: it.box for it in a.items}
    if r["file"].startswith("persons/ccp/photos/"):
        lab = cv2.imread(str(CCP / "labels" / (Path(r["file"]).stem + ".png")), cv2.IMREAD_UNCHANGED)
        rec["zones"] = {}
        for z in ZONE_GROUPS:
            region = np.isin(lab, [ctx.names.index(n) for n in ctx.zones[z]])
            if region.sum() >= 200:
                rec["zones"][z] = box_coverage(region, boxes.get(z))
        rec["parse"] = _score_parse(a, lab, ctx.gmap)
    if r.get("colour_label"):
        sw = next((it.swatch for it in a.items if it.zone == swatch_zone(r["category"])), None)
        if sw is None and a.kind == "product":
            sw = next((it.swatch for it in a.items if it.zone == "product"), None)
        rec["swatch"] = {"label": family_of_label(r["colour_label"]), "got": sw.family if sw is not None else None}
    anns = ctx.coco_anns.get(Path(r["file"]).name) if r["file"].startswith("persons/mmpose_coco/") else None
    if anns:
        big = max(anns, key=lambda an: an["bbox"][2] * an["bbox"][3])
        rec["pck"] = pck(a.keypoints.xy, a.keypoints.score, big)
    if r["group"] == "cutouts/shop_saleor":
        gt = cv2.imread(str(SALEOR / "gt" / (Path(r["file"]).stem + ".png")), cv2.IMREAD_GRAYSCALE)
        rec["cut"] = cutout_scores(a.mask.astype(np.float32) / 255.0, gt.astype(np.float32) / 255.0)
    return rec


def analyse_all(rows: list[dict], device: str, cache: Path | None, log) -> list[dict]:
    """One record per photo; records already in ``cache`` (JSON lines) are reused, new ones
    appended, so an interrupted run resumes where it stopped."""
    from ml.io import load_image
    from ml.pipeline import Pipeline
    done: dict[str, dict] = {}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["file"]] = rec
    todo = [r for r in rows if r["file"] not in done]
    log(f"{len(rows)} photos, {len(rows) - len(todo)} from the cache")
    if todo:
        pipe = Pipeline(device=device)
        pipe.warm_up()
        ctx = Context()
    for i, r in enumerate(todo):
        try:
            img = load_image(common.DEV / r["file"])
            t = time.perf_counter()
            a = pipe.analyze(img)
            rec = {**score_photo(r, a, ctx), "seconds": round(time.perf_counter() - t, 3)}
        except Exception as exc:           # a photo the pipeline refuses counts as misrouted
            rec = {"file": r["file"], "group": r["group"], "truth": r["truth"], "kind": "error",
                   "conf": 0.0, "review": True, "why": str(exc)[:200]}
        done[r["file"]] = rec
        if cache is not None:
            with cache.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
        if (i + 1) % 25 == 0:
            log(f"  {i + 1}/{len(todo)} photos")
    return [done[r["file"]] for r in rows]


def _score_parse(a, lab: np.ndarray, gmap) -> dict | None:
    """Per class (intersection, union) pixel counts of the parser's map against CCP's labels."""
    labels = getattr(a, "garments", None)
    labels = getattr(labels, "labels", labels)
    if gmap is None or labels is None:
        return None
    classes, lut = gmap
    gt = lut[lab]
    pred = np.asarray(labels)
    if pred.shape != gt.shape:
        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
    return {c: (int(((pred == k) & (gt == k)).sum()), int(((pred == k) | (gt == k)).sum()))
            for k, c in enumerate(classes)}


def rembg_scores(files: list[str], log) -> list[dict] | None:
    import tempfile
    from bench_rembg import rembg_session
    from PIL import Image
    out = []
    with tempfile.TemporaryDirectory(prefix="quality-rembg-") as tmp:
        try:
            rembg, session = rembg_session(Path(tmp))
        except SystemExit as exc:
            log(f"  rembg unavailable: {exc}")
            return None
        for f in files:
            im = Image.open(common.DEV / f).convert("RGB")
            cut = rembg.remove(im, session=session, only_mask=True)
            a = np.asarray(cut, np.float32) / 255.0
            gt = cv2.imread(str(SALEOR / "gt" / (Path(f).stem + ".png")), cv2.IMREAD_GRAYSCALE)
            out.append({"file": f, **cutout_scores(a, gt.astype(np.float32) / 255.0)})
    return out


# ---- summary and table ----------------------------------------------------------------------------

def summarise(recs: list[dict], peer: list[dict] | None) -> dict:
    res: dict = {"routing": {}, "zones": {}, "misrouted": [r for r in recs if r["kind"] != r["truth"]]}
    for t in ("person", "product", "all"):
        sel = [r for r in recs if t == "all" or r["truth"] == t]
        if sel:
            res["routing"][t] = {"n": len(sel), "acc": float(np.mean([r["kind"] == r["truth"] for r in sel])),
                                 "review": float(np.mean([bool(r["why"]) for r in sel]))}
    groups = sorted({r["group"] for r in recs})
    res["routing_by_group"] = {g: float(np.mean([r["kind"] == r["truth"] for r in recs if r["group"] == g]))
                               for g in groups}
    for z in ZONE_GROUPS:
        v = [r["zones"][z] for r in recs if z in r.get("zones", {})]
        if v:
            res["zones"][z] = {"n": len(v), "coverage": float(np.mean(v))}
    sw = [r["swatch"] for r in recs if "swatch" in r]
    if sw:
        res["swatch"] = {"n": len(sw), "acc": float(np.mean([s["got"] == s["label"] for s in sw]))}
    pk = [r["pck"] for r in recs if "pck" in r]
    if pk and sum(n for _, n in pk):
        res["pck"] = {"n_joints": sum(n for _, n in pk), "pck": sum(c for c, _ in pk) / sum(n for _, n in pk)}
    parses = [r["parse"] for r in recs if r.get("parse")]
    if parses:
        inter = {c: sum(p[c][0] for p in parses) for c in parses[0]}
        union = {c: sum(p[c][1] for p in parses) for c in parses[0]}
        iou = {c: inter[c] / union[c] for c in union if union[c] > 0}
        res["garment_iou"] = iou
        res["garment_n"] = len(parses)
        res["garment_miou"] = float(np.mean([iou[c] for c in PARSE_EVAL if c in iou]))
    cuts = [r["cut"] for r in recs if "cut" in r]
    for name, rows in (("ours", cuts), ("rembg", peer)):
        if rows:
            res.setdefault("cutout", {"n": len(rows)})[name] = {
                k: float(np.mean([r[k] for r in rows])) for k in ("iou", "bf1", "mae")}
    secs = [r["seconds"] for r in recs if "seconds" in r]
    res["seconds_per_photo"] = float(np.mean(secs)) if secs else None
    return res


CATEGORY_DATA_MIN = 20     # dev photos a class needs to count among "the classes with data"


def category_scores(per_class: int, log) -> dict:
    """The category sets of ``bench/quality_category.py`` scored through the app's path."""
    import quality_category as qc

    from ml.category import CLASSES, OTHER
    labels = list(CLASSES) + [OTHER]
    scorer, dev = qc.Scorer(), qc.dev_split(per_class)
    sets = {"dev, permissive tier": [d for d in dev if d[2] == "permissive"],
            "dev, other licence tiers": [d for d in dev if d[2] != "permissive"],
            "on white (packshots)": qc.on_white_set()}
    out = {}
    for name, items in sets.items():
        log(f"category: {name}, {len(items)} photos")
        m = qc.score(items, scorer, labels)
        rows = [i for i, lab in enumerate(labels) if m["support"][lab] >= CATEGORY_DATA_MIN]
        cm = np.asarray(m["confusion"])
        n = int(cm[rows].sum())
        m["top1_with_data"] = float(sum(cm[i, i] for i in rows) / n) if n else None
        m["classes_with_data"] = [labels[i] for i in rows]
        out[name] = m
    return out


def category_markdown(cat: dict) -> tuple[list[str], list[str]]:
    """(table rows, the per-set recall + confusion tables printed under the main table)."""
    from ml.category.evaluate import table
    rows, details = [], []
    for name, m in cat.items():
        tgt = "≥ 0.90" if "permissive" in name else ""
        rows.append(f"| category top-1, {name} (`other` = wrong; most likely class) | {m['n']} | "
                    f"{m['top1']:.3f}; {m['top1_best']:.3f} | |")
        if m.get("top1_with_data") is not None and "permissive" in name:   # the classes trained on
            rows.append(f"| category top-1, {name}, classes with ≥ {CATEGORY_DATA_MIN} photos "
                        f"({', '.join(m['classes_with_data'])}) | | {m['top1_with_data']:.3f} | {tgt} |")
        low = [f"{c} {r:.2f}" for c, r in m["recall"].items() if r is not None and r < 0.70]
        rows.append(f"| category recall < 0.70, {name} | | {', '.join(low) or 'none'} | named in docs/category.md |")
        details.append(table(m, f"### category, {name}"))
    return rows, details


def markdown(res: dict) -> str:
    L = ["| measure | n | value | target |", "|---|---|---|---|"]
    tgt = {"all": "≥ 0.98"}
    for t, v in res["routing"].items():
        L.append(f"| routing accuracy, {t} photos | {v['n']} | {v['acc']:.3f} (unsure: {v['review']:.0%}) "
                 f"| {tgt.get(t, '')} |")
    if "garment_iou" in res:
        L.append(f"| garment mIoU (skin/hair/top/bottom/dress/shoes), CCP | {res['garment_n']} | {res['garment_miou']:.3f} | ≥ 0.65 |")
        L.append("| garment IoU per class | | " + ", ".join(f"{c} {v:.2f}" for c, v in res["garment_iou"].items())
                 + " | |")
    else:
        L.append("| garment mIoU, CCP | – | no garment parser in this build | ≥ 0.65 |")
    zt = {"head": "≥ 0.80", "top": "≥ 0.90", "bottom": "≥ 0.90", "shoes": "≥ 0.85"}
    for z, v in res["zones"].items():
        L.append(f"| zone coverage {z}, CCP | {v['n']} | {v['coverage']:.3f} | {zt[z]} |")
    if "swatch" in res:
        L.append(f"| swatch family = catalogue colour, Magento | {res['swatch']['n']} | {res['swatch']['acc']:.3f} | ≥ 0.85 |")
    if "pck" in res:
        L.append(f"| PCK@0.1, COCO persons (joints) | {res['pck']['n_joints']} | {res['pck']['pck']:.3f} | |")
    cut = res.get("cutout", {})
    if "ours" in cut:
        peer = cut.get("rembg")
        for k, name in (("iou", "IoU"), ("bf1", "boundary F1 (2 px)"), ("mae", "alpha MAE")):
            pv = f"{peer[k]:.3f}" if peer else "n/a"
            L.append(f"| cut-out {name}, shop_saleor: ours / rembg u2netp | {cut['n']} | {cut['ours'][k]:.3f} / {pv} "
                     f"| {'ahead of rembg' if k != 'mae' else ''} |")
    details = []
    if res.get("category"):
        rows, details = category_markdown(res["category"])
        L.extend(rows)
    L.append("")
    L.append("Routing by group: " + ", ".join(f"{g} {v:.2f}" for g, v in res["routing_by_group"].items()))
    L.append("Misrouted: " + (", ".join(f"{m['file']} ({m['kind']} {m['conf']:.2f})" for m in res["misrouted"])
                              or "none"))
    if res.get("label_corrections"):
        L.append("Dev labels corrected (`LABEL_CORRECTIONS`, `--raw-labels` scores them as shipped): "
                 + "; ".join(f"{f}: {LABEL_CORRECTIONS[f]['why']}" for f in res["label_corrections"]))
    for d in details:
        L.extend(["", "```", d, "```"])
    return "\n".join(L) + "\n"


def _rescored(rec: dict) -> dict:
    """A photo record with its truth under the current label corrections."""
    fix = LABEL_CORRECTIONS.get(rec["file"])
    if fix is None:
        return rec
    rec = dict(rec)
    entry = corrected({"file": rec["file"], "kind": "product", "person_visible": rec["truth"] == "person"})
    rec["truth"] = routing_truth(entry)
    if rec.get("group", "").startswith("products/magento_luma/"):
        rec["group"] = "products/magento_luma/" + ("on-model" if entry.get("person_visible") else "gear")
    if entry.get("colour_label") is None:
        rec.pop("swatch", None)
    return rec


def compare(before: dict, after: dict) -> str:
    """The two runs' tables side by side (rows matched by their measure)."""
    def rows(res):
        out = {}
        for line in markdown(res).splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if line.startswith("|") and len(cells) == 4 and not set(cells[0]) <= {"-"}:
                out[cells[0]] = cells
        return out
    b, a = rows(before), rows(after)
    L = ["| measure | n | before | after | target |", "|---|---|---|---|---|"]
    for key in list(dict.fromkeys([*a, *b])):
        if key == "measure":
            continue
        rb, ra = b.get(key, [key, "", "–", ""]), a.get(key, [key, "", "–", ""])
        L.append(f"| {key} | {ra[1] or rb[1]} | {rb[2]} | {ra[2]} | {ra[3] or rb[3]} |")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="at most N photos per group (a quick run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-rembg", action="store_true", help="skip the rembg side-by-side")
    ap.add_argument("--no-category", action="store_true", help="skip the product-category sets")
    ap.add_argument("--cache", help="per-photo records (JSON lines): reused, and new ones appended")
    ap.add_argument("--json", "--out", dest="json", help="also write the figures (and misrouted photos) here")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="print two earlier --json runs side by side and stop")
    ap.add_argument("--raw-labels", action="store_true",
                    help="score the dev set's labels as shipped (no LABEL_CORRECTIONS)")
    ap.add_argument("--rescore", nargs=2, metavar=("IN", "OUT"),
                    help="re-score an earlier --json run's photo records with the label corrections, "
                         "write OUT and stop (no photo is processed again)")
    args = ap.parse_args(argv)
    if args.compare:
        b, a = (json.loads(Path(p).read_text()) for p in args.compare)
        print(compare(b, a))
        return 0
    if args.rescore:
        old = json.loads(Path(args.rescore[0]).read_text())
        recs = [_rescored(r) for r in old["photos"]]
        res = {**old, **summarise(recs, old.get("rembg_records")), "photos": recs}
        if "rembg" in old.get("cutout", {}) and "rembg" not in res.get("cutout", {"rembg": 0}):
            res["cutout"]["rembg"] = old["cutout"]["rembg"]       # a run that kept only the means
        if old.get("category"):
            res["category"] = old["category"]
        res["label_corrections"] = sorted(k for k in LABEL_CORRECTIONS if any(r["file"] == k for r in recs))
        return common.emit(res, markdown(res), args.rescore[1])
    common.require_dev()

    def log(s):
        print(s, file=sys.stderr, flush=True)

    rows = photo_list(args.limit, raw_labels=args.raw_labels)
    recs = analyse_all(rows, args.device, Path(args.cache) if args.cache else None, log)
    if not args.raw_labels:          # records cached before a correction was added
        recs = [_rescored(r) for r in recs]
    saleor = [r["file"] for r in recs if "cut" in r]
    peer = None if args.no_rembg else rembg_scores(saleor, log)
    res = summarise(recs, peer)
    if peer is not None:
        res["rembg_records"] = peer
    res["label_corrections"] = [] if args.raw_labels else sorted(
        k for k in LABEL_CORRECTIONS if any(r["file"] == k for r in recs))
    if not args.no_category:
        res["category"] = category_scores(args.limit or 40, log)
    res["machine"] = common.machine()
    res["photos"] = recs
    return common.emit(res, markdown(res), args.json)


if __name__ == "__main__":
    sys.exit(main())
