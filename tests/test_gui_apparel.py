"""The garment map and the category in the real window (pytest-qt), on real dev photos processed
once per session by the real pipeline (``processed_apparel``): G tints the garments over the
photo and the legend's toggles hide one class; an edit redraws without reading the map again;
Shift+G and the inspector's button fit the selected box to its garment (undoable); the category
combo changes the document, the inspector says it was set by hand, Ctrl+Z takes it back, and
the export's Shopify CSV carries the operator's choice."""
from __future__ import annotations

import csv
import io

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from gui_helpers import FakeProcessor, make_window
from ml.garments.labels import CLASS_INDEX
from studio_app.core.catalog import Product
from studio_app.core.history import SetBox
from studio_app.core.result import load
from studio_app.core.result_folder import ResultFolder
from studio_app.gui.garments_view import PALETTE
from tests.conftest import copy_result

pytestmark = pytest.mark.gui


def open_result(qtbot, tmp_path, folder):
    """The window on a private copy of ``folder``, its photo on screen."""
    copy = copy_result(folder, tmp_path / "out")
    w = make_window(qtbot, tmp_path, FakeProcessor())
    w.add_paths([load(copy).source.path])
    qtbot.waitUntil(lambda: w.canvas.doc is not None and w.canvas.photo_item is not None, timeout=20000)
    return w, copy


def centre_of(labels: np.ndarray, cls: str) -> QPointF:
    ys, xs = np.nonzero(labels == CLASS_INDEX[cls])
    i = np.argsort(ys)[len(ys) // 2]                 # a pixel of the class (the median row's)
    return QPointF(float(xs[i]), float(ys[i]))


def screen_rgb(w, scene_pt: QPointF) -> np.ndarray:
    w.canvas.viewport().repaint()
    img = w.canvas.viewport().grab().toImage()
    p = w.canvas.mapFromScene(scene_pt)
    c = img.pixelColor(p.x(), p.y())
    return np.array([c.red(), c.green(), c.blue()], float)


def test_garment_overlay_toggles_per_class_and_survives_edits(qtbot, tmp_path, processed_apparel, monkeypatch):
    w, folder = open_result(qtbot, tmp_path, processed_apparel["person"])
    try:
        labels = ResultFolder(folder).read_garments(load(folder))
        qtbot.waitUntil(lambda: w.canvas.garments.map is not None, timeout=5000)
        assert {"top", "bottom", "skin", "hair"} <= w.canvas.garments.present
        legend = w.inspector.legend
        assert legend.show_box.isEnabled() and legend.boxes["top"].isEnabled()
        assert not w.canvas.garments.item.isVisible()             # off until asked for
        w.a_mask.setChecked(False)                                # judge the tint on the photo itself
        top, bottom = centre_of(labels, "top"), centre_of(labels, "bottom")
        plain_top, plain_bottom = screen_rgb(w, top), screen_rgb(w, bottom)
        QTest.keyClick(w, Qt.Key_G)
        assert w.a_garments.isChecked() and legend.show_box.isChecked() and w.canvas.garments.item.isVisible()
        blue = np.array([int(PALETTE["top"][0][k:k + 2], 16) for k in (1, 3, 5)], float)
        tinted = screen_rgb(w, top)
        assert np.abs(tinted - plain_top).sum() > 40                          # the operator sees it
        assert np.linalg.norm(tinted - blue) < np.linalg.norm(plain_top - blue)   # towards the top's colour
        legend.boxes["top"].click()                                          # hide the top's tint only
        assert np.abs(screen_rgb(w, top) - plain_top).sum() < 15
        assert np.abs(screen_rgb(w, bottom) - plain_bottom).sum() > 40
        reads = []
        monkeypatch.setattr(ResultFolder, "read_garments", lambda *a: reads.append(a) or labels)
        item = w.canvas.garments.item
        b = load(folder).item("top").box
        w.view.apply(SetBox("top", [b[0] + 5, b[1] + 5, b[2] - 5, b[3] - 5]))
        qtbot.waitUntil(lambda: w.canvas.boxes["top"].rect().width() < b[2] - b[0] - 8, timeout=5000)
        assert w.canvas.garments.item is item and item.isVisible() and reads == []   # no reload, no disk
        legend.show_box.click()                                              # the legend's switch
        assert not w.a_garments.isChecked() and not item.isVisible()
    finally:
        w.shutdown()


def test_fit_box_to_garment_from_the_keyboard_and_the_inspector(qtbot, tmp_path, processed_apparel):
    # CCP 0002 wears a dress under a jacket (no bottom): the shoes are the garment refitted here
    w, folder = open_result(qtbot, tmp_path, processed_apparel["person"])
    try:
        labels = ResultFolder(folder).read_garments(load(folder))
        # the shoes: the map's shoe parts, without stray specks of a few pixels (the fit rule
        # drops parts under 12 % of the largest, ml.stages.garment_zones._KEEP_PART)
        n, lab, stats, _ = cv2.connectedComponentsWithStats((labels == CLASS_INDEX["shoes"]).astype(np.uint8))
        areas = stats[1:, cv2.CC_STAT_AREA]
        parts = 1 + np.flatnonzero(areas >= 0.12 * areas.max())
        ys, xs = np.nonzero(np.isin(lab, parts))
        w.inspector.select_zone("shoes")
        assert w.inspector.zone == "shoes" and w.inspector.fit.isEnabled()
        x0, y0, x1, y1 = load(folder).item("shoes").box
        wrong = [x0, y0 + 0.5 * (y1 - y0), x1, y1]                          # lower half only
        for trigger in (lambda: QTest.keyClick(w, Qt.Key_G, Qt.ShiftModifier), w.inspector.fit.click):
            w.view.apply(SetBox("shoes", wrong))
            qtbot.waitUntil(lambda: load(folder).item("shoes").box[1] > y0 + 10, timeout=5000)
            trigger()
            qtbot.waitUntil(lambda: load(folder).item("shoes").box[1] <= ys.min(), timeout=5000)
            fx0, fy0, fx1, fy1 = load(folder).item("shoes").box
            assert fx0 <= xs.min() and fx1 >= xs.max() and fy1 >= ys.max() * 0.98
            qtbot.waitUntil(lambda: w.a_undo.text() == "Undo Fit the shoes box to the garment", timeout=5000)
        QTest.keyClick(w, Qt.Key_Z, Qt.ControlModifier)
        qtbot.waitUntil(lambda: load(folder).item("shoes").box == pytest.approx(wrong, abs=0.01), timeout=5000)
    finally:
        w.shutdown()


def test_category_combo_changes_the_document_and_the_export(qtbot, tmp_path, processed_apparel):
    w, folder = open_result(qtbot, tmp_path, processed_apparel["product"])
    try:
        insp = w.inspector
        assert insp.category.currentText() == "Footwear" and insp.category_label.text().endswith("% sure")
        assert insp.category.currentData() == "footwear" and not w.inspector.fit.isEnabled()
        photo = w.view.current_photo()
        w.studio.add_product(Product("SNK-1", "White plimsolls", views=("front",)))
        w.studio.assign(photo, "product", "SNK-1", "front", main=True)
        i = insp.category.findData("kitchen_home")
        insp.category.setCurrentIndex(i)
        insp.category.activated.emit(i)                  # what a pick in the open list sends
        qtbot.waitUntil(lambda: load(folder).category["name"] == "kitchen_home", timeout=5000)
        qtbot.waitUntil(lambda: insp.category_label.text() == "set by hand", timeout=5000)
        qtbot.waitUntil(lambda: w.a_undo.text() == "Undo Set the category to kitchen home", timeout=5000)
        out = tmp_path / "shop"
        with qtbot.waitSignal(w.exportFinished, timeout=120000) as blk:
            assert w.start_export([str(folder)], "shopify", str(out), False)
        assert blk.args[0].ok
        rows = list(csv.DictReader(io.StringIO((out / "shopify-products.csv").read_text("utf-8"))))
        assert rows and (rows[0]["Type"], rows[0]["Product Category"]) == ("Home & Kitchen", "Home & Garden")
        QTest.keyClick(w, Qt.Key_Z, Qt.ControlModifier)
        qtbot.waitUntil(lambda: insp.category.currentData() == "footwear", timeout=5000)
        assert load(folder).category["name"] == "footwear"
    finally:
        w.shutdown()


def test_a_person_items_category_follows_the_selected_item(qtbot, tmp_path, processed_apparel):
    w, folder = open_result(qtbot, tmp_path, processed_apparel["person"])
    try:
        w.inspector.select_zone("top")
        assert w.inspector.category.currentData() == "top" and w.inspector.category_label.text() == "of the top item"
        i = w.inspector.category.findData("dress")
        w.inspector.category.setCurrentIndex(i)
        w.inspector.category.activated.emit(i)
        qtbot.waitUntil(lambda: load(folder).item("top").category == "dress", timeout=5000)
        assert load(folder).category is None and w.inspector.zone == "top"
    finally:
        w.shutdown()
