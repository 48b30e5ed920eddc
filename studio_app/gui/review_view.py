"""The review area: filmstrip | photo with editable overlays (canvas) | inspector.

It turns the operator's gestures into ``Studio`` intents (``studio.apply(photo, SetBox(...))``,
``undo``, ``redo``, ``reprocess``) and redraws from ``Studio`` events only: ``entry_changed`` feeds
the filmstrip model, ``document_changed`` (which carries the document and maybe the mask) redraws
the canvas and the inspector. Nothing here reads a result from disk except when the operator picks
another photo.

The view follows new results (the newest finished photo comes on screen) only while the operator
is not busy: never during a drag, a brush stroke or with a dialog open, never once the photo on
screen has been edited, and never after the operator picked a photo by hand. ``End`` jumps to the
newest photo and resets the arrivals badge.
"""
from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QApplication, QSplitter

from studio_app.core.edits import EditError
from studio_app.core.history import (AddZone, DeleteZone, FitToGarment, MoveKeypoint, PaintMask, PickColour,
                                     RerunKmeans, ResetMask, SetBox, SetCategory, SetLocked, SetReview)
from studio_app.core.session import TRANSIENT
from .canvas import Canvas
from .filmstrip import Filmstrip
from .filmstrip_model import FilmstripModel
from .inspector import Inspector

WAITING_HINT = "Results appear here as they finish\n(or pick a photo on the left)"


class ReviewView(QSplitter):
    message = Signal(str, int)           # status-bar text, milliseconds
    overlaysShown = Signal(str)          # photo whose result overlays are on screen
    historyChanged = Signal(object)      # HistoryChanged of the photo on screen
    toolRequested = Signal(str)          # the inspector's eyedropper button
    arrivalsSeen = Signal()              # the newest photo came on screen: the badge goes back to 0
    garmentsToggled = Signal(bool)       # the legend's "Show garment map" (the View menu follows)

    def __init__(self, studio, parent=None):
        super().__init__(Qt.Horizontal, parent)
        self.studio = studio
        self.model = FilmstripModel(self)
        self.filmstrip = Filmstrip(self.model)
        self.canvas = Canvas()
        self.inspector = Inspector()
        for w in (self.filmstrip, self.canvas, self.inspector):
            self.addWidget(w)
        for i, f in enumerate((0, 1, 0)):
            self.setStretchFactor(i, f)
        self.setSizes([280, 840, 300])
        self.setChildrenCollapsible(False)
        self.follow = True
        self.shown_times: dict[str, float] = {}     # photo -> when its overlays were first on screen
        self._auto_shown: str | None = None          # the photo the view moved to by itself
        self._deferred = None                        # DocumentChanged held while the operator drags
        self._shown_status: str | None = None
        self._want_zone: str | None = None
        self._connect()

    def _connect(self) -> None:
        self.filmstrip.currentPhotoChanged.connect(self._current_changed)
        q = Qt.QueuedConnection   # the overlays are rebuilt after an edit: never inside the item's own event
        c, i = self.canvas, self.inspector
        c.keypointMoved.connect(lambda n, x, y: self.apply(MoveKeypoint(n, x, y)), q)
        c.boxChanged.connect(lambda z, b: self.apply(SetBox(z, list(b))), q)
        c.maskStroke.connect(lambda pts, r, add: self.apply(PaintMask(list(pts), r, add)), q)
        c.colourPicked.connect(self._colour_picked, q)
        c.interactionEnded.connect(self._interaction_ended, q)
        c.zoneSelected.connect(i.select_zone)
        c.shown.connect(self._canvas_shown)
        i.zoneSelected.connect(c.select_zone)
        i.flipKind.connect(self.flip_kind)
        i.eyedropper.connect(lambda on: self.toolRequested.emit("eyedropper" if on else "select"))
        i.rerunKmeans.connect(lambda z: self.apply(RerunKmeans(z)))
        i.lockToggled.connect(lambda z, on: self.apply(SetLocked(z, on)))
        i.deleteZone.connect(lambda z: self.apply(DeleteZone(z)))
        i.addZone.connect(self._add_zone)
        i.approve.connect(lambda: self.review("approved"))
        i.reject.connect(lambda: self.review("rejected"))
        i.resetMask.connect(lambda: self.apply(ResetMask()))
        i.fitToGarment.connect(lambda z: self.apply(FitToGarment(z)))
        i.categoryChosen.connect(lambda name, z: self.apply(SetCategory(name, z)))
        i.legend.visibleToggled.connect(self.set_garments_visible)
        i.legend.visibleToggled.connect(self.garmentsToggled.emit)
        i.legend.classToggled.connect(c.garments.set_class_visible)

    # ---- what is on screen ----------------------------------------------------------------------
    def current_photo(self) -> str | None:
        return self.filmstrip.current_photo()

    def current_entry(self):
        p = self.current_photo()
        return None if p is None else self.studio.entry(p)

    def operator_busy(self) -> bool:
        """Dragging / brushing, a dialog open, or the photo on screen edited: keep the view still."""
        cur = self.current_photo()
        return (self.canvas.interacting or QApplication.activeModalWidget() is not None
                or QApplication.activePopupWidget() is not None
                or (cur is not None and self.studio.history_state(cur).can_undo))

    def _current_changed(self, photo) -> None:
        if photo != self._auto_shown:
            self._auto_shown = None
        self._deferred = None
        self.studio.prioritize(photo)
        self.show_current()
        if photo is not None:
            self.historyChanged.emit(self.studio.history_state(photo))

    def show_current(self) -> None:
        e = self.current_entry()
        if e is None:
            self._shown_status = None
            self.canvas.clear(WAITING_HINT if self.model.rowCount() else None)
            self.inspector.set_document(None)
            self.inspector.legend.set_present(None)
            return
        doc = None
        if e.folder and e.status not in TRANSIENT:
            doc = self.studio.document(e.photo)
            if doc is None:
                self.message.emit(f"{e.name}: its result cannot be read; process it again (Ctrl+R)", 8000)
        self._shown_status = e.status
        self.canvas.show_photo(e.photo, doc, e.folder if doc else None)
        self.inspector.set_document(doc, e)

    def _canvas_shown(self, photo: str) -> None:
        self.inspector.legend.set_present(self.canvas.garments.present)
        if self.canvas.doc is not None:
            self.shown_times.setdefault(photo, time.monotonic())
            self.overlaysShown.emit(photo)

    # ---- Studio events (on the UI thread) -----------------------------------------------------------
    def on_entry_changed(self, ev) -> None:
        first = self.model.row_of(ev.entry.photo) < 0
        self.model.entry_changed(ev)
        e = ev.entry
        cur = self.current_photo()
        if cur is None and first:
            if e.status not in TRANSIENT and not self.operator_busy():
                self.filmstrip.select_photo(e.photo)       # a listed result: show the first one
            elif self.canvas.photo is None:
                self.show_current()                        # the hint says results are on their way
            return
        if e.photo != cur or e.status == self._shown_status:
            return
        if e.status in TRANSIENT or e.status in ("error", "cancelled"):
            self._deferred = None
            self.show_current()          # queued again / failed: the overlays are no longer valid
        else:
            self._shown_status = e.status
            self.inspector.set_status(e)

    def on_document_changed(self, ev) -> None:
        if ev.image_changed:
            self.model.reload_thumbnail(ev.photo)
        if ev.photo != self.current_photo():
            if ev.reason == "processed":
                self._maybe_follow(ev.photo)
            return
        if self.canvas.interacting:
            self._deferred = ev          # drawn when the mouse button goes up: the drag stays alive
            return
        self._draw(ev)

    def _draw(self, ev) -> None:
        e = self.studio.entry(ev.photo)
        folder = str(ev.folder)
        if ev.reason == "processed" or (ev.mask_changed and ev.mask is None):
            self.canvas.show_photo(ev.photo, ev.doc, folder, reload=ev.image_changed)
        else:
            self.canvas.set_document(ev.doc, folder, mask=ev.mask if ev.mask_changed else None)
        self.inspector.set_document(ev.doc, e, zone=self._want_zone or self.inspector.zone)
        self._want_zone = None
        if e is not None:
            self._shown_status = e.status

    def _interaction_ended(self) -> None:
        ev, self._deferred = self._deferred, None
        if ev is not None and ev.photo == self.current_photo():
            self._draw(ev)

    def _maybe_follow(self, photo: str) -> None:
        cur = self.current_photo()
        if not self.follow or (cur is not None and cur != self._auto_shown) or self.operator_busy():
            return
        self._auto_shown = photo
        self.filmstrip.select_photo(photo)
        if photo == self.model.photo_at(self.model.rowCount() - 1):
            self._arrivals_seen()              # the operator is looking at the newest photo

    def on_arrival(self, ev) -> None:
        """The hot folder queued a photo. It never moves the view; when the view already shows it
        (a fast result followed before this event came) it counts as seen."""
        if ev.photo == self.current_photo() == self.model.photo_at(self.model.rowCount() - 1):
            self._arrivals_seen()

    def _arrivals_seen(self) -> None:
        self.studio.mark_arrivals_seen()
        self.arrivalsSeen.emit()

    # ---- navigation -------------------------------------------------------------------------------
    def select_row(self, row: int) -> None:
        self.filmstrip.setCurrentRow(row)

    def next_photo(self) -> None:
        self.select_row(self.filmstrip.currentRow() + 1)

    def previous_photo(self) -> None:
        self.select_row(max(0, self.filmstrip.currentRow() - 1))

    def jump_newest(self) -> None:
        """``End``: the newest photo, and the arrivals badge goes back to zero."""
        row = self.filmstrip.count() - 1
        if row >= 0:
            self._auto_shown = self.filmstrip.photo_at(row)
            self.select_row(row)
        self._arrivals_seen()

    # ---- edits ------------------------------------------------------------------------------------
    def apply(self, edit) -> bool:
        """One operator edit of the photo on screen; the redraw comes with ``document_changed``."""
        photo = self.current_photo()
        if photo is None or self.canvas.doc is None:
            return False
        try:
            self.studio.apply(photo, edit)
        except EditError as exc:
            self.message.emit(f"{edit.text}: {exc}", 8000)
            self.show_current()                  # put back what the gesture moved on screen
            return False
        return True

    def undo(self) -> None:
        self._step(self.studio.undo)

    def redo(self) -> None:
        self._step(self.studio.redo)

    def _step(self, fn) -> None:
        photo = self.current_photo()
        if photo is None:
            return
        try:
            fn(photo)
        except EditError as exc:
            self.message.emit(str(exc), 6000)

    def _colour_picked(self, x: float, y: float) -> None:
        zone = self.inspector.zone
        if not zone:
            self.message.emit("choose an item first (the swatch belongs to an item)", 5000)
            return
        self.apply(PickColour(zone, x, y))
        self.inspector.pick.setChecked(False)

    def _add_zone(self, zone: str) -> None:
        self._want_zone = zone
        self.apply(AddZone(zone))

    def set_garments_visible(self, on: bool) -> None:
        """Show / hide the garment map overlay (View › Show garment map, G, or the legend)."""
        self.canvas.set_garments_visible(on)
        self.inspector.legend.set_shown(on)

    def fit_to_garment(self) -> None:
        """Shift+G: the selected item's box on its garment's own pixels."""
        zone = self.inspector.zone
        if not zone:
            self.message.emit("choose an item first (the box to fit to its garment)", 5000)
            return
        self.apply(FitToGarment(zone))

    def review(self, status: str) -> None:
        """Approve / reject the photo on screen and go to the next one."""
        e = self.current_entry()
        if e is None or not e.folder or e.status in TRANSIENT + ("error",):
            return
        if self.apply(SetReview(status)):
            self.next_photo()

    def flip_kind(self) -> None:
        e = self.current_entry()
        if e is None or e.status in TRANSIENT:
            return
        kind = self.canvas.doc.kind if self.canvas.doc is not None else e.kind
        self.studio.reprocess(e.photo, "person" if kind == "product" else "product")

    def reprocess(self, photo: str | None = None, force_kind: str | None = None) -> bool:
        """Process a photo again (the one on screen by default): image, thumbnail and overlays are
        reloaded when the new result comes."""
        photo = photo or self.current_photo()
        return bool(photo) and self.studio.reprocess(photo, force_kind)

    def shutdown(self) -> None:
        self.canvas.shutdown()
        self.filmstrip.shutdown()
