"""The Studio's documents and operator edits: apply an :class:`~studio_app.core.history.Edit`,
undo/redo within a memory budget, approve/reject. Qt-free; a part of
:class:`studio_app.core.studio.Studio` (a mixin, to keep each file short).

Edits run on the caller's thread and are serialised with each other. At most ``editor_cache``
photos keep an :class:`~studio_app.core.edits.Editor` (with the photo's decoded pixels, for fast
re-rendering); the history itself holds only compact snapshots.
"""
from __future__ import annotations

import os
from pathlib import Path

from .edits import EditError, Editor
from .events import DocumentChanged, HistoryChanged
from .history import Edit, SetReview, Step
from .result import DocumentError, ResultDocument
from .result_folder import ResultFolder
from .session import TRANSIENT, Entry


class EditingMixin:
    def entry(self, photo: str | os.PathLike) -> Entry | None:
        return self.session.get(photo)

    def result_folder(self, photo: str | os.PathLike) -> ResultFolder | None:
        e = self.session.get(photo)
        return ResultFolder(e.folder) if e is not None and e.folder else None

    def document(self, photo: str | os.PathLike) -> ResultDocument | None:
        """The photo's current document (from the editor when it is being edited)."""
        e = self.session.get(photo)
        if e is None or not e.folder:
            return None
        with self._edit_lock:
            ed = self._editors.get(e.photo)
            if ed is not None:
                return ed.doc
        return ResultFolder(e.folder).try_load()

    def apply(self, photo: str | os.PathLike, edit: Edit) -> ResultDocument:
        """Apply one operator edit, save it at once and record it for undo. Returns the new document
        (``document_changed`` is emitted too). EditError (a message for the operator) when the photo
        has no result, is being processed, or the edit is not possible; nothing changed then."""
        with self._edit_lock:
            e, ed = self._editor_for(photo)
            before, doc_before = ed.snapshot(edit.touches_mask), ed.doc
            try:
                edit.apply(ed)
            except (DocumentError, OSError, ValueError, ImportError) as exc:
                self._undo_partial(ed, before, edit)
                if isinstance(exc, EditError):
                    raise
                raise EditError(f"{edit.text}: {exc}") from exc
            self.history.push(e.photo, Step(edit.text, before, ed.snapshot(edit.touches_mask)))
            self._edited(e, ed, "review" if edit.review else "edit", edit.touches_mask)
            self._category_edited(doc_before, ed.doc)
            return ed.doc

    @staticmethod
    def _undo_partial(ed: Editor, before: dict, edit: Edit) -> None:
        """A mask edit that failed half-way (the disk filled up): put the mask back if possible."""
        if not edit.touches_mask:
            return
        try:
            ed.restore(before)
        except (DocumentError, OSError, ValueError):
            pass

    def undo(self, photo: str | os.PathLike) -> ResultDocument | None:
        """Undo the photo's last edit (None: nothing to undo)."""
        return self._step(photo, undo=True)

    def redo(self, photo: str | os.PathLike) -> ResultDocument | None:
        return self._step(photo, undo=False)

    def history_state(self, photo: str | os.PathLike) -> HistoryChanged:
        key = str(Path(photo).resolve())
        return HistoryChanged(key, *self.history.state(key))

    def approve(self, photo: str | os.PathLike) -> ResultDocument:
        return self.apply(photo, SetReview("approved"))

    def reject(self, photo: str | os.PathLike) -> ResultDocument:
        return self.apply(photo, SetReview("rejected"))

    def _step(self, photo, undo: bool) -> ResultDocument | None:
        with self._edit_lock:
            e, ed = self._editor_for(photo)
            step = self.history.undo(e.photo) if undo else self.history.redo(e.photo)
            if step is None:
                return None
            snap, doc_before = (step.before if undo else step.after), ed.doc
            ed.restore(snap, adjust=self._catalog_assignments(Path(e.folder)))
            self._edited(e, ed, "undo" if undo else "redo", "mask" in snap)
            self._category_edited(doc_before, ed.doc)
            return ed.doc

    def _editor_for(self, photo) -> tuple[Entry, Editor]:
        e = self.session.get(photo)
        if e is None:
            raise EditError(f"{Path(photo).name} is not in this session")
        if e.status in TRANSIENT:
            raise EditError(f"{e.name} is being processed; edit it when its result is there")
        if not e.folder:
            raise EditError(f"{e.name} has no result to edit")
        ed = self._editors.pop(e.photo, None)
        if ed is None:
            ed = Editor(e.folder)
        self._editors[e.photo] = ed                       # most recently used last
        while len(self._editors) > self._editor_cache:    # frees the photo pixels of old editors
            self._editors.popitem(last=False)
        return e, ed

    def _edited(self, e: Entry, ed: Editor, reason: str, mask_changed: bool) -> None:
        with self._lock:
            e.apply_document(ed.doc)
            self.session._changed()
        self.events.document_changed(DocumentChanged(e.photo, ed.folder, ed.doc, reason,
                                                     mask_changed=mask_changed,
                                                     mask=ed.cached_mask if mask_changed else None))
        self._entry_changed(e)
        self._history_changed(e.photo)

    def _forget_edits(self, e: Entry) -> None:
        with self._edit_lock:
            self._editors.pop(e.photo, None)
        self.history.forget(e.photo)
        self._history_changed(e.photo)

    def _history_changed(self, key: str) -> None:
        self.events.history_changed(HistoryChanged(key, *self.history.state(key)))
