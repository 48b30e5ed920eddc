"""Atomic file writes for the domain layer: the one implementation lives in ``ml.atomic``."""
from ml.atomic import (TMP_PREFIX, WriteError, atomic_path, explain, remove_stale_temporaries,
                       write_bytes, write_json, write_text, write_with)

__all__ = ["TMP_PREFIX", "WriteError", "atomic_path", "explain", "remove_stale_temporaries",
           "write_bytes", "write_json", "write_text", "write_with"]
