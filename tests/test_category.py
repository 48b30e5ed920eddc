"""Product category (issue 16): the classifier on real photos, ``other`` for what it does not
know, the result document, the mapping table, the export columns, per-category framing, and
the training command end to end.

Real photos come from the shared dev set (skipped where absent); the classifier needs the
fetched backbone (``oidv4_ssd_mobilenetv2.tflite``) and the committed head.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.category import CLASSES, OTHER, zone_category
from studio_app.core import categories
from studio_app.core.result import DocumentError, ResultDocument, load, save
from tests.conftest import SHARED_DATA, dev_file, require_weights

SNEAKER = "cutouts/shop_saleor/images/saleor__saleor-white-plimsolls-1.jpg"
MUG = "cutouts/shop_saleor/images/saleor__saleor-mighty-mug.jpg"
SKIRT_DIR = "products/clothing_small/skirt"


@pytest.fixture(scope="module")
def classify():
    """photo path -> CategoryResult, through the pipeline's own path (working copy, U2-Net-p
    mask, cut-out on white)."""
    require_weights("u2netp.onnx", "oidv4_ssd_mobilenetv2.tflite", "category_head.pt")
    import torch
    torch.set_num_threads(1)
    from ml.category.inference import CategoryClassifier
    from ml.io import load_image
    from ml.pipeline import working_copy
    from ml.stages.segment import ProductSegmenter, refine_mask
    seg, clf = ProductSegmenter(None, "cpu"), CategoryClassifier(None, "cpu")

    def run(path_or_rgb, mask=None):
        rgb = load_image(path_or_rgb).rgb if isinstance(path_or_rgb, Path) else path_or_rgb
        work, _ = working_copy(rgb)
        if mask is None:
            mask = refine_mask(seg.predict(work), (work.shape[1], work.shape[0]), guide=work)
        return clf.classify(work, mask)
    run.clf = clf
    run.mask = lambda work: refine_mask(seg.predict(work), (work.shape[1], work.shape[0]), guide=work)
    return run


# ---- real photos ------------------------------------------------------------------------

def test_sneaker_packshot_is_footwear(classify):
    res = classify(dev_file(SNEAKER))
    assert res.name == "footwear", res
    assert res.confidence >= classify.clf.threshold and not res.review


def test_mug_is_kitchen_home(classify):
    res = classify(dev_file(MUG))
    assert res.name == "kitchen_home", res


def test_flat_lay_skirt_is_bottom(classify):
    folder = dev_file(SKIRT_DIR)
    photos = sorted(folder.glob("*.jpg"))
    names = [classify(p).name for p in photos]
    assert names.count("bottom") >= len(photos) - 1, names   # a flat lay on a floor: not its background


def test_a_pair_of_shoes_is_one_product_two_products_get_a_warning(classify):
    """A pair of shoes (two separate objects in the mask) is footwear, without a warning: one shoe
    alone can look like a hat. A sneaker beside a mug is two products: the larger one's
    category, and a warning that names both."""
    import cv2

    from ml.io import load_image
    from ml.pipeline import working_copy
    pair = SHARED_DATA / "train/products/images/footwear/clothing__5638d62d-50b2-4d40-be07-713ab0313a69.jpg"
    if not pair.is_file():
        pytest.skip("shared product photos not available")
    res = classify(pair)
    assert res.name == "footwear" and not res.warnings, res

    def work_and_mask(rel, height):
        work, _ = working_copy(load_image(dev_file(rel)).rgb)
        mask = classify.mask(work)
        ys, xs = np.nonzero(mask)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        s = height / (ys.max() + 1 - ys.min())
        size = (max(1, round((xs.max() + 1 - xs.min()) * s)), height)
        return cv2.resize(work[box], size, interpolation=cv2.INTER_AREA), cv2.resize(mask[box], size)

    shoe, shoe_m = work_and_mask(SNEAKER, 300)
    mug, mug_m = work_and_mask(MUG, 220)
    canvas = np.full((400, shoe.shape[1] + mug.shape[1] + 180, 3), 255, np.uint8)
    cmask = np.zeros(canvas.shape[:2], np.uint8)
    x = 60
    for img, m, y in ((shoe, shoe_m, 50), (mug, mug_m, 130)):
        canvas[y:y + img.shape[0], x:x + img.shape[1]] = np.where(m[..., None] >= 128, img, 255)
        cmask[y:y + img.shape[0], x:x + img.shape[1]] = m
        x += img.shape[1] + 60
    res = classify(canvas, cmask)
    assert res.name == "footwear", res
    assert any("several different products" in w and "kitchen_home" in w for w in res.warnings), res


@pytest.mark.parametrize("seed", [101, 202, 303])
def test_unknown_object_is_not_a_confident_class(classify, seed):
    """A colour chart, a texture, noise (made here, other seeds than training) -> ``other``."""
    from ml.category.negatives import generate
    for img in generate(7, seed=seed, size=480):
        res = classify(img)
        assert res.name == OTHER or res.confidence < 0.9, (res.name, res.confidence)
    outcomes = [classify(img).name for img in generate(14, seed=seed + 1, size=480)]
    assert outcomes.count(OTHER) >= 10, outcomes     # most: other; the rest only with low confidence


def test_low_confidence_gives_other_with_a_review_reason(classify):
    chart = np.kron(np.random.default_rng(7).integers(0, 256, (4, 6, 3)), np.ones((80, 80, 1))).astype(np.uint8)
    res = classify(chart)
    if res.name == OTHER:
        assert res.review and "uncertain" in res.review[0] and res.best in CLASSES


def test_category_lands_in_the_result_document(cpu_processor, tmp_path):
    require_weights("oidv4_ssd_mobilenetv2.tflite", "category_head.pt")
    photo = dev_file(MUG)
    out = tmp_path / "out"
    outcome = cpu_processor.process(photo, out, force_kind="product")
    assert outcome.ok, outcome.error
    doc = load(outcome.folder)
    assert doc.category is not None and doc.category["name"] == "kitchen_home"
    assert 0.0 < doc.category["confidence"] <= 1.0
    assert doc.item("product").category == "kitchen_home"
    raw = json.loads((outcome.folder / "result.json").read_text())
    assert raw["schema_version"] == 2 and raw["category"]["name"] == "kitchen_home"
    assert raw["items"][0]["category"] == "kitchen_home"


# ---- the result document -----------------------------------------------------------------

def _doc_dict(**extra) -> dict:
    d = {"schema_version": 1, "source": {"path": "a.jpg", "sha256": "x", "width": 10, "height": 10},
         "kind": "product", "kind_confidence": 0.9, "mask": "mask.png", "keypoints": [],
         "items": [{"zone": "product", "box": [0, 0, 5, 5], "file": "product.jpg"}],
         "needs_review": False, "warnings": []}
    d.update(extra)
    return d


def test_older_documents_read_as_no_category():
    doc = ResultDocument.from_dict(_doc_dict())
    assert doc.category is None and doc.items[0].category is None


def test_category_round_trips_and_bad_values_are_refused(tmp_path):
    d = _doc_dict(schema_version=2, category={"name": "footwear", "confidence": 0.93})
    d["items"][0]["category"] = "footwear"
    doc = ResultDocument.from_dict(d)
    save(doc, tmp_path)
    back = load(tmp_path)
    assert back.category == {"name": "footwear", "confidence": 0.93}
    assert back.items[0].category == "footwear" and back.schema_version == 2
    with pytest.raises(DocumentError, match="confidence"):
        ResultDocument.from_dict(_doc_dict(category={"name": "footwear", "confidence": 3}))
    with pytest.raises(DocumentError, match="category"):
        ResultDocument.from_dict(_doc_dict(category="footwear"))


def test_person_zones_map_to_categories():
    assert [zone_category(z) for z in ("top", "bottom", "shoes", "head", "full")] == \
        ["top", "bottom", "footwear", "headwear", None]
    assert zone_category("dress") == "dress" and zone_category("bag") == "bag"


# ---- mapping table, export ---------------------------------------------------------------

def test_mapping_table_covers_every_class_and_is_read():
    table = categories.load_table()
    assert set(CLASSES) | {OTHER} <= set(table)
    f = categories.feed_fields({"name": "footwear", "confidence": 0.912}, table)
    assert f["google_product_category"] == "187" and f["shopify_type"] == "Shoes"
    assert f["category_confidence"] == "0.91" and f["product_type"]
    assert categories.feed_fields(None)["category"] == ""


def test_a_studio_table_replaces_rows(tmp_path, monkeypatch):
    own = tmp_path / "categories.json"
    own.write_text(json.dumps({"categories": {"footwear": {
        "google_product_category": {"id": 1933, "path": "Apparel & Accessories > Shoes > Sneakers"},
        "product_type": "Shoes > Sneakers", "shopify": {"product_category": "x", "type": "Sneakers"}}}}))
    monkeypatch.setenv(categories.ENV_VAR, str(own))
    f = categories.feed_fields("footwear")
    assert f["google_product_category"] == "1933" and f["shopify_type"] == "Sneakers"
    assert categories.feed_fields("top")["shopify_type"] == "Tops"       # other rows: built in
    own.write_text('{"categories": {"top": {"google_product_category": {"id": "x"}}}}')
    with pytest.raises(categories.CategoryTableError, match="google_product_category"):
        categories.load_table(own)


def test_export_manifest_carries_the_category(tmp_path, dev_data):
    from studio_app.core.export import export
    from studio_app.core.export.manifest import read_csv
    from tests.test_export import product_doc
    folder = product_doc(dev_file("products/magento_luma/mb02-blue-0.jpg"), tmp_path / "results")
    doc = load(folder)
    doc.category = {"name": "bag", "confidence": 0.88}
    doc.items[0].category = "bag"
    save(doc, folder)
    export([tmp_path / "results"], "google_merchant", tmp_path / "cat")
    rows = read_csv(next((tmp_path / "cat").glob("manifest-*.csv")))
    assert rows[0]["category"] == "bag" and rows[0]["google_product_category"] == "6551"
    assert rows[0]["shopify_type"] == "Bags" and rows[0]["category_confidence"] == "0.88"


# ---- per-category framing ---------------------------------------------------------------

def _bbox(img):
    ys, xs = np.nonzero(img[..., 0] < 128)
    return xs.min() / img.shape[1], ys.min() / img.shape[0], (xs.max() + 1) / img.shape[1], (ys.max() + 1) / img.shape[0]


def test_footwear_gets_horizontal_room_on_a_baseline_and_tall_items_fill_vertically():
    from studio_app.core.export import presets, render
    p = presets.load("generic")
    rgb = np.full((600, 900, 3), 30, np.uint8)
    shoe = np.zeros((600, 900), np.uint8)
    shoe[250:350, 100:800] = 255
    x0, _y0, x1, _y1 = _bbox(render.render_product(rgb, shoe, p))
    fx0, _fy0, fx1, fy1 = _bbox(render.render_product(rgb, shoe, p, "footwear"))
    assert x1 - x0 == pytest.approx(0.85, abs=0.01) and fx1 - fx0 == pytest.approx(0.75, abs=0.01)
    assert fy1 == pytest.approx(0.75, abs=0.01)                    # the common floor line
    bottle = np.zeros((600, 900), np.uint8)
    bottle[50:550, 400:560] = 255
    _x0, y0, _x1, y1 = _bbox(render.render_product(rgb, bottle, p, "food_drink"))
    assert y1 - y0 == pytest.approx(0.92, abs=0.01)


def test_bad_category_framing_names_the_field():
    from studio_app.core.export.presets import PresetError, from_dict
    base = json.loads((Path(categories.builtin_path()).parent / "presets" / "generic.json").read_text())
    base["category_framing"] = {"footwear": {"fill_x": 2}}
    with pytest.raises(PresetError, match="category_framing.footwear.fill_x"):
        from_dict(base, source="generic.json")


# ---- training command ----------------------------------------------------------------------

def _tiny_training(out: Path) -> list[str]:
    """A two-step `train category` command line on four photos (skips without the data)."""
    data = SHARED_DATA / "train" / "products"
    if not (data / "manifest.json").is_file():
        pytest.skip("train/products not found")
    require_weights("u2netp.onnx", "oidv4_ssd_mobilenetv2.tflite")
    return ["train", "category", "--data", str(data), "--out", str(out), "--max-photos", "4", "--steps", "2",
            "--mask-size", "160", "--threads", "1", "--seed", "3"]


def test_train_category_two_steps_then_resume(tmp_path, capsys):
    from studio_app.cli import main
    out = tmp_path / "run"
    args = _tiny_training(out)
    assert main(args) == 0
    assert (out / "last.pth").is_file() and (out / "category_head.pt").is_file()
    from ml.category.model import load_head
    head, meta = load_head(out / "category_head.pt")
    assert meta["classes"] == list(CLASSES) and meta["training"]["licence_tiers"] == ["permissive"]
    assert meta["training"]["iterations"] == 2
    assert main(args + ["--steps", "3", "--resume"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["iterations"] == 3                       # resumed at 2, one more
    assert "features" in capsys.readouterr().out


def test_train_category_bad_data_is_a_clear_error(tmp_path, capsys):
    from studio_app.cli import main
    assert main(["train", "category", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_train_category_at_another_input_size_is_what_the_classifier_runs(tmp_path, monkeypatch):
    """``--input-size`` (a speed lever): the head records the size, the classifier runs the
    backbone and the cut-out at it; a size that would change the network's paddings is refused."""
    import hashlib

    from ml import weights
    from ml.category.inference import CategoryClassifier
    from studio_app.cli import main
    out = tmp_path / "run"
    args = _tiny_training(out)
    assert main(args + ["--input-size", "240"]) == 2             # 240 would shift the SAME paddings
    assert main(args + ["--input-size", "172"]) == 0
    from ml.category.model import load_head
    _head, meta = load_head(out / "category_head.pt")
    assert meta["backbone"]["input_size"] == 172

    wdir = tmp_path / "weights"                  # the shipped weights with this head in place
    wdir.mkdir()
    for f in weights.weights_dir().iterdir():
        if f.is_file() and f.name not in ("manifest.json", "category_head.pt"):
            (wdir / f.name).symlink_to(f)
    head = (out / "category_head.pt").read_bytes()
    (wdir / "category_head.pt").write_bytes(head)
    manifest = weights.manifest()
    for m in manifest["models"]:
        if m["id"] == "category_head":
            m["sha256"] = hashlib.sha256(head).hexdigest()
    (wdir / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("STUDIO_GRAPH_CACHE", str(tmp_path / "graphs"))
    clf = CategoryClassifier(wdir, "cpu")
    assert clf.input_size == 172 and clf.backbone.input_size == 172
    res = clf.classify(np.full((300, 200, 3), 200, np.uint8), None)
    assert res.name in CLASSES or res.name == OTHER
