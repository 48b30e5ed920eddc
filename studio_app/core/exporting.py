"""The Studio's export jobs: approved results rendered into a catalog folder on a helper thread,
with progress and cancel. Qt-free; a part of :class:`studio_app.core.studio.Studio` (a mixin).

One export runs at a time. What is written stays complete when it is cancelled; running the same
export again finishes it. When it ends, the exported photos' documents (status ``exported``) come
with ``document_changed(reason="exported")`` and their entries with ``entry_changed``.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable

from .events import DocumentChanged, ExportProgress, StudioError
from .result_folder import ResultFolder


class ExportJob:
    """A running or finished export. ``cancel()`` stops after the current image; ``wait()``."""

    def __init__(self, job_id: int, folders: list[Path], out_dir: Path):
        self.id = job_id
        self.folders = folders
        self.out_dir = out_dir
        self.report = None              # ExportReport when finished
        self.error: str | None = None   # why it could not run (bad preset, unwritable folder)
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class ExportMixin:
    _export: ExportJob | None = None
    _export_seq = 0

    @property
    def exporting(self) -> bool:
        return self._export is not None and not self._export.done

    def export(self, preset, out_dir: str | os.PathLike, results: Iterable[str | os.PathLike] | None = None,
               *, only_approved: bool = True, template: str | None = None, sku: str | None = None,
               overwrite: bool = False, shot_list=None, require_complete: bool = False,
               image_base_url: str | None = None) -> ExportJob:
        """Start exporting ``results`` (photos of the session or result folders; None: every photo
        with a result) for ``preset`` (a name, a file or a Preset) into ``out_dir``. Progress comes as
        ``export_progress`` events. StudioError when an export is already running."""
        if self.exporting:
            raise StudioError("an export is already running; wait for it or cancel it")
        folders = self._export_folders(results)
        with self._lock:
            self._export_seq += 1
            job = self._export = ExportJob(self._export_seq, folders, Path(out_dir))
        kwargs = dict(only_approved=only_approved, template=template, sku=sku, overwrite=overwrite,
                      shot_list=shot_list, require_complete=require_complete, image_base_url=image_base_url)
        job.thread = threading.Thread(target=self._export_run, args=(job, preset, kwargs),
                                      name="export", daemon=True)
        job.thread.start()
        return job

    def _export_folders(self, results) -> list[Path]:
        if results is None:
            return [Path(e.folder) for e in self.session if e.folder]
        out = []
        for r in results:
            e = self.session.get(r)
            out.append(Path(e.folder) if e is not None and e.folder else Path(r))
        return out

    def _export_run(self, job: ExportJob, preset, kwargs: dict) -> None:
        from .export import ExportError, export

        def progress(i: int, n: int, name: str) -> None:
            self.events.export_progress(ExportProgress(job.id, i, n, name))
        try:
            job.report = export(job.folders, preset, job.out_dir, progress=progress,
                                cancel=job._cancel.is_set, **kwargs)
        except ExportError as exc:
            job.error = str(exc)
        except Exception as exc:  # a bug must not leave the job hanging: report it
            job.error = f"the export failed: {type(exc).__name__}: {exc}"
        try:
            self._export_finished(job)
        finally:
            job._done.set()

    def _export_finished(self, job: ExportJob) -> None:
        keys = {str(f.resolve()) for f in job.folders}
        changed = []
        with self._lock:
            for e in self.session:
                if e.folder and str(Path(e.folder).resolve()) in keys and e.status not in ("queued", "processing"):
                    doc = ResultFolder(e.folder).try_load()
                    if doc is not None and doc.status != e.status:
                        e.apply_document(doc)
                        changed.append((e, doc))
            if changed:
                self.session._changed()
        for e, doc in changed:
            with self._edit_lock:
                ed = self._editors.get(e.photo)
                if ed is not None:
                    ed.doc = doc
            self.events.document_changed(DocumentChanged(e.photo, Path(e.folder), doc, "exported"))
            self._entry_changed(e)
        n = len(job.folders)
        self.events.export_progress(ExportProgress(job.id, n, n, "", finished=True, report=job.report,
                                                   error=job.error))
