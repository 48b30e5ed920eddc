"""The GUI starts on a fresh Debian/Ubuntu machine, or says exactly what to install: one list of
Qt system packages, installed by installer/setup.sh when it may, printed otherwise, and printed by
`studio-catalog gui` instead of Qt's "Could not load the Qt platform plugin xcb" abort."""
from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from studio_app.core import syslibs

REPO = Path(__file__).resolve().parents[1]


def _fake_bin(d: Path, name: str, body: str) -> None:
    p = d / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def _run_setup(tmp_path: Path, uid: str, sudo_ok: bool) -> tuple[str, str]:
    """installer/setup.sh up to its venv step, with apt-get/dpkg-query/id/sudo faked."""
    root = tmp_path / "repo"
    (root / "installer").mkdir(parents=True)
    for f in ("setup.sh", "qt-system-packages.txt"):
        shutil.copy(REPO / "installer" / f, root / "installer" / f)
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "apt.log"
    _fake_bin(fake, "dpkg-query", "exit 1")                               # nothing installed
    _fake_bin(fake, "apt-get", f'echo "apt-get $*" >> {log}')
    _fake_bin(fake, "id", f"echo {uid}")
    _fake_bin(fake, "sudo", ('[ "$1" = "-n" ] && shift; ' + ('"$@"' if sudo_ok else "exit 1")))
    _fake_bin(fake, "nopython", "exit 3")                                 # stops the script at the venv
    env = {"PATH": f"{fake}:/usr/bin:/bin", "PYTHON": "nopython", "HOME": str(tmp_path)}
    r = subprocess.run(["bash", str(root / "installer" / "setup.sh")], env=env, capture_output=True,
                       text=True, timeout=60)
    return r.stdout + r.stderr, log.read_text() if log.exists() else ""


def test_the_list_has_the_xcb_libraries_qt_needs():
    names = [p for p, _ in syslibs.packages()]
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0"} <= set(names)
    ci = (REPO / ".ci" / "run").read_text()
    assert "installer/qt-system-packages.txt" in ci and "libxcb-icccm4" not in ci     # one list


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_setup_prints_the_exact_line_without_root(tmp_path):
    out, apt = _run_setup(tmp_path, uid="1000", sudo_ok=False)
    assert syslibs.apt_line() in out and apt == "", out


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("uid,sudo_ok", [("0", False), ("1000", True)])
def test_setup_installs_them_as_root_or_with_sudo_and_says_what_it_runs(tmp_path, uid, sudo_ok):
    out, apt = _run_setup(tmp_path, uid=uid, sudo_ok=sudo_ok)
    pkgs = " ".join(p for p, _ in syslibs.packages())
    assert f"apt-get install -y --no-install-recommends {pkgs}" in out, out
    assert f"install -y -qq --no-install-recommends {pkgs}" in apt, apt


def test_gui_prints_the_same_line_instead_of_a_qt_abort(tmp_path, monkeypatch, capsys):
    lst = tmp_path / "list.txt"
    lst.write_text("libc6 libc.so.6\nlibxcb-nosuch9 libxcb-nosuch.so.9\nxvfb -\n")
    monkeypatch.setattr(syslibs, "LIST", lst)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    from studio_app import cli
    assert cli.main(["gui"]) == 2
    err = capsys.readouterr().err
    assert "libxcb-nosuch.so.9" in err and "libc.so.6" not in err
    assert "sudo apt-get install -y --no-install-recommends libc6 libxcb-nosuch9 xvfb" in err
    assert "Traceback" not in err
    # another platform plugin (offscreen, wayland) does not need them
    assert syslibs.missing_libraries(lst, env={"QT_QPA_PLATFORM": "offscreen"}) == []
    assert syslibs.missing_libraries(lst, env={"WAYLAND_DISPLAY": "wayland-0"}) == []
    assert syslibs.missing_libraries(lst, env={"DISPLAY": ":1"}) == ["libxcb-nosuch.so.9"]
