"""Export as a catalog of goods, on real dev photos with a generated shot list: Amazon names per
product (MAIN, PT01.., one SWCH), an on-model photo split between two SKUs, unassigned items named
per photo with a warning, completeness in the summary and the manifest, --require-complete, the
Shopify product CSV and the Merchant Center feed parsed back column by column, re-export after the
main image moved, a SKU deleted from the catalog, card photos never exported."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from studio_app.cli import main as cli_main
from studio_app.core.catalog import Catalog, CatalogService, Product
from studio_app.core.export import export
from studio_app.core.export.shopfiles import MERCHANT_COLUMNS, SHOPIFY_COLUMNS
from studio_app.core.result import load, save
from tests.catalog_fixtures import copy_photo
from tests.test_export import person_doc, product_doc

BLUE, GREY, BALL = ("products/magento_luma/mb02-blue-0.jpg", "products/magento_luma/mb02-gray-0.jpg",
                    "products/magento_luma/luma-stability-ball-pink.jpg")
PERSON = "persons/ccp/photos/0002.jpg"
SHOT_LIST = ("sku,name,colour,category,views\n"
             "MB02,Fusion Backpack,blue,bags,front|back\n"
             "BALL-PINK,Stability Ball,pink,,front|detail\n"
             "TOP-1,Leather jacket,black,jackets,on-model\n"
             "TRS-2,Tulle skirt,black,skirts,on-model|front\n"
             "NOIMG-9,Never shot,red,,front\n")


@pytest.fixture(scope="module")
def shoot(tmp_path_factory, dev_data) -> Path:
    root = tmp_path_factory.mktemp("shoot")
    res = root / "results"
    blue = product_doc(copy_photo(BLUE, root / "photos" / "a1.jpg"), res)
    grey = product_doc(copy_photo(GREY, root / "photos" / "a2.jpg"), res)
    ball = product_doc(copy_photo(BALL, root / "photos" / "a3.jpg"), res)
    person = person_doc(copy_photo(PERSON, root / "photos" / "0002.jpg"), res)
    (root / "shots.csv").write_text(SHOT_LIST, encoding="utf-8")
    cat = Catalog.open(res)
    from studio_app.core.catalog import shotlist
    cat.add_products(shotlist.read(root / "shots.csv").products)
    svc = CatalogService(cat)
    svc.assign(blue, "product", "MB02", "front", main=True)
    svc.assign(grey, "product", "MB02", "back")
    svc.assign(ball, "product", "BALL-PINK", "front", main=True)
    svc.assign(person, "top", "TOP-1", "on-model", main=True)        # one photo, two products
    svc.assign(person, "bottom", "TRS-2", "on-model", main=True)
    cat.close()
    return root


def fresh(shoot: Path, tmp_path: Path) -> Path:
    import shutil
    dst = tmp_path / "shoot"
    shutil.copytree(shoot, dst)
    # documents name their photos by absolute path: point them at the copy's photos
    for rj in (dst / "results").rglob("result.json"):
        doc = load(rj.parent)
        doc.source.path = str(dst / "photos" / Path(doc.source.path).name)
        save(doc, rj.parent)
    return dst / "results"


def test_amazon_names_per_product_and_completeness(shoot, tmp_path):
    res = fresh(shoot, tmp_path)
    out = tmp_path / "amazon"
    rep = export([res], "amazon", out, shot_list=shoot / "shots.csv")
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith((".", "manifest")))
    for name in ("MB02.MAIN.jpg", "MB02.PT01.jpg", "MB02.SWCH.jpg", "BALL-PINK.MAIN.jpg", "BALL-PINK.SWCH.jpg"):
        assert name in files, (name, files)
    blocked = dict(rep.blocked)          # the 550x830 on-model photo cannot give 1000 px without upscaling
    assert "upscale: enlarged" in blocked["TOP-1.MAIN.jpg"] and "upscale" in blocked["TRS-2.MAIN.jpg"]
    assert sum(".SWCH." in f and f.startswith("MB02") for f in files) == 1       # one swatch per product
    assert "0002.MAIN.jpg" in blocked                                  # unassigned: per-photo naming
    assert any("0002: no SKU for full, shoes" in n for n in rep.catalog_notes)
    main_blue = next(r for r in rep.rows if r["file"] == "MB02.MAIN.jpg")
    assert main_blue["shot"] == "a1" and main_blue["catalog_view"] == "front"
    products = {p["sku"]: p for p in json.loads(rep.manifest_json.read_text())["products"]}
    assert products["MB02"]["complete"] and products["MB02"]["exported"] == ["back", "front"]
    assert products["BALL-PINK"]["missing"] == ["detail"]
    assert products["TRS-2"]["missing"] == ["on-model", "front"] and products["NOIMG-9"]["images"] == 0
    summary = rep.summary()
    assert "products: 1 of 5 complete" in summary and "incomplete BALL-PINK: missing detail" in summary
    assert "incomplete NOIMG-9: missing front" in summary


def test_require_complete_holds_back_incomplete_products(shoot, tmp_path, capsys):
    res = fresh(shoot, tmp_path)
    out = tmp_path / "amz"
    rc = cli_main(["export", str(res), "--preset", "amazon", "--out", str(out), "--require-complete",
                   "--shot-list", str(shoot / "shots.csv")])
    err = capsys.readouterr().err
    assert rc == 1
    names = {p.name for p in out.iterdir()}
    assert "MB02.MAIN.jpg" in names
    assert not any(n.startswith(("BALL-PINK", "TRS-2")) for n in names)
    assert "skipped   0002: TRS-2 is incomplete (missing front)" in err
    assert "skipped   a3: BALL-PINK is incomplete (missing detail)" in err
    assert "incomplete BALL-PINK: missing front, detail" in err        # nothing of it was exported


def test_shopify_csv_parsed_back_column_by_column(shoot, tmp_path):
    res = fresh(shoot, tmp_path)
    out = tmp_path / "shop"
    rep = export([res], "shopify", out, shot_list=shoot / "shots.csv",
                 image_base_url="https://cdn.example.com/shoot 1/")
    assert rep.shop_file == out / "shopify-products.csv"
    rows = list(csv.DictReader(io.StringIO(rep.shop_file.read_text(encoding="utf-8"))))
    assert tuple(rows[0].keys()) == SHOPIFY_COLUMNS
    mb = [r for r in rows if r["Handle"] == "mb02"]
    assert [r["Image Position"] for r in mb] == ["1", "2"]
    first, second = mb
    assert (first["Title"], first["Option1 Name"], first["Option1 Value"], first["Variant SKU"]) == (
        "Fusion Backpack", "Color", "blue", "MB02")
    assert (second["Title"], second["Variant SKU"], second["Option1 Value"]) == ("", "", "")
    assert first["Image Src"] == "https://cdn.example.com/shoot%201/MB02_main.jpg"
    assert second["Image Src"].endswith("/MB02_back.jpg") and second["Image Alt Text"] == "Fusion Backpack - blue - back"
    for r in rows:
        assert (out / r["Image Src"].rsplit("/", 1)[1]).is_file()       # every link is a written file
    assert {r["Handle"] for r in rows} == {"mb02", "ball-pink", "top-1", "trs-2"}   # unassigned items are not products


def test_merchant_feed_parsed_back_column_by_column(shoot, tmp_path):
    res = fresh(shoot, tmp_path)
    out = tmp_path / "gmc"
    rep = export([res], "google_merchant", out, shot_list=shoot / "shots.csv", image_base_url="https://img.example/")
    lines = rep.shop_file.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert tuple(header[:5]) == MERCHANT_COLUMNS and header[5:] == ["google_product_category", "product_type"]
    feed = {r["id"]: r for r in (dict(zip(header, ln.split("\t"))) for ln in lines[1:])}
    assert set(feed) == {"MB02", "BALL-PINK", "TOP-1", "TRS-2"}
    mb = feed["MB02"]
    assert mb["title"] == "Fusion Backpack" and mb["color"] == "blue" and mb["product_type"] == "bags"
    assert mb["image_link"].startswith("https://img.example/MB02_") and mb["image_link"].endswith("main.jpg")
    extra = mb["additional_image_link"].split(",")
    assert len(extra) == 1 and extra[0].endswith("back.jpg") and (out / extra[0].rsplit("/", 1)[1]).is_file()
    assert feed["BALL-PINK"]["additional_image_link"] == "" and feed["BALL-PINK"]["product_type"] == ""


def test_moving_the_main_image_renames_without_conflicts(shoot, tmp_path):
    res = fresh(shoot, tmp_path)
    out = tmp_path / "amazon"
    export([res], "amazon", out)
    first_main = (out / "MB02.MAIN.jpg").read_bytes()
    with Catalog.open(res) as cat:
        CatalogService(cat).assign(res / "a2", "product", "MB02", "back", main=True)
    rep = export([res], "amazon", out)
    assert not rep.conflicts and not rep.errors and all("upscale" in why for _f, why in rep.blocked)
    assert (out / "MB02.MAIN.jpg").read_bytes() != first_main
    assert next(r for r in rep.rows if r["file"] == "MB02.MAIN.jpg")["shot"] == "a2"
    assert next(r for r in rep.rows if r["file"] == "MB02.PT01.jpg")["shot"] == "a1"
    assert not [p.name for p in out.iterdir() if p.name.startswith("MB02.") and "-" in p.name]


def test_deleted_sku_and_card_photo(shoot, tmp_path):
    res = fresh(shoot, tmp_path)
    with Catalog.open(res) as cat:
        cat.delete_product("BALL-PINK")                        # the document still says BALL-PINK
    card = load(res / "a2")
    card.card, card.items = {"code": "MB02", "format": "QR"}, []
    save(card, res / "a2")
    rep = export([res], "amazon", tmp_path / "out")
    assert any("a3: product is assigned to SKU BALL-PINK, which is not in the catalog" in n for n in rep.catalog_notes)
    assert any(r["shot"] == "a3" and r["sku"] == "a3" for r in rep.rows)               # exported per photo
    assert any(Path(f).name == "a2" and "barcode card" in why for f, why in rep.skipped)
    assert not any(r["shot"] == "a2" for r in rep.rows)


def test_cli_catalog_commands_and_studio_export_use_the_catalog(shoot, tmp_path, capsys):
    res = fresh(shoot, tmp_path)
    assert cli_main(["catalog", "list", str(res), "--status", "incomplete"]) == 0
    out = capsys.readouterr().out
    assert "BALL-PINK" in out and "missing: detail" in out and "MB02" not in out
    assert cli_main(["catalog", "assign", str(res), "a3", "product", "BALL-PINK", "--view", "detail"]) == 0
    assert load(res / "a3").item("product").view == "detail"
    assert cli_main(["catalog", "assign", str(res), "a3", "product", "NOPE"]) == 2
    assert "not in the catalog" in capsys.readouterr().err
    (res / "catalog.sqlite").unlink()
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (res / extra).unlink(missing_ok=True)
    assert cli_main(["catalog", "rebuild", str(res), "--shot-list", str(shoot / "shots.csv")]) == 0
    assert "5 products, 5 assignments" in capsys.readouterr().out
    # the Studio exports single result folders: the catalog beside them is found
    from studio_app.core.session import Session
    from studio_app.core.studio import Studio
    from studio_fakes import FakeProcessor
    s = Studio(res, FakeProcessor(), session=Session(res, autosave=False))
    try:
        job = s.export("amazon", tmp_path / "studio-out", [res / "a1", res / "a2"])
        assert job.wait(60) and job.error is None
        assert {r["file"] for r in job.report.rows} >= {"MB02.MAIN.jpg", "MB02.PT01.jpg"}
    finally:
        s.close()


def test_on_model_photo_split_between_two_skus_on_white(shoot, tmp_path):
    """Zalando wants on-model images on white: the jacket and the skirt of one photo become two
    products' main images, the street replaced by pure white around the person."""
    import numpy as np
    from PIL import Image
    res = fresh(shoot, tmp_path)
    out = tmp_path / "z"
    rep = export([res], "zalando", out)
    rows = {r["file"]: r for r in rep.rows}
    top, skirt = rows["TOP-1_main.jpg"], rows["TRS-2_main.jpg"]
    assert (top["shot"], top["zone"], skirt["shot"], skirt["zone"]) == ("0002", "top", "0002", "bottom")
    for name in ("TOP-1_main.jpg", "TRS-2_main.jpg"):
        a = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        h, w = a.shape[:2]
        assert (a[:, :5] == 255).all() and (a[:5] == 255).all()          # margins: the person does not touch
        dark = (a.max(axis=2) < 80).mean()                              # black jacket / skirt
        street = ((np.abs(a - 255).max(axis=2) > 8) & (a.max(axis=2) >= 80)).mean()
        assert dark > 0.08 and street < dark, (name, dark, street)


def test_preflight_blocks_a_main_image_whose_background_is_not_white(shoot, tmp_path, monkeypatch):
    """A renderer that leaves the street inside white padding (the border ring is white) is caught:
    every pixel outside the person is checked, on the written file."""
    from studio_app.core.export import cutout

    def keeps_the_street(rgb, mask, background, sigma=1.2):      # a compositor that lost the alpha
        import numpy as np
        return rgb.copy(), np.full(mask.shape, 255, np.uint8)
    monkeypatch.setattr(cutout, "on_background", keeps_the_street)
    res = fresh(shoot, tmp_path)
    rep = export([res], "zalando", tmp_path / "z")
    blocked = dict(rep.blocked)
    assert "background:" in blocked["TOP-1_main.jpg"] and "outside the subject" in blocked["TOP-1_main.jpg"]
    assert not (tmp_path / "z" / "TOP-1_main.jpg").exists()


def test_face_crop_is_a_view_only_of_headwear(shoot, tmp_path):
    res = fresh(shoot, tmp_path)
    with Catalog.open(res) as cat:
        cat.add_products([Product("HAT-1", "Beret", category="Apparel > Headwear", views=("on-model",))])
        svc = CatalogService(cat)
        svc.assign(res / "0002", "head", "TOP-1", "detail")           # a jacket's "detail": a face
    rep = export([res], "zalando", tmp_path / "z")
    assert any("head crop is a face" in why for _f, why in rep.skipped)
    assert not any(r["zone"] == "head" and r["sku"] == "TOP-1" for r in rep.rows)
    with Catalog.open(res) as cat:
        CatalogService(cat).assign(res / "0002", "head", "HAT-1", "on-model", main=True)
    rep = export([res], "zalando", tmp_path / "z2")
    assert any(r["zone"] == "head" and r["sku"] == "HAT-1" for r in rep.rows)


def test_an_unassigned_face_crop_is_not_exported_either(shoot, tmp_path):
    res = fresh(shoot, tmp_path)                  # the head of 0002 has no SKU
    rep = export([res], "zalando", tmp_path / "z")
    assert any("0002" in f and "head crop is a face" in why and "no SKU" in why for f, why in rep.skipped)
    assert not any(r["zone"] == "head" for r in rep.rows)
    assert any(r["zone"] == "top" and r["sku"] == "TOP-1" for r in rep.rows)      # the rest goes out
    doc = load(res / "0002")
    doc.item("head").category = "headwear"        # the garment parser saw a hat: its crop is a view
    save(doc, res / "0002")
    rep = export([res], "zalando", tmp_path / "z2")
    assert any(r["zone"] == "head" for r in rep.rows)
