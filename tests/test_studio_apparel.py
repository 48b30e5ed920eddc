"""Operator intents on what the models know about the goods, driven through ``Studio`` without
Qt: fit a zone's box to its garment (the garment map), colours re-measured on the garment's own
pixels, and the category chosen by hand — undoable, saved, and used by the next export's
Shopify CSV. Real dev photos processed once per session (``processed_apparel``)."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from ml.garments.labels import CLASS_INDEX
from ml.stages.garment_zones import fit_zone
from studio_app.core.catalog import Product
from studio_app.core.edits import EditError
from studio_app.core.history import FitToGarment, RerunKmeans, SetBox, SetCategory
from studio_app.core.result import load
from studio_app.core.result_folder import ResultFolder
from studio_app.core.studio import Studio
from studio_fakes import FakeProcessor
from tests.conftest import copy_result


@pytest.fixture
def studio_with(tmp_path):
    made = []

    def make(*folders, prepare=None):
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        copies = [copy_result(f, out) for f in folders]
        for c in copies if prepare else ():
            prepare(c)
        s = Studio(out, FakeProcessor())
        made.append(s)
        entries, errors = s.add([load(c).source.path for c in copies])
        assert not errors and len(entries) == len(copies)
        return s, [e.photo for e in entries], copies
    yield make
    for s in made:
        s.close()


def _inside(box, m: np.ndarray) -> float:
    """Share of the true pixels of ``m`` inside ``box``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return m[y0:y1, x0:x1].sum() / max(1, m.sum())


def test_fit_box_to_garment_frames_the_top_again_and_undoes(processed_apparel, studio_with):
    studio, (photo,), (folder,) = studio_with(processed_apparel["person"])
    doc0 = load(folder)
    labels = ResultFolder(folder).read_garments(doc0)
    assert labels is not None and labels.shape == (doc0.source.height, doc0.source.width)
    top = labels == CLASS_INDEX["top"]
    assert top.sum() > 1000, "the shipped parser should find the top of this look"
    x0, y0, x1, y1 = doc0.item("top").box
    w, h = x1 - x0, y1 - y0
    wrong = [x0 + 0.3 * w, y0 + 0.4 * h, x1 - 0.1 * w, y1 + 0.1 * h]   # dragged half off the garment
    studio.apply(photo, SetBox("top", wrong))
    assert _inside(load(folder).item("top").box, top) < 0.6
    doc = studio.apply(photo, FitToGarment("top"))
    fitted = doc.item("top").box
    assert _inside(fitted, top) > 0.97                 # the whole garment is in the box again
    fw, fh = fitted[2] - fitted[0], fitted[3] - fitted[1]
    assert fw < 1.3 * (top.any(0).sum()) and fh < 1.3 * (top.any(1).sum())   # and not much else
    expected, _ = fit_zone(labels, "top", None, prior=tuple(wrong))
    assert fitted == pytest.approx(list(expected), abs=1)   # the pipeline's rule, not a copy
    assert doc.item("top").locked and load(folder).item("top").box == fitted     # saved at once
    assert studio.history_state(photo).undo_text == "Fit the top box to the garment"
    studio.undo(photo)
    assert load(folder).item("top").box == pytest.approx(wrong, abs=0.01)
    studio.redo(photo)
    assert load(folder).item("top").box == fitted


def test_colour_is_measured_on_the_garment_pixels(processed_apparel, studio_with):
    studio, (photo,), (folder,) = studio_with(processed_apparel["person"])
    before = load(folder)
    doc = studio.apply(photo, RerunKmeans("top"))
    a, b = np.array(before.item("top").swatch.rgb), np.array(doc.item("top").swatch.rgb)
    # the pipeline measured the top on its garment pixels; the edit does the same (full size here,
    # the parser's size there): the same colour within a few levels
    assert np.abs(a - b).max() <= 16, (a, b)
    assert doc.item("top").swatch.family == before.item("top").swatch.family


def test_fit_needs_a_garment_map_and_changes_nothing_without_one(processed_apparel, studio_with):
    studio, (photo,), (folder,) = studio_with(processed_apparel["product"])
    before = (folder / "result.json").read_bytes()
    with pytest.raises(EditError, match="no garment map"):
        studio.apply(photo, FitToGarment("product"))
    assert (folder / "result.json").read_bytes() == before
    assert not studio.history_state(photo).can_undo


def test_operator_category_is_saved_undoable_and_exported(processed_apparel, studio_with, tmp_path):
    studio, (photo,), (folder,) = studio_with(processed_apparel["product"])
    assert load(folder).category["name"] == "footwear"      # the classifier's, on the sneaker
    studio.add_product(Product("SNK-1", "White plimsolls", views=("front",)))
    studio.assign(photo, "product", "SNK-1", "front", main=True)
    studio.approve(photo)

    def shopify():
        job = studio.export("shopify", tmp_path / "shop", overwrite=True)
        assert job.wait(120) and not job.error, job.error
        rows = list(csv.DictReader(io.StringIO((tmp_path / "shop" / "shopify-products.csv").read_text("utf-8"))))
        return {(r["Type"], r["Product Category"]) for r in rows if r["Type"] or r["Product Category"]}

    assert shopify() == {("Shoes", "Apparel & Accessories > Shoes")}
    doc = studio.apply(photo, SetCategory("kitchen_home"))
    assert doc.category == {"name": "kitchen_home", "confidence": 1.0, "by_hand": True}
    on_disk = load(folder)
    assert on_disk.category["name"] == "kitchen_home" and on_disk.item("product").category == "kitchen_home"
    studio.approve(photo)
    assert shopify() == {("Home & Kitchen", "Home & Garden")}      # the re-export follows the operator
    assert studio.catalog.product("SNK-1").category == "kitchen_home"   # filled from the photo: follows
    studio.undo(photo)                                            # the approval
    studio.undo(photo)                                            # the category
    assert load(folder).category["name"] == "footwear" and "by_hand" not in load(folder).category
    assert studio.catalog.product("SNK-1").category == "footwear"
    studio.add_product(Product("SNK-1", "White plimsolls", category="Sneakers", views=("front",)))
    studio.apply(photo, SetCategory("bag"))                       # a category the studio gave is kept
    assert studio.catalog.product("SNK-1").category == "Sneakers"
    with pytest.raises(EditError, match="unknown category"):
        studio.apply(photo, SetCategory("spaceships"))


def test_a_chosen_category_clears_the_uncertain_review_reason(processed_apparel, studio_with):
    from ml.category import UNCERTAIN_REASON

    def uncertain(folder):
        doc = load(folder)
        doc.category = {"name": "other", "confidence": 0.31}
        doc.warnings = [f"{UNCERTAIN_REASON} (best guess footwear, 0.31); it was set to 'other': choose it by hand"]
        doc.needs_review = True
        ResultFolder(folder).save(doc)
    studio, (photo,), (folder,) = studio_with(processed_apparel["product"], prepare=uncertain)
    assert studio.entry(photo).status == "needs_review"
    studio.apply(photo, SetCategory("footwear"))
    after = load(folder)
    assert not after.needs_review and after.warnings == []
    assert studio.entry(photo).status == "ready"


def test_person_items_get_their_own_category(processed_apparel, studio_with):
    studio, (photo,), (folder,) = studio_with(processed_apparel["person"])
    assert load(folder).item("top").category == "top"
    studio.apply(photo, SetCategory("dress", "top"))
    doc = load(folder)
    assert doc.item("top").category == "dress" and doc.category is None
    with pytest.raises(EditError, match="choose an item"):
        studio.apply(photo, SetCategory("dress"))


def test_moving_a_keypoint_keeps_garment_boxes_on_their_garment(processed_apparel, studio_with):
    from studio_app.core.history import MoveKeypoint
    from studio_app.core.edits import recompute
    studio, (photo,), (folder,) = studio_with(processed_apparel["person"])
    doc0 = load(folder)
    top0 = doc0.item("top").box
    knee = doc0.keypoint("left_knee")
    doc = studio.apply(photo, MoveKeypoint("left_knee", knee.x + 12, knee.y + 8))
    assert doc.item("top").box == pytest.approx(top0, abs=1)      # still the coat's own box
    # the keypoint rule alone would have cut it elsewhere (shoulders to hips)
    assert recompute("top", doc, None) != pytest.approx(top0, abs=1)
