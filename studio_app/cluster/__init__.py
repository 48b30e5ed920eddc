"""Processing and exporting on a Ray cluster: the optional extra ``studio-catalog[cluster]``.

Ray is one more way to run the *same* per-photo processing (:class:`studio_app.core.processing.Processor`,
built on each worker from a :class:`~studio_app.core.processor.ProcessorSpec`) and the *same* per-item
export rendering (:mod:`studio_app.core.export.encoding`); the driver keeps the Studio's queue, progress,
cancel and exit codes, and the exporter's writing rules. Workers receive photo and result-folder paths
(plain strings) and settings values, never code; they write results through ``ResultFolder`` (atomic
writes, path-escape refusal) on storage every node can reach.

Nothing here imports Ray at module import time: the desktop app and the default install work without
it, and ``--cluster`` without the extra says how to install it (:func:`require_ray`).
"""
from __future__ import annotations

import importlib.util

INSTALL_HINT = '--cluster needs Ray, an optional extra: pip install "studio-catalog[cluster]"'
LOCAL = "local"


class ClusterError(RuntimeError):
    """The cluster cannot be used (Ray missing, address unreachable, no workers); one-line message."""


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray():
    """The ``ray`` module, or :class:`ClusterError` saying how to install it."""
    if not ray_available():
        raise ClusterError(INSTALL_HINT)
    from .connect import import_ray
    return import_ray()
