"""Work around a reference-counting bug of PySide6 6.12.0 on Python 3.11.

Every call into Qt that returns nothing (``label.setText``, ``painter.drawText``, ...) or returns
``None`` (``item.data(role)`` for an unset role, ``currentItem()`` with none) hands Python a
``None`` it did not add a reference for. Python 3.12+ never frees ``None`` (it is immortal,
PEP 683), so there the bug is harmless; on 3.11 ``None``'s count (about 5,000 at start) runs
down with every such call and the process aborts with "Fatal Python error: none_dealloc" after
a few seconds of painting (found with bench/bench_gui.py; 6.11.3 does not have the bug).

``Signal.emit`` does the same with the ``True`` it returns. ``apply()`` detects each (100 calls
must not lower the count) and, only when the bug is there and only on CPython < 3.12, adds 2**40
to the reference count of ``None`` (and of ``True`` / ``False``): at a million leaked
references a second that lasts for decades, which is what immortality means in 3.12."""
from __future__ import annotations

import platform
import sys

BOOST = 1 << 40
applied = False


def leaks_none(calls: int = 100) -> bool:
    """A void Qt call hands back a ``None`` without a reference (6.12.0)."""
    from PySide6.QtCore import QObject
    o = QObject()
    before = sys.getrefcount(None)
    for _ in range(calls):
        o.setObjectName("probe")
    return before - sys.getrefcount(None) >= calls * 0.9


def leaks_bool(calls: int = 100) -> bool:
    """``Signal.emit`` hands back ``True`` without a reference (6.12.0): every emit from Python
    (the worker's progress, the hot folder's bridge) runs ``True``'s count down."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal(int)
    p = _Probe()
    before = sys.getrefcount(True)
    for _ in range(calls):
        p.sig.emit(1)
    return before - sys.getrefcount(True) >= calls * 0.9


def _boost(obj) -> None:
    import ctypes
    ctypes.c_ssize_t.from_address(id(obj)).value += BOOST      # ob_refcnt is PyObject's first field


def apply() -> bool:
    """Make ``None`` / ``True`` / ``False`` effectively immortal when this PySide6 leaks them.
    True when it did."""
    global applied
    if applied or platform.python_implementation() != "CPython" or sys.version_info >= (3, 12):
        return applied
    if leaks_none():
        _boost(None)
        applied = True
    if leaks_bool():
        _boost(True)
        _boost(False)
        applied = True
    return applied
