"""Start-up paths of the desktop app: what runs before the models' process starts, and the
first photo's kernels primed while the models load (issue 14)."""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np

from ml.pipeline import Pipeline


def test_command_line_parser_imports_no_image_libraries():
    """`studio-catalog gui` builds the command line's parser before it starts the models'
    process; building it must not import the catalog service's image stack (numpy, OpenCV:
    ~0.15 s on this machine), only what parsing needs."""
    code = ("import sys; from studio_app.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'cv2', 'torch', 'PySide6', 'studio_app.core.catalog.service') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_catalog_names_still_importable():
    from studio_app.core.catalog import CatalogService, mirror_into, rebuild
    from studio_app.core.catalog.service import CatalogService as direct
    assert CatalogService is direct and callable(mirror_into) and callable(rebuild)


class _Segmenter:
    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []
        self.done = threading.Event()

    def predict(self, rgb):
        self.calls.append((threading.current_thread().name, rgb.shape))
        self.done.set()
        return np.zeros((320, 320), np.float32)


class _Pose:
    pass


def test_warm_up_primes_the_segmenter_on_its_own_thread():
    """``warm_up(prime=True)`` (the app's models process) runs the segmenter once, off the
    caller's thread, so the first photo does not create its kernels; plain ``warm_up`` does not."""
    for prime in (True, False):
        p = Pipeline(device="cpu")
        seg = _Segmenter()
        p._seg, p._pose = seg, _Pose()
        p.warm_up(optional=False, prime=prime)
        if prime:
            assert seg.done.wait(10)
            assert seg.calls[0][0] == "prime-segmenter"
        else:
            assert not seg.done.wait(0.2) and seg.calls == []
