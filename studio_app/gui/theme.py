"""Neutral dark-grey look for judging colour: no tinted chrome, readable type, clear status colours."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

BG = "#2b2b2b"          # neutral 18 % grey-ish: photos are judged against it
PANEL = "#323232"
BASE = "#262626"
TEXT = "#e6e6e6"
MUTED = "#a0a0a0"
ACCENT = "#5b9dd9"
BORDER = "#444444"

STATUS_COLOURS = {
    "queued": "#8c8c8c",
    "processing": "#5b9dd9",
    "ready": "#d0d0d0",
    "needs_review": "#e0a93b",
    "approved": "#4cb860",
    "rejected": "#e05a4f",
    "exported": "#9b7fd4",
    "error": "#ff5c5c",
    "cancelled": "#8c8c8c",
}

ZONE_COLOURS = {
    "head": "#f2c14e",
    "top": "#4fb3f2",
    "bottom": "#7be07b",
    "shoes": "#f28d4f",
    "full": "#e6e6e6",
    "product": "#4fb3f2",
}
MASK_TINT = (16, 16, 16, 150)       # dims what is *not* in the mask

STYLE = f"""
QWidget {{ background: {BG}; color: {TEXT}; }}
QMainWindow::separator {{ background: {BORDER}; width: 1px; height: 1px; }}
QMenuBar, QMenu, QToolBar, QStatusBar {{ background: {PANEL}; }}
QMenu::item:selected, QMenuBar::item:selected {{ background: #454545; }}
QToolBar {{ border: none; border-bottom: 1px solid {BORDER}; spacing: 4px; padding: 2px; }}
QToolBar > QLabel, QToolBar > QWidget#toolbar-spacer {{ background: transparent; }}
QToolButton {{ padding: 4px 8px; border-radius: 3px; }}
QToolButton:hover {{ background: #404040; }}
QToolButton:checked {{ background: #4a4a4a; border: 1px solid #5a5a5a; }}
QListWidget, QListView {{ background: {BASE}; border: none; outline: 0; }}
QGraphicsView {{ background: {BASE}; border: none; }}
QPushButton {{ background: #3c3c3c; border: 1px solid #505050; border-radius: 3px; padding: 5px 10px; }}
QPushButton:hover {{ background: #474747; }}
QPushButton:pressed {{ background: #2f2f2f; }}
QPushButton:disabled {{ color: #6a6a6a; border-color: #404040; }}
QPushButton#approve {{ background: #2f5a37; border-color: #3f7a4a; }}
QPushButton#reject {{ background: #5e2f2b; border-color: #7f3f3a; }}
QLabel#heading {{ color: {MUTED}; font-weight: bold; text-transform: uppercase; padding-top: 8px; }}
QLabel#muted {{ color: {MUTED}; }}
QProgressBar {{ background: {BASE}; border: 1px solid {BORDER}; border-radius: 3px; text-align: center; max-height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox {{ background: {BASE}; border: 1px solid #505050; border-radius: 3px; padding: 3px; }}
QCheckBox::indicator {{ width: 14px; height: 14px; }}
QScrollBar:vertical {{ background: {BASE}; width: 10px; }}
QScrollBar::handle:vertical {{ background: #4a4a4a; border-radius: 4px; min-height: 20px; }}
QScrollBar:horizontal {{ background: {BASE}; height: 10px; }}
QScrollBar::handle:horizontal {{ background: #4a4a4a; border-radius: 4px; min-width: 20px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QToolTip {{ background: #1e1e1e; color: {TEXT}; border: 1px solid {BORDER}; }}
QSplitter::handle {{ background: {BORDER}; }}
"""


def apply(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    for role, col in ((QPalette.Window, BG), (QPalette.WindowText, TEXT), (QPalette.Base, BASE),
                      (QPalette.AlternateBase, PANEL), (QPalette.Text, TEXT), (QPalette.Button, "#3c3c3c"),
                      (QPalette.ButtonText, TEXT), (QPalette.Highlight, "#3d5f80"),
                      (QPalette.HighlightedText, "#ffffff"), (QPalette.ToolTipBase, "#1e1e1e"),
                      (QPalette.ToolTipText, TEXT), (QPalette.PlaceholderText, MUTED)):
        pal.setColor(role, QColor(col))
    app.setPalette(pal)
    f = app.font()
    if f.pointSizeF() < 10:
        f.setPointSizeF(10)
    app.setFont(f)
    app.setStyleSheet(STYLE)
