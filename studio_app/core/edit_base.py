"""What every operator edit shares (Qt-free): :class:`EditError` and the small document helpers
of :mod:`studio_app.core.edits` and :mod:`studio_app.core.edits_apparel` (a module of its own so
that those two do not import each other). ``edits`` re-exports them: callers keep importing
``EditError`` from there."""
from __future__ import annotations

import copy

from ml.types import KEYPOINT_NAMES, Keypoints
from .result import ResultDocument


class EditError(ValueError):
    """An edit that cannot be applied; the message is for the operator."""


def clone(doc: ResultDocument) -> ResultDocument:
    return ResultDocument.from_dict(copy.deepcopy(doc.to_dict()))


def keypoints_of(doc: ResultDocument) -> Keypoints:
    kp = Keypoints.empty()
    for i, name in enumerate(KEYPOINT_NAMES):
        k = doc.keypoint(name)
        if k is not None:
            kp.xy[i] = (k.x, k.y)
            kp.score[i] = k.score
    return kp


def clip_box(box, w: int, h: int) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 < x0:
        x0, x1 = x1, x0
    if y1 < y0:
        y0, y1 = y1, y0
    x0, x1 = max(0.0, min(x0, w - 1.0)), max(1.0, min(x1, float(w)))
    y0, y1 = max(0.0, min(y0, h - 1.0)), max(1.0, min(y1, float(h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise EditError("the box is too small (at least 2 x 2 pixels inside the photo)")
    return [round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)]
