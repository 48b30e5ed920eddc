"""The main window: wiring and layout around the Qt-free :class:`studio_app.core.studio.Studio`.

The Studio owns the session, the processing queue, the hot folder, edits with undo and export
jobs. The window builds it, forwards its events to the UI thread through one queued signal
(:class:`StudioBridge`) and hands each event to the part that shows it: the review area
(filmstrip | canvas | inspector, :mod:`review_view`), the status bar (:mod:`status_panel`) and the
export flow (:mod:`export_flow`). Menus and shortcuts live in :mod:`actions`. What the operator
asks for goes to Studio methods (``add``, ``watch``, ``cancel``, ``apply``, ``export`` …).
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from studio_app.core.events import EntryChanged, ProcessorState
from studio_app.core.processor import describe
from studio_app.core.studio import Studio
from .actions import build_menus, build_toolbar, show_history
from .bridge import StudioBridge
from .config import engine_settings, keep_loaded_minutes, processor_spec
from .export_flow import ExportFlow
from .help import about_html, shortcuts_html
from .products_panel import ProductsPanel
from .review_view import ReviewView
from .status_panel import StatusPanel

PHOTO_FILTER = "Photos ({});;All files (*)"
LOADING = "loading models…"


class MainWindow(QMainWindow):
    overlaysShown = Signal(str)          # photo whose result overlays are on screen
    exportFinished = Signal(object)      # ExportReport, or the message that stopped the export
    processorState = Signal(str, str)    # loading | ready | failed | reloading, text
    _added = Signal(list)                # error lines of a drop (from the helper thread)

    def __init__(self, out_root: str | Path, *, processor=None, studio: Studio | None = None,
                 hot_folder: str | Path | None = None, settings: QSettings | None = None,
                 hot_stable_seconds: float = 1.0, hot_pair_window: float = 3.0, preset: str | None = None,
                 device: str = "auto", weights_dir: str | Path | None = None, open_url=None):
        """``processor``: a :class:`ProcessorSpec` (built on the Studio's processing thread) or a
        built processor (tests pass fakes); or pass a ready ``studio``."""
        super().__init__()
        if studio is None and processor is None:
            raise ValueError("MainWindow needs a processor (a ProcessorSpec or a built one) or a Studio")
        self.setWindowTitle("Studio Catalog")
        self.resize(1400, 880)
        self.settings = settings or QSettings()
        self.out_root = Path(out_root)
        self.out_root.mkdir(parents=True, exist_ok=True)
        self.device = device
        self._weights_dir = Path(weights_dir) if weights_dir else None
        self.preset_name = preset or self.settings.value("preset", "", str) or None
        self.hot_stable_seconds, self.hot_pair_window = hot_stable_seconds, hot_pair_window
        self.device_text = self._ready_text = LOADING
        self._engines_before: tuple[str, str] | None = None
        self._local_spec = None                  # the local processor while the cluster has the queue
        self._closed = False
        self.studio = studio or Studio(self.out_root, processor)
        self.bridge = StudioBridge(self.studio, self)
        self.view = ReviewView(self.studio)
        self.filmstrip, self.canvas, self.inspector = self.view.filmstrip, self.view.canvas, self.view.inspector
        self.shown_times = self.view.shown_times
        self.setCentralWidget(self.view)
        self.products = ProductsPanel(self.studio, self.view, self)
        self.addDockWidget(Qt.RightDockWidgetArea, self.products)
        self.setAcceptDrops(True)
        self.status = StatusPanel(self.statusBar(), self)
        self.exports = ExportFlow(self, self.studio, self.settings, open_url)
        build_menus(self)
        build_toolbar(self)
        self._connect()
        self._counts_timer = QTimer(self, singleShot=True, interval=100,
                                    timeout=lambda: self.status.show_counts(self.studio.session))
        for e in list(self.studio.session):              # what the session already holds
            self.view.on_entry_changed(EntryChanged(replace(e)))
        if self.studio.session.load_error:
            self.statusBar().showMessage(self.studio.session.load_error, 10000)
        self._apply_preset_aspect()
        if self.studio.processor is not None:          # built already (tests): no loading event comes
            self._processor_state(ProcessorState("ready", describe(self.studio.processor)))
        self.studio.start()
        self.status.show_hot_folder(None, False)
        if hot_folder:
            self.set_hot_folder(hot_folder)
        self.status.show_counts(self.studio.session)

    def _connect(self) -> None:
        self.bridge.event.connect(self.on_studio_event, Qt.QueuedConnection)
        self._added.connect(lambda errors: errors and self.statusBar().showMessage("; ".join(errors[:3]), 6000))
        v = self.view
        v.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.products.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms), Qt.QueuedConnection)
        v.overlaysShown.connect(self.overlaysShown)
        v.historyChanged.connect(lambda ev: show_history(self, ev))
        v.toolRequested.connect(self.set_tool)
        self.canvas.filesDropped.connect(self.add_paths)
        self.canvas.zoomChanged.connect(lambda z: self.status.zoom.setText(f"{z * 100:.0f} %" if z > 0 else ""))
        self.status.cancel.clicked.connect(lambda: self.cancel_batch())
        self.status.arrivals.clicked.connect(v.jump_newest)
        v.arrivalsSeen.connect(lambda: self.status.show_arrivals(self.studio.arrivals_unseen))
        self.exports.finished.connect(self.exportFinished)
        self.exports.catalogReady.connect(lambda d: (self.a_open_catalog.setEnabled(True),
                                                     self.a_open_catalog.setToolTip(f"Open {d}")))
        self._handlers = {
            "entry_changed": self._entry_changed, "document_changed": v.on_document_changed,
            "batch_progress": self.status.show_batch, "export_progress": self.exports.on_progress,
            "arrival": lambda ev: (v.on_arrival(ev), self.status.show_arrivals(self.studio.arrivals_unseen)),
            "history_changed": lambda ev: ev.photo == v.current_photo() and show_history(self, ev),
            "processor_state": self._processor_state,
            "hot_folder": self._hot_folder_state,
            "error": lambda ev: self.statusBar().showMessage(ev.message, 8000),
            "catalog_changed": self.products.on_catalog_changed,
        }

    # ---- Studio events (UI thread) ---------------------------------------------------------------
    def on_studio_event(self, name: str, payload) -> None:
        if self._closed:
            return
        handler = self._handlers.get(name)
        if handler is not None:
            handler(payload)

    def _entry_changed(self, ev) -> None:
        self.view.on_entry_changed(ev)
        if ev.entry.folder and ev.entry.status not in ("queued", "processing"):
            self.products.entries_listed()
        if not self._counts_timer.isActive():
            self._counts_timer.start()

    def _hot_folder_state(self, ev) -> None:
        self.status.show_hot_folder(ev.folder, ev.paused)
        if ev.message:
            self.statusBar().showMessage(ev.message, 8000)

    def _processor_state(self, ev) -> None:
        if ev.state in ("loading", "reloading"):
            self.device_text = LOADING
            self.status.device.setText(LOADING)
        elif ev.state == "ready":
            self.device_text = self._ready_text = ev.text
            self._engines_before = None
            self._sync_cluster_action()
            self.status.show_device(ev.text, self.engines())
        elif self._engines_before is not None:     # a reload failed: the old engines stay, so do the settings
            pose, seg = self._engines_before
            self._engines_before = None
            self.settings.setValue("pose_engine", pose)
            self.settings.setValue("seg_engine", seg)
            self.device_text = self._ready_text
            self.status.show_device(self._ready_text, self.engines())
            self._sync_cluster_action()
            QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Studio Catalog", ev.text))
        else:
            self.device_text = "models not loaded"
            self.status.device.setText(self.device_text)
            QTimer.singleShot(0, lambda: QMessageBox.critical(self, "Studio Catalog", ev.text))
        self.processorState.emit(ev.state, ev.text)

    # ---- adding photos -------------------------------------------------------------------------
    @property
    def session(self):
        return self.studio.session

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def add_paths(self, paths: list) -> None:
        """Photos or folders (searched recursively). Listed on a helper thread (a big drop finds
        its results on disk photo by photo); the rows come with the Studio's events."""
        def job():
            _, errors = self.studio.add([str(p) for p in paths])
            try:
                self._added.emit(errors)
            except RuntimeError:        # the window closed meanwhile
                pass
        threading.Thread(target=job, name="add-photos", daemon=True).start()

    def add_photo(self, photo: str, pair: str | None = None, force_kind: str | None = None):
        """One photo, at once (None when it is listed already)."""
        return self.studio.add_photo(photo, pair, force_kind)

    def current_folder(self) -> str | None:
        e = self.view.current_entry()
        return str(Path(e.folder).resolve()) if e is not None and e.folder else None

    # ---- hot folder, queue -------------------------------------------------------------------------
    def set_hot_folder(self, folder: str | Path | None) -> bool:
        if not folder:
            self.studio.unwatch()
            return False
        ok = self.studio.watch(folder, stable_seconds=self.hot_stable_seconds, pair_window=self.hot_pair_window,
                               paused=self.a_pause.isChecked())
        if ok:
            self.settings.setValue("hot_folder", str(folder))
        return ok

    def set_paused(self, paused: bool) -> None:
        self.studio.pause() if paused else self.studio.resume()
        self.a_pause.setText("Resume watching" if paused else "Pause watching")
        self.a_pause.setIconText("Resume" if paused else "Pause")


    def cancel_batch(self) -> None:
        if not self.studio.busy:
            return
        cancelled = self.studio.cancel()
        self.statusBar().showMessage(f"cancelled: {len(cancelled)} photo(s) not processed "
                                     "(File › Process cancelled photos again)", 8000)

    def requeue_cancelled(self) -> None:
        self.studio.requeue_cancelled()

    def reprocess(self, photo: str | None = None, force_kind: str | None = None) -> bool:
        return self.view.reprocess(photo, force_kind)

    # ---- tools ----------------------------------------------------------------------------------
    def set_tool(self, mode: str) -> None:
        self.canvas.set_mode(mode)
        {"select": self.a_select, "brush_add": self.a_brush_add, "brush_erase": self.a_brush_erase,
         "eyedropper": self.a_pick}[mode].setChecked(True)
        if mode in ("brush_add", "brush_erase") and not self.a_mask.isChecked():
            self.a_mask.setChecked(True)
        self.inspector.pick.blockSignals(True)
        self.inspector.pick.setChecked(mode == "eyedropper")
        self.inspector.pick.blockSignals(False)

    def brush_size(self, factor: float) -> None:
        self.canvas.set_brush_radius(self.canvas.brush_radius * factor)
        self.statusBar().showMessage(f"brush radius {self.canvas.brush_radius:.0f} px", 2000)

    # ---- presets, folders ---------------------------------------------------------------------
    def preset_changed(self, _i: int) -> None:
        self.preset_name = self.preset_combo.currentData() or None
        self.settings.setValue("preset", self.preset_name or "")
        self._apply_preset_aspect()

    def _apply_preset_aspect(self) -> None:
        aspect = None
        if self.preset_name:
            try:
                from studio_app.core.export.presets import load as load_preset
                aspect = load_preset(self.preset_name).aspect
            except Exception as exc:
                self.statusBar().showMessage(f"preset {self.preset_name}: {exc}", 8000)
        self.canvas.set_aspect(aspect)

    def open_start_dir(self) -> str:
        """Where File › Open starts: the last folder opened, else the hot folder, else home."""
        last = self.settings.value("last_dir", "", str)
        for d in (last, self.studio.hot_folder, self.settings.value("hot_folder", "", str)):
            if d and Path(d).is_dir():
                return str(d)
        return str(Path.home())

    def open_photos_dialog(self) -> None:
        from ml.io import SUPPORTED_EXTENSIONS
        patterns = " ".join(f"*{x}" for x in sorted(SUPPORTED_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Open photos", self.open_start_dir(),
                                                PHOTO_FILTER.format(patterns))
        if files:
            self.settings.setValue("last_dir", str(Path(files[0]).parent))
            self.add_paths(files)

    def open_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open a folder of photos", self.open_start_dir())
        if d:
            self.settings.setValue("last_dir", d)
            self.add_paths([d])

    def choose_hot_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Choose the hot folder", str(self.settings.value("hot_folder", "")))
        if d:
            self.set_hot_folder(d)

    def choose_out_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Choose the output folder", str(self.out_root))
        if d:
            self.settings.setValue("out_root", d)
            QMessageBox.information(self, "Studio Catalog", f"Results will go to {d} from the next start of the app.")

    # ---- export -------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        self.exports.show_dialog(self.preset_name)

    def start_export(self, folders, preset, out_dir, only_approved: bool = True) -> bool:
        return self.exports.start(folders, preset, out_dir, only_approved)

    @property
    def exporting(self) -> bool:
        return self.exports.exporting

    # ---- engines ---------------------------------------------------------------------------------
    @property
    def weights_dir(self) -> Path:
        if self._weights_dir is None:
            spec = self.studio.spec or processor_spec(self.device)
            self._weights_dir = spec.weights_path()
        return self._weights_dir

    def engines(self) -> tuple[str, str]:
        return engine_settings(self.settings)

    def settings_dialog(self) -> None:
        from .settings_dialog import SettingsDialog
        pose, seg = self.engines()
        dlg = self._settings_dlg = SettingsDialog(self, self.weights_dir, pose, seg, self.device_text,
                                                  cluster=self.settings.value("cluster_address", "", str),
                                                  keep_minutes=keep_loaded_minutes(self.settings))
        dlg.accepted.connect(lambda: (self.settings.setValue("cluster_address", dlg.cluster_address()),
                                      self.set_keep_loaded(dlg.keep_minutes()),
                                      self.set_engines(*dlg.values())))
        dlg.open()

    def set_keep_loaded(self, minutes: int) -> None:
        """Settings › Keep models loaded after closing (stored; applies to this run's close)."""
        self.settings.setValue("keep_models_min", int(minutes))
        self.studio.keep_models_loaded(60.0 * int(minutes))

    def set_engines(self, pose: str, seg: str) -> bool:
        """Store the engine choice and have the Studio load it between two photos. False when
        nothing changed. A failure to load keeps the old engines and the old setting."""
        before = self.engines()
        if (pose, seg) == before:
            return False
        base = self.studio.spec or processor_spec(self.device, isolated=False, weights_dir=self._weights_dir)
        self._engines_before = before
        self.settings.setValue("pose_engine", pose)
        self.settings.setValue("seg_engine", seg)
        if hasattr(base, "address"):        # on the cluster: its workers get the new engines
            self.studio.set_processor(replace(base, base=replace(base.base, pose_engine=pose, seg_engine=seg)))
        else:
            self.studio.set_processor(replace(base, pose_engine=pose, seg_engine=seg))
        self.statusBar().showMessage(f"loading the engines: keypoints {pose}, segmentation {seg}…", 8000)
        return True

    # ---- cluster -------------------------------------------------------------------------------
    def set_cluster_processing(self, on: bool) -> bool:
        """Queued photos go to the cluster in Settings (on) or stay on this workstation (off); the
        Studio switches between two photos and the status bar says where they run. False when
        nothing was asked (no address set)."""
        from studio_app.cluster.processor import ClusterSpec
        spec = self.studio.spec
        on_cluster = isinstance(spec, ClusterSpec)
        address = self.settings.value("cluster_address", "", str).strip()
        if on == on_cluster or (on and not address):
            self.a_cluster.setChecked(on_cluster)
            if on and not address:
                self.statusBar().showMessage("set the cluster address in Settings first", 8000)
            return False
        pose, seg = self.engines()
        if on:
            self._local_spec = spec                   # back to it when the cluster is switched off
            new = ClusterSpec(address, base=processor_spec(self.device, pose, seg, isolated=False,
                                                           weights_dir=self._weights_dir))
        else:
            new = self._local_spec or processor_spec(self.device, pose, seg, weights_dir=self._weights_dir)
        self._engines_before = (pose, seg)            # a failure keeps the current processor and says why
        self.studio.set_processor(new)
        self.statusBar().showMessage(f"connecting to the cluster at {address}…" if on
                                     else "processing on this workstation again…", 8000)
        return True

    def _sync_cluster_action(self) -> None:
        if hasattr(self, "a_cluster"):
            self.a_cluster.setChecked(hasattr(self.studio.spec, "address"))     # a ClusterSpec

    # ---- help ----------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        self._message_box("Keyboard shortcuts", shortcuts_html())

    def about_text(self) -> str:
        return about_html(self.device_text, self.engines())

    def show_about(self) -> None:
        self._message_box("About Studio Catalog", self.about_text())

    def _message_box(self, title: str, html: str) -> None:
        box = QMessageBox(self)
        box.setWindowTitle(title)
        box.setText(html)
        box.open()

    # ---- shutdown ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop watching and processing, write the session; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.bridge.detach()
        self.products.shutdown()
        self.studio.close()
        self.view.shutdown()

    def closeEvent(self, event):
        self.shutdown()
        super().closeEvent(event)
