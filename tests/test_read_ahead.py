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


def test_a_script_that_returns_while_the_next_photo_is_read_ahead_exits_cleanly(tmp_path):
    """A program that processes a photo and ends while the next one is still being read ahead
    (its decode still in native code) exits with status 0 -- it used to abort the interpreter
    ("terminate called without an active exception", status 134) on the way out."""
    import subprocess
    import sys

    import cv2
    from conftest import REPO, require_weights
    require_weights("u2netp.onnx")
    for name, src in (("a.jpg", "persons/vton_models/049447_0.jpg"), ("b.jpg", "products/magento_luma/mb02-blue-0.jpg")):
        img = cv2.imread(str(dev_file(src)), cv2.IMREAD_COLOR)
        s = (24e6 / (img.shape[0] * img.shape[1])) ** 0.5          # 24 MP: a decode of ~0.15 s
        big = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
        assert cv2.imwrite(str(tmp_path / name), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    code = (
        "import sys; from pathlib import Path\n"
        "from studio_app.core.processing import Processor\n"
        "t = Path(sys.argv[1]); p = Processor(device='cpu')\n"
        "p.process(t / 'a.jpg', t / 'out')\n"
        "p.prefetch(t / 'b.jpg')\n"
        "p.process(t / 'a.jpg', t / 'out2')\n"       # starts reading b ahead, then returns
        "print('returned', flush=True)\n")
    import os
    # as a user's script runs: the library's own thread set-up, no display
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DISPLAY")}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True,
                       text=True, timeout=300, env=env)
    assert "returned" in r.stdout, r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-2000:]
