"""The sandbox's fence (issue #22) against a hostile suite (tests/fence_check.py), as root (CI, Docker) and as a
normal user; the same suite escapes on an unfenced runner, so it can fail."""
from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fence_check import DANGEROUS_UNFENCED, PAYLOADS, ROOT, run_suite

USER = "pgsandbox"


def _fence_or_skip():
    from playground import fence

    if not fence.probe()["fence"]:
        pytest.skip("this kernel offers no Landlock + seccomp fence")


def _assert_fenced(outcomes: dict) -> None:
    escaped = {k: v["output"] for k, v in outcomes.items() if v["escaped"]}
    assert not escaped, escaped
    assert set(outcomes) == set(PAYLOADS) | {"_after"}
    assert outcomes["_after"]["output"] == "2\n"     # the template survived every attack


@pytest.mark.timeout(600)
def test_hostile_suite_is_fenced_as_this_user(tmp_path, monkeypatch):
    _fence_or_skip()
    monkeypatch.setenv("HF_TOKEN", "placeholder")   # run_suite sets the canary; monkeypatch restores ours
    outcomes = run_suite(tmp_path)
    _assert_fenced(outcomes)
    if os.geteuid() == 0:
        assert "no capabilities" in outcomes["capabilities"]["output"]


@pytest.mark.timeout(600)
def test_hostile_suite_escapes_an_unfenced_runner(tmp_path, monkeypatch):
    """The suite can fail: without the fence most of its attacks get through."""
    monkeypatch.setenv("HF_TOKEN", "placeholder")
    names = [n for n in PAYLOADS if n not in DANGEROUS_UNFENCED]
    outcomes = run_suite(tmp_path, fenced=False, names=names)
    escaped = {k for k, v in outcomes.items() if v["escaped"]}
    assert {"saved_login", "proc_environ_server", "read_app_source", "read_other_visitor", "write_tmp",
            "tcp_connect", "subprocess", "signal_server", "pickle_torch_load"} <= escaped, escaped


def _normal_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("making a normal user needs root (this run is a normal user already: see the test above)")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        pytest.skip("no useradd here")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    return pwd.getpwnam(USER)


@contextlib.contextmanager
def _traversable(*paths: str):
    """Let other users pass through (o+x, not list) the folders above these paths for the test's length: pyenv
    keeps the interpreter under /root (mode 700), where a normal user could not even start Python. Restored
    after."""
    changed = []
    try:
        for path in paths:
            for folder in Path(os.path.realpath(path)).parents:
                mode = folder.stat().st_mode
                if not mode & stat.S_IXOTH:
                    os.chmod(folder, mode | stat.S_IXOTH)
                    changed.append((folder, mode))
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, stat.S_IMODE(mode))


@pytest.mark.timeout(600)
def test_hostile_suite_is_fenced_as_a_normal_user():
    _fence_or_skip()
    user = _normal_user()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("no setpriv (util-linux) here")
    work = Path(tempfile.mkdtemp(prefix="fence-user-"))
    os.chown(work, user.pw_uid, user.pw_gid)
    cmd = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", sys.executable,
           "-m", "tests.fence_check", str(work / "w")]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(ROOT)}
    try:
        with _traversable(sys.executable, str(ROOT / "app.py")):
            p = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=540)
        if p.returncode != 0 and "Permission denied" in p.stderr and "fence_check" not in p.stderr:
            pytest.skip(f"the checkout or the venv is not readable by a normal user: {p.stderr[-300:]}")
        assert p.returncode == 0, p.stderr[-3000:]
        report = json.loads(p.stdout.strip().splitlines()[-1])
        assert report["uid"] == user.pw_uid
        _assert_fenced(report["outcomes"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
