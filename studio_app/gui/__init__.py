"""The desktop app (PySide6). Everything Qt lives in this package; the domain is Qt-free."""
from . import qtfix as _qtfix

_qtfix.apply()      # PySide6 6.12.0 + Python 3.11 None refcount bug (see qtfix)
