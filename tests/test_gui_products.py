"""The product panel, driven as an operator drives it (pytest-qt, the real window): import a shot
list, filter by SKU text and by status, assign the photos multi-selected in the filmstrip (S),
the top and the trousers of an on-model photo to two SKUs (Shift+S), set an item's view (W) and the
main image (H); the completeness line follows each change; the filmstrip shows one SKU's photos
(Shift+F); 10,000 products load one page at a time. A real CCP dev photo for the on-model shot
(skipped without ../shared/data); product photos are generated like processed ones."""
from __future__ import annotations

import shutil
import time

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

from gui_helpers import FakeProcessor, make_product_result, make_window
from studio_app.core.catalog import Catalog, Product
from studio_app.core.result import load
from studio_app.gui.products_model import PAGE
from tests.test_export import person_doc

pytestmark = pytest.mark.gui
PERSON = "persons/ccp/photos/0002.jpg"
SHOTS = "sku,name,views\nTEE-01,Tee,front|back|detail\nTEE-02,Tee two,front\nTOP-7,Top,on-model\nTRS-9,Trousers,on-model\n"


def _wait_text(qtbot, w, sku, text):
    qtbot.waitUntil(lambda: w.products.row_text(sku) == text, timeout=8000)


def _select(w, rows):
    fs = w.filmstrip
    sm = fs.selectionModel()
    sm.setCurrentIndex(fs.proxy.index(rows[0], 0), QItemSelectionModel.ClearAndSelect)
    for r in rows[1:]:
        sm.select(fs.proxy.index(r, 0), QItemSelectionModel.Select)


@pytest.fixture
def studio_window(qtbot, tmp_path, dev_data):
    folders = [make_product_result(tmp_path, n, colour=c)
               for n, c in (("a_tee", (30, 60, 200)), ("b_tee", (200, 60, 30)), ("c_tee", (30, 160, 60)))]
    photo = tmp_path / "photos" / "0002.jpg"
    shutil.copyfile(dev_data / PERSON, photo)
    person = person_doc(photo, tmp_path / "out")
    (tmp_path / "shots.csv").write_text(SHOTS, encoding="utf-8")
    w = make_window(qtbot, tmp_path, FakeProcessor())
    w.add_paths([str(tmp_path / "photos")])
    qtbot.waitUntil(lambda: w.filmstrip.count() == 4, timeout=10000)
    yield w, folders, person
    w.shutdown()


def test_operator_builds_the_catalog_from_the_panel(qtbot, tmp_path, monkeypatch, studio_window):
    w, (a, b, c), person = studio_window
    pp = w.products
    assert not pp.model.rowCount() and "Import a shot list" in pp.details.text()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "shots.csv"), ""))
    QTest.keyClick(w, Qt.Key_I, Qt.ControlModifier | Qt.ShiftModifier)
    qtbot.waitUntil(lambda: pp.model.rowCount() == 4, timeout=8000)
    assert pp.row_text("TEE-01") == "0/3 · no images"
    qtbot.waitUntil(lambda: pp.status.itemText(3) == "Empty (no images) (4)", timeout=3000)

    # filter by SKU text (Ctrl+K puts the cursor there), pick the product
    QTest.keyClick(w, Qt.Key_K, Qt.ControlModifier)
    assert pp.filter.hasFocus()
    QTest.keyClicks(pp.filter, "tee-0")
    qtbot.waitUntil(lambda: pp.model.rowCount() == 2, timeout=3000)
    assert pp.select_sku("TEE-01")

    # two photos multi-selected in the filmstrip -> S: each gets the next missing view
    rows = [w.filmstrip.row_of(str((tmp_path / "photos" / f"{n}.jpg").resolve())) for n in ("a_tee", "b_tee")]
    _select(w, rows)
    assert len(w.filmstrip.selected_photos()) == 2
    w.filmstrip.setFocus()
    QTest.keyClick(w.filmstrip, Qt.Key_S)
    _wait_text(qtbot, w, "TEE-01", "2/3 · missing detail · no main")
    qtbot.waitUntil(lambda: load(b).item("product").sku == "TEE-01", timeout=5000)   # the database goes first
    assert (load(a).item("product").sku, load(a).item("product").view) == ("TEE-01", "front")
    assert (load(b).item("product").sku, load(b).item("product").view) == ("TEE-01", "back")

    # status filter: the incomplete products only
    pp.filter.clear()
    pp.status.setCurrentIndex(2)
    qtbot.waitUntil(lambda: pp.model.rowCount() == 1 and pp.model.product_at(0).sku == "TEE-01", timeout=3000)
    assert pp.status.itemText(2) == "Incomplete (1)"
    pp.status.setCurrentIndex(0)
    qtbot.waitUntil(lambda: pp.model.rowCount() == 4, timeout=3000)

    # the on-model photo: its top to one SKU, its trousers to another
    w.filmstrip.select_photo(str(photo_of(person)))
    qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.doc.kind == "person", timeout=8000)
    for zone, sku in (("top", "TOP-7"), ("bottom", "TRS-9")):
        w.inspector.select_zone(zone)
        assert w.inspector.zone == zone
        pp.select_sku(sku)
        QTest.keyClick(w.canvas, Qt.Key_S, Qt.ShiftModifier)
        _wait_text(qtbot, w, sku, "1/1 · complete · no main")
    qtbot.waitUntil(lambda: w.inspector.sku_label.text() == "SKU TRS-9 · on-model", timeout=5000)
    # the filmstrip rows say which products a photo shows
    qtbot.waitUntil(lambda: w.view.model.sku_of(photo_of(person)) == "TOP-7, TRS-9", timeout=5000)
    assert w.view.model.sku_of(photo_of(a)) == "TEE-01" and w.view.model.sku_of(photo_of(c)) == ""
    doc = load(person)
    assert (doc.item("top").sku, doc.item("top").view) == ("TOP-7", "on-model")
    assert (doc.item("bottom").sku, doc.item("bottom").view) == ("TRS-9", "on-model")

    # H: the trousers become TRS-9's main image
    QTest.keyClick(w.canvas, Qt.Key_H)
    _wait_text(qtbot, w, "TRS-9", "1/1 · complete")
    qtbot.waitUntil(lambda: load(person).item("bottom").main, timeout=5000)
    qtbot.waitUntil(lambda: w.inspector.sku_label.text() == "SKU TRS-9 · on-model · main image", timeout=5000)

    # W: the third tee photo, assigned as 'front', is given the view it really shows
    pp.select_sku("TEE-01")
    w.filmstrip.select_photo(str((tmp_path / "photos" / "c_tee.jpg").resolve()))
    qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.doc.item("product") is not None, timeout=8000)
    pp.view_combo.setCurrentText("front")
    w.filmstrip.setFocus()
    QTest.keyClick(w.filmstrip, Qt.Key_S)
    qtbot.waitUntil(lambda: load(c).item("product").sku == "TEE-01", timeout=8000)
    qtbot.waitUntil(lambda: w.canvas.doc.item("product").sku == "TEE-01", timeout=8000)
    w.inspector.select_zone("product")
    pp.view_combo.setCurrentText("detail")
    QTest.keyClick(w.canvas, Qt.Key_W)
    _wait_text(qtbot, w, "TEE-01", "3/3 · complete · no main")
    qtbot.waitUntil(lambda: load(c).item("product").view == "detail", timeout=5000)

    # Shift+F: the filmstrip shows only the selected SKU's photos
    QTest.keyClick(w.canvas, Qt.Key_F, Qt.ShiftModifier)
    qtbot.waitUntil(lambda: w.filmstrip.count() == 3, timeout=3000)
    QTest.keyClick(w.canvas, Qt.Key_F, Qt.ShiftModifier)
    qtbot.waitUntil(lambda: w.filmstrip.count() == 4, timeout=3000)


def photo_of(folder):
    return load(folder).source.path


def test_new_product_and_bad_sku_from_the_panel(qtbot, studio_window):
    w, (a, _b, _c), _person = studio_window
    pp = w.products
    pp.new_product("BAG-1", "front side")
    qtbot.waitUntil(lambda: pp.selected_sku() == "BAG-1", timeout=8000)
    assert pp.row_text("BAG-1") == "0/2 · no images"
    messages = []
    pp.message.connect(lambda t, ms: messages.append(t))
    pp.new_product("bad/sku")
    pp.new_product("BAG-1")
    qtbot.waitUntil(lambda: len(messages) >= 2, timeout=8000)
    assert "not allowed in file names" in messages[0] and "exists already" in messages[1]
    assert pp.model.rowCount() == 1 and pp.row_text("BAG-1") == "0/2 · no images"
    # a shot list with a duplicate SKU: a box names the row, nothing is imported
    bad = w.out_root.parent / "bad.csv"
    bad.write_text("sku,name\nTEE-9,a\nTEE-9,b\n", encoding="utf-8")
    pp.import_shot_list(str(bad))
    qtbot.waitUntil(lambda: pp.box is not None and pp.box.isVisible(), timeout=8000)
    assert "TEE-9" in pp.box.text() and "row" in pp.box.text() and pp.box.windowTitle() == "Shot list not imported"
    pp.box.close()
    assert pp.model.rowCount() == 1
    # nothing chosen on the photo: a message, nothing assigned
    w.filmstrip.select_photo(photo_of(a))
    w.inspector.select_zone("")
    pp.assign_item()
    assert "choose an item" in messages[-1]


def test_ten_thousand_products_load_one_page_at_a_time(qtbot, tmp_path):
    cat = Catalog.open(tmp_path / "out")
    cat.add_products(Product(f"SKU-{i:05d}", views=("front", "back")) for i in range(10_000))
    cat.close()
    w = make_window(qtbot, tmp_path, FakeProcessor())
    try:
        pp = w.products
        assert pp.model.rowCount() == PAGE and pp.model.total == 10_000
        t0 = time.perf_counter()
        pp.filter.setText("SKU-09")
        pp._apply_filter()
        took = time.perf_counter() - t0
        assert pp.model.total == 1000 and pp.model.rowCount() == PAGE
        assert took < 0.25, f"filtering 10,000 products took {took * 1000:.0f} ms"
        pp.list.scrollToBottom()
        qtbot.waitUntil(lambda: pp.model.rowCount() > PAGE, timeout=3000)
    finally:
        w.shutdown()


def test_a_card_in_the_hot_folder_shows_the_sku_being_shot(qtbot, tmp_path, dev_data):
    import os
    import shutil
    from tests.catalog_fixtures import card_photo
    from tests.test_catalog_live import BLUE, ProductProcessor
    hot = tmp_path / "hot"
    hot.mkdir()
    card = card_photo(tmp_path / "c1.jpg", "qr", "TEE-01")
    cat = Catalog.open(tmp_path / "out")
    cat.add_products([Product("TEE-01", "Tee", views=("front", "back", "detail"))])
    cat.close()
    w = make_window(qtbot, tmp_path, ProductProcessor(), hot_folder=hot, hot_stable_seconds=0.2)
    try:
        pp = w.products
        assert not pp.shooting.isVisible()
        for i, (src, name) in enumerate(((card, "0001.jpg"), (dev_data / BLUE, "0002_blue.jpg"))):
            shutil.copyfile(src, tmp_path / name)
            os.utime(tmp_path / name, (1_700_000_000 + 60 * i,) * 2)
            os.replace(tmp_path / name, hot / name)
            if i == 0:
                qtbot.waitUntil(lambda: pp.shooting.text() == "Shooting: TEE-01", timeout=30000)
                assert pp.shooting.isVisible() and pp.selected_sku() == "TEE-01"
        _wait_text(qtbot, w, "TEE-01", "1/3 · missing back, detail")
        w.filmstrip.select_photo(str((hot / "0001.jpg").resolve()))
        qtbot.waitUntil(lambda: w.inspector.kind.text() == "barcode card TEE-01 · not exported", timeout=5000)
    finally:
        w.shutdown()
