"""Helpers for the GUI tests: a fast stand-in processor for pure-widget tests, drag/drop helpers."""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio_app.core.processing import Outcome, folder_for
from studio_app.core.processor import Cancelled
from studio_app.core.result import Item, ResultDocument, Source, Swatch, save


def jpeg_bytes(w: int = 64, h: int = 48, colour=(200, 40, 40)) -> bytes:
    img = np.full((h, w, 3), colour, np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class FakeProcessor:
    """Same ``process`` signature as the real Processor: writes a minimal valid product result.
    ``delay`` seconds per photo (checked for cancel every 10 ms); records every call."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def process(self, photo, out_root, *, force_kind=None, progress=None, cancel=None, skip_existing=False):
        photo, out_root = Path(photo), Path(out_root)
        with self.lock:
            self.calls.append(photo.name)
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.delay:
            if cancel and cancel():
                raise Cancelled()
            if progress:
                progress("working", (time.monotonic() - t0) / self.delay)
            time.sleep(0.01)
        img = cv2.imread(str(photo))
        if img is None:
            return Outcome(photo, None, None, error=f"{photo.name}: not a readable photo")
        h, w = img.shape[:2]
        folder = folder_for(photo, out_root)
        folder.mkdir(parents=True, exist_ok=True)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
        cv2.imwrite(str(folder / "mask.png"), mask)
        sha = hashlib.sha256(photo.read_bytes()).hexdigest()
        doc = ResultDocument(source=Source(str(photo.resolve()), sha, w, h), kind=force_kind or "product",
                             kind_confidence=0.9)
        save(doc, folder, replace_unreadable=True)
        return Outcome(photo, folder, doc)


def make_window(qtbot, tmp_path, processor, **kw):
    """The real window on ``<tmp>/out`` with its own settings file, shown and active (keyboard
    shortcuts go to the active window under xcb)."""
    from PySide6.QtCore import QSettings
    from studio_app.gui.main_window import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(tmp_path / "out", processor=processor, settings=settings, **kw)
    qtbot.addWidget(w)
    with qtbot.waitExposed(w):
        w.show()
    w.resize(1300, 850)
    with qtbot.waitActive(w):
        w.activateWindow()
        w.raise_()
    return w


def drop_files(widget, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    try:   # PySide6 >= 6.12 takes a QPointF here, earlier versions a QPoint
        enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    except TypeError:
        enter = QDragEnterEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, drop)


def drag(viewport, start, end, steps: int = 6, button=Qt.LeftButton) -> None:
    QTest.mousePress(viewport, button, Qt.NoModifier, start)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, button, Qt.NoModifier, end)


def make_product_result(root: Path, name: str, colour=(30, 60, 200), review: str = "approved",
                        warnings: tuple[str, ...] = ()) -> Path:
    """A product photo (a coloured block on white) and its result folder, written like the
    processor writes one (``warnings``: it needs review)."""
    h, w = 600, 800
    rgb = np.full((h, w, 3), 255, np.uint8)
    rgb[150:450, 250:550] = colour
    photo = root / "photos" / f"{name}.jpg"
    photo.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(photo), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    mask = np.zeros((h, w), np.uint8)
    mask[150:450, 250:550] = 255
    hexs = "#{:02x}{:02x}{:02x}".format(*colour)
    doc = ResultDocument(source=Source(str(photo.resolve()), hashlib.sha256(photo.read_bytes()).hexdigest(), w, h),
                         kind="product", kind_confidence=0.95,
                         items=[Item("product", [250.0, 150.0, 550.0, 450.0], "product.jpg",
                                     Swatch(list(colour), hexs, "blue", "product_swatch.png"))],
                         review={"status": review, "note": ""}, needs_review=bool(warnings),
                         warnings=list(warnings))
    folder = root / "out" / name
    from studio_app.core.processing import Processor
    Processor.write(doc, folder, rgb, mask)
    return folder
