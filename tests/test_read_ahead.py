"""Batch pipelining: the Studio tells the processor which photo comes next; the processor reads
and decodes it while the current photo's outputs are written. The results are the same as
without it, a photo changed in between is read again, and a photo is never read twice."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import dev_file
from studio_app.core.session import Session
from studio_app.core.studio import Studio


def _strip(doc: dict) -> dict:
    doc = dict(doc)
    for k in ("created", "timings", "processed_at", "id"):
        doc.pop(k, None)
    doc["source"] = {k: v for k, v in doc["source"].items() if k != "path"}
    return doc


@pytest.fixture
def photos(tmp_path):
    a = shutil.copy(dev_file("cutouts/shop_saleor/images/saleor__saleor-apple-drink.jpg"), tmp_path / "a.jpg")
    b = shutil.copy(dev_file("cutouts/shop_saleor/images/saleor__saleor-apple-drink.jpg"), tmp_path / "b.jpg")
    return tmp_path, [a, b]


def _reads(monkeypatch):
    """Every read of a photo file: (path, the thread that read it)."""
    import threading

    import ml.io
    seen = []
    real = ml.io.read_photo

    def counting(path):
        seen.append((str(path), threading.current_thread().name))
        return real(path)
    monkeypatch.setattr(ml.io, "read_photo", counting)
    return seen


def test_next_photo_is_read_once_ahead_and_gives_the_same_result(cpu_processor, photos, monkeypatch):
    tmp, (a, b) = photos
    seen = _reads(monkeypatch)
    cpu_processor.prefetch(b)
    out_a = cpu_processor.process(a, tmp / "ahead")
    assert out_a.ok, out_a.error
    out_b = cpu_processor.process(b, tmp / "ahead")           # taken from the read-ahead
    assert out_b.ok, out_b.error
    assert [p for p, _ in seen] == [str(a), str(b)]
    assert seen[1][1] == "studio-read-ahead"                  # b was read while a was written
    plain = cpu_processor.process(b, tmp / "plain")
    assert plain.ok
    got = json.loads((out_b.folder / "result.json").read_text())
    ref = json.loads((plain.folder / "result.json").read_text())
    assert _strip(got) == _strip(ref)
    assert (out_b.folder / "mask.png").read_bytes() == (plain.folder / "mask.png").read_bytes()


def test_a_photo_changed_after_the_read_ahead_is_read_again(cpu_processor, photos, monkeypatch):
    tmp, (a, b) = photos
    cpu_processor.prefetch(b)
    assert cpu_processor.process(a, tmp / "out").ok
    # the tethered camera rewrites b after it was read ahead: the new bytes are processed
    from PIL import Image
    Image.open(a).transpose(Image.FLIP_LEFT_RIGHT).save(b, quality=90)
    out = cpu_processor.process(b, tmp / "out")
    assert out.ok
    import hashlib
    assert out.doc.source.sha256 == hashlib.sha256(b.read_bytes()).hexdigest()


def test_studio_batch_reads_each_photo_once(cpu_processor, photos, monkeypatch):
    tmp, paths = photos
    seen = _reads(monkeypatch)
    studio = Studio(tmp / "res", cpu_processor, session=Session(tmp / "res", autosave=False))
    try:
        for p in paths:
            studio.enqueue(p)
        studio.start()
        assert studio.wait_idle(300)
    finally:
        studio.close()
    assert sorted(p for p, _ in seen) == sorted(str(p) for p in paths)      # each photo read once
    assert [t for _, t in seen].count("studio-read-ahead") == 1              # the second one ahead
    assert all((tmp / "res" / p.stem / "result.json").is_file() for p in paths)


@pytest.mark.parametrize("kind,code", [("qr", "TEE-01"), ("code128", "NEW-7")])
def test_the_processor_reads_a_barcode_card_on_its_working_copy(cpu_processor, tmp_path, kind, code):
    """The card check needs no second decode of the photo: the processor reads the card on the
    working copy it already has and hands it to the Studio with the outcome."""
    from tests.catalog_fixtures import card_photo
    from studio_app.core.processing import UNREAD
    card = card_photo(tmp_path / f"{kind}.jpg", kind, code)
    out = cpu_processor.process(card, tmp_path / "out")
    assert out.ok and out.card is not UNREAD and out.card is not None
    assert (out.card.code, out.card.valid) == (code, True)
    plain = cpu_processor.process(dev_file("cutouts/shop_saleor/images/saleor__saleor-apple-drink.jpg"),
                                  tmp_path / "out")
    assert plain.ok and plain.card is None
