"""The status bar: photo counts per status, the arrivals badge, hot-folder state, zoom, the
device line, batch progress and its Cancel button. Updated from Studio events by the window."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QToolButton

from studio_app.core.session import STATUS_LABELS
from . import theme

COUNT_ORDER = ("queued", "processing", "needs_review", "ready", "approved", "rejected", "exported", "error",
               "cancelled")


class StatusPanel(QObject):
    def __init__(self, bar: QStatusBar, parent=None):
        super().__init__(parent)
        self.bar = bar
        self.counts = QLabel("")
        self.arrivals = QToolButton()
        self.arrivals.setObjectName("arrivals-badge")
        self.arrivals.setToolTip("New photos arrived in the hot folder: show the newest (End)")
        self.arrivals.setStyleSheet(f"QToolButton {{ color: #101010; background: {theme.STATUS_COLOURS['needs_review']};"
                                    " border-radius: 8px; padding: 1px 8px; font-weight: bold; }")
        self.arrivals.hide()
        self.watch = QLabel("")
        self.device = QLabel("")
        self.device.setObjectName("muted")
        self.zoom = QLabel("")
        self.zoom.setObjectName("muted")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop processing: the photo being processed and the queued ones (Esc)")
        self.cancel.setEnabled(False)
        bar.addWidget(self.counts, 1)
        for w in (self.arrivals, self.watch, self.zoom, self.device, self.progress, self.cancel):
            bar.addPermanentWidget(w)

    def show_counts(self, session) -> None:
        c = session.counts()
        parts = [f"{len(session)} photos"]
        for k in COUNT_ORDER:
            if c[k]:
                parts.append(f"<span style='color:{theme.STATUS_COLOURS[k]}'>{c[k]} {STATUS_LABELS[k].lower()}</span>")
        self.counts.setText(" · ".join(parts))

    def show_arrivals(self, unseen: int) -> None:
        self.arrivals.setText(f"{unseen} new ▸ End")
        self.arrivals.setVisible(unseen > 0)

    def show_hot_folder(self, folder, paused: bool) -> None:
        if folder is None:
            self.watch.setText("no hot folder")
            return
        state = "paused" if paused else "watching"
        col = theme.STATUS_COLOURS["needs_review"] if paused else theme.STATUS_COLOURS["approved"]
        self.watch.setText(f"<span style='color:{col}'>● {state}</span> {folder.name}")

    def show_batch(self, ev) -> None:
        """A ``BatchProgress`` payload."""
        if ev.total <= 0 or not ev.busy:
            self.progress.setValue(0)
            self.progress.setFormat("")
            self.cancel.setEnabled(False)
            return
        self.progress.setValue(int(ev.fraction * 1000))
        self.progress.setFormat(f"{ev.done}/{ev.total}")
        self.cancel.setEnabled(True)

    def show_device(self, text: str, engines: tuple[str, str]) -> None:
        pose, seg = engines
        custom = [Path(v).stem for v, builtin in ((pose, "blazepose"), (seg, "u2netp")) if v != builtin]
        self.device.setText(text + (" · " + " + ".join(custom) if custom else ""))
        self.device.setToolTip(f"Models run on: {text}\nKeypoints: {pose}\nSegmentation: {seg}\n"
                               "(File › Settings… to change)")
