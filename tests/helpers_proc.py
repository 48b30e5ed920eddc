"""Helpers for the reliability tests and bench: run the real `studio-catalog` command as a child
process, kill it at a chosen moment, run it inside a private mount namespace on a small tmpfs
(real "disk full" / "read-only file system"), and check a results tree for damage.

Nothing here imports Qt. Used by tests/test_reliability_*.py and bench/bench_reliability.py.

Run as a module (``python -m tests.helpers_proc JOB JSON``) it is the child side of
:func:`run_in_tmpfs`: it runs a job inside the namespace and prints one JSON line with what it
found, because the tmpfs disappears with the namespace.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
TMP_PREFIX = ".sc-tmp-"


# ---------------------------------------------------------------------------------------------
# child processes

def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"          # a shared machine: one thread per child
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "studio_app.cli", *map(str, args)]


def run_cli(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run `studio-catalog ARGS` to the end; stdout and stderr are captured as text."""
    return subprocess.run(cli_argv(*args), cwd=REPO, env=child_env(), capture_output=True, text=True,
                          timeout=timeout, **kw)


def start_cli(*args: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(cli_argv(*args), cwd=REPO, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log:
            out.close()


def kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 300,
              interval: float = 0.02) -> bool:
    """SIGKILL ``proc`` as soon as ``condition()`` holds. Returns False when the process ended
    (or the timeout passed) before that — the caller then knows the kill did not happen mid-run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(interval)
    proc.kill()
    proc.wait(timeout=30)
    return False


# ---------------------------------------------------------------------------------------------
# private tmpfs (real ENOSPC / EROFS)

@functools.lru_cache(maxsize=1)
def can_mount_tmpfs() -> bool:
    """True where this process may mount a tmpfs in a private mount namespace (root, or a
    container that allows it). Elsewhere the tests fall back to injected faults only."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=16k tmpfs \"$d\" && umount \"$d\"; "
                            "s=$?; rmdir \"$d\"; exit $s"],
                           capture_output=True, timeout=20)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_in_tmpfs(mount_point: Path, job: str, params: dict, *, size_kb: int = 4096,
                 readonly: bool = False, prepare: str = "", timeout: float = 600) -> dict:
    """Mount a ``size_kb`` tmpfs on ``mount_point`` in a private mount namespace (read-only
    when ``readonly``), run ``python -m tests.helpers_proc JOB PARAMS`` inside it and return the
    JSON it prints. ``prepare`` is a shell snippet run after mounting, before the remount."""
    mount_point.mkdir(parents=True, exist_ok=True)
    script = ('mount -t tmpfs -o size="$SC_SIZE"k tmpfs "$SC_MNT" || exit 97\n'
              + prepare + "\n"
              + ('mount -o remount,ro "$SC_MNT" || exit 98\n' if readonly else "")
              + 'exec "$@"\n')
    env = child_env(SC_SIZE=str(size_kb), SC_MNT=str(mount_point))
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                        sys.executable, "-m", "tests.helpers_proc", job, json.dumps(params)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"tmpfs job {job} failed (rc {r.returncode}): {r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    res = json.loads(lines[-1])
    # the command's own stderr (its per-photo lines) plus what the job captured
    res["stderr"] = r.stderr + res.get("stderr", "")
    return res


# ---------------------------------------------------------------------------------------------
# checks on what is on disk

def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(paths) -> dict[str, str | None]:
    """Path -> SHA-256 (None for a missing path, "dir" for a folder)."""
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out[str(p)] = "dir"
        elif p.exists():
            try:
                out[str(p)] = sha256(p)
            except PermissionError:
                out[str(p)] = "unreadable"
        else:
            out[str(p)] = None
    return out


def temporaries(folder: str | os.PathLike) -> list[str]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(TMP_PREFIX + "*"))


def check_results_tree(out: str | os.PathLike) -> dict:
    """Look at every result folder under ``out``. Returns
    ``{"done": {folder: source path}, "problems": [str], "temporaries": [...],
    "incomplete": [folders with files but no document]}``.

    A problem is: a result.json that does not load, a document naming a file that is not there
    or is empty / unreadable as an image, a leftover temporary."""
    import cv2
    from studio_app.core.result import DocumentError, load
    out = Path(out)
    res = {"done": {}, "problems": [], "temporaries": temporaries(out), "incomplete": []}
    for t in res["temporaries"]:
        res["problems"].append(f"temporary left behind: {t}")
    if not out.is_dir():
        return res
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        rj = folder / "result.json"
        if not rj.exists():
            if any(folder.iterdir()):
                res["incomplete"].append(folder.name)
            continue
        try:
            doc = load(folder)
        except DocumentError as exc:
            res["problems"].append(f"{folder.name}: {exc}")
            continue
        names = [doc.mask] + [it.file for it in doc.items] + [it.swatch.file for it in doc.items if it.swatch]
        for n in names:
            f = folder / n
            if not f.is_file() or f.stat().st_size == 0:
                res["problems"].append(f"{folder.name}: names {n}, which is missing")
            elif cv2.imread(str(f), cv2.IMREAD_UNCHANGED) is None:
                res["problems"].append(f"{folder.name}: {n} is not a readable image")
        res["done"][folder.name] = doc.source.path
    return res


def doc_mtimes(out: str | os.PathLike) -> dict[str, int]:
    out = Path(out)
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}


def listing(folder: str | os.PathLike) -> dict[str, int]:
    """Relative path -> size of every file under ``folder``."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------
# the child side of run_in_tmpfs

def _job_process(params: dict) -> dict:
    """Run `studio-catalog process` in this process (in the namespace) and report."""
    import contextlib
    import io
    from studio_app import cli
    out = Path(params["out"])
    for f, data in params.get("fill", {}).items():     # take space on the tmpfs first
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        try:
            Path(f).write_bytes(b"\0" * int(data))
        except OSError:
            pass
    buf_out, buf_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf_out):
        try:
            rc = cli.main(["process", *params["photos"], "--out", str(out), "--device", "cpu",
                           *params.get("args", [])])
        except BaseException as exc:      # the test must see it, not a crash of the helper
            import traceback
            rc = "raised"
            buf_err.write(traceback.format_exc())
    res = check_results_tree(out)
    res.update(rc=rc, stdout=buf_out.getvalue(), stderr=buf_err.getvalue(), listing=listing(out) if out.is_dir() else {})
    return res


def _job_export(params: dict) -> dict:
    import contextlib
    import io
    from studio_app import cli
    out = Path(params["out"])
    buf_out, buf_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf_out):
        try:
            rc = cli.main(["export", *params["results"], "--preset", params["preset"], "--out", str(out),
                           *params.get("args", [])])
        except BaseException:
            import traceback
            rc = "raised"
            buf_err.write(traceback.format_exc())
    return {"rc": rc, "stdout": buf_out.getvalue(), "stderr": buf_err.getvalue(),
            "temporaries": temporaries(out), "listing": listing(out) if out.is_dir() else {}}


def _job_session(params: dict) -> dict:
    """What the desktop app does, without Qt: photos arriving in a hot folder are added to the
    session, then processed one by one; the session is saved off the work path at most every
    200 ms (as the GUI's timer does). Meant to be killed part-way."""
    import threading
    import torch
    torch.set_num_threads(1)
    from studio_app.core.processing import Processor
    from studio_app.core.session import Session
    out = Path(params["out"])
    session = Session.open(out)
    dirty = threading.Event()
    session.on_change = dirty.set

    def saver():
        while True:
            time.sleep(0.2)
            if dirty.is_set():
                dirty.clear()
                session.save()
    threading.Thread(target=saver, daemon=True).start()
    proc = Processor(device="cpu")
    proc.pipeline.warm_up()
    for photo in params["photos"]:
        session.add(photo)
    for e in list(session.queued()):
        session.mark_processing(e.photo)
        o = proc.process(e.photo, out)
        if o.ok:
            session.mark_done(e.photo, o.folder, o.doc)
        else:
            session.mark_failed(e.photo, o.error)
    time.sleep(0.5)
    return {"done": len(session)}


JOBS = {"process": _job_process, "export": _job_export, "session": _job_session}


def start_job(job: str, params: dict, log: Path | None = None) -> subprocess.Popen:
    """Run a job of this module in a child process (no namespace), e.g. to kill it part-way."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", "tests.helpers_proc", job, json.dumps(params)],
                                cwd=REPO, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log:
            out.close()


if __name__ == "__main__":
    job, params = sys.argv[1], json.loads(sys.argv[2])
    result = JOBS[job](params)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# hot folder under load (used by tests/test_reliability_hotfolder.py and the bench)

def make_photo_set(source: str | os.PathLike, n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` small, distinct, real-looking photos made from one real photo: random crops and
    sizes (120..900 px), a visible index stamp, JPEG quality 70..95, every 7th a PNG."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    src = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if src is None:
        raise FileNotFoundError(source)
    h, w = src.shape[:2]
    out = []
    for i in range(n):
        cw, ch = int(rng.integers(w // 3, w + 1)), int(rng.integers(h // 3, h + 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        side = int(rng.integers(120, 900))
        s = side / max(cw, ch)
        img = cv2.resize(src[y:y + ch, x:x + cw], (max(8, round(cw * s)), max(8, round(ch * s))),
                         interpolation=cv2.INTER_AREA)
        cv2.putText(img, str(i), (4, img.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
        if i % 7 == 6:          # PNGs (no end marker to check) in every write mode
            ok, buf = cv2.imencode(".png", img)
            ext = ".png"
        else:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
            ext = ".jpg"
        assert ok
        out.append((f"shot_{i:04d}{ext}", buf.tobytes()))
    return out


WRITE_MODES = ("slow", "append", "part_rename", "tmp_rename", "copy")


def write_photo(folder: Path, name: str, data: bytes, mode: str, rng, staging: Path) -> None:
    """Write one photo into the hot folder the way tethering software / people do.

    slow:        one handle, chunks with pauses (0.03..0.3 s) - a camera over USB
    append:      reopened for every chunk (each chunk ends with a close event)
    part_rename: written as NAME.part, then renamed
    tmp_rename:  written as .NAME.tmp (hidden), then renamed
    copy:        copied in one go from another folder on the same disk (shutil.copyfile)
    """
    target = folder / name
    if mode in ("slow", "append"):
        n = int(rng.integers(3, 7))
        bounds = sorted({0, len(data), *(int(v) for v in rng.integers(1, len(data), n - 1))})
        chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
        if mode == "slow":
            with open(target, "wb") as fh:
                for c in chunks:
                    fh.write(c)
                    fh.flush()
                    time.sleep(float(rng.uniform(0.03, 0.3)))
        else:
            for c in chunks:
                with open(target, "ab") as fh:
                    fh.write(c)
                time.sleep(float(rng.uniform(0.03, 0.3)))
    elif mode in ("part_rename", "tmp_rename"):
        tmp = folder / (name + ".part" if mode == "part_rename" else "." + name + ".tmp")
        with open(tmp, "wb") as fh:
            half = len(data) // 2
            fh.write(data[:half])
            fh.flush()
            time.sleep(float(rng.uniform(0.02, 0.2)))
            fh.write(data[half:])
        os.replace(tmp, target)
    elif mode == "copy":
        src = staging / name
        src.write_bytes(data)
        shutil.copyfile(src, target)
    else:
        raise ValueError(mode)


def hotfolder_load(folder: Path, photos: list[tuple[str, bytes]], writers: int = 4, seed: int = 0,
                   settle: float = 3.0, timeout: float = 300, **hot_kw) -> dict:
    """Drop ``photos`` into ``folder`` from ``writers`` threads (modes cycling through
    WRITE_MODES) while a ``HotFolder`` watches it exactly as the app sets it up. Returns what the
    consumer saw: ``handed`` [(name, sha256 at hand-over, size)], ``final`` {name: sha256},
    ``modes`` {name: mode}, ``seconds``, ``errors``."""
    import threading
    import numpy as np
    from studio_app.core.hotfolder import HotFolder
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / (folder.name + "_staging")
    staging.mkdir(exist_ok=True)
    handed: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def on_ready(photo: Path, pair):
        data = photo.read_bytes()           # what the processor would read now
        with lock:
            handed.append((photo.name, hashlib.sha256(data).hexdigest(), len(data)))

    hot_kw.setdefault("stable_seconds", 1.0)     # the desktop app's defaults
    hot_kw.setdefault("pair_window", 3.0)
    hf = HotFolder(folder, on_ready, **hot_kw)
    modes = {name: WRITE_MODES[i % len(WRITE_MODES)] for i, (name, _) in enumerate(photos)}
    failures: list[str] = []

    def writer(k: int):
        rng = np.random.default_rng(seed + k)
        for name, data in photos[k::writers]:
            try:
                write_photo(folder, name, data, modes[name], rng, staging)
            except Exception as exc:        # reported, the test fails on it
                failures.append(f"{name}: {exc!r}")
            time.sleep(float(rng.uniform(0, 0.05)))

    t0 = time.monotonic()
    hf.start()
    try:
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        written = time.monotonic()
        deadline = written + timeout
        while time.monotonic() < deadline:
            with lock:
                if len({h[0] for h in handed}) >= len(photos):
                    break
            time.sleep(0.05)
        all_in = time.monotonic()
        time.sleep(settle)                   # nothing may be handed over twice afterwards
    finally:
        hf.stop()
    final = {name: hashlib.sha256(data).hexdigest() for name, data in photos}
    return {"handed": handed, "final": final, "modes": modes, "errors": failures + hf.errors,
            "seconds_writing": written - t0, "seconds_last_handover": all_in - written,
            "leftovers": sorted(p.name for p in folder.iterdir() if p.name not in final)}


def assert_cancels_and_reports_bad_photos(proc, photo: Path, out: Path, cancelled_out: Path) -> None:
    """A processor running elsewhere (child or adopted process): ``cancel`` raises ``Cancelled``
    and leaves no result; a broken photo is an outcome with a message and the process lives on."""
    import pytest

    from ml.types import Cancelled
    with pytest.raises(Cancelled):
        proc.process(photo, cancelled_out, cancel=lambda: True)
    assert not (cancelled_out / photo.stem / "result.json").exists()
    bad = photo.parent / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    o = proc.process(bad, out)
    assert not o.ok and "bad.jpg" in o.error and proc.alive
