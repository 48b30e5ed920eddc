"""PySide6 6.12.0 on Python 3.11 drops a reference to None on every void Qt call; importing the
GUI package must make that harmless (the app would otherwise abort after a few thousand calls)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CODE = """
import sys
import studio_app.gui
from PySide6.QtWidgets import QApplication, QLabel, QListWidget, QListWidgetItem
from PySide6.QtCore import Qt, QObject, Signal
class S(QObject):
    sig = Signal(bool)
s = S()
s.sig.connect(lambda b: None)
app = QApplication([])
lb = QLabel()
lw = QListWidget(); it = QListWidgetItem("x"); lw.addItem(it)
for i in range(100000):
    lb.setText("x")                  # void
    it.data(Qt.UserRole + 7)         # unset role -> None
    s.sig.emit(i % 2 == 0)           # emit returns True
print("ok", studio_app.gui._qtfix.applied)
"""


def test_many_none_returning_qt_calls_do_not_abort():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("ok")


def test_fix_applies_only_where_the_bug_is():
    from studio_app.gui import qtfix
    if sys.version_info >= (3, 12):
        assert not qtfix.applied
    else:
        if qtfix.applied:
            assert sys.getrefcount(None) > (1 << 39)
        else:
            assert not qtfix.leaks_none() and not qtfix.leaks_bool()
