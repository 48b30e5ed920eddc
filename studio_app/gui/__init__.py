"""The desktop app (PySide6). Everything Qt lives in this package; the domain is Qt-free."""
