"""Export from the window: the export dialog, a non-modal progress dialog fed by the Studio's
``export_progress`` events (the operator keeps reviewing meanwhile), the outcome in the status bar,
and File › Open catalog folder afterwards. The export itself runs in the Studio (``studio.export``).

``open_url`` (default ``QDesktopServices.openUrl``) is injectable: tests check what would be
opened without launching a file manager."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QProgressDialog

from studio_app.core.studio import StudioError
from .export_dialog import ExportDialog

EXPORTABLE = ("approved", "exported")
UNREVIEWED = ("ready", "needs_review")


class ExportFlow(QObject):
    progress = Signal(int, int, str)       # index, total, name (GUI thread)
    finished = Signal(object)              # ExportReport, or the message that stopped the export
    catalogReady = Signal(str)             # the folder File › Open catalog folder opens

    def __init__(self, window, studio, settings, open_url=None):
        super().__init__(window)
        self.win, self.studio, self.settings = window, studio, settings
        self.open_url = open_url or QDesktopServices.openUrl
        self.job = None
        self.dialog: ExportDialog | None = None
        self.progress_dialog: QProgressDialog | None = None
        self.catalog_dir: Path | None = None
        self._finished: int | None = None        # id of the last job whose end was shown

    @property
    def exporting(self) -> bool:
        """An export started here has not reported its end yet (or another one runs)."""
        if self.job is not None and self._finished != self.job.id:
            return True
        return self.studio.exporting and self.job is None

    def show_dialog(self, preset_name: str | None) -> None:
        if self.exporting and self.progress_dialog is not None:
            self.progress_dialog.show()
            self.progress_dialog.raise_()
            return
        c = self.studio.session.counts()
        # first export: a catalog folder beside the results, so the operator can just press Export
        out_dir = str(self.settings.value("export_dir", "") or self.studio.out_root / "catalog")
        dlg = self.dialog = ExportDialog(self.win, preset_name, out_dir,
                                         approved=sum(c[k] for k in EXPORTABLE), unreviewed=sum(c[k] for k in UNREVIEWED))
        dlg.accepted.connect(lambda: self._accepted(dlg))
        dlg.open()

    def _accepted(self, dlg: ExportDialog) -> None:
        preset, out_dir, all_ = dlg.values()
        self.settings.setValue("export_dir", out_dir)
        wanted = EXPORTABLE + (UNREVIEWED if all_ else ())
        folders = [e.folder for e in self.studio.session if e.folder and e.status in wanted]
        if not folders:
            self.win.statusBar().showMessage("nothing to export: approve some photos first", 6000)
            return
        self.start(folders, preset, out_dir, not all_)

    def start(self, folders, preset, out_dir, only_approved: bool = True) -> bool:
        """Export ``folders`` (result folders or photos) on the Studio's export thread. False when
        one is running already. ``finished(report or message)`` when done."""
        if self.exporting:
            return False
        if self.job is not None:
            self.job.wait(5)                     # its end was reported a moment before the thread let go
        try:
            self.job = self.studio.export(preset, out_dir, list(folders), only_approved=only_approved)
        except StudioError as exc:              # another caller's export is running
            self.win.statusBar().showMessage(str(exc), 6000)
            return False
        dlg = self.progress_dialog = QProgressDialog(f"Exporting {len(folders)} results…", "Cancel export",
                                                     0, len(folders), self.win)
        dlg.setWindowTitle("Export")
        dlg.setWindowModality(Qt.NonModal)          # the operator can keep reviewing meanwhile
        dlg.setMinimumDuration(0)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.setMinimumWidth(420)
        dlg.canceled.connect(self.cancel)
        dlg.setValue(0)
        dlg.show()
        self.win.statusBar().showMessage("exporting…")
        return True

    def cancel(self) -> None:
        if self.job is not None and not self.job.done:
            self.job.cancel()
            if self.progress_dialog is not None:
                self.progress_dialog.setLabelText("Cancelling after the current image…")

    def on_progress(self, ev) -> None:
        """An ``ExportProgress`` payload (on the GUI thread)."""
        if self.job is None or ev.job != self.job.id:
            return
        if ev.finished:
            self._done(ev)
            return
        dlg = self.progress_dialog
        if self.job.cancelled or dlg is None:
            return
        dlg.setMaximum(max(1, ev.total))
        dlg.setValue(ev.index)
        dlg.setLabelText(f"Exporting {ev.index + 1} of {ev.total}: {ev.name}")
        self.progress.emit(ev.index, ev.total, ev.name)

    def _done(self, ev) -> None:
        self._finished = ev.job
        dlg, out_dir = self.progress_dialog, self.job.out_dir
        if dlg is not None:
            dlg.setValue(dlg.maximum())
            dlg.hide()
        bar = self.win.statusBar()
        if ev.error is not None:
            bar.showMessage(f"export failed: {ev.error}", 10000)
            QTimer.singleShot(0, lambda: QMessageBox.warning(self.win, "Export", f"Export failed: {ev.error}"))
            self.finished.emit(ev.error)
            return
        report = ev.report
        msg = (f"exported {report.documents_exported} of {report.documents_total} results "
               f"({len(report.written)} files written) to {out_dir}")
        if report.cancelled:
            bar.showMessage(msg + " — cancelled; export again to finish", 15000)
        elif not report.ok:
            bar.showMessage(msg + " — with problems", 15000)
            text = msg + "\n\n" + "\n".join(report.failure_lines()[:20])
            QTimer.singleShot(0, lambda: QMessageBox.warning(self.win, "Export", text))
        else:
            bar.showMessage(msg, 15000)
        if report.documents_exported or report.written:
            self.catalog_dir = Path(out_dir)
            self.catalogReady.emit(str(out_dir))
        self.finished.emit(report)

    def open_catalog(self) -> bool:
        """File › Open catalog folder: the folder of the last export, in the file manager."""
        if self.catalog_dir is None or not self.catalog_dir.is_dir():
            self.win.statusBar().showMessage("no catalog folder yet: export first (Ctrl+E)", 5000)
            return False
        return bool(self.open_url(QUrl.fromLocalFile(str(self.catalog_dir))))
