"""Barcode cards as photos arrive (the hot folder, a drop): a generated QR / Code 128 card photo
on a real studio background binds the real dev photos that follow it, in capture order, to its SKU
with the product's expected views; the card is recorded (the exporter leaves card photos out); an unreadable card puts
itself and the photos after it up for review; the Studio says which SKU is being shot. And a
shot list without categories takes them from the classified photos, never overwriting the
studio's own."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.io import sha256_file
from studio_app.core.catalog import Catalog, Product
from studio_app.core.processing import Outcome
from studio_app.core.result import Item, ResultDocument, Source, load
from studio_app.core.result_folder import MASK_NAME, ResultFolder, item_file
from studio_app.core.studio import Studio
from studio_fakes import Recorder
from tests.catalog_fixtures import card_photo

BLUE, GREY, BALL = ("products/magento_luma/mb02-blue-0.jpg", "products/magento_luma/mg04-bk-0.jpg",
                    "products/magento_luma/luma-stability-ball-pink.jpg")
CATEGORIES = {"blue": "top", "grey": "bag", "ball": "sports_gear"}


class ProductProcessor:
    """Writes a product result (one ``product`` item) with the category the classifier would give
    (by the photo's name, see CATEGORIES) in milliseconds."""

    def describe(self) -> str:
        return "product stand-in"

    def close(self) -> None:
        pass

    def process(self, photo, out_root, *, force_kind=None, skip_existing=False, progress=None, cancel=None):
        photo = Path(photo)
        rgb = cv2.imread(str(photo))[:, :, ::-1].copy()
        h, w = rgb.shape[:2]
        rf = ResultFolder.for_photo(photo, out_root, sha256_file(photo))
        cat = next((c for k, c in CATEGORIES.items() if k in photo.name), None)
        doc = ResultDocument(source=Source(str(photo.resolve()), sha256_file(photo), w, h), kind="product",
                             kind_confidence=0.9, mask=MASK_NAME,
                             items=[Item("product", [w * .2, h * .2, w * .8, h * .8], item_file("product"),
                                         category=cat)],
                             category={"name": cat, "confidence": 0.93} if cat else None)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 5: 4 * h // 5, w // 5: 4 * w // 5] = 255
        rf.write_all(doc, rgb, mask)
        return Outcome(photo, rf.path, doc)


def _arrive(hot: Path, src: Path, name: str, t: float) -> Path:
    """A photo lands in the hot folder (written aside, renamed in), with its capture time."""
    part = hot.parent / ("staging-" + name)
    shutil.copyfile(src, part)
    os.utime(part, (t, t))
    dst = hot / name
    os.replace(part, dst)
    return dst


def _done(s: Studio, rec: Recorder, photo: Path) -> Path:
    """Wait until the Studio finished the photo (processed, then bound)."""
    key = str(photo.resolve())
    rec.wait_for("job_finished", lambda p: p.photo == key, timeout=60)
    return Path(s.session.get(key).folder)


def test_cards_in_the_hot_folder_bind_the_photos_that_follow(tmp_path, dev_data):
    cards = tmp_path / "cards"
    good = card_photo(cards / "c1.jpg", "qr", "TEE-01")
    new = card_photo(cards / "c2.jpg", "code128", "NEW-7")
    bad = card_photo(cards / "c3.jpg", "qr", "ZZZ-1", damage=True)
    hot = tmp_path / "hot"
    hot.mkdir()
    s = Studio(tmp_path / "out", ProductProcessor())
    s.catalog.add_products([Product("TEE-01", "Tee", views=("front", "back", "detail"), category="apparel")])
    rec = Recorder(s)
    s.start()
    assert s.watch(hot, stable_seconds=0.2)
    t0 = 1_700_000_000.0
    try:
        seq = [(good, "0001.jpg"), (dev_data / BLUE, "0002_blue.jpg"), (dev_data / GREY, "0003_grey.jpg"),
               (new, "0004.jpg"), (dev_data / BALL, "0005_ball.jpg"),
               (bad, "0006.jpg"), (dev_data / BLUE, "0007_blue.jpg")]
        folders = {}
        for i, (src, name) in enumerate(seq):
            folders[name] = _done(s, rec, _arrive(hot, src, name, t0 + 60 * i))
            if name == "0003_grey.jpg":
                assert s.shooting is not None and s.shooting.sku == "TEE-01"
                # the first photo processed again (Ctrl+R) keeps its place in the run: no view skipped
                n = len(rec.of("job_finished"))
                assert s.reprocess(str((hot / "0002_blue.jpg").resolve()))
                rec.wait_for("job_finished", lambda p: len(rec.of("job_finished")) > n, timeout=60)
                assert s.catalog.panel(skus=["TEE-01"])[0].completeness() == "2/3 · missing detail"
        # the card: recorded, not an item, not exported
        card = load(folders["0001.jpg"])
        assert card.card == {"code": "TEE-01", "format": "QR"} and card.items == []
        # the photos after it: the product's expected views in capture order, the first the main image
        a, b = load(folders["0002_blue.jpg"]).item("product"), load(folders["0003_grey.jpg"]).item("product")
        assert (a.sku, a.view, a.main) == ("TEE-01", "front", True)
        assert (b.sku, b.view, b.main) == ("TEE-01", "back", False)
        # a card not in the shot list creates the product and says so; its category comes from the photo
        assert load(folders["0005_ball.jpg"]).item("product").sku == "NEW-7"
        assert s.catalog.product("NEW-7").origin == "card" and s.catalog.product("NEW-7").category == "sports_gear"
        assert s.catalog.product("TEE-01").category == "apparel"           # the studio's own: kept
        msgs = [e.message for e in rec.of("catalog_changed")]
        assert any("shooting TEE-01" in m for m in msgs)
        assert any("new product NEW-7" in m for m in msgs)
        assert any("category from the photos for 1 product(s): NEW-7 sports_gear" in m for m in msgs)
        # an unreadable card: flagged, and so is the photo after it (not given the previous SKU)
        bad_doc, after = load(folders["0006.jpg"]), load(folders["0007_blue.jpg"])
        assert bad_doc.needs_review and bad_doc.card is not None and bad_doc.card["code"] == ""
        assert after.needs_review and after.item("product").sku is None
        assert any("unreadable barcode card" in w for w in after.warnings + bad_doc.warnings)
        assert s.shooting is not None and s.shooting.sku is None and s.shooting.card == "0006"
        assert s.catalog.panel(skus=["TEE-01"])[0].completeness() == "2/3 · missing detail"
    finally:
        s.close()


def test_photos_without_a_card_touch_no_catalog(tmp_path, dev_data):
    s = Studio(tmp_path / "out", ProductProcessor())
    s.add([shutil.copyfile(dev_data / BLUE, tmp_path / "blue.jpg")])
    s.start()
    try:
        assert s.wait_idle(30)
        assert s.shooting is None and not Catalog.exists(tmp_path / "out")
    finally:
        s.close()


def test_shot_list_without_categories_takes_them_from_the_photos(tmp_path, dev_data):
    photos = [shutil.copyfile(dev_data / src, tmp_path / name)
              for src, name in ((BLUE, "a_blue.jpg"), (GREY, "b_grey.jpg"), (BALL, "c_ball.jpg"))]
    s = Studio(tmp_path / "out", ProductProcessor())
    s.live_cards = False
    s.add(photos)
    s.start()
    try:
        assert s.wait_idle(30)
        s.add_product(Product("TEE-01"))
        s.add_product(Product("BAG-2"))
        s.add_product(Product("BALL-3", category="fitness"))
        for ph, sku in zip(photos, ("TEE-01", "BAG-2", "BALL-3")):
            s.assign_photos([ph], sku)
        assert [s.catalog.product(k).category for k in ("TEE-01", "BAG-2", "BALL-3")] == ["top", "bag", "fitness"]
        rec = Recorder(s)
        shots = tmp_path / "shots.csv"
        shots.write_text("sku,name\nTEE-01,Tee\nBAG-2,Bag\nBALL-3,Ball\n", encoding="utf-8")
        sl = s.import_shot_list(shots)         # no category column: blank again, filled from the photos
        assert [s.catalog.product(k).category for k in ("TEE-01", "BAG-2", "BALL-3")] == ["top", "bag", "sports_gear"]
        assert any("category from the photos for 3 product(s)" in n for n in sl.notes)
        assert "category from the photos" in rec.of("catalog_changed")[-1].message
        shots.write_text("sku,name,category\nTEE-01,Tee,shirts\nBAG-2,Bag,\n", encoding="utf-8")
        s.import_shot_list(shots)
        assert [s.catalog.product(k).category for k in ("TEE-01", "BAG-2")] == ["shirts", "bag"]
    finally:
        s.close()


def test_cli_import_says_which_categories_came_from_the_photos(tmp_path, dev_data, capsys):
    from studio_app.cli import main as cli_main
    photo = shutil.copyfile(dev_data / GREY, tmp_path / "b_grey.jpg")
    res = tmp_path / "out"
    folder = ProductProcessor().process(photo, res).folder
    shots = tmp_path / "shots.csv"
    shots.write_text("sku,name\nBAG-2,Bag\n", encoding="utf-8")
    assert cli_main(["catalog", "import", str(res), str(shots)]) == 0
    assert cli_main(["catalog", "assign", str(res), folder.name, "product", "BAG-2"]) == 0
    err = capsys.readouterr().err
    assert "note: category from the photos for 1 product(s): BAG-2 bag" in err
    with Catalog.open(res) as cat:
        assert cat.product("BAG-2").category == "bag"
    assert cli_main(["catalog", "import", str(res), str(shots)]) == 0      # re-import: blank, filled again
    assert "BAG-2 bag" in capsys.readouterr().err
