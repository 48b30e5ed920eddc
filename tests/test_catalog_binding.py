"""Binding shots to SKUs on real dev photos: generated QR / Code 128 / EAN-13 card photos set the SKU
of the photos after them in capture order; a damaged card and the photos after it go to review;
two cards in a row and a card at the end are reported; a new SKU from a card creates the product;
``{sku}_{view}`` file names bind directly."""
from __future__ import annotations

from pathlib import Path

import pytest

from studio_app.core.catalog import Catalog, Product
from studio_app.core.catalog.binding import bind, capture_key, name_binding, read_card
from studio_app.core.result import load
from tests.catalog_fixtures import card_photo, shoot

BLUE, GREY, BALL = ("products/magento_luma/mb02-blue-0.jpg", "products/magento_luma/mg04-bk-0.jpg",
                    "products/magento_luma/luma-stability-ball-pink.jpg")
PERSON = "persons/ccp/photos/0002.jpg"


@pytest.mark.parametrize("kind, code, fmt", [("qr", "TOP-100", "QR"), ("code128", "TRS-200", "Code128"),
                                             ("ean13", "4006381333931", "EAN-13")])
def test_card_reader_reads_each_symbology_on_a_real_background(tmp_path, dev_data, kind, code, fmt):
    from ml.io import load_image
    p = card_photo(tmp_path / "c.jpg", kind, code)
    r = read_card(load_image(p).rgb)
    assert r is not None and r.valid and (r.code, r.format) == (code, fmt)


def test_damaged_card_is_seen_but_not_trusted(tmp_path, dev_data):
    from ml.io import load_image
    r = read_card(load_image(card_photo(tmp_path / "c.jpg", "qr", "TOP-100", damage=True)).rgb)
    assert r is not None and not r.valid
    assert read_card(load_image(dev_data / BLUE).rgb) is None          # an ordinary product shot


def test_capture_order_prefers_exif_then_file_time(tmp_path, dev_data):
    import os
    a = card_photo(tmp_path / "a.jpg", "qr", "X", taken="2020:01:01 10:00:00")
    b = card_photo(tmp_path / "b.jpg", "qr", "Y")
    os.utime(b, (1_000_000_000, 1_000_000_000))     # 2001: earlier than a's EXIF time
    os.utime(a, (2_000_000_000, 2_000_000_000))     # a's file time is late, but EXIF wins
    assert sorted([a, b], key=capture_key) == [b, a]
    os.utime(b, (1_700_000_000, 1_700_000_000))
    assert sorted([a, b], key=capture_key) == [a, b]


def test_cards_bind_photos_in_capture_order(tmp_path, dev_data):
    folders = shoot(tmp_path, [
        ("product", BLUE),                 # before the first card: left alone
        ("card", "qr:TOP-100"),
        ("product", BLUE), ("product", GREY), ("person", PERSON),
        ("card", "code128:NEW-7"),         # not in the shot list: created
        ("product", BALL),
        ("card", "ean13:4006381333931"),   # followed directly by another card
        ("card", "qr:TRS-200"),
        ("named", f"{GREY}|TRS-200_detail"),   # binds by its name, does not end the run
        ("product", BALL),
        ("card", "bad:ZZZ-1"),             # unreadable
        ("product", GREY),
        ("card", "qr:END-1"),              # the last photo
    ])
    cat = Catalog.open(tmp_path / "results")
    cat.add_products([Product("TOP-100", "Shirt", views=("front", "back", "on-model")),
                      Product("TRS-200", "Trousers", views=("front", "detail"))])
    rep = bind(cat, folders)
    by = {a.folder.split("/")[-1]: a for a in rep.assigned}
    names = [f.name for f in folders]
    assert names[0] not in by
    assert (by[names[2]].sku, by[names[2]].view, by[names[2]].main) == ("TOP-100", "front", True)
    assert (by[names[3]].sku, by[names[3]].view, by[names[3]].main) == ("TOP-100", "back", False)
    assert (by[names[4]].sku, by[names[4]].view, by[names[4]].zone) == ("TOP-100", "on-model", "full")
    assert by[names[6]].sku == "NEW-7" and "NEW-7" in rep.created
    assert cat.product("NEW-7").origin == "card" and cat.product("4006381333931").origin == "card"
    assert (by["TRS-200_detail"].sku, by["TRS-200_detail"].view) == ("TRS-200", "detail")
    assert (by[names[10]].sku, by[names[10]].view) == ("TRS-200", "front")
    assert names[12] not in by
    review = dict(rep.review)
    assert "cannot be read" in review[names[11]] and "unreadable" in review[names[12]]
    text = "\n".join(rep.lines())
    assert "card 4006381333931" in text and "card END-1" in text and text.count("no photos after it") == 2
    card_doc = load(folders[1])
    assert card_doc.card == {"code": "TOP-100", "format": "QR"} and card_doc.items == []
    assert load(folders[12]).needs_review and load(folders[11]).needs_review
    assert load(folders[2]).item("product").sku == "TOP-100"        # the document mirrors the catalog
    # binding again changes nothing (hand-made and earlier assignments are kept)
    before = sorted(cat.assignments(), key=str)
    rep2 = bind(cat, folders)
    assert sorted(cat.assignments(), key=str) == before and rep2.assigned == []


def test_file_name_patterns():
    known = {"TS-1": Product("TS-1")}
    assert name_binding("TS-1_back", known) == ("TS-1", "back")
    assert name_binding("NEWSKU_front", known) == ("NEWSKU", "front")     # a known view word
    assert name_binding("IMG_0001", known) is None                        # a camera name, not a SKU
    assert name_binding("DSC0001", known) is None


def test_studio_bind_cards_announces_the_changes(tmp_path, dev_data):
    from studio_app.core.studio import Studio
    from studio_fakes import FakeProcessor, Recorder
    from tests.catalog_fixtures import copy_photo, set_time
    photos = [card_photo(tmp_path / "in" / "b_card.jpg", "code128", "JKT-9"),
              copy_photo(BLUE, tmp_path / "in" / "a_shot.jpg"), copy_photo(GREY, tmp_path / "in" / "c_shot.jpg")]
    for i, p in enumerate(photos):
        set_time(p, 1_700_000_000 + 60 * i)
    s = Studio(tmp_path / "out", FakeProcessor())
    s.live_cards = False          # the batch command (binding as photos arrive: tests/test_catalog_live.py)
    try:
        s.add(photos)
        s.start()
        assert s.wait_idle(30)
        rec = Recorder(s)
        rep = s.bind_cards()
        assert rep.created == ["JKT-9"] and len(rep.assigned) == 2
        assert s.document(photos[1]).item("full").sku == "JKT-9" and s.document(photos[1]).item("full").main
        assert s.document(photos[0]).card == {"code": "JKT-9", "format": "Code128"}
        ev = rec.of("catalog_changed")[-1]
        assert ev.reason == "bind" and ev.skus == ("JKT-9",) and "2 photos bound" in ev.message
        assert [p.status for p in s.products_panel()] == ["complete"]
        changed = {Path(e.photo).name for e in rec.of("document_changed") if e.reason == "catalog"}
        assert changed == {"b_card.jpg", "a_shot.jpg", "c_shot.jpg"}
    finally:
        s.close()
