"""Settings › Cluster address and File › Process on the cluster (issue 15): the window hands the
Studio a ClusterSpec, the queue then runs there with the status bar naming the cluster, and
unticking goes back to the workstation. The cluster itself is faked here (real Ray: test_cluster.py)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from gui_helpers import FakeProcessor, jpeg_bytes
from studio_app.cluster.processor import ClusterSpec
from studio_app.core.processor import ProcessorSpec
from studio_app.gui.main_window import MainWindow

pytestmark = pytest.mark.gui


class FakeCluster(FakeProcessor):
    slots = 2

    def describe(self) -> str:
        return "Ray cluster at head:6379: 2 CPU workers"

    def close(self) -> None:
        pass


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(ClusterSpec, "build", lambda self: built.append(self) or FakeCluster())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(tmp_path / "out", settings=settings, processor=FakeProcessor(), device="cpu")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.device_text == "test processor", timeout=10000)
    w.built = built
    yield w
    w.shutdown()


def test_no_address_no_cluster(window):
    assert window.set_cluster_processing(True) is False
    assert not window.a_cluster.isChecked()
    assert "cluster address in Settings" in window.statusBar().currentMessage()


def test_queue_goes_to_the_cluster_and_back(window, qtbot, tmp_path, monkeypatch):
    window.settings.setValue("cluster_address", "head:6379")
    with qtbot.waitSignal(window.processorState, timeout=10000, check_params_cb=lambda s, t: s == "ready"):
        assert window.set_cluster_processing(True)
    assert window.built and window.built[0].address == "head:6379"
    assert window.a_cluster.isChecked() and "Ray cluster at head:6379" in window.device_text
    photos = []
    for i in range(3):
        p = tmp_path / f"c{i}.jpg"
        p.write_bytes(jpeg_bytes())
        photos.append(str(p))
    window.add_paths(photos)
    qtbot.waitUntil(lambda: sorted(window.studio.processor.calls) == ["c0.jpg", "c1.jpg", "c2.jpg"], timeout=10000)
    monkeypatch.setattr(ProcessorSpec, "build", lambda self: FakeProcessor())      # the workstation's models
    with qtbot.waitSignal(window.processorState, timeout=10000, check_params_cb=lambda s, t: s == "ready"):
        assert window.set_cluster_processing(False)
    assert not window.a_cluster.isChecked() and window.device_text == "test processor"
    assert isinstance(window.studio.spec, ProcessorSpec)
