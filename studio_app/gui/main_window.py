"""The main window: queue (filmstrip) | photo with editable overlays (canvas) | inspector.

Photos come from File > Open, drag-and-drop onto the window, or the hot folder. They are
queued in the session (``<out>/session.json``) and processed on the worker thread; results
appear as they finish. Every edit is an undoable command saved to the result document at once.
"""
from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QComboBox, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar,
                               QPushButton, QSizePolicy, QSplitter, QWidget)

from studio_app.core.edits import EditError
from studio_app.core.hotfolder import HotFolder, is_ignored
from studio_app.core.result import DocumentError, load
from studio_app.core.session import Session, STATUS_LABELS
from . import theme
from .canvas import Canvas
from .export_dialog import ExportDialog, list_preset_names
from .filmstrip import Filmstrip
from .help import about_html, shortcuts_html
from .inspector import Inspector
from .undo import UndoStacks
from .worker import Job, ProcessingWorker, WorkerThread



ADD_CHUNK = 8          # photos listed per event-loop turn when a folder is dropped


def _photos_in(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and not is_ignored(q)))
        elif p.is_file() and not is_ignored(p):
            out.append(p)
    return out


class MainWindow(QMainWindow):
    # bridges from the hot folder's thread (queued into the GUI thread)
    hotReady = Signal(str, str)          # photo, raw partner ("" if none)
    hotPaired = Signal(str, str)         # jpeg, raw
    entryChanged = Signal(str)           # photo (tests and the bench listen)
    overlaysShown = Signal(str)          # photo whose result overlays are on screen
    exportFinished = Signal(object)      # ExportReport, or the exception that stopped the export

    def __init__(self, out_root: str | Path, *, processor=None, processor_factory=None,
                 hot_folder: str | Path | None = None, settings: QSettings | None = None,
                 queue_size: int = 4, hot_stable_seconds: float = 1.0, hot_pair_window: float = 3.0,
                 preset: str | None = None, device: str = "auto", weights_dir: str | Path | None = None,
                 engine_factory=None):
        super().__init__()
        self.setWindowTitle("Studio Catalog")
        self.resize(1400, 880)
        self.settings = settings or QSettings()
        self.out_root = Path(out_root)
        self.out_root.mkdir(parents=True, exist_ok=True)
        self.session = Session.open(self.out_root)
        # session.json is written on a helper thread, at most every 200 ms (the result documents,
        # the source of truth, are saved at once by every edit)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(200)
        self._save_timer.timeout.connect(self._save_session)
        self._save_lock = threading.Lock()
        self.session.on_change = self._save_timer.start
        self.hot: HotFolder | None = None
        self.hot_stable_seconds = hot_stable_seconds
        self.hot_pair_window = hot_pair_window
        self._pending: collections.deque[str] = collections.deque()
        self._batch_total = 0
        self._batch_done = 0
        self._current_frac = 0.0
        self._auto_shown: str | None = None
        self._follow = True
        self.device_text = "loading models…"
        self.arrival_times: dict[str, float] = {}     # photo -> monotonic time it was queued
        self.shown_times: dict[str, float] = {}       # photo -> when its overlays were on screen
        self.preset_name = preset or self.settings.value("preset", "", str) or None
        self.device = device
        self._weights_dir = Path(weights_dir) if weights_dir else None
        # (pose, seg) -> a processor factory; by default the app's own (same isolation as at start)
        self.engine_factory = engine_factory
        if engine_factory is None and processor_factory is not None and hasattr(processor_factory, "engines"):
            from .app import processor_factory as _pf
            iso = getattr(processor_factory, "isolated", True)
            wd = getattr(processor_factory, "weights_dir", None)
            self.engine_factory = lambda pose, seg: _pf(device, pose, seg, isolated=iso, weights_dir=wd)

        self.undo = UndoStacks(self)
        self._build_ui()
        self._build_actions()

        # processing worker
        if processor is None and processor_factory is None:
            raise ValueError("MainWindow needs a processor or a processor factory")
        self.worker = ProcessingWorker(processor, processor_factory, maxsize=queue_size)
        self.worker.ready.connect(self._worker_ready)
        self.worker.load_failed.connect(self._worker_load_failed)
        self.worker.started.connect(self._job_started)
        self.worker.progress.connect(self._job_progress)
        self.worker.finished.connect(self._job_finished)
        self.worker.failed.connect(self._job_failed)
        self.worker.cancelled.connect(self._job_cancelled)
        self.worker.reloading.connect(self._worker_reloading)
        self.worker.reload_failed.connect(self._worker_reload_failed)
        self.worker_thread = WorkerThread(self.worker, self)
        self.worker_thread.start()

        self.hotReady.connect(self._hot_ready)
        self.hotPaired.connect(self._hot_paired)

        for e in self.session:
            self.filmstrip.upsert(e)
        for e in self.session.queued():
            self._enqueue(e.photo)
        if self.session.load_error:
            self.statusBar().showMessage(self.session.load_error, 10000)
        self._apply_preset_aspect()
        if hot_folder:
            self.set_hot_folder(hot_folder)
        self._update_status()

    # ---- UI ---------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.filmstrip = Filmstrip()
        self.canvas = Canvas()
        self.inspector = Inspector()
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.filmstrip)
        split.addWidget(self.canvas)
        split.addWidget(self.inspector)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([280, 840, 300])
        split.setChildrenCollapsible(False)
        self.setCentralWidget(split)
        self.setAcceptDrops(True)

        self.filmstrip.currentItemChanged.connect(lambda cur, prev: self._show_current())
        q = Qt.QueuedConnection   # overlays are rebuilt after an edit: never inside the item's own event
        self.canvas.filesDropped.connect(self.add_paths)
        self.canvas.keypointMoved.connect(self._kp_moved, q)
        self.canvas.boxChanged.connect(self._box_changed, q)
        self.canvas.maskStroke.connect(self._mask_stroke, q)
        self.canvas.colourPicked.connect(self._colour_picked, q)
        self.canvas.zoneSelected.connect(self.inspector.select_zone)
        self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %" if z > 0 else ""))
        self.canvas.shown.connect(self._canvas_shown)
        self.inspector.zoneSelected.connect(self.canvas.select_zone)
        self.inspector.flipKind.connect(self.flip_kind)
        self.inspector.eyedropper.connect(lambda on: self.set_tool("eyedropper" if on else "select"))
        self.inspector.rerunKmeans.connect(self._rerun_kmeans)
        self.inspector.lockToggled.connect(self._lock_toggled)
        self.inspector.deleteZone.connect(self._delete_zone)
        self.inspector.addZone.connect(self._add_zone)
        self.inspector.approve.connect(lambda: self.review("approved"))
        self.inspector.reject.connect(lambda: self.review("rejected"))
        self.inspector.resetMask.connect(self._reset_mask)

        sb = self.statusBar()
        self.counts_label = QLabel("")
        self.watch_label = QLabel("")
        self.device_label = QLabel("")
        self.device_label.setObjectName("muted")
        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("muted")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop processing: the photo being processed and the queued ones (Esc)")
        self.cancel_btn.clicked.connect(lambda: self.cancel_batch())
        self.cancel_btn.setEnabled(False)
        sb.addWidget(self.counts_label, 1)
        sb.addPermanentWidget(self.watch_label)
        sb.addPermanentWidget(self.zoom_label)
        sb.addPermanentWidget(self.device_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_btn)

    def _act(self, menu, text: str, slot, shortcuts=(), checkable=False, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
        a.setCheckable(checkable)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda checked=False: slot())
        menu.addAction(a)
        self.addAction(a)        # shortcuts work wherever the focus is
        return a

    def _build_actions(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self.a_open = self._act(m, "Open photos…", self.open_photos_dialog, ["Ctrl+O"])
        self.a_open_dir = self._act(m, "Open folder…", self.open_folder_dialog, ["Ctrl+Shift+O"])
        m.addSeparator()
        self.a_hot = self._act(m, "Choose hot folder…", self.choose_hot_folder_dialog)
        self.a_pause = self._act(m, "Pause watching", self.set_paused, ["Ctrl+P"], checkable=True,
                                 tip="Pause / resume the hot folder")
        self.a_out = self._act(m, "Choose output folder…", self.choose_out_dialog)
        m.addSeparator()
        self.a_requeue = self._act(m, "Process cancelled photos again", self.requeue_cancelled)
        self.a_export = self._act(m, "Export…", self.export_dialog, ["Ctrl+E"])
        m.addSeparator()
        self.a_settings = self._act(m, "Settings…", self.settings_dialog, ["Ctrl+,"],
                                    tip="Choose the keypoint and segmentation engines")
        m.addSeparator()
        self._act(m, "Quit", self.close, ["Ctrl+Q"])

        m = mb.addMenu("&Edit")
        self.a_undo = self.undo.group.createUndoAction(self, "Undo")
        self.a_undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.a_redo = self.undo.group.createRedoAction(self, "Redo")
        self.a_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (self.a_undo, self.a_redo):
            m.addAction(a)
            self.addAction(a)
        m.addSeparator()
        tools = QActionGroup(self)
        self.a_select = self._act(m, "Move / edit", lambda on: on and self.set_tool("select"), ["V"], True)
        self.a_brush_add = self._act(m, "Mask brush: add", lambda on: on and self.set_tool("brush_add"), ["B"], True)
        self.a_brush_erase = self._act(m, "Mask brush: erase", lambda on: on and self.set_tool("brush_erase"), ["E"], True)
        self.a_pick = self._act(m, "Eyedropper", lambda on: on and self.set_tool("eyedropper"), ["I"], True)
        for a in (self.a_select, self.a_brush_add, self.a_brush_erase, self.a_pick):
            tools.addAction(a)
        self.a_select.setChecked(True)
        self._act(m, "Brush smaller", lambda: self.brush_size(1 / 1.25), ["["])
        self._act(m, "Brush larger", lambda: self.brush_size(1.25), ["]"])

        m = mb.addMenu("&View")
        self._act(m, "Zoom in", self.canvas.zoom_in, ["+", "=", "Ctrl++"])
        self._act(m, "Zoom out", self.canvas.zoom_out, ["-", "Ctrl+-"])
        self._act(m, "Fit", self.canvas.fit, ["0"])
        self._act(m, "Actual size (1:1)", self.canvas.actual_size, ["1"])
        m.addSeparator()
        self.a_mask = self._act(m, "Show mask", self.canvas.set_mask_visible, ["M"], checkable=True)
        self.a_mask.setChecked(True)
        m.addSeparator()
        self._act(m, "Next photo", self.next_photo, ["Right", "J"])
        self._act(m, "Previous photo", self.previous_photo, ["Left", "K"])

        m = mb.addMenu("&Review")
        self.a_approve = self._act(m, "Approve", lambda: self.review("approved"), ["A"])
        self.a_reject = self._act(m, "Reject", lambda: self.review("rejected"), ["R"])
        self.a_flip = self._act(m, "Treat as the other kind", self.flip_kind)
        self.a_reprocess = self._act(m, "Process again", lambda: self.reprocess(), ["Ctrl+R"],
                                     tip="Process the photo on screen again with the current engines")
        self.a_cancel = self._act(m, "Cancel the batch", self.cancel_batch, ["Esc"])

        m = mb.addMenu("&Help")
        self._act(m, "Keyboard shortcuts", self.show_shortcuts, ["F1"])
        self._act(m, "About Studio Catalog", self.show_about)

        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonTextOnly)
        # short labels on the toolbar (the menus keep the full wording); fits 1280 px with room to spare
        for a, short in ((self.a_open, "Open"), (self.a_hot, "Hot folder"), (self.a_pause, "Pause"),
                         (self.a_select, "Move"),
                         (self.a_brush_add, "Brush +"), (self.a_brush_erase, "Brush −"),
                         (self.a_pick, "Eyedropper"), (self.a_export, "Export")):
            a.setIconText(short)
        self.a_open.setToolTip("Open photos (Ctrl+O)")
        self.a_hot.setToolTip("Choose the hot folder watched for new photos")
        self.a_select.setToolTip("Move / edit boxes and keypoints (V)")
        self.a_brush_add.setToolTip("Mask brush: add to the subject (B); [ ] change the size")
        self.a_brush_erase.setToolTip("Mask brush: erase from the subject (E); [ ] change the size")
        self.a_pick.setToolTip("Eyedropper: set the selected item's swatch colour (I)")
        self.a_export.setToolTip("Export approved results through a marketplace preset (Ctrl+E)")
        for a in (self.a_open, self.a_hot, self.a_pause):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.a_select, self.a_brush_add, self.a_brush_erase, self.a_pick):
            tb.addAction(a)
        tb.addSeparator()
        # the group's own undo/redo actions carry the command in their text ("Undo Move left knee"),
        # which would make the toolbar grow and shrink: fixed labels here, the command in the tooltip
        self.tb_undo = QAction("Undo", self)
        self.tb_undo.triggered.connect(lambda: self.undo.group.undo())
        self.tb_redo = QAction("Redo", self)
        self.tb_redo.triggered.connect(lambda: self.undo.group.redo())
        for act, can, txt, key in ((self.tb_undo, self.undo.group.canUndoChanged, self.undo.group.undoTextChanged, "Ctrl+Z"),
                                   (self.tb_redo, self.undo.group.canRedoChanged, self.undo.group.redoTextChanged, "Ctrl+Shift+Z")):
            act.setEnabled(False)
            can.connect(act.setEnabled)
            verb = act.text()
            txt.connect(lambda t, act=act, verb=verb, key=key: act.setToolTip(f"{verb} {t} ({key})" if t else f"{verb} ({key})"))
            act.setToolTip(f"{verb} ({key})")
            tb.addAction(act)
        tb.addSeparator()
        tb.addAction(self.a_export)
        spacer = QWidget()
        spacer.setObjectName("toolbar-spacer")
        spacer.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        tb.addWidget(spacer)
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("Marketplace preset: crop boxes keep its aspect ratio when resized")
        self.preset_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.preset_combo.setMinimumContentsLength(18)
        self.preset_combo.addItem("No preset (free aspect)", "")
        for name, title in list_preset_names():
            self.preset_combo.addItem(title or name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, title or name, Qt.ToolTipRole)
        if self.preset_name:
            i = self.preset_combo.findData(self.preset_name)
            if i >= 0:
                self.preset_combo.setCurrentIndex(i)
        self.preset_combo.currentIndexChanged.connect(self._preset_changed)
        self.preset_label = QLabel("Preset ")
        self.preset_label.setObjectName("muted")
        tb.addWidget(self.preset_label)
        tb.addWidget(self.preset_combo)
        self.toolbar = tb

    # ---- adding photos -------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    @Slot(list)
    def add_paths(self, paths: list) -> int:
        """Queue photos (files, or folders searched recursively). Returns how many were found to
        add (photos already listed excepted among the first ``ADD_CHUNK``; the rest of a big drop is
        listed over the next event-loop turns)."""
        n = 0
        photos = _photos_in([str(p) for p in paths])
        # RAW+JPEG of one shot dropped together: the JPEG is processed, the RAW is its reference
        from studio_app.core.hotfolder import JPEG_EXTS, is_raw
        jpeg_keys = {(p.parent, p.stem) for p in photos if p.suffix.lower() in JPEG_EXTS}
        raws = {(p.parent, p.stem): p for p in photos if is_raw(p)}
        todo = []
        for p in photos:
            if is_raw(p) and (p.parent, p.stem) in jpeg_keys:
                continue
            pair = raws.get((p.parent, p.stem)) if p.suffix.lower() in JPEG_EXTS else None
            todo.append((str(p), str(pair) if pair else None))
        if not photos:
            self.statusBar().showMessage("no photos found in what was dropped", 5000)
        # a big drop is listed a chunk per event-loop turn, so the window keeps answering
        for photo, pair in todo[:ADD_CHUNK]:
            n += self.add_photo(photo, pair)
        if len(todo) > ADD_CHUNK:
            self._add_later(todo[ADD_CHUNK:])
            n += len(todo) - ADD_CHUNK
        return n

    def _add_later(self, todo: list) -> None:
        def step():
            for photo, pair in todo[:ADD_CHUNK]:
                self.add_photo(photo, pair)
            if len(todo) > ADD_CHUNK:
                self._add_later(todo[ADD_CHUNK:])
        QTimer.singleShot(0, step)

    def add_photo(self, photo: str, pair: str | None = None, force_kind: str | None = None) -> bool:
        e = self.session.add(photo, pair=pair, force_kind=force_kind)
        if e is None:
            return False
        self.filmstrip.upsert(e)
        if e.status == "queued":
            self.arrival_times.setdefault(e.photo, time.monotonic())
            self._enqueue(e.photo)
        elif self.filmstrip.currentItem() is None:
            self.filmstrip.setCurrentItem(self.filmstrip.item_for(e.photo))
        if self.filmstrip.currentItem() is None and self.canvas.photo is None:
            self._show_current()          # the hint now says results are on their way
        self._update_status()
        return True

    def _enqueue(self, photo: str) -> None:
        if self._batch_done >= self._batch_total:
            self._batch_total = self._batch_done = 0
        self._batch_total += 1
        self._pending.append(photo)
        self._feed()

    def _feed(self) -> None:
        while self._pending and self.worker.free_slots > 0:
            photo = self._pending[0]
            e = self.session.get(photo)
            if e is None or e.status != "queued":
                self._pending.popleft()
                continue
            if not self.worker.submit(Job(photo, str(self.out_root), e.force_kind)):
                break
            self._pending.popleft()
        self.cancel_btn.setEnabled(self._batch_done < self._batch_total)

    # ---- hot folder ----------------------------------------------------------------------------
    def set_hot_folder(self, folder: str | Path | None) -> None:
        if self.hot is not None:
            self.hot.stop()
            self.hot = None
        if folder:
            folder = Path(folder)
            if not folder.is_dir():
                self.statusBar().showMessage(f"the hot folder {folder} does not exist", 8000)
            else:
                self.hot = HotFolder(folder, lambda p, r: self.hotReady.emit(str(p), str(r) if r else ""),
                                     on_paired=lambda j, r: self.hotPaired.emit(str(j), str(r)),
                                     stable_seconds=self.hot_stable_seconds, pair_window=self.hot_pair_window)
                if self.a_pause.isChecked():
                    self.hot.pause()
                self.hot.start()
                self.settings.setValue("hot_folder", str(folder))
        self._update_status()

    def set_paused(self, paused: bool) -> None:
        if self.hot is not None:
            if paused:
                self.hot.pause()
            else:
                self.hot.resume()
        self.a_pause.setText("Resume watching" if paused else "Pause watching")
        self.a_pause.setIconText("Resume" if paused else "Pause")
        self._update_status()

    @Slot(str, str)
    def _hot_ready(self, photo: str, raw: str) -> None:
        self.arrival_times.setdefault(str(Path(photo).resolve()), time.monotonic())
        self.add_photo(photo, raw or None)

    @Slot(str, str)
    def _hot_paired(self, jpeg: str, raw: str) -> None:
        self.session.set_pair(jpeg, raw)
        e = self.session.get(jpeg)
        if e is not None:
            self.filmstrip.upsert(e)

    # ---- worker signals --------------------------------------------------------------------------
    @Slot(str)
    def _worker_ready(self, text: str) -> None:
        self.device_text = text
        pose, seg = self.engines()
        custom = [Path(v).stem for v, builtin in ((pose, "blazepose"), (seg, "u2netp")) if v != builtin]
        self.device_label.setText(text + (" · " + " + ".join(custom) if custom else ""))
        self.device_label.setToolTip(f"Models run on: {text}\nKeypoints: {pose}\nSegmentation: {seg}\n"
                                     "(File › Settings… to change)")

    @Slot()
    def _worker_reloading(self) -> None:
        self.device_text = "loading models…"
        self.device_label.setText("loading models…")

    @Slot(str)
    def _worker_reload_failed(self, message: str) -> None:
        # the worker keeps the engines it had: so do the settings
        if self._engines_before is not None:
            self.settings.setValue("pose_engine", self._engines_before[0])
            self.settings.setValue("seg_engine", self._engines_before[1])
        QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Studio Catalog", message))

    # ---- engines ---------------------------------------------------------------------------
    _engines_before: tuple[str, str] | None = None

    @property
    def weights_dir(self) -> Path:
        if self._weights_dir is None:
            from ml.weights import weights_dir
            self._weights_dir = Path(weights_dir())
        return self._weights_dir

    def engines(self) -> tuple[str, str]:
        from .app import engine_settings
        return engine_settings(self.settings)

    def settings_dialog(self) -> None:
        from .settings_dialog import SettingsDialog
        pose, seg = self.engines()
        dlg = SettingsDialog(self, self.weights_dir, pose, seg, self.device_text)
        self._settings_dlg = dlg
        dlg.accepted.connect(lambda: self.set_engines(*dlg.values()))
        dlg.open()

    def set_engines(self, pose: str, seg: str) -> bool:
        """Store the engine choice and have the worker load it (on its thread). False when nothing
        changed or the window has no way to build processors (a test double)."""
        before = self.engines()
        if (pose, seg) == before:
            return False
        if self.engine_factory is None:
            self.statusBar().showMessage("engines cannot be changed in this window", 6000)
            return False
        self._engines_before = before
        self.settings.setValue("pose_engine", pose)
        self.settings.setValue("seg_engine", seg)
        self.worker.reload(self.engine_factory(pose, seg))
        self.statusBar().showMessage(f"loading the engines: keypoints {pose}, segmentation {seg}…", 8000)
        return True

    @Slot(str)
    def _worker_load_failed(self, message: str) -> None:
        self.device_text = "models not loaded"
        self.device_label.setText("models not loaded")
        QTimer.singleShot(0, lambda: QMessageBox.critical(self, "Studio Catalog", message))

    @Slot(str)
    def _job_started(self, photo: str) -> None:
        e = self.session.mark_processing(photo, "load", 0.0)
        if e is not None:
            self.filmstrip.upsert(e)
        self._current_frac = 0.0
        self._update_progress()

    @Slot(str, str, float)
    def _job_progress(self, photo: str, stage: str, frac: float) -> None:
        e = self.session.get(photo)
        if e is not None and e.status == "processing":
            e.stage, e.progress = stage, frac
            self.filmstrip.upsert(e)
        self._current_frac = frac
        self._update_progress()

    def _job_end(self, photo: str) -> None:
        self._batch_done = min(self._batch_total, self._batch_done + 1)
        self._current_frac = 0.0
        e = self.session.get(photo)
        if e is not None:
            self.filmstrip.upsert(e)
        self._feed()
        self._update_progress()
        self._update_status()
        self.entryChanged.emit(photo)

    @Slot(str, str)
    def _job_finished(self, photo: str, folder: str) -> None:
        self.undo.forget(str(Path(folder).resolve()))
        self.session.mark_done(photo, folder)
        self._job_end(photo)
        cur = self.filmstrip.current_photo()
        if cur == photo:
            self._show_current()
        elif self._follow and (cur is None or cur == self._auto_shown):
            self._auto_shown = photo
            self.filmstrip.setCurrentItem(self.filmstrip.item_for(photo))

    @Slot(str, str)
    def _job_failed(self, photo: str, message: str) -> None:
        self.session.mark_failed(photo, message)
        self._job_end(photo)
        if self.filmstrip.current_photo() == photo:
            self._show_current()

    @Slot(str)
    def _job_cancelled(self, photo: str) -> None:
        self.session.mark_cancelled([photo])
        self._job_end(photo)

    def cancel_batch(self) -> None:
        if self._batch_done >= self._batch_total and not self._pending:
            return
        self.worker.cancel()
        self._pending.clear()
        cancelled = self.session.mark_cancelled()
        for e in cancelled:
            self.filmstrip.upsert(e)
        self._batch_total = self._batch_done = 0
        self._update_progress()
        self._update_status()
        self.statusBar().showMessage(f"cancelled: {len(cancelled)} photo(s) not processed "
                                     "(File › Process cancelled photos again)", 8000)

    def requeue_cancelled(self) -> None:
        for e in self.session.requeue_cancelled():
            self.filmstrip.upsert(e)
            self._enqueue(e.photo)
        self._update_status()

    def _update_progress(self) -> None:
        if self._batch_total <= 0:
            self.progress.setValue(0)
            self.progress.setFormat("")
            self.cancel_btn.setEnabled(False)
            return
        v = (self._batch_done + self._current_frac) / self._batch_total
        self.progress.setValue(int(v * 1000))
        self.progress.setFormat(f"{self._batch_done}/{self._batch_total}")
        self.cancel_btn.setEnabled(self._batch_done < self._batch_total)

    def _update_status(self) -> None:
        c = self.session.counts()
        parts = [f"{len(self.session)} photos"]
        for k in ("queued", "processing", "needs_review", "ready", "approved", "rejected", "exported", "error",
                  "cancelled"):
            if c[k]:
                parts.append(f"<span style='color:{theme.STATUS_COLOURS[k]}'>{c[k]} {STATUS_LABELS[k].lower()}</span>")
        self.counts_label.setText(" · ".join(parts))
        if self.hot is None:
            self.watch_label.setText("no hot folder")
        else:
            state = "paused" if self.hot.paused else "watching"
            col = theme.STATUS_COLOURS["needs_review"] if self.hot.paused else theme.STATUS_COLOURS["approved"]
            self.watch_label.setText(f"<span style='color:{col}'>● {state}</span> {self.hot.folder.name}")

    # ---- showing the current photo ----------------------------------------------------------------
    def current_entry(self):
        p = self.filmstrip.current_photo()
        return None if p is None else self.session.get(p)

    def current_folder(self) -> str | None:
        e = self.current_entry()
        return str(Path(e.folder).resolve()) if e is not None and e.folder else None

    def _show_current(self) -> None:
        e = self.current_entry()
        if e is None:
            self.canvas.clear("Results appear here as they finish\n(or pick a photo on the left)"
                              if len(self.session) else None)
            self.inspector.set_document(None)
            self.undo.activate(None)
            return
        if self._auto_shown is not None and e.photo != self._auto_shown:
            self._auto_shown = None
        doc = None
        folder = self.current_folder()
        if folder and e.status not in ("queued", "processing"):
            try:
                doc = self.undo.editor(folder).doc if folder in self.undo.editors else load(folder)
            except DocumentError as exc:
                self.statusBar().showMessage(str(exc), 8000)
                doc = None
        self.canvas.show_photo(e.photo, doc, folder if doc else None)
        self.inspector.set_document(doc, e)
        self.undo.activate(folder if doc else None)

    @Slot(str)
    def _canvas_shown(self, photo: str) -> None:
        if self.canvas.doc is not None:
            self.shown_times.setdefault(photo, time.monotonic())
            self.overlaysShown.emit(photo)

    def select_row(self, row: int) -> None:
        if 0 <= row < self.filmstrip.count():
            self.filmstrip.setCurrentRow(row)

    def next_photo(self) -> None:
        self.select_row(self.filmstrip.currentRow() + 1)

    def previous_photo(self) -> None:
        self.select_row(max(0, self.filmstrip.currentRow() - 1))

    # ---- edits -------------------------------------------------------------------------------------
    def _edit(self, text: str, apply, with_mask: bool = False) -> bool:
        folder = self.current_folder()
        if folder is None or self.canvas.doc is None:
            return False
        try:
            self.undo.push(folder, text, apply, on_change=self._doc_changed, with_mask=with_mask)
        except (EditError, DocumentError, OSError, ValueError) as exc:
            self.statusBar().showMessage(f"{text}: {exc}", 8000)
            self._show_current()
            return False
        except ImportError as exc:
            self.statusBar().showMessage(f"{text}: not available yet ({exc})", 8000)
            self._show_current()
            return False
        return True

    def _doc_changed(self, editor) -> None:
        e = self.session.refresh(self.filmstrip.current_photo()) if self.current_folder() == str(editor.folder.resolve()) else None
        # the edit may belong to a photo that is not on screen (undo of another stack is not possible,
        # but keep it safe): find the entry by folder
        if e is None:
            for ent in self.session:
                if ent.folder and Path(ent.folder).resolve() == editor.folder.resolve():
                    e = self.session.refresh(ent.photo)
                    break
        if e is not None:
            self.filmstrip.upsert(e)
        if self.current_folder() == str(editor.folder.resolve()):
            self.canvas.set_document(editor.doc, str(editor.folder), mask=editor._mask)
            self.inspector.set_document(editor.doc, e, zone=self.inspector.zone)
        self._update_status()

    @Slot(str, float, float)
    def _kp_moved(self, name: str, x: float, y: float) -> None:
        self._edit(f"Move {name.replace('_', ' ')}", lambda ed: ed.move_keypoint(name, x, y))

    @Slot(str, list)
    def _box_changed(self, zone: str, box: list) -> None:
        self._edit(f"Set the {zone} box", lambda ed: ed.set_box(zone, box))

    @Slot(list, float, bool)
    def _mask_stroke(self, points: list, radius: float, add: bool) -> None:
        self._edit("Brush the mask" if add else "Erase from the mask",
                   lambda ed: ed.paint_mask(points, radius, add), with_mask=True)

    @Slot(float, float)
    def _colour_picked(self, x: float, y: float) -> None:
        zone = self.inspector.zone
        if not zone:
            self.statusBar().showMessage("choose an item first (the swatch belongs to an item)", 5000)
            return

        def apply(ed):
            ed.set_swatch(zone, ed.sample_colour(x, y))
        self._edit(f"Pick the {zone} colour", apply)
        self.inspector.pick.setChecked(False)

    def _rerun_kmeans(self, zone: str) -> None:
        self._edit(f"Re-measure the {zone} colour", lambda ed: ed.rerun_kmeans(zone))

    def _lock_toggled(self, zone: str, locked: bool) -> None:
        self._edit(f"{'Lock' if locked else 'Unlock'} the {zone} box", lambda ed: ed.set_locked(zone, locked))

    def _delete_zone(self, zone: str) -> None:
        self._edit(f"Delete the {zone} zone", lambda ed: ed.delete_zone(zone))

    def _add_zone(self, zone: str) -> None:
        self._edit(f"Add the {zone} zone", lambda ed: ed.add_zone(zone))
        self.inspector.select_zone(zone)

    def _reset_mask(self) -> None:
        self._edit("Reset the mask", lambda ed: ed.reset_mask(), with_mask=True)

    def review(self, status: str) -> None:
        """Approve / reject the photo on screen and go to the next one."""
        e = self.current_entry()
        if e is None or self.current_folder() is None or e.status in ("queued", "processing", "error"):
            return
        if self._edit("Approve" if status == "approved" else "Reject", lambda ed: ed.set_review(status)):
            self.next_photo()

    def flip_kind(self) -> None:
        e = self.current_entry()
        if e is None or e.status in ("queued", "processing"):
            return
        doc = self.canvas.doc
        other = "person" if (doc is not None and doc.kind == "product") else "product"
        if doc is None and e.kind:
            other = "person" if e.kind == "product" else "product"
        self.reprocess(e.photo, other)

    def reprocess(self, photo: str | None = None, force_kind: str | None = None) -> bool:
        """Process a photo again (the one on screen by default) with the current engines; its
        edits are replaced by the new result. ``force_kind`` person/product, or the model decides."""
        photo = photo or self.filmstrip.current_photo()
        e = self.session.get(photo) if photo else None
        if e is None or e.status in ("queued", "processing"):
            return False
        ent = self.session.add(e.photo, force_kind=force_kind, requeue=True)
        if ent is None:
            return False
        self.filmstrip.upsert(ent)
        self._enqueue(ent.photo)
        if self.filmstrip.current_photo() == ent.photo:
            self._show_current()
        self._update_status()
        return True

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

    # ---- presets, folders, export -----------------------------------------------------------------
    def _preset_changed(self, _i: int) -> None:
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

    def open_photos_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open photos", str(self.settings.value("last_dir", "")),
                                                "Photos (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp *.cr2 *.cr3 "
                                                "*.nef *.arw *.dng *.raf *.orf *.rw2);;All files (*)")
        if files:
            self.settings.setValue("last_dir", str(Path(files[0]).parent))
            self.add_paths(files)

    def open_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open a folder of photos", str(self.settings.value("last_dir", "")))
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
            QMessageBox.information(self, "Studio Catalog",
                                    f"Results will go to {d} from the next start of the app.")

    def export_dialog(self) -> None:
        if self.exporting:
            self.export_progress.show()
            self.export_progress.raise_()
            return
        c = self.session.counts()
        # first export: a catalog folder beside the results, so the operator can just press Export
        out_dir = str(self.settings.value("export_dir", "") or self.out_root / "catalog")
        dlg = ExportDialog(self, self.preset_name, out_dir,
                           approved=c["approved"] + c["exported"], unreviewed=c["ready"] + c["needs_review"])
        self._export_dlg = dlg
        dlg.accepted.connect(lambda: self._export_accepted(dlg))
        dlg.open()

    def _export_accepted(self, dlg: "ExportDialog") -> None:
        preset, out_dir, all_ = dlg.values()
        self.settings.setValue("export_dir", out_dir)
        folders = [e.folder for e in self.session if e.folder and e.status in
                   (("approved", "exported", "ready", "needs_review") if all_ else ("approved", "exported"))]
        if not folders:
            self.statusBar().showMessage("nothing to export: approve some photos first", 6000)
            return
        self.start_export(folders, preset, out_dir, not all_)

    @property
    def exporting(self) -> bool:
        return self._export_thread is not None and self._export_thread.is_alive()

    _export_thread: threading.Thread | None = None

    def start_export(self, folders, preset, out_dir, only_approved: bool = True) -> bool:
        """Export on a helper thread (rendering from the source photos is seconds per image);
        a progress dialog shows which result is being exported and can cancel the run (what is
        written stays complete; running the export again finishes it). ``exportFinished(report or
        exception)`` when done."""
        if self.exporting:
            return False
        from PySide6.QtWidgets import QProgressDialog
        cancel = threading.Event()
        self._export_cancel = cancel
        bridge = self._export_bridge = _ExportBridge(self)
        dlg = self.export_progress = QProgressDialog(f"Exporting {len(folders)} results…", "Cancel export",
                                                     0, len(folders), self)
        dlg.setWindowTitle("Export")
        dlg.setWindowModality(Qt.NonModal)          # the operator can keep reviewing meanwhile
        dlg.setMinimumDuration(0)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.setMinimumWidth(420)
        dlg.canceled.connect(cancel.set)
        dlg.canceled.connect(lambda: dlg.setLabelText("Cancelling after the current image…"))
        dlg.setValue(0)
        dlg.show()

        def on_progress(i: int, n: int, name: str) -> None:
            if cancel.is_set():
                return
            dlg.setMaximum(max(1, n))
            dlg.setValue(i)
            dlg.setLabelText(f"Exporting {i + 1} of {n}: {name}")
        bridge.progress.connect(on_progress)
        bridge.finished.connect(lambda rep, err: self._export_done(folders, out_dir, rep, err))

        def job():
            from studio_app.core.export import export
            try:
                rep = export(folders, preset, out_dir, only_approved=only_approved,
                             progress=lambda i, n, name: bridge.progress.emit(i, n, name), cancel=cancel.is_set)
            except Exception as exc:
                bridge.finished.emit(None, exc)
                return
            bridge.finished.emit(rep, None)
        self._export_thread = threading.Thread(target=job, name="export", daemon=True)
        self._export_thread.start()
        self.statusBar().showMessage("exporting…")
        return True

    def _export_done(self, folders, out_dir, report, error) -> None:
        self._export_thread = None
        dlg = self.export_progress
        dlg.setValue(dlg.maximum())
        dlg.hide()
        if error is not None:
            self.statusBar().showMessage(f"export failed: {error}", 10000)
            QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Export", f"Export failed: {error}"))
            self.exportFinished.emit(error)
            return
        keys = {str(Path(f).resolve()) for f in folders}
        for e in self.session:
            if e.folder and str(Path(e.folder).resolve()) in keys:
                ent = self.session.refresh(e.photo)
                if ent is not None:
                    self.filmstrip.upsert(ent)
        self._update_status()
        msg = (f"exported {report.documents_exported} of {report.documents_total} results "
               f"({len(report.written)} files written) to {out_dir}")
        if report.cancelled:
            self.statusBar().showMessage(msg + " — cancelled; export again to finish", 15000)
        elif not report.ok:
            self.statusBar().showMessage(msg + " — with problems", 15000)
            text = msg + "\n\n" + "\n".join(report.failure_lines()[:20])
            QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Export", text))
        else:
            self.statusBar().showMessage(msg, 15000)
        self.exportFinished.emit(report)

    # ---- help ----------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(shortcuts_html())
        box.open()

    def about_text(self) -> str:
        return about_html(self.device_text, self.engines())

    def show_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About Studio Catalog")
        box.setText(self.about_text())
        box.open()

    def _save_session(self) -> None:
        data = self.session.data()

        def write():
            with self._save_lock:
                try:
                    self.session.write(data)
                except OSError:
                    pass
        threading.Thread(target=write, name="session-save", daemon=True).start()

    # ---- shutdown ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self.hot is not None:
            self.hot.stop()
            self.hot = None
        self.worker_thread.shutdown()
        self.canvas.shutdown()
        self.filmstrip.shutdown()
        self._save_timer.stop()
        with self._save_lock:
            try:
                self.session.save()
            except OSError:
                pass

    def closeEvent(self, event):
        self.shutdown()
        super().closeEvent(event)


class _ExportBridge(QObject):
    """Signals from the export thread, delivered on the GUI thread."""
    progress = Signal(int, int, str)
    finished = Signal(object, object)
