"""First start: choose the hot folder, the output folder and the default marketplace preset;
shows whether a GPU was found (models then run on it)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QMessageBox, QToolButton, QVBoxLayout, QWidget)


def gpu_text() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return f"GPU found: {torch.cuda.get_device_name(0)} — the models will run on it."
    except Exception:
        pass
    return "No GPU found — the models will run on the CPU (about a second per photo)."


class FirstRunDialog(QDialog):
    def __init__(self, parent=None, hot: str = "", out: str = "", preset: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Welcome to Studio Catalog")
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        intro = QLabel("Photos dropped into the <b>hot folder</b> (by your tethering software) are processed "
                       "automatically. Results go to the <b>output folder</b>; your photos are never changed.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.hot = self._folder_row(form, "Hot folder", hot)
        self.out = self._folder_row(form, "Output folder", out)
        self.preset = QComboBox()
        from .export_dialog import list_preset_names
        self.preset.addItem("No preset (free aspect)", "")
        for name, title in list_preset_names():
            self.preset.addItem(title or name, name)
        if preset and self.preset.findData(preset) >= 0:
            self.preset.setCurrentIndex(self.preset.findData(preset))
        form.addRow("Default marketplace", self.preset)
        lay.addLayout(form)
        self.gpu = QLabel(gpu_text())
        self.gpu.setObjectName("muted")
        self.gpu.setWordWrap(True)
        lay.addWidget(self.gpu)
        bb = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        bb.button(QDialogButtonBox.Ok).setText("Start")
        bb.accepted.connect(self._accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    def _folder_row(self, form: QFormLayout, label: str, value: str) -> QLineEdit:
        edit = QLineEdit(value)
        btn = QToolButton()
        btn.setText("…")
        btn.clicked.connect(lambda: self._browse(edit, label))
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        h.addWidget(btn)
        form.addRow(label, row)
        return edit

    def _browse(self, edit: QLineEdit, label: str) -> None:
        d = QFileDialog.getExistingDirectory(self, label, edit.text())
        if d:
            edit.setText(d)

    def _accept(self) -> None:
        out = self.out.text().strip()
        if not out:
            QMessageBox.warning(self, "Studio Catalog", "Choose an output folder for the results.")
            return
        hot = self.hot.text().strip()
        if hot and not Path(hot).is_dir():
            QMessageBox.warning(self, "Studio Catalog", f"The hot folder {hot} does not exist.")
            return
        self.accept()

    def values(self) -> tuple[str, str, str]:
        return self.hot.text().strip(), self.out.text().strip(), self.preset.currentData() or ""
