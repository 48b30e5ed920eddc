"""Undoable edits: each QUndoCommand wraps one Qt-free edit of ``studio_app.core.edits.Editor``.

The first ``redo()`` performs the edit (which saves the document at once); undo/redo restore
exact snapshots of the document (and of the mask for mask edits), saving each time, so what is
on disk always matches what is on screen. One unlimited QUndoStack per document."""
from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from studio_app.core.edits import Editor


class EditCommand(QUndoCommand):
    def __init__(self, editor: Editor, text: str, apply: Callable[[Editor], object],
                 on_change: Callable[[Editor], None] | None = None, with_mask: bool = False):
        super().__init__(text)
        self.editor = editor
        self.apply = apply
        self.on_change = on_change
        self.with_mask = with_mask
        self.before = editor.snapshot(with_mask)
        self.after: dict | None = None
        self.error: Exception | None = None
        self.result = None

    def redo(self) -> None:
        if self.after is None:
            try:
                self.result = self.apply(self.editor)
            except Exception as exc:   # shown by push_edit; nothing changed on disk
                self.error = exc
                self.setObsolete(True)
                return
            self.after = self.editor.snapshot(self.with_mask)
        else:
            self.editor.restore(self.after)
        if self.on_change:
            self.on_change(self.editor)

    def undo(self) -> None:
        self.editor.restore(self.before)
        if self.on_change:
            self.on_change(self.editor)


class UndoStacks:
    """One QUndoStack per result folder, grouped so Edit > Undo acts on the photo on screen."""

    def __init__(self, parent=None):
        self.group = QUndoGroup(parent)
        self.stacks: dict[str, QUndoStack] = {}
        self.editors: dict[str, Editor] = {}

    def editor(self, folder: str) -> Editor:
        ed = self.editors.get(folder)
        if ed is None:
            ed = self.editors[folder] = Editor(folder)
        return ed

    def forget(self, folder: str) -> None:
        """The result was rewritten (re-processed): its history no longer applies."""
        st = self.stacks.pop(folder, None)
        if st is not None:
            self.group.removeStack(st)
            st.deleteLater()
        self.editors.pop(folder, None)

    def activate(self, folder: str | None) -> QUndoStack | None:
        if folder is None:
            self.group.setActiveStack(None)
            return None
        st = self.stacks.get(folder)
        if st is None:
            st = self.stacks[folder] = QUndoStack(self.group)
            st.setUndoLimit(0)        # unlimited
        self.group.setActiveStack(st)
        return st

    def push(self, folder: str, text: str, apply: Callable[[Editor], object],
             on_change: Callable[[Editor], None] | None = None, with_mask: bool = False) -> EditCommand:
        """Run an edit as an undoable command. Raises the edit's own error (nothing pushed)."""
        ed = self.editor(folder)
        st = self.activate(folder)
        cmd = EditCommand(ed, text, apply, on_change, with_mask)
        st.push(cmd)
        if cmd.error is not None:
            raise cmd.error
        return cmd
