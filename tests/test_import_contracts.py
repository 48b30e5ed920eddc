"""The layering is enforced, not hoped for: `lint-imports` (import-linter, contracts in
pyproject.toml) passes on this checkout and fails on a copy with a deliberate violation; the core
runs with Qt absent."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)})


def test_contracts_hold_on_this_checkout():
    r = _lint(REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_a_deliberate_violation_fails(tmp_path):
    for pkg in ("ml", "studio_app"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    result = tmp_path / "studio_app" / "core" / "result.py"
    result.write_text(result.read_text() + "\nfrom PySide6.QtCore import QObject  # noqa\n")
    session = tmp_path / "studio_app" / "core" / "session.py"
    session.write_text(session.read_text() + "\nfrom . import studio  # noqa  (a cycle)\n")
    io = tmp_path / "ml" / "io.py"
    io.write_text(io.read_text() + "\nimport studio_app.core.paths  # noqa\n")
    studio = tmp_path / "studio_app" / "core" / "studio.py"
    studio.write_text(studio.read_text() + "\n\ndef _cluster():\n    import ray  # noqa  (even inside a function)\n")
    r = _lint(tmp_path)
    out = r.stdout
    assert r.returncode != 0, out
    assert "ml and studio_app.core import no Qt and no GUI BROKEN" in out, out
    assert "ml imports nothing of studio_app BROKEN" in out, out
    assert "no import cycles between sibling modules BROKEN" in out, out
    assert "ml and studio_app.core never import ray BROKEN" in out, out
    assert "studio_app.core.result -> PySide6" in out.replace("\n", " ") or "PySide6" in out


def test_core_runs_with_qt_absent(tmp_path):
    """Every core module imports, and a Studio processes photos, with PySide6/qasync unimportable."""
    script = textwrap.dedent(f"""
        import sys
        for m in ("PySide6", "shiboken6", "qasync"):
            sys.modules[m] = None
        import pkgutil, importlib
        import studio_app.core
        names = [m.name for m in pkgutil.walk_packages(studio_app.core.__path__, "studio_app.core.")]
        for n in names:
            importlib.import_module(n)
        sys.path.insert(0, {str(REPO / "tests")!r})
        from pathlib import Path
        from studio_app.core.studio import Studio
        from studio_fakes import FakeProcessor, Recorder, write_photo
        tmp = Path({str(tmp_path)!r})
        studio = Studio(tmp / "out", FakeProcessor())
        rec = Recorder(studio)
        studio.add([write_photo(tmp / "in" / f"p{{i}}.jpg", seed=i) for i in range(2)])
        studio.start()
        assert studio.wait_idle(30)
        docs = rec.of("document_changed")
        studio.close()
        assert len(docs) == 2 and all(d.doc.items for d in docs)
        assert "torch" not in sys.modules, "the core should not need torch to drive a processor"
        print("ok", len(names))
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok")
    r = subprocess.run([sys.executable, "-c", "import sys; sys.modules['PySide6'] = None; "
                        "import studio_app.core.studio"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


CORE_TEST_FILES = ("tests/test_studio.py", "tests/test_cli_process.py", "tests/test_syslibs.py")


def test_core_tests_pass_with_qt_blocked(tmp_path):
    """The Studio's own tests, run in a Python where PySide6/qasync cannot be imported at all."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nfor m in ('PySide6', 'shiboken6', 'qasync'):\n    sys.modules[m] = None\n")
    import os
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:pytest-qt", "-p", "no:xvfb",
                        "-p", "no:cacheprovider", "-k", "not real_processor", *CORE_TEST_FILES],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
