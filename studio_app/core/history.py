"""Operator edits as small typed values, and the undo history with a memory budget. Qt-free.

An :class:`Edit` is what an overlay or the inspector asks for (``SetBox("top", box)``); the Studio
applies it to the photo's :class:`~studio_app.core.edits.Editor` and records a :class:`Step`: the
document before and after (a dict, a few KB) and, for mask edits, the mask before and after
packed (:class:`~studio_app.core.edits.PackedMask`, tens of KB for 24 MP). No step holds an
editor or pixels of the photo, so the history of a whole shift stays small; when it grows past
``budget_bytes`` the oldest steps (of any photo) are dropped first.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

UNDO_BUDGET_BYTES = 64 * 1024 * 1024


# ---- edits --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """Base class: ``text`` is the Undo menu's label, ``touches_mask`` whether the mask changes."""
    touches_mask = False
    review = False

    @property
    def text(self) -> str:
        return type(self).__name__

    def apply(self, editor) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class MoveKeypoint(Edit):
    name: str
    x: float
    y: float

    @property
    def text(self) -> str:
        return f"Move {self.name.replace('_', ' ')}"

    def apply(self, ed):
        return ed.move_keypoint(self.name, self.x, self.y)


@dataclass(frozen=True)
class SetBox(Edit):
    zone: str
    box: tuple
    lock: bool = True

    @property
    def text(self) -> str:
        return f"Set the {self.zone} box"

    def apply(self, ed):
        return ed.set_box(self.zone, list(self.box), self.lock)


@dataclass(frozen=True)
class SetLocked(Edit):
    zone: str
    locked: bool

    @property
    def text(self) -> str:
        return f"{'Lock' if self.locked else 'Unlock'} the {self.zone} box"

    def apply(self, ed):
        return ed.set_locked(self.zone, self.locked)


@dataclass(frozen=True)
class AddZone(Edit):
    zone: str
    box: tuple | None = None

    @property
    def text(self) -> str:
        return f"Add the {self.zone} zone"

    def apply(self, ed):
        return ed.add_zone(self.zone, None if self.box is None else list(self.box))


@dataclass(frozen=True)
class DeleteZone(Edit):
    zone: str

    @property
    def text(self) -> str:
        return f"Delete the {self.zone} zone"

    def apply(self, ed):
        return ed.delete_zone(self.zone)


@dataclass(frozen=True)
class SetSwatch(Edit):
    zone: str
    rgb: tuple

    @property
    def text(self) -> str:
        return f"Set the {self.zone} colour"

    def apply(self, ed):
        return ed.set_swatch(self.zone, list(self.rgb))


@dataclass(frozen=True)
class PickColour(Edit):
    """Eyedropper at (x, y) of the photo for ``zone``'s swatch."""
    zone: str
    x: float
    y: float

    @property
    def text(self) -> str:
        return f"Pick the {self.zone} colour"

    def apply(self, ed):
        return ed.set_swatch(self.zone, ed.sample_colour(self.x, self.y))


@dataclass(frozen=True)
class RerunKmeans(Edit):
    zone: str

    @property
    def text(self) -> str:
        return f"Re-measure the {self.zone} colour"

    def apply(self, ed):
        return ed.rerun_kmeans(self.zone)


@dataclass(frozen=True)
class FitToGarment(Edit):
    """The zone's box set to its garment's own pixels in the garment map (with the pipeline's
    margin) and locked; its colour measured again on that garment."""
    zone: str

    @property
    def text(self) -> str:
        return f"Fit the {self.zone} box to the garment"

    def apply(self, ed):
        return ed.fit_to_garment(self.zone)


@dataclass(frozen=True)
class SetCategory(Edit):
    """The category: of a product photo (``zone`` None or ``product``), or of a person's item."""
    name: str
    zone: str | None = None

    @property
    def text(self) -> str:
        what = "the category" if self.zone in (None, "product") else f"the {self.zone} category"
        return f"Set {what} to {self.name.replace('_', ' ')}"

    def apply(self, ed):
        return ed.set_category(self.name, self.zone)


@dataclass(frozen=True)
class PaintMask(Edit):
    """A brush stroke through ``points`` ((x, y) pairs) of ``radius`` px; ``add`` False erases."""
    points: tuple
    radius: float
    add: bool = True
    touches_mask = True

    @property
    def text(self) -> str:
        return "Brush the mask" if self.add else "Erase from the mask"

    def apply(self, ed):
        return ed.paint_mask([tuple(p) for p in self.points], self.radius, self.add)


@dataclass(frozen=True)
class ResetMask(Edit):
    touches_mask = True

    @property
    def text(self) -> str:
        return "Reset the mask"

    def apply(self, ed):
        return ed.reset_mask()


@dataclass(frozen=True)
class SetReview(Edit):
    status: str
    note: str | None = None
    review = True

    @property
    def text(self) -> str:
        return {"approved": "Approve", "rejected": "Reject"}.get(self.status, f"Mark {self.status}")

    def apply(self, ed):
        return ed.set_review(self.status, self.note)


# ---- history ------------------------------------------------------------------------------------
def snapshot_bytes(snap: dict) -> int:
    n = len(json.dumps(snap["doc"], separators=(",", ":")))
    m = snap.get("mask")
    return n + (m.nbytes if m is not None else 0)


@dataclass
class Step:
    text: str
    before: dict
    after: dict
    nbytes: int = 0

    def __post_init__(self):
        self.nbytes = snapshot_bytes(self.before) + snapshot_bytes(self.after)


@dataclass
class _Stack:
    done: list[Step] = field(default_factory=list)
    undone: list[Step] = field(default_factory=list)


class History:
    """Undo/redo stacks per photo (keyed by the caller), sharing one memory budget. Thread-safe."""

    def __init__(self, budget_bytes: int = UNDO_BUDGET_BYTES, on_trim: Callable[[str], None] | None = None):
        self.budget_bytes = budget_bytes
        self.on_trim = on_trim
        self._stacks: "OrderedDict[str, _Stack]" = OrderedDict()
        self._order: list[tuple[str, Step]] = []          # oldest first, for trimming
        self._lock = threading.Lock()
        self.nbytes = 0

    def push(self, key: str, step: Step) -> None:
        with self._lock:
            st = self._stacks.setdefault(key, _Stack())
            for s in st.undone:
                self._drop(key, s)
            st.undone.clear()
            st.done.append(step)
            self._order.append((key, step))
            self.nbytes += step.nbytes
            trimmed = self._trim()
        for k in trimmed:
            if self.on_trim is not None:
                self.on_trim(k)

    def _drop(self, key: str, step: Step) -> None:
        self.nbytes -= step.nbytes
        try:
            self._order.remove((key, step))
        except ValueError:
            pass

    def _trim(self) -> set[str]:
        out = set()
        while self.nbytes > self.budget_bytes and len(self._order) > 1:
            key, step = self._order.pop(0)
            st = self._stacks[key]
            for lst in (st.done, st.undone):
                if step in lst:
                    lst.remove(step)
            self.nbytes -= step.nbytes
            out.add(key)
        return out

    def undo(self, key: str) -> Step | None:
        with self._lock:
            st = self._stacks.get(key)
            if st is None or not st.done:
                return None
            step = st.done.pop()
            st.undone.append(step)
            return step

    def redo(self, key: str) -> Step | None:
        with self._lock:
            st = self._stacks.get(key)
            if st is None or not st.undone:
                return None
            step = st.undone.pop()
            st.done.append(step)
            return step

    def forget(self, key: str) -> None:
        """The document was rewritten (processed again): its steps no longer apply."""
        with self._lock:
            st = self._stacks.pop(key, None)
            if st is not None:
                for s in st.done + st.undone:
                    self._drop(key, s)

    def state(self, key: str) -> tuple[bool, bool, str, str]:
        """(can undo, can redo, undo text, redo text)."""
        with self._lock:
            st = self._stacks.get(key) or _Stack()
            return (bool(st.done), bool(st.undone), st.done[-1].text if st.done else "",
                    st.undone[-1].text if st.undone else "")

    def __len__(self) -> int:
        return len(self._order)
