"""What runs on a Ray worker: :class:`PhotoWorker`, one per CPU slot or GPU, with the models loaded once.

It is given paths and settings values only (photo, output folder, result folder, a preset), runs the
app's own code on them and answers with plain data: a result document as a dict, encoded export
images as bytes. A path whose result folder would resolve outside the output folder is refused by
the processor itself (``ResultFolder.require_inside``).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

from studio_app.core.processor import ProcessorSpec


def pack_outcome(outcome) -> dict:
    """An ``Outcome`` as plain data (what travels back to the driver), the barcode card included."""
    from studio_app.core.processing import UNREAD
    card = getattr(outcome, "card", UNREAD)
    return {"photo": str(outcome.photo), "folder": str(outcome.folder) if outcome.folder else None,
            "doc": outcome.doc.to_dict() if outcome.doc is not None else None,
            "error": outcome.error, "skipped": outcome.skipped, "timings": dict(outcome.timings),
            "card": card if card is None or card == UNREAD else asdict(card)}


def unpack_outcome(data: dict):
    from studio_app.core.catalog.binding import CardRead
    from studio_app.core.processing import UNREAD, Outcome
    from studio_app.core.result import ResultDocument
    doc = ResultDocument.from_dict(data["doc"]) if data.get("doc") is not None else None
    card = data.get("card", UNREAD)
    return Outcome(Path(data["photo"]), Path(data["folder"]) if data.get("folder") else None, doc,
                   error=data.get("error"), skipped=bool(data.get("skipped")), timings=dict(data.get("timings") or {}),
                   card=CardRead(**card) if isinstance(card, dict) else card)


def _path(value) -> Path:
    if not isinstance(value, str) or not os.path.isabs(value):
        raise ValueError(f"a worker takes absolute paths only, not {value!r}")
    return Path(value)


class PhotoWorker:
    """A Ray actor (``ray.remote`` is applied by the pool): the processor is built once, here."""

    def __init__(self, spec: ProcessorSpec | None):
        self.spec = spec
        self.processor = None

    def ready(self) -> dict:
        """Load the models (for processing) and say who this worker is."""
        if self.spec is not None and self.processor is None:
            self.processor = self.spec.build()
        return {"pid": os.getpid(), "node": os.uname().nodename}

    def process(self, photo: str, out_root: str, force_kind: str | None, skip_existing: bool) -> dict:
        photo_p, out_p = _path(photo), _path(out_root)
        if self.processor is None:
            self.ready()
        t = time.perf_counter()
        outcome = self.processor.process(photo_p, out_p, force_kind=force_kind, skip_existing=skip_existing)
        data = pack_outcome(outcome)
        data["timings"]["worker_total"] = time.perf_counter() - t
        return data

    def render(self, folder: str, doc: dict, indices: list[int], preset) -> dict:
        """Export images of one result document: ``{index: (bytes, facts)}`` for the listed items,
        or ``{"error": reason}`` when the source cannot be used (same rules as a local export)."""
        from studio_app.core.export.encoding import SourceError, encode_items
        from studio_app.core.result import ResultDocument
        try:
            out = encode_items(_path(folder), ResultDocument.from_dict(doc), indices, preset)
        except SourceError as exc:
            return {"error": str(exc)}
        return dict(zip(indices, out))
