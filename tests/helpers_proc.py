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


JOBS = {"process": _job_process, "export": _job_export}


if __name__ == "__main__":
    job, params = sys.argv[1], json.loads(sys.argv[2])
    result = JOBS[job](params)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
