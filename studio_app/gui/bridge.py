"""The one crossing from the Studio's threads into the UI thread.

``Studio`` calls its listeners on whichever thread did the work (processing, hot folder, export,
caller). :class:`StudioBridge` connects to every event and re-emits it as one Qt signal; a slot
connected with ``Qt.QueuedConnection`` then runs on the UI thread, in emission order. Nothing in
the GUI touches a widget from a Studio callback."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class StudioBridge(QObject):
    event = Signal(str, object)               # event name, frozen payload (studio_app.core.events)

    def __init__(self, studio, parent=None):
        super().__init__(parent)
        self.studio = studio
        studio.events.connect_all(self._forward)

    def _forward(self, name: str, payload) -> None:
        self.event.emit(name, payload)

    def detach(self) -> None:
        """Stop forwarding (at shutdown, before the window's widgets go)."""
        self.studio.events.disconnect_all(self._forward)
