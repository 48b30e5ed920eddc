"""The catalog of goods: products and assignments in catalog.sqlite (the one home), mirrored into the
result documents, rebuilt from them; the Studio surface and its events; shot lists from CSV/XLSX
with every kind of bad input a spreadsheet produces."""
from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from studio_app.core.catalog import Catalog, CatalogError, Product, rebuild, shotlist
from studio_app.core.result import SCHEMA_VERSION, load
from studio_app.core.result_folder import ResultFolder
from studio_app.core.studio import Studio
from studio_fakes import FakeProcessor, Recorder, write_photo


@pytest.fixture
def studio(tmp_path):
    photos = [write_photo(tmp_path / "in" / f"shot{i}.jpg", seed=i) for i in range(3)]
    s = Studio(tmp_path / "out", FakeProcessor())
    s.add(photos)
    s.start()
    assert s.wait_idle(20)
    s.photos = photos
    yield s
    s.close()


def test_assign_mirrors_into_documents_and_panel_reports_completeness(studio):
    rec = Recorder(studio)
    studio.add_product(Product("TOP-1", "Linen shirt", "white", "shirts", ("front", "back")))
    studio.add_product(Product("TRS-2", "Chinos", "navy", "trousers", ("front",)))
    a, b, c = studio.photos
    studio.assign(a, "top", "TOP-1", "front", main=True)
    studio.assign(a, "full", "TRS-2", "front")            # one on-model photo, two products
    studio.assign(b, "top", "TOP-1", "back", main=True)    # moves the main image to photo b
    doc_a, doc_b = studio.document(a), studio.document(b)
    assert (doc_a.item("top").sku, doc_a.item("top").view, doc_a.item("top").main) == ("TOP-1", "front", False)
    assert (doc_a.item("full").sku, doc_a.item("full").view) == ("TRS-2", "front")
    assert doc_b.item("top").main
    on_disk = json.loads((Path(studio.entry(a).folder) / "result.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION >= 2
    assert [(i["zone"], i["sku"], i["main"]) for i in on_disk["items"]] == [("top", "TOP-1", False),
                                                                            ("full", "TRS-2", False)]
    panel = {p.sku: p for p in studio.products_panel()}
    assert panel["TOP-1"].complete and panel["TOP-1"].has_main and panel["TOP-1"].images == 2
    assert panel["TRS-2"].status == "complete" and not panel["TRS-2"].has_main
    assert [p.sku for p in studio.products_panel(sku_contains="trs")] == ["TRS-2"]
    changed = rec.of("catalog_changed")
    assert [e.reason for e in changed] == ["products", "products", "assign", "assign", "assign"]
    reasons = {(Path(e.folder).name, e.reason) for e in rec.of("document_changed")}
    assert {("shot0", "catalog"), ("shot1", "catalog")} <= reasons


def test_unknown_sku_zone_and_bad_sku_are_refused_with_a_message(studio):
    a = studio.photos[0]
    with pytest.raises(CatalogError, match="not in the catalog"):
        studio.assign(a, "top", "NOPE")
    with pytest.raises(CatalogError, match="no 'shoes' item"):
        studio.assign(a, "shoes", "NOPE", create=True)
    with pytest.raises(CatalogError, match="not allowed in file names"):
        studio.assign(a, "top", "A/B", create=True)
    assert studio.document(a).item("top").sku is None
    studio.assign(a, "top", "NEW-9", "detail", create=True)
    assert studio.catalog.product("NEW-9").origin == "manual"


def test_deleting_a_product_unassigns_its_images(studio):
    a = studio.photos[0]
    studio.assign(a, "top", "GONE", create=True)
    assert studio.delete_product("GONE") == 1
    assert studio.document(a).item("top").sku is None
    assert studio.catalog.assignments() == []


def test_edit_after_assign_keeps_the_sku(studio):
    from studio_app.core.history import SetBox
    a = studio.photos[0]
    studio.apply(a, SetBox("top", [10, 10, 200, 120]))      # the editor is live now
    studio.assign(a, "top", "KEEP-1", "front", create=True)
    doc = studio.apply(a, SetBox("top", [12, 10, 200, 120]))
    assert doc.item("top").sku == "KEEP-1"
    assert load(studio.entry(a).folder).item("top").sku == "KEEP-1"


def test_undoing_an_edit_made_before_an_assignment_keeps_the_sku(studio):
    """The catalog owns the SKU: Ctrl+Z on an older box edit restores the box, not the SKU-less
    document of that moment (nor does redo)."""
    from studio_app.core.history import SetBox
    a = studio.photos[0]
    studio.apply(a, SetBox("top", [10, 10, 200, 120]))
    studio.assign(a, "top", "KEEP-2", "front", create=True)
    doc = studio.undo(a)
    assert doc.item("top").box != [10, 10, 200, 120]                       # the edit is undone
    assert doc.item("top").sku == "KEEP-2" and doc.item("top").view == "front"
    assert load(studio.entry(a).folder).item("top").sku == "KEEP-2"
    assert studio.redo(a).item("top").sku == "KEEP-2"
    studio.assign(a, "top", None)                                          # unassigned: undo keeps that too
    assert studio.undo(a).item("top").sku is None


def test_reprocessing_keeps_assignments(studio):
    a = studio.photos[0]
    studio.assign(a, "top", "RP-1", "front", create=True)
    studio.reprocess(a)
    assert studio.wait_idle(20)
    assert load(studio.entry(a).folder).item("top").sku == "RP-1"


def test_rebuild_from_documents_and_shot_list(studio, tmp_path):
    a, b, _ = studio.photos
    studio.add_product(Product("R-1", "Shirt", views=("front", "back")))
    studio.assign(a, "top", "R-1", "front", main=True)
    studio.assign(b, "top", "R-2", "back", create=True)
    before = sorted(studio.catalog.assignments(), key=str)
    folders = [e.folder for e in studio.session]
    fresh = Catalog.memory(studio.out_root)
    warnings = rebuild(fresh, folders, [Product("R-1", "Shirt", views=("front", "back"))])
    assert sorted(fresh.assignments(), key=str) == before
    assert fresh.product("R-2").origin == "document" and any("R-2" in w for w in warnings)


def test_catalog_file_is_wal_and_older_documents_read_unassigned(tmp_path):
    cat = Catalog.open(tmp_path)
    assert sqlite3.connect(tmp_path / "catalog.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cat.close()
    d = {"schema_version": 1, "source": {"path": "x.jpg", "sha256": "0", "width": 10, "height": 10},
         "kind": "product", "kind_confidence": 1.0, "mask": "mask.png", "keypoints": [],
         "items": [{"zone": "product", "box": [0, 0, 5, 5], "file": "product.jpg", "swatch": None}],
         "needs_review": False, "warnings": []}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text(json.dumps(d))
    doc = load(tmp_path / "r")
    assert (doc.item("product").sku, doc.item("product").view, doc.item("product").main, doc.card) == \
        (None, None, False, None)


def test_a_corrupt_catalog_gives_a_message(tmp_path):
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="rebuild"):
        Catalog.open(tmp_path)


# ---------------------------------------------------------------------------------------------
# shot lists

def _csv(tmp_path, text: str, encoding="utf-8", name="shots.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_csv_utf8_bom_latin1_and_semicolons(tmp_path):
    p = _csv(tmp_path, "\ufeffsku,name,colour,category,views\nA-1,Chemise,écru,shirts,front|back\n\nB-2,Hose,navy,trousers,front\n")
    sl = shotlist.read(p)
    assert [(x.sku, x.name, x.colour, x.views) for x in sl.products] == [
        ("A-1", "Chemise", "écru", ("front", "back")), ("B-2", "Hose", "navy", ("front",))]
    assert "1 empty row skipped" in sl.notes
    q = _csv(tmp_path, "SKU;Name;Color;Category;Views\nC-3;Größe M Jäckchen;crème;jackets;front,detail\n",
             encoding="cp1252", name="excel.csv")
    sl = shotlist.read(q)
    assert sl.products[0].name == "Größe M Jäckchen" and sl.products[0].colour == "crème"
    assert sl.products[0].views == ("front", "detail") and any("Windows-1252" in n for n in sl.notes)


@pytest.mark.parametrize("text, needle", [
    ("sku,name\nA,x\nB,y\nA,z\n", "row 4: SKU 'A' is already on row 2"),
    ("sku,colour\nA,red\n", "has no column 'name'"),
    ("sku,name\nA/1,x\nB?,y\n ,z\n", "row 2: SKU 'A/1' contains characters not allowed"),
    ("sku,name\nA,x\nB?,y\n", "row 3: SKU 'B?'"),
    ("sku,name,views\nA,x,front|ba ck!\n", "row 2: view"),
    ("", "is empty"),
    ("sku,name\n", "no products"),
])
def test_bad_shot_lists_name_the_row_and_import_nothing(tmp_path, text, needle):
    p = _csv(tmp_path, text)
    cat = Catalog.open(tmp_path / "out")
    s = Studio(tmp_path / "out", FakeProcessor())
    try:
        with pytest.raises(CatalogError) as ei:
            s.import_shot_list(p)
        assert needle in str(ei.value)
        assert s.catalog.products() == []
    finally:
        s.close()
        cat.close()


def test_utf16_file_is_refused_with_advice(tmp_path):
    p = _csv(tmp_path, "sku,name\nA,x\n", encoding="utf-16")
    with pytest.raises(CatalogError, match="CSV UTF-8"):
        shotlist.read(p)
    bad = tmp_path / "bom.csv"
    bad.write_bytes(b"\xef\xbb\xbfsku,name\nA,caf\xe9\n")       # a BOM, then Latin-1
    with pytest.raises(CatalogError, match="starts with a BOM"):
        shotlist.read(bad)


def _xlsx_with_cached_formula(path: Path) -> None:
    """A workbook as a spreadsheet saves it: a formula cell carries its computed value, and the
    category is merged over two rows."""
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sku", "name", "colour", "category", "views"])
    ws.append(["X-1", "Tee", "black", "shirts", "front|back"])
    ws.append(['="X-"&"2"', "Tee", "white", None, "front"])
    ws.append([1234567, "Mug", "red", "kitchen", "front"])
    ws.merge_cells("D2:D3")
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    sheet = files["xl/worksheets/sheet1.xml"].decode()
    assert "<f>" in sheet
    sheet = sheet.replace('<c r="A3"><f>"X-"&amp;"2"</f><v /></c>', '<c r="A3" t="str"><f>"X-"&amp;"2"</f><v>X-2</v></c>')
    assert "<v>X-2</v>" in sheet
    files["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


def test_xlsx_formulas_give_values_and_merged_cells_fill(tmp_path):
    p = tmp_path / "shots.xlsx"
    _xlsx_with_cached_formula(p)
    sl = shotlist.read(p)
    assert [(x.sku, x.category, x.views) for x in sl.products] == [
        ("X-1", "shirts", ("front", "back")), ("X-2", "shirts", ("front",)), ("1234567", "kitchen", ("front",))]


def test_xlsx_formula_without_saved_value_names_the_cell(tmp_path):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sku", "name"])
    ws.append(["=CONCAT(\"A\",\"1\")", "x"])
    p = tmp_path / "fresh.xlsx"
    wb.save(p)
    with pytest.raises(CatalogError, match="row 2: column A holds a formula"):
        shotlist.read(p)


def test_import_then_reimport_updates_in_one_go(tmp_path):
    s = Studio(tmp_path / "out", FakeProcessor())
    try:
        s.import_shot_list(_csv(tmp_path, "sku,name,views\nA,one,front\nB,two,front|back\n"))
        s.import_shot_list(_csv(tmp_path, "sku,name,views\nB,TWO,back\n", name="b.csv"))
        assert [(p.sku, p.name, p.views) for p in s.catalog.products()] == [("A", "one", ("front",)),
                                                                             ("B", "TWO", ("back",))]
        assert {p.sku: p.status for p in s.products_panel()} == {"A": "no images", "B": "no images"}
    finally:
        s.close()


def test_panel_pages_counts_and_stays_in_step_with_every_change(tmp_path):
    cat = Catalog.open(tmp_path)
    cat.add_products([Product(f"S{k:03d}", views=("front", "back")) for k in range(30)])
    cat.assign(tmp_path / "a", "product", "S001", "front", main=True)
    cat.assign(tmp_path / "b", "product", "S001", "back")
    cat.assign(tmp_path / "c", "product", "S002", "front")
    cat.assign(tmp_path / "c", "product", "S003", "back")        # re-assigned: S002 loses it
    assert cat.panel_counts() == {"complete": 1, "incomplete": 1, "no images": 28}
    assert [p.sku for p in cat.panel(status="incomplete")] == ["S003"]
    assert [p.sku for p in cat.panel(limit=5, offset=10)] == [f"S{k:03d}" for k in range(10, 15)]
    cat.add_products([Product("S001", views=("front", "back", "side"))])   # re-imported: completeness kept
    row = cat.panel(sku_contains="S001")[0]
    assert (row.images, row.present, row.missing, row.has_main) == (2, ("back", "front"), ("side",), True)
    cat.delete_product("S003")
    assert cat.panel_counts()["incomplete"] == 1 and len(cat.panel()) == 29
    cat.close()
