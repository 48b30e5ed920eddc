"""The export dialog: preset, catalog folder, and whether results not approved yet go too."""
from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QToolButton)


def list_preset_names() -> list[tuple[str, str]]:
    try:
        from studio_app.core.export.presets import list_presets
        return [(n, t) for n, t, _p, err in list_presets() if err is None]
    except Exception:
        from studio_app.core.paths import presets_dir
        d = presets_dir()
        return [(p.stem, p.stem) for p in sorted(d.glob("*.json"))] if d.is_dir() else []


class ExportDialog(QDialog):
    def __init__(self, parent, preset: str | None, out_dir: str, approved: int = 0, unreviewed: int = 0):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(520)
        self.approved, self.unreviewed = approved, unreviewed
        lay = QFormLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        lay.addRow(self.summary)
        self.preset = QComboBox()
        for name, title in list_preset_names():
            self.preset.addItem(title or name, name)
        if preset and self.preset.findData(preset) >= 0:
            self.preset.setCurrentIndex(self.preset.findData(preset))
        self.out = QLineEdit(out_dir)
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        self.all = QCheckBox("also results not approved yet (never rejected ones)")
        self.all.toggled.connect(self._update_summary)
        lay.addRow("Marketplace preset", self.preset)
        lay.addRow("Catalog folder", row)
        lay.addRow("", self.all)
        bb = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        bb.button(QDialogButtonBox.Ok).setText("Export")
        bb.accepted.connect(self._accept)
        bb.rejected.connect(self.reject)
        lay.addRow(bb)
        self._update_summary()

    def _update_summary(self) -> None:
        n = self.approved + (self.unreviewed if self.all.isChecked() else 0)
        self.summary.setText(f"<b>{n}</b> result{'s' if n != 1 else ''} will be exported"
                             + ("" if self.all.isChecked() or not self.unreviewed
                                else f" ({self.unreviewed} not approved yet are left out)") + ".")

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Catalog folder", self.out.text())
        if d:
            self.out.setText(d)

    def _accept(self) -> None:
        if not self.out.text().strip() or self.preset.count() == 0:
            QMessageBox.warning(self, "Export", "Choose a preset and a catalog folder.")
            return
        self.accept()

    def values(self):
        return self.preset.currentData(), self.out.text().strip(), self.all.isChecked()
