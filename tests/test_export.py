"""Export to catalog: every preset's rules checked on the files read back from disk, naming,
resume after an interruption, conflicts, colour management, memory.

Result documents come from real dev photos: products built by hand (white-background
Magento photos, mask from the white background), persons from the CCP ground-truth label maps
(zone boxes from the labelled garments), and - where the pipeline and weights are available -
from the real ``Processor``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from studio_app.core.export import export, load_preset, naming, preflight, presets, render
from studio_app.core.export.manifest import COLUMNS, read_csv
from studio_app.core.export.presets import PresetError
from studio_app.core.result import Item, ResultDocument, Source, Swatch, load, save
from tests.conftest import DEV, dev_file

ALL_PRESETS = ("generic", "amazon", "shopify", "zalando", "ebay", "google_merchant")
PRODUCTS = ("products/magento_luma/luma-stability-ball-pink.jpg", "products/magento_luma/mb02-blue-0.jpg",
            "products/magento_luma/mg04-bk-0.jpg")
PERSONS = ("persons/ccp/photos/0002.jpg", "persons/ccp/photos/0009.jpg")


# ---------------------------------------------------------------------------------------------
# building result documents by hand from real photos

def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _swatch(rgb, region, box, zone) -> Swatch | None:
    from ml.stages.swatch import dominant_colour
    sc = dominant_colour(rgb, region, box=box, max_samples=3000)   # small sample: fast tests
    if sc is None:
        return None
    return Swatch(rgb=[int(v) for v in sc.rgb], hex=sc.hex, family=sc.family, file=f"{zone}_swatch.png")


def product_doc(photo: Path, root: Path, *, status="approved", swatch=True, name=None) -> Path:
    from ml.io import load_image
    img = load_image(photo)
    rgb = img.rgb
    m = (np.abs(rgb.astype(np.int16) - 255).max(axis=2) > 18).astype(np.uint8) * 255
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    ys, xs = np.nonzero(m)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    sw = _swatch(rgb, m > 0, box, "product") if swatch else None
    folder = root / (name or photo.stem)
    folder.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(folder / "mask.png"), m)
    doc = ResultDocument(source=Source(str(photo.resolve()), img.sha256, img.width, img.height),
                         kind="product", kind_confidence=0.9,
                         items=[Item("product", box, "product.jpg", sw)], review={"status": status, "note": ""})
    save(doc, folder)
    return folder


def person_doc(photo: Path, root: Path, *, status="approved") -> Path:
    """Zone boxes from the CCP ground-truth labels (suggested zone mapping in labels.json)."""
    from ml.io import load_image
    img = load_image(photo)
    meta = json.loads((DEV / "persons/ccp/labels.json").read_text())
    names = meta["labels"]
    zmap = meta["suggested_zone_mapping"]
    lab = np.asarray(Image.open(DEV / "persons/ccp/labels" / (photo.stem + ".png")))
    assert lab.shape == img.rgb.shape[:2]
    person = lab > 0
    items = []
    for zone, groups in (("head", ["head"]), ("top", ["top", "full_body_garment"]),
                         ("bottom", ["bottom", "full_body_garment"]), ("shoes", ["shoes"])):
        ids = [names.index(n) for g in groups for n in zmap.get(g, []) if n in names]
        region = np.isin(lab, ids)
        if region.sum() < 200:
            continue
        ys, xs = np.nonzero(region)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        items.append(Item(zone, box, f"{zone}.jpg", _swatch(img.rgb, region, box, zone)))
    ys, xs = np.nonzero(person)
    fbox = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    items.append(Item("full", fbox, "full.jpg", None))
    folder = root / photo.stem
    folder.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(folder / "mask.png"), person.astype(np.uint8) * 255)
    doc = ResultDocument(source=Source(str(photo.resolve()), img.sha256, img.width, img.height),
                         kind="person", kind_confidence=0.95, items=items, review={"status": status, "note": ""})
    save(doc, folder)
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory, dev_data) -> Path:
    root = tmp_path_factory.mktemp("results")
    for rel in PRODUCTS:
        product_doc(dev_file(rel), root)
    for rel in PERSONS:
        person_doc(dev_file(rel), root)
    return root


def fresh_results(results: Path, tmp_path: Path) -> Path:
    """A private copy (exports change review status; some tests edit documents)."""
    dst = tmp_path / "results"
    shutil.copytree(results, dst)
    return dst


def read_back(path: Path):
    with Image.open(path) as im:
        return im.format, im.size, im.info.get("icc_profile"), np.asarray(im.convert("RGB")), im.getexif()


def assert_ok_but_small(rep, preset=None) -> None:
    """Everything exported, except images the preset blocks because the photo is too small for
    them (the 550x830 CCP photos cannot give Amazon's 1000 px without upscaling)."""
    assert not (rep.conflicts or rep.errors or rep.cancelled), rep.failure_lines()
    for f, why in rep.blocked:
        assert why.startswith("upscale:") and "background" not in why, (f, why)
    if preset is not None and preset.severity("upscale") != "block":
        assert not rep.blocked


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------
# every preset, checked on the files as written

@pytest.mark.parametrize("name", ALL_PRESETS)
def test_export_meets_preset_rules(results, tmp_path, name):
    preset = load_preset(name)
    res = fresh_results(results, tmp_path)
    out = tmp_path / "catalog"
    seen = []
    rep = export([res], name, out, progress=lambda i, n, t: seen.append((i, n)))
    assert_ok_but_small(rep, preset)
    n_items = sum(len([it for it in load(f).items if it.zone in preset.zones]) for f in res.iterdir())
    assert len(rep.rows) + len(rep.blocked) == n_items == 3 + sum(len(load(res / Path(p).stem).items) for p in PERSONS)
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)

    rows = read_csv(rep.manifest_csv)
    js = json.loads(rep.manifest_json.read_text())
    assert [r["file"] for r in rows] == [r["file"] for r in js["images"]]
    assert list(rows[0]) == list(COLUMNS) and js["complete"] is True
    for r in rows:
        fmt, (w, h), icc, a, _ = read_back(out / r["file"])
        assert fmt == render.PIL_FORMAT[preset.format]
        assert (w, h) == (int(r["width"]), int(r["height"]))
        assert preflight.is_srgb_profile(icc), r["file"]
        assert abs(w / h - preset.aspect) <= 0.01 * preset.aspect
        assert max(w, h) <= max(preset.width, preset.height)
        assert max(w, h) >= preset.min_long_side and w >= preset.min_width and h >= preset.min_height
        assert r["source_sha256"] == _sha(Path(r["source_path"])) and r["preset"] == name
        assert r["preflight"] in ("ok", "warn")
        if r["zone"] == "product":
            border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
            assert (border == preset.background).all(), f"{r['file']}: border not pure background"
            fill = preflight.measure(out / r["file"], preset.background)["fill"]
            assert fill >= max(preset.min_fill, 0.84), (r["file"], fill)
        if preset.swatch and r["colour_hex"]:
            fmt_s, size_s, icc_s, sa, _ = read_back(out / r["swatch_file"])
            assert size_s == (preset.swatch.size, preset.swatch.size)
            expect = np.array([int(r["colour_hex"][i:i + 2], 16) for i in (1, 3, 5)])
            assert np.abs(sa.reshape(-1, 3).mean(0) - expect).max() <= 3
    # no temporaries, no stray files
    assert not [p for p in out.iterdir() if p.name.startswith(".sc-tmp-")]
    held = {Path(b["result"]).name for b in js["blocked"]}
    for f in res.iterdir():
        assert load(f).status == ("approved" if f.name in held else "exported")


def test_amazon_sizes_and_names(results, tmp_path):
    rep = export([fresh_results(results, tmp_path)], "amazon", tmp_path / "amz")
    rows = {r["file"]: r for r in rep.rows}
    assert "mb02-blue-0.MAIN.jpg" in rows and "mb02-blue-0.SWCH.jpg" in listing(tmp_path / "amz")
    blocked = dict(rep.blocked)            # the persons are 550x830: too small for Amazon's zoom
    assert {"0002.MAIN.jpg", "0002.PT01.jpg"} <= set(blocked) and "enlarged" in blocked["0002.PT01.jpg"]
    assert not any(n.startswith("0002.") for n in listing(tmp_path / "amz"))
    for r in rows.values():
        assert 1000 <= max(r["width"], r["height"]) <= 2000


def test_person_zone_pad_and_crop_match_the_source(results, tmp_path):
    """pad: the zone is the source crop, centred on white; crop: widened to the portrait frame."""
    from ml.io import load_image
    res = fresh_results(results, tmp_path)
    folder = res / "0002"
    doc = load(folder)
    top = doc.item("top")
    rgb = load_image(doc.source.path).rgb
    x0, y0, x1, y1 = render.clip_box(top.box, rgb.shape[1], rgb.shape[0])

    rep = export([folder], "generic", tmp_path / "g")
    row = next(r for r in rep.rows if r["zone"] == "top")
    a = read_back(tmp_path / "g" / row["file"])[3]
    H, W = a.shape[:2]
    k = min(W / (x1 - x0), H / (y1 - y0))
    tw, th = round((x1 - x0) * k), round((y1 - y0) * k)
    ox, oy = (W - tw) // 2, (H - th) // 2
    ref = cv2.resize(rgb[y0:y1, x0:x1], (tw, th), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    got = a[oy:oy + th, ox:ox + tw].astype(int)
    assert np.abs(got - ref).mean() < 4
    if ox > 10:
        assert (a[:, : max(1, ox - 8)] >= 250).all()    # letterbox bars are the background

    keep = presets.from_dict(dict(json.loads(Path(load_preset("zalando").source).read_text()), on_model="keep"),
                             default_name="zalando_keep")
    rep = export([folder], keep, tmp_path / "z")
    row = next(r for r in rep.rows if r["zone"] == "top")
    a = read_back(tmp_path / "z" / row["file"])[3]
    assert abs(a.shape[1] / a.shape[0] - 1801 / 2600) < 0.01
    assert a.shape[1] >= 762 and a.shape[0] >= 1100
    # cropped to aspect: the photo reaches the canvas edges (no white bars on either side)
    assert a[:, :3].mean() < 250 or a[:, -3:].mean() < 250


# ---------------------------------------------------------------------------------------------
# interruption, resume, re-export

def test_cancel_then_resume_completes(results, tmp_path):
    res = fresh_results(results, tmp_path)
    out = tmp_path / "cat"
    full = export([fresh_results(results, tmp_path / "ref")], "generic", tmp_path / "ref_out")
    state = {"calls": 0}

    def cancel_after_first_photo():
        state["calls"] += 1
        return len([p for p in out.glob("*.jpg")]) >= 1

    rep = export([res], "generic", out, cancel=cancel_after_first_photo)
    assert rep.cancelled and not rep.ok
    first = listing(out)
    assert not [n for n in first if n.startswith(".sc-tmp-")]
    assert json.loads(rep.manifest_json.read_text())["complete"] is False
    assert 0 < len(rep.rows) < len(full.rows)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}

    rep2 = export([res], "generic", out)
    assert rep2.ok and not rep2.cancelled
    assert sorted(r["file"] for r in rep2.rows) == sorted(r["file"] for r in full.rows)
    for n, t in mtimes.items():            # finished files were recognised, not rewritten
        assert (out / n).stat().st_mtime_ns == t and n in rep2.unchanged
    for r in full.rows:                    # same bytes as an uninterrupted export
        assert _sha(out / r["file"]) == _sha(tmp_path / "ref_out" / r["file"])


def test_crash_midway_then_resume(results, tmp_path, monkeypatch):
    res = fresh_results(results, tmp_path)
    out = tmp_path / "cat"
    real_encode = render.encode
    calls = {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 13:       # the persons' 10 (blocked: too small for Amazon), a product + swatch, crash
            raise RuntimeError("simulated crash")
        return real_encode(*a, **kw)

    monkeypatch.setattr(render, "encode", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export([res], "amazon", out)
    assert not [p for p in out.iterdir() if p.name.startswith(".sc-tmp-")]
    # a file written just before the crash but not yet recorded in the state is adopted, not a conflict
    st = out / ".studio-catalog-export-amazon.json"
    d = json.loads(st.read_text())
    d["files"] = {}
    st.write_text(json.dumps(d))
    monkeypatch.setattr(render, "encode", real_encode)
    rep = export([res], "amazon", out)
    assert_ok_but_small(rep)
    assert len(rep.unchanged) >= 2 and not rep.conflicts
    names = sorted(p.name for p in out.glob("*.jpg"))
    rep2 = export([res], "amazon", out)
    assert sorted(p.name for p in out.glob("*.jpg")) == names
    assert rep2.written == [] and len(rep2.unchanged) == len(names)
    assert [r["file"] for r in rep2.rows] == [r["file"] for r in rep.rows]


def test_names_stable_when_skus_collide_and_photos_join(results, tmp_path):
    res = fresh_results(results, tmp_path)
    out = tmp_path / "cat"
    # two products under one SKU: the later (by folder) gets -2
    only = [res / Path(PRODUCTS[1]).stem, res / Path(PRODUCTS[2]).stem]
    rep = export(only, "amazon", out, sku="SKU 42/blue")
    names = sorted(r["file"] for r in rep.rows)
    assert names == ["SKU_42_blue.MAIN-2.jpg", "SKU_42_blue.MAIN.jpg"]
    by_src = {r["source_sha256"]: r["file"] for r in rep.rows}
    # a photo that sorts first joins: earlier items keep their names
    rep2 = export([res / Path(PRODUCTS[0]).stem, *only], "amazon", out, sku="SKU 42/blue")
    by_src2 = {r["source_sha256"]: r["file"] for r in rep2.rows}
    for k, v in by_src.items():
        assert by_src2[k] == v
    assert len(set(by_src2.values())) == 3 and rep2.ok


def test_edit_rerenders_only_that_item(results, tmp_path):
    res = fresh_results(results, tmp_path)
    out = tmp_path / "cat"
    folder = res / "0009"
    export([folder], "generic", out)
    doc = load(folder)
    it = doc.item("top")
    it.box = [it.box[0] + 10, it.box[1], it.box[2], it.box[3]]
    save(doc, folder)
    rep = export([folder], "generic", out)
    assert rep.written == ["0009_top.jpg"] and "0009_full.jpg" in rep.unchanged


def test_foreign_file_is_not_overwritten(results, tmp_path):
    res = fresh_results(results, tmp_path)
    out = tmp_path / "cat"
    out.mkdir()
    foreign = out / "mb02-blue-0_product.jpg"
    foreign.write_bytes(b"a photographer's own file")
    rep = export([res / "mb02-blue-0"], "generic", out)
    assert foreign.read_bytes() == b"a photographer's own file"
    assert [f for f, _ in rep.conflicts] == ["mb02-blue-0_product.jpg"] and not rep.ok
    assert "mb02-blue-0_product.jpg" not in [r["file"] for r in rep.rows]
    assert load(res / "mb02-blue-0").status == "approved"       # not complete: not marked exported
    rep = export([res / "mb02-blue-0"], "generic", out, overwrite=True)
    assert rep.ok and read_back(foreign)[0] == "JPEG"
    # our own file changed by someone afterwards is also not silently replaced
    foreign.write_bytes(b"edited by hand")
    doc = load(res / "mb02-blue-0")
    doc.items[0].box[0] += 1
    save(doc, res / "mb02-blue-0")
    rep = export([res / "mb02-blue-0"], "generic", out)
    assert foreign.read_bytes() == b"edited by hand" and rep.conflicts


def test_sources_are_never_modified(results, tmp_path):
    res = fresh_results(results, tmp_path)
    srcs = [Path(load(f).source.path) for f in res.iterdir()]
    before = {p: (_sha(p), p.stat().st_mtime_ns) for p in srcs}
    rep = export([res], "zalando", tmp_path / "z", template="{shot}_{zone}_{colour}")
    assert rep.ok and rep.written
    assert {p: (_sha(p), p.stat().st_mtime_ns) for p in srcs} == before


# ---------------------------------------------------------------------------------------------
# pre-flight: block vs warn, colour family, approval

def test_blocked_file_is_not_kept_and_warn_is_flagged(results, tmp_path, monkeypatch):
    res = fresh_results(results, tmp_path)
    user = tmp_path / "presets"
    user.mkdir()
    (user / "tiny.json").write_text(json.dumps({
        "extends": "generic", "title": "1 KB limit", "max_file_mb": 0.001,
        "checks": {"file_size": "block", "srgb": "warn"}}))
    (user / "tiny_warn.json").write_text(json.dumps({
        "extends": "tiny", "checks": {"file_size": "warn"}}))
    monkeypatch.setenv("STUDIO_CATALOG_PRESETS", str(user))
    rep = export([res / "mb02-blue-0"], "tiny", tmp_path / "t")
    assert rep.blocked and rep.blocked[0][0] == "mb02-blue-0_product.jpg"
    assert "file_size" in rep.blocked[0][1] and "MB limit" in rep.blocked[0][1]
    assert not (tmp_path / "t" / "mb02-blue-0_product.jpg").exists()
    assert rep.rows == [] and json.loads(rep.manifest_json.read_text())["blocked"][0]["reasons"]
    assert not [p for p in (tmp_path / "t").iterdir() if p.name.startswith(".sc-tmp-")]

    rep = export([res / "mb02-blue-0"], "tiny_warn", tmp_path / "w")
    assert rep.ok and rep.rows[0]["preflight"] == "warn" and "file_size" in rep.rows[0]["notes"]
    assert (tmp_path / "w" / "mb02-blue-0_product.jpg").is_file()


def test_file_size_limit_lowers_quality_first(results, tmp_path, monkeypatch):
    res = fresh_results(results, tmp_path)
    user = tmp_path / "presets"
    user.mkdir()
    base = export([res / "0002"], "generic", tmp_path / "base")
    full = next(r for r in base.rows if r["zone"] == "full")
    limit = (tmp_path / "base" / full["file"]).stat().st_size * 0.7
    (user / "small.json").write_text(json.dumps({"extends": "generic", "max_file_mb": limit / 1048576,
                                                 "zones": ["full"]}))
    monkeypatch.setenv("STUDIO_CATALOG_PRESETS", str(user))
    rep = export([res / "0002"], "small", tmp_path / "s")
    assert rep.ok and [r["zone"] for r in rep.rows] == ["full"]
    assert (tmp_path / "s" / full["file"]).stat().st_size <= limit


def test_google_flags_missing_colour(results, tmp_path, dev_data):
    res = tmp_path / "res"
    product_doc(dev_file(PRODUCTS[1]), res, swatch=False)
    rep = export([res], "google_merchant", tmp_path / "g")
    assert rep.ok and rep.rows[0]["preflight"] == "warn" and "colour" in rep.rows[0]["notes"]
    assert rep.rows[0]["swatch_file"] == ""
    rep = export([results / "mb02-blue-0"], "google_merchant", tmp_path / "g2")
    assert rep.rows[0]["preflight"] == "ok" and rep.rows[0]["file"].startswith("mb02-blue-0_")
    assert rep.rows[0]["colour_hex"].lstrip("#") in rep.rows[0]["file"]


def test_only_approved_by_default(results, tmp_path, dev_data):
    res = tmp_path / "res"
    product_doc(dev_file(PRODUCTS[0]), res, status="pending", swatch=False)
    product_doc(dev_file(PRODUCTS[1]), res, status="rejected", swatch=False)
    product_doc(dev_file(PRODUCTS[2]), res, status="approved", swatch=False)
    rep = export([res], "generic", tmp_path / "a")
    assert [r["zone"] for r in rep.rows] == ["product"] and len(rep.skipped) == 2
    assert load(res / Path(PRODUCTS[0]).stem).status == "pending"
    rep = export([res], "generic", tmp_path / "b", only_approved=False)
    assert len(rep.rows) == 2                                      # rejected stays out
    assert load(res / Path(PRODUCTS[1]).stem).status == "rejected"


# ---------------------------------------------------------------------------------------------
# presets

def test_preset_errors_name_file_and_field(tmp_path, monkeypatch):
    user = tmp_path / "presets"
    user.mkdir()
    monkeypatch.setenv("STUDIO_CATALOG_PRESETS", str(user))
    cases = {
        "q.json": ({"canvas": {"width": 1000, "height": 1000}, "quality": "high"}, "field 'quality'"),
        "typo.json": ({"canvas": {"width": 1000, "height": 1000}, "backgroud": [255, 255, 255]}, "field 'backgroud'"),
        "bg.json": ({"canvas": {"width": 1000, "height": 1000}, "background": [255, 255]}, "field 'background'"),
        "nocanvas.json": ({"format": "jpeg"}, "field 'canvas'"),
        "chk.json": ({"canvas": {"width": 900, "height": 900}, "checks": {"fill": "maybe"}}, "field 'checks.fill'"),
        "tpl.json": ({"canvas": {"width": 900, "height": 900}, "template": "{sku}_{size}"}, "field 'template'"),
        "ext.json": ({"extends": "nosuch"}, "field 'extends'"),
        "min.json": ({"canvas": {"width": 400, "height": 400}, "min_size": {"width": 500, "height": 500}},
                     "field 'canvas'"),
    }
    for fname, (body, expect) in cases.items():
        (user / fname).write_text(json.dumps(body))
        with pytest.raises(PresetError) as ei:
            load_preset(fname[:-5])
        assert fname in str(ei.value) and expect in str(ei.value), str(ei.value)
    (user / "broken.json").write_text('{"canvas": {"width": 1000,\n "height": }}')
    with pytest.raises(PresetError, match=r"broken\.json: not valid JSON .* line 2"):
        load_preset("broken")
    # listed as broken, the good built-in ones still listed
    listed = {n: e for n, _t, _p, e in presets.list_presets()}
    assert set(ALL_PRESETS) <= set(listed) and listed["q"] and listed["amazon"] is None


def test_user_preset_folder_adds_and_overrides(tmp_path, monkeypatch):
    user = tmp_path / "presets"
    user.mkdir()
    (user / "my_shop.json").write_text(json.dumps({
        "title": "My shop", "canvas": {"width": 800, "height": 1000}, "format": "png",
        "background": [245, 245, 245], "template": "{shot}-{zone}"}))
    (user / "amazon.json").write_text(json.dumps({"extends": "amazon", "quality": 95}))
    monkeypatch.setenv("STUDIO_CATALOG_PRESETS", str(user))
    p = load_preset("my_shop")
    assert (p.width, p.height, p.format, p.ext, p.background) == (800, 1000, "png", "png", (245, 245, 245))
    a = load_preset("amazon")
    assert a.quality == 95 and a.min_fill == 0.85 and a.name == "amazon"
    b = load_preset(str(presets.builtin_dir() / "amazon.json"))
    assert b.quality == 90 and a.digest != b.digest


def test_builtin_presets_carry_marketplace_numbers():
    amz = load_preset("amazon")
    assert amz.background == (255, 255, 255) and amz.min_fill == 0.85 and amz.min_long_side == 1000
    assert amz.max_long_side == 10000 and amz.format == "jpeg" and amz.swatch.size == 30
    z = load_preset("zalando")
    assert (z.width, z.height, z.min_width, z.min_height) == (1801, 2600, 762, 1100)
    assert abs(z.height / z.width - 1.44) < 0.005
    s = load_preset("shopify")
    assert (s.width, s.height) == (2048, 2048)
    g = load_preset("generic")
    assert g.width == g.height == 1000 and g.min_width == g.min_height == 500 and g.swatch.size == 50
    assert load_preset("ebay").min_long_side == 500 and load_preset("ebay").width == 1600
    gm = load_preset("google_merchant")
    assert gm.width >= 1500 and gm.severity("colour") in ("warn", "block")


def test_small_source_is_not_upscaled_beyond_the_minimum(tmp_path, dev_data):
    """A 198 px grocery photo: generic canvas drops to its 500 px minimum, not the 1000 px target."""
    photo = next(iter(sorted((DEV / "products/grocery_iconic").glob("*.jpg"))), None)
    if photo is None:
        pytest.skip("no grocery photos")
    res = tmp_path / "res"
    product_doc(photo, res)
    rep = export([res], "generic", tmp_path / "g")
    assert (rep.rows[0]["width"], rep.rows[0]["height"]) == (500, 500)
    rep = export([res], "amazon", tmp_path / "a")      # Amazon: no upscaling -> blocked, not blown up
    assert not rep.rows and "upscale: enlarged" in rep.blocked[0][1]


# ---------------------------------------------------------------------------------------------
# colour management and metadata

def test_wide_gamut_source_keeps_its_colour(tmp_path):
    """An Adobe-RGB-tagged photo: exported pixels are the sRGB equivalent (no shift beyond JPEG
    rounding) and the file carries an sRGB profile."""
    from tests.badinputs import adobe_rgb_icc, adobe_rgb_to_srgb
    patch_adobe = (60, 170, 80)
    expect = adobe_rgb_to_srgb(patch_adobe)
    assert np.abs(expect - np.array(patch_adobe)).max() > 15       # the test can tell a shift
    a = np.full((600, 800, 3), 255, np.uint8)
    a[150:450, 250:550] = patch_adobe
    photo = tmp_path / "adobe.png"
    Image.fromarray(a).save(photo, icc_profile=adobe_rgb_icc())
    res = tmp_path / "res"
    product_doc(photo, res)
    rep = export([res], "amazon", tmp_path / "amazon")          # a 300 px patch: no zoom-size image
    assert rep.blocked and "upscale" in rep.blocked[0][1] and not rep.rows
    for name in ("generic",):
        rep = export([res], name, tmp_path / name)
        fmt, (w, h), icc, out, exif = read_back(tmp_path / name / rep.rows[0]["file"])
        assert preflight.is_srgb_profile(icc)
        centre = out[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20].reshape(-1, 3).mean(0)
        assert np.abs(centre - expect).max() <= 3, (centre, expect)
        assert (out[0] == 255).all()


def test_exif_orientation_applied_once(tmp_path, monkeypatch):
    from tests.badinputs import _exif_with_orientation
    # upright: 400 wide x 600 high, a red block at the top
    up = np.full((600, 400, 3), 255, np.uint8)
    up[60:200, 100:300] = (200, 30, 30)
    stored = np.ascontiguousarray(np.rot90(up, 1))      # tag 6: the viewer rotates 90° clockwise
    photo = tmp_path / "rot.jpg"
    Image.fromarray(stored).save(photo, quality=95, exif=_exif_with_orientation(6))
    from ml.io import load_image
    img = load_image(photo)
    assert img.rgb.shape[:2] == (600, 400)
    res = tmp_path / "res"
    folder = res / "rot"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "mask.png"), np.full((600, 400), 255, np.uint8))
    save(ResultDocument(source=Source(str(photo), img.sha256, 400, 600), kind="person", kind_confidence=1.0,
                        items=[Item("full", [0, 0, 400, 600], "full.jpg", None)],
                        review={"status": "approved", "note": ""}), folder)
    user = tmp_path / "presets"
    user.mkdir()
    (user / "keep.json").write_text(json.dumps({"extends": "zalando", "exif": "keep", "upscale": True}))
    monkeypatch.setenv("STUDIO_CATALOG_PRESETS", str(user))
    for name in ("zalando", "keep"):
        rep = export([res], name, tmp_path / name)
        _f, (w, h), _icc, out, exif = read_back(tmp_path / name / rep.rows[0]["file"])
        assert h > w
        top, bottom = out[: h // 3].reshape(-1, 3).mean(0), out[2 * h // 3:].reshape(-1, 3).mean(0)
        assert top[0] - top[1] > 25 and bottom.min() > 240       # red block stays at the top
        assert exif.get(0x0112, 1) == 1
        if name == "keep":
            assert exif.get(0x010F) == "BadInputs"
        else:
            assert 0x010F not in exif


# ---------------------------------------------------------------------------------------------
# naming units

def test_naming_sanitises_and_resolves_collisions():
    assert naming.render("{sku}_{zone}", {"sku": "Bluse Grün/1", "zone": "top", "ext": "jpg"}) == "Bluse_Grun_1_top.jpg"
    assert naming.render("{sku}_{colour}_{zone}.{ext}", {"sku": "A", "colour": "", "zone": "top", "ext": "png"}) == "A_top.png"
    assert naming.render("{sku}.{view}", {"sku": "con", "view": "MAIN", "ext": "jpg"}) == "_con.MAIN.jpg"
    assert len(naming.render("{sku}", {"sku": "x" * 500, "ext": "jpg"})) <= naming.MAX_LEN
    assert naming.validate_template("{sku}/{zone}") and naming.validate_template("{nope}")
    n = naming.Namer()
    assert [n.assign("a", "x.jpg"), n.assign("b", "X.jpg"), n.assign("a", "x.jpg")] == ["x.jpg", "X-2.jpg", "x.jpg"]
    again = naming.Namer(n.records)
    assert again.assign("c", "x.jpg") == "x-3.jpg" and again.assign("b", "X.jpg") == "X-2.jpg"


# ---------------------------------------------------------------------------------------------
# CLI

def test_cli_export_and_list(results, tmp_path, capsys):
    from studio_app.cli import main
    res = fresh_results(results, tmp_path)
    assert main(["export", "--list-presets", str(res), "--preset", "x", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for n in ALL_PRESETS:
        assert n in out
    assert main(["export", str(res), "--preset", "nosuch", "--out", str(tmp_path / "o")]) == 2
    assert "unknown preset 'nosuch'" in capsys.readouterr().err
    rc = main(["export", str(res / "mb02-blue-0"), "--preset", "ebay", "--out", str(tmp_path / "o"),
               "--sku", "B-42"])
    err = capsys.readouterr().err
    assert rc == 0 and "manifest:" in err and (tmp_path / "o" / "B-42_main.jpg").is_file()
    (tmp_path / "o2").mkdir()
    (tmp_path / "o2" / "B-42_main.jpg").write_bytes(b"other")
    rc = main(["export", str(res / "mb02-blue-0"), "--preset", "ebay", "--out", str(tmp_path / "o2"), "--sku", "B-42"])
    err = capsys.readouterr().err
    assert rc == 1 and "conflict  B-42_main.jpg:" in err


# ---------------------------------------------------------------------------------------------
# memory stays flat

def test_memory_flat_over_many_photos(tmp_path, dev_data):
    photos = sorted((DEV / "products/grocery_iconic").glob("*.jpg"))[:40]
    if len(photos) < 20:
        pytest.skip("not enough small photos")
    res = tmp_path / "res"
    for p in photos:
        product_doc(p, res, swatch=False)
    samples: list[int] = []
    tracemalloc.start()
    try:
        rep = export([res], "generic", tmp_path / "g",
                     progress=lambda i, n, t: samples.append(tracemalloc.get_traced_memory()[0]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.ok and len(rep.rows) == len(photos)
    n = len(samples)
    early = np.mean(samples[n // 4: n // 2])
    late = np.mean(samples[3 * n // 4:])
    per_photo = (late - early) / (n / 2)
    assert per_photo < 20_000, f"memory grows {per_photo:.0f} bytes per photo"
    assert peak - samples[1] < 40_000_000


# ---------------------------------------------------------------------------------------------
# documents from the real processor (when the pipeline and its models are available)

@pytest.mark.slow
def test_export_real_processor_documents(tmp_path, dev_data):
    pytest.importorskip("ml.stages.product")
    from tests.conftest import require_weights
    require_weights("pose_detection.tflite", "pose_landmark_full.tflite", "u2netp.onnx")
    import torch
    torch.set_num_threads(1)
    from studio_app.core.processing import Processor
    proc = Processor(device="cpu")
    res = tmp_path / "res"
    for rel in (PRODUCTS[1], PERSONS[0]):
        outcome = proc.process(dev_file(rel), res)
        assert outcome.ok, outcome.error
    rep = export([res], "amazon", tmp_path / "a", only_approved=False)
    assert_ok_but_small(rep)
    kinds = {load(f).kind for f in res.iterdir()}
    assert kinds == {"product", "person"}
    for r in rep.rows:
        fmt, (w, h), icc, a, _ = read_back(tmp_path / "a" / r["file"])
        assert max(w, h) >= 1000 and preflight.is_srgb_profile(icc)
        if r["zone"] == "product":
            assert (np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]) == 255).all()
