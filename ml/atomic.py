"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

It lives in ``ml`` (the bottom layer) so that model checkpoints and fetched weights use the
same mechanism as result documents and exports (``studio_app.core.atomic`` re-exports it).

Every file Studio Catalog writes goes through here, so an interrupted write never
leaves a half-written file under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

TMP_PREFIX = ".sc-tmp-"


def _default_mode() -> int:
    """The mode a plainly created file gets (0o666 minus the umask); mkstemp would give 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _default_mode()


class WriteError(OSError):
    """A write failed (disk full, read-only folder, ...) with a message an operator can read."""


def explain(exc: OSError, path: Path) -> str:
    """A one-line reason an operator can act on, for a failed write of ``path``."""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full: could not write {path.name} in {path.parent}"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the folder {path.parent} is not writable (read-only or no permission)"
    return f"could not write {path}: {exc.strerror or exc}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the extension (``suffix``) so that encoders choosing
    the format by extension still work. On any exception the temporary file is removed.
    """
    path = Path(path)
    if suffix is None:
        suffix = path.suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise WriteError(exc.errno, explain(exc, path)) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _MODE)
        os.replace(tmp_path, path)
    except OSError as exc:
        _unlink_quietly(tmp_path)
        if isinstance(exc, WriteError):
            raise
        raise WriteError(exc.errno, explain(exc, path)) from exc
    except BaseException:
        _unlink_quietly(tmp_path)
        raise


def _unlink_quietly(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Atomically write ``path`` using ``writer(tmp_path)`` (e.g. an image encoder)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete temporaries left by a killed process. Returns how many were removed."""
    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.rglob(TMP_PREFIX + "*"):
        _unlink_quietly(p)
        n += 1
    return n


