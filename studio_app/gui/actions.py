"""The window's menus, shortcuts and toolbar. Each action calls one window / view method; the
actions are attributes of the window (``win.a_undo``, ``win.a_pause``, …) so tests and the
status updates can reach them. Shortcuts work wherever the focus is (added to the window too)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QWidget

from .export_dialog import list_preset_names


def _act(win, menu, text: str, slot, shortcuts=(), checkable=False, tip: str = "") -> QAction:
    a = QAction(text, win)
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
    win.addAction(a)
    return a


def build_menus(win) -> None:
    v, c = win.view, win.canvas
    mb = win.menuBar()
    m = mb.addMenu("&File")
    win.a_open = _act(win, m, "Open photos…", win.open_photos_dialog, ["Ctrl+O"])
    win.a_open_dir = _act(win, m, "Open folder…", win.open_folder_dialog, ["Ctrl+Shift+O"])
    m.addSeparator()
    win.a_hot = _act(win, m, "Choose hot folder…", win.choose_hot_folder_dialog)
    win.a_pause = _act(win, m, "Pause watching", win.set_paused, ["Ctrl+P"], checkable=True,
                       tip="Pause / resume the hot folder")
    win.a_out = _act(win, m, "Choose output folder…", win.choose_out_dialog)
    m.addSeparator()
    win.a_requeue = _act(win, m, "Process cancelled photos again", win.requeue_cancelled)
    win.a_export = _act(win, m, "Export…", win.export_dialog, ["Ctrl+E"])
    win.a_open_catalog = _act(win, m, "Open catalog folder", win.exports.open_catalog,
                              tip="Show the last export's catalog folder in the file manager")
    win.a_open_catalog.setEnabled(False)
    m.addSeparator()
    win.a_settings = _act(win, m, "Settings…", win.settings_dialog, ["Ctrl+,"],
                          tip="Choose the keypoint and segmentation engines")
    win.a_cluster = _act(win, m, "Process on the cluster", win.set_cluster_processing, checkable=True,
                         tip="Send the queued photos to the cluster set in Settings (off: this workstation)")
    m.addSeparator()
    _act(win, m, "Quit", win.close, ["Ctrl+Q"])

    m = mb.addMenu("&Edit")
    win.a_undo = _act(win, m, "Undo", v.undo, ["Ctrl+Z"])
    win.a_redo = _act(win, m, "Redo", v.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
    m.addSeparator()
    tools = QActionGroup(win)
    win.a_select = _act(win, m, "Move / edit", lambda on: on and win.set_tool("select"), ["V"], True)
    win.a_brush_add = _act(win, m, "Mask brush: add", lambda on: on and win.set_tool("brush_add"), ["B"], True)
    win.a_brush_erase = _act(win, m, "Mask brush: erase", lambda on: on and win.set_tool("brush_erase"), ["E"], True)
    win.a_pick = _act(win, m, "Eyedropper", lambda on: on and win.set_tool("eyedropper"), ["I"], True)
    for a in (win.a_select, win.a_brush_add, win.a_brush_erase, win.a_pick):
        tools.addAction(a)
    win.a_select.setChecked(True)
    _act(win, m, "Brush smaller", lambda: win.brush_size(1 / 1.25), ["["])
    _act(win, m, "Brush larger", lambda: win.brush_size(1.25), ["]"])
    m.addSeparator()
    win.a_fit_garment = _act(win, m, "Fit box to garment", v.fit_to_garment, ["Shift+G"],
                             tip="Set the selected item's box to its garment's own pixels (Shift+G)")

    m = mb.addMenu("&View")
    _act(win, m, "Zoom in", c.zoom_in, ["+", "=", "Ctrl++"])
    _act(win, m, "Zoom out", c.zoom_out, ["-", "Ctrl+-"])
    _act(win, m, "Fit", c.fit, ["0"])
    _act(win, m, "Actual size (1:1)", c.actual_size, ["1"])
    m.addSeparator()
    win.a_mask = _act(win, m, "Show mask", c.set_mask_visible, ["M"], checkable=True)
    win.a_mask.setChecked(True)
    win.a_garments = _act(win, m, "Show garment map", v.set_garments_visible, ["G"], checkable=True,
                          tip="Tint each garment class over a person photo (G); classes in the inspector")
    v.garmentsToggled.connect(win.a_garments.setChecked)
    win.a_review_only = _act(win, m, "Only photos to review", v.filmstrip.set_review_only, ["F"], checkable=True,
                             tip="Show only the photos that need review or failed (F)")
    m.addSeparator()
    _act(win, m, "Next photo", v.next_photo, ["Right", "J"])
    _act(win, m, "Previous photo", v.previous_photo, ["Left", "K"])
    win.a_newest = _act(win, m, "Newest photo", v.jump_newest, ["End"],
                        tip="Show the newest photo and clear the new-arrivals badge (End)")

    m = mb.addMenu("&Review")
    win.a_approve = _act(win, m, "Approve", lambda: v.review("approved"), ["A"])
    win.a_reject = _act(win, m, "Reject", lambda: v.review("rejected"), ["R"])
    win.a_flip = _act(win, m, "Treat as the other kind", v.flip_kind)
    win.a_reprocess = _act(win, m, "Process again", lambda: win.reprocess(), ["Ctrl+R"],
                           tip="Process the photo on screen again with the current engines (reloads the photo)")
    win.a_cancel = _act(win, m, "Cancel the batch", win.cancel_batch, ["Esc"])

    m = mb.addMenu("&Products")
    pp = win.products
    win.a_find_sku = _act(win, m, "Find product", pp.focus_filter, ["Ctrl+K"], tip="Filter the SKUs (Ctrl+K)")
    win.a_import_shots = _act(win, m, "Import shot list…", pp.import_dialog, ["Ctrl+Shift+I"])
    win.a_new_product = _act(win, m, "New product…", pp.new_product_dialog, ["Ctrl+N"])
    win.a_bind = _act(win, m, "Bind cards and file names", pp.bind_cards,
                      tip="Barcode cards and SKU_view file names bind the session's photos, in capture order")
    m.addSeparator()
    win.a_assign_photos = _act(win, m, "Assign selected photos to the SKU", pp.assign_photos, ["S"],
                               tip="Every item of the photos selected in the filmstrip goes to the selected SKU (S)")
    win.a_assign_item = _act(win, m, "Assign selected item to the SKU", pp.assign_item, ["Shift+S"],
                             tip="The item selected on the photo (e.g. the top of an on-model shot) goes to the SKU")
    win.a_set_view = _act(win, m, "Set the item's view", pp.set_view, ["W"])
    win.a_set_main = _act(win, m, "Make it the product's main image", pp.set_main, ["H"])
    m.addSeparator()
    win.a_only_sku = _act(win, m, "Filmstrip: only this SKU's photos", pp.only_sku.setChecked, ["Shift+F"],
                          checkable=True)
    pp.only_sku.toggled.connect(win.a_only_sku.setChecked)
    m.addAction(pp.toggleViewAction())

    m = mb.addMenu("&Help")
    _act(win, m, "Keyboard shortcuts", win.show_shortcuts, ["F1"])
    _act(win, m, "About Studio Catalog", win.show_about)


def build_toolbar(win) -> None:
    tb = win.addToolBar("Main")
    tb.setObjectName("main-toolbar")
    tb.setMovable(False)
    tb.setToolButtonStyle(Qt.ToolButtonTextOnly)
    # short labels on the toolbar (the menus keep the full wording); fits 1280 px with room to spare
    for a, short in ((win.a_open, "Open"), (win.a_hot, "Hot folder"), (win.a_pause, "Pause"), (win.a_select, "Move"),
                     (win.a_brush_add, "Brush +"), (win.a_brush_erase, "Brush −"), (win.a_pick, "Eyedropper"),
                     (win.a_export, "Export"), (win.a_review_only, "To review")):
        a.setIconText(short)
    win.a_open.setToolTip("Open photos (Ctrl+O)")
    win.a_hot.setToolTip("Choose the hot folder watched for new photos")
    win.a_select.setToolTip("Move / edit boxes and keypoints (V)")
    win.a_brush_add.setToolTip("Mask brush: add to the subject (B); [ ] change the size")
    win.a_brush_erase.setToolTip("Mask brush: erase from the subject (E); [ ] change the size")
    win.a_pick.setToolTip("Eyedropper: set the selected item's swatch colour (I)")
    win.a_export.setToolTip("Export approved results through a marketplace preset (Ctrl+E)")
    for group in ((win.a_open, win.a_hot, win.a_pause),
                  (win.a_select, win.a_brush_add, win.a_brush_erase, win.a_pick)):
        for a in group:
            tb.addAction(a)
        tb.addSeparator()
    # the menu's Undo / Redo carry the step in their text ("Undo Move left knee"), which would make
    # the toolbar grow and shrink: fixed labels here, the step in the tooltip
    win.tb_undo = QAction("Undo", win)
    win.tb_undo.triggered.connect(lambda: win.view.undo())
    win.tb_redo = QAction("Redo", win)
    win.tb_redo.triggered.connect(lambda: win.view.redo())
    for act in (win.tb_undo, win.tb_redo):
        act.setEnabled(False)
        tb.addAction(act)
    tb.addSeparator()
    tb.addAction(win.a_export)
    tb.addAction(win.a_review_only)
    spacer = QWidget()
    spacer.setObjectName("toolbar-spacer")
    spacer.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
    tb.addWidget(spacer)
    combo = win.preset_combo = QComboBox()
    combo.setToolTip("Marketplace preset: crop boxes keep its aspect ratio when resized")
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(18)
    combo.addItem("No preset (free aspect)", "")
    for name, title in list_preset_names():
        combo.addItem(title or name, name)
        combo.setItemData(combo.count() - 1, title or name, Qt.ToolTipRole)
    if win.preset_name:
        i = combo.findData(win.preset_name)
        if i >= 0:
            combo.setCurrentIndex(i)
    combo.currentIndexChanged.connect(win.preset_changed)
    win.preset_label = QLabel("Preset ")
    win.preset_label.setObjectName("muted")
    tb.addWidget(win.preset_label)
    tb.addWidget(combo)
    win.toolbar = tb


def show_history(win, ev) -> None:
    """A ``HistoryChanged`` of the photo on screen: Undo / Redo worded accordingly (the toolbar's
    buttons enabled too; the menu's stay enabled so a quick second Ctrl+Z never waits for an event)."""
    for menu, tool, can, text, verb, key in ((win.a_undo, win.tb_undo, ev.can_undo, ev.undo_text, "Undo", "Ctrl+Z"),
                                             (win.a_redo, win.tb_redo, ev.can_redo, ev.redo_text, "Redo",
                                              "Ctrl+Shift+Z")):
        menu.setText(f"{verb} {text}" if can and text else verb)
        tool.setEnabled(can)
        tool.setToolTip(f"{verb} {text} ({key})" if can and text else f"{verb} ({key})")
