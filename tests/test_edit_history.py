"""The undo history of mask edits: exact, and small enough to keep unlimited on big photos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from studio_app.core.edits import Editor, PackedMask

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "samples" / "sample_mug.jpg"


@pytest.mark.parametrize("kind", ["binary", "soft", "tiny", "empty"])
def test_packed_mask_round_trips_bit_exact(kind):
    if kind in ("binary", "soft"):
        m = np.zeros((4000, 6000), np.uint8)                     # a 24-MP mask
        cv2.ellipse(m, (3000, 2000), (1200, 1800), 0, 0, 360, 255, -1)
        if kind == "soft":
            m = cv2.GaussianBlur(m, (9, 9), 3)
    elif kind == "tiny":
        m = np.arange(15, dtype=np.uint8).reshape(3, 5)
    else:
        m = np.zeros((0, 7), np.uint8)
    p = PackedMask(m)
    out = p.unpack()
    assert out.dtype == np.uint8 and out.shape == m.shape and np.array_equal(out, m)
    if kind == "binary":
        assert p.binary and p.nbytes < m.nbytes / 200             # 24 MB -> tens of KB
    if kind == "soft":
        assert not p.binary and p.nbytes < m.nbytes / 20
    out[...] = 1 if out.size else 0                               # the unpacked array is writable
    assert np.array_equal(p.unpack(), m)


def test_brush_history_is_compact_and_undo_redo_exact(tmp_path, cpu_processor):
    out = cpu_processor.process(SAMPLE, tmp_path)
    assert out.error is None, out.error
    folder = Path(out.folder)
    ed = Editor(folder)
    h, w = ed.mask.shape
    read = lambda: cv2.imread(str(folder / ed.doc.mask), cv2.IMREAD_GRAYSCALE)  # noqa: E731
    states = [read()]
    history = []
    for i in range(12):                                          # 12 strokes, alternately add / erase
        before = ed.snapshot(with_mask=True)
        y = int(h * (0.1 + 0.06 * i))
        ed.paint_mask([(w * 0.05, y), (w * 0.6, y)], radius=max(3, w // 60), add=i % 2 == 0)
        history.append((before, ed.snapshot(with_mask=True)))
        states.append(read())
    assert not np.array_equal(states[-1], states[0])
    held = sum(b["mask"].nbytes + a["mask"].nbytes for b, a in history)
    assert held < 2 * len(history) * ed.mask.nbytes / 10, held   # far below full copies
    for i in range(len(history) - 1, -1, -1):                    # undo everything
        ed.restore(history[i][0])
        assert np.array_equal(read(), states[i])
    for i in range(len(history)):                                # and redo it
        ed.restore(history[i][1])
        assert np.array_equal(read(), states[i + 1])
    # a fresh editor (the app restarted) reads the same mask back from disk
    assert np.array_equal(Editor(folder).mask, states[-1])
