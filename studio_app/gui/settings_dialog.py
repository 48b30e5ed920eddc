"""Settings › Engines: which model finds the keypoints and which one segments the photo.

Lists the built-in engines and the trained checkpoints found in ``weights/`` (an OpenPose or
YOLACT ``.pth`` with its ``.json`` config beside it; see ``studio_app.core.engines``). The choice
is stored in the app's settings; the worker loads the new models on its own thread, between two
photos, and the result documents name the engines that produced them (``engines``).

Settings › Keep models loaded after closing: minutes the models process waits for the app's next
launch (``studio_app.core.resident``). Settings › Cluster: the address of a Ray cluster's head node (docs/cluster.md); File › Process on
the cluster then sends the queued photos there."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QSpinBox,
                               QVBoxLayout)

from studio_app.core.engines import EngineChoice, pose_choices, seg_choices


def _fill(combo: QComboBox, choices: list[EngineChoice], current: str) -> None:
    combo.clear()
    for c in choices:
        combo.addItem(c.label, c.value)
        combo.setItemData(combo.count() - 1, c.detail or c.value, 3)      # Qt.ToolTipRole
    i = combo.findData(current)
    if i < 0 and current:
        # chosen earlier, missing now: keep it visible so the operator sees what happened
        combo.addItem(f"{current} (not found)", current)
        i = combo.count() - 1
    combo.setCurrentIndex(max(0, i))


class SettingsDialog(QDialog):
    def __init__(self, parent, weights_dir: str | Path, pose: str, seg: str, device_text: str = "",
                 cluster: str = "", keep_minutes: int = 10):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        self.weights_dir = Path(weights_dir)
        lay = QVBoxLayout(self)
        intro = QLabel("Choose the models that process new photos. Trained checkpoints appear here when "
                       f"they are placed, with their <b>.json</b> config, in <b>{self.weights_dir}</b>.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.pose = QComboBox()
        _fill(self.pose, pose_choices(self.weights_dir), pose)
        self.pose.setToolTip("Finds the 23 body keypoints on person photos (garment crops follow them)")
        self.seg = QComboBox()
        _fill(self.seg, seg_choices(self.weights_dir), seg)
        self.seg.setToolTip("Cuts the product out of product photos")
        self.pose_detail = QLabel()
        self.seg_detail = QLabel()
        for lb in (self.pose_detail, self.seg_detail):
            lb.setObjectName("muted")
            lb.setWordWrap(True)
        form.addRow("Keypoints", self.pose)
        form.addRow("", self.pose_detail)
        form.addRow("Segmentation", self.seg)
        form.addRow("", self.seg_detail)
        self.cluster = QLineEdit(cluster)
        self.cluster.setPlaceholderText("head-node:6379 — empty: this workstation only")
        self.cluster.setToolTip("A Ray cluster on the studio's private network (docs/cluster.md); "
                                "File › Process on the cluster sends the queue there")
        form.addRow("Cluster address", self.cluster)
        self.keep = QSpinBox()
        self.keep.setRange(0, 240)
        self.keep.setSuffix(" min")
        self.keep.setSpecialValueText("no — the models stop with the app")
        self.keep.setValue(max(0, int(keep_minutes)))
        self.keep.setToolTip("After you close the app its models stay loaded this long, so the app "
                             "opens again with its first photo processed in about a second instead of "
                             "several (they hold about 0.7 GB of memory meanwhile)")
        form.addRow("Keep models loaded after closing", self.keep)
        lay.addLayout(form)
        self.pose.currentIndexChanged.connect(self._details)
        self.seg.currentIndexChanged.connect(self._details)
        self._details()
        note = QLabel("Photos already processed keep their results; Review › Process again (Ctrl+R) "
                      "runs the photo on screen through the new engines." + (f"<br>Models run on: {device_text}" if device_text else ""))
        note.setObjectName("muted")
        note.setWordWrap(True)
        lay.addWidget(note)
        bb = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    def _details(self) -> None:
        self.pose_detail.setText(self.pose.currentData(3) or "")
        self.seg_detail.setText(self.seg.currentData(3) or "")

    def keep_minutes(self) -> int:
        return int(self.keep.value())

    def cluster_address(self) -> str:
        return self.cluster.text().strip()

    def values(self) -> tuple[str, str]:
        return self.pose.currentData() or "blazepose", self.seg.currentData() or "u2netp"
