"""A fast fake ``Processor`` for driving ``Studio`` headless, and an event recorder. Qt-free: the
Qt-blocked subprocess test imports this module too."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ml.io import sha256_file
from ml.types import KEYPOINT_NAMES
from studio_app.core.processing import Outcome
from studio_app.core.processor import Cancelled
from studio_app.core.result import DocumentError, Item, Keypoint, ResultDocument, Source
from studio_app.core.result_folder import MASK_NAME, ResultFolder, item_file


def write_photo(path: Path, w: int = 320, h: int = 240, seed: int = 0) -> Path:
    """A small JPEG with a bright disc; ``seed`` changes the content (a replaced file)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 230, np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(w, h) // 3, tuple(int(v) for v in rng.integers(0, 200, 3)), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix if path.suffix.lower() in (".png", ".jpg") else ".jpg", img)
    path.write_bytes(buf.tobytes())
    return path


def person_document(photo: Path, w: int, h: int, sha: str) -> ResultDocument:
    kps = [Keypoint(n, w * 0.5, h * (0.1 + 0.8 * i / len(KEYPOINT_NAMES)), 0.9) for i, n in enumerate(KEYPOINT_NAMES)]
    items = [Item("top", [w * 0.2, h * 0.2, w * 0.8, h * 0.5], item_file("top")),
             Item("full", [w * 0.1, h * 0.05, w * 0.9, h * 0.95], item_file("full"))]
    return ResultDocument(source=Source(str(photo.resolve()), sha, w, h), kind="person", kind_confidence=0.9,
                          mask=MASK_NAME, keypoints=kps, items=items)


class FakeProcessor:
    """Writes a real result folder (person document, mask, item previews) in milliseconds.

    ``gate``: when set, each photo waits for it (tests of priorities and cancel). ``fail``:
    names (substring) that fail with a one-line error. ``order``: photos in processing order."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None, fail: str = "bad"):
        self.delay, self.gate, self.fail = delay, gate, fail
        self.order: list[str] = []
        self.closed = False

    def describe(self) -> str:
        return "fake processor"

    def close(self) -> None:
        self.closed = True

    def process(self, photo, out_root, *, force_kind=None, skip_existing=False, progress=None, cancel=None):
        photo = Path(photo)
        self.order.append(photo.name)
        for i in range(5):
            if progress:
                progress("stage", i / 5)
            if cancel and cancel():
                raise Cancelled()
            if self.gate is not None:
                while not self.gate.wait(0.01):
                    if cancel and cancel():
                        raise Cancelled()
            time.sleep(self.delay / 5)
        if self.fail and self.fail in photo.name:
            return Outcome(photo, None, None, error=f"Cannot load '{photo.name}': it is truncated.")
        rgb = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if rgb is None:
            return Outcome(photo, None, None, error=f"Cannot load '{photo.name}'")
        rgb = rgb[:, :, ::-1].copy()
        h, w = rgb.shape[:2]
        sha = sha256_file(photo)
        rf = ResultFolder.for_photo(photo, out_root, sha)
        try:
            prev = rf.load() if rf.has_document() else None
        except DocumentError as exc:
            return Outcome(photo, rf.path, None, error=f"{photo.name}: {exc}")
        if skip_existing and prev is not None and prev.source.sha256 == sha:
            return Outcome(photo, rf.path, prev, skipped=True)
        doc = person_document(photo, w, h, sha)
        if force_kind:
            doc.kind_override = True
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, 255, -1)
        rf.write_all(doc, rgb, mask)
        return Outcome(photo, rf.path, doc)


class Recorder:
    """Every Studio event in order: ``rec.of("document_changed")`` -> payloads."""

    def __init__(self, studio):
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        studio.events.connect_all(self)

    def __call__(self, name, payload):
        with self.lock:
            self.events.append((name, payload))

    def of(self, name: str) -> list:
        with self.lock:
            return [p for n, p in self.events if n == name]

    def wait_for(self, name: str, pred=lambda p: True, timeout: float = 10.0):
        t = time.monotonic() + timeout
        while time.monotonic() < t:
            hits = [p for p in self.of(name) if pred(p)]
            if hits:
                return hits[-1]
            time.sleep(0.02)
        raise AssertionError(f"no {name} event matching within {timeout} s; got {[n for n, _ in self.events]}")
