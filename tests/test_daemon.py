"""`reslint daemon start|stop|status`: the CLI through a warm daemon prints what a cold run prints,
with its exit code; a stale daemon is ignored, then replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reslint import daemon

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(__import__("socket"), "AF_UNIX"), reason="unix only")

BROKEN = '''\
from torch import nn


class Widen(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + x
'''
CLEAN = '''\
from torch import nn


class Keep(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + x
'''
PYPROJECT = '''\
[tool.reslint]
[[tool.reslint.targets]]
model = "broken.py:Widen"
inputs = ["1,4,8,8"]
[[tool.reslint.targets]]
model = "clean.py:Keep"
inputs = ["1,4,8,8"]
'''


def reslint(root, *args, cold=False):
    env = {**os.environ}
    env.pop("RESLINT_NO_DAEMON", None)
    if cold:
        env["RESLINT_NO_DAEMON"] = "1"
    return subprocess.run([sys.executable, "-m", "reslint", *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def without_timings(stdout: str) -> dict:
    data = json.loads(stdout)
    for target in data["targets"]:
        target.pop("timings")
    return data


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    (root / "broken.py").write_text(BROKEN)
    (root / "clean.py").write_text(CLEAN)
    (root / "pyproject.toml").write_text(PYPROJECT)
    yield root
    reslint(root, "daemon", "stop")


def test_the_cli_through_the_daemon_answers_as_a_cold_run(project):
    cold_json = reslint(project, "--format", "json", cold=True)
    assert cold_json.returncode == 1

    started = reslint(project, "daemon", "start")
    assert started.returncode == 0, started.stderr
    assert reslint(project, "daemon", "status").returncode == 0
    served_before = daemon.ping(daemon.project_root(str(project)))["served"]

    warm_json = reslint(project, "--format", "json")
    warm_text = reslint(project, "--format", "concise")
    assert (warm_json.returncode, warm_text.returncode) == (1, 1)
    assert without_timings(warm_json.stdout) == without_timings(cold_json.stdout)
    assert [line.split(" ")[:2] for line in warm_text.stdout.splitlines() if line.startswith("broken.py")] == [["broken.py:10:16:", "RL001"]]
    usage = reslint(project, "--select", "RL999")
    assert usage.returncode == 2 and usage.stderr.startswith("error:")
    assert daemon.ping(daemon.project_root(str(project)))["served"] == served_before + 3  # they went to the daemon

    # --shard through the daemon: two disjoint halves of the configured targets
    halves = [json.loads(reslint(project, "--format", "json", "--shard", f"{k}/2").stdout) for k in (1, 2)]
    linted = [[t["target"] for t in half["targets"]] for half in halves]
    assert sorted(linted[0] + linted[1]) == sorted(t["target"] for t in json.loads(cold_json.stdout)["targets"])
    assert len(linted[0]) == len(linted[1]) == 1


def test_a_stale_daemon_is_ignored_then_replaced(project, monkeypatch, capsys):
    root = daemon.project_root(str(project))
    if daemon.ping(root) is None:
        assert reslint(project, "daemon", "start").returncode == 0
    state_file = daemon.state_path(root)
    state = json.loads(open(state_file).read())
    stale = {**state, "source": "0.0.0:0"}  # as if reslint had changed since it started
    with open(state_file, "w") as handle:
        json.dump(stale, handle)

    monkeypatch.chdir(project)
    monkeypatch.delenv("RESLINT_NO_DAEMON", raising=False)
    assert daemon.forward(["--format", "concise"]) is None  # ignored: the CLI runs cold
    assert "daemon" in capsys.readouterr().err  # with one note saying so, and how to restart it
    assert reslint(project, "daemon", "status").returncode == 2

    restarted = reslint(project, "daemon", "start")
    assert restarted.returncode == 0, restarted.stderr
    fresh = daemon.read_state(root)
    assert fresh["pid"] != state["pid"] and daemon.stale_reason(fresh) is None
    assert reslint(project, "daemon", "stop").returncode == 0
    assert daemon.read_state(root) is None
    assert reslint(project, "daemon", "status").returncode == 2


def test_stale_reasons():
    me = daemon.identity()
    assert daemon.stale_reason(dict(me), me) is None
    assert daemon.stale_reason({**me, "python": "/other/venv/bin/python"}, me)
    assert daemon.stale_reason({**me, "prefix": "/other/venv"}, me)
    assert daemon.stale_reason({**me, "version": "0.0.1"}, me)
    assert daemon.stale_reason({**me, "source": "x"}, me)
    assert daemon.stale_reason({**me, "packages": "x"}, me)


def test_a_state_file_of_a_dead_daemon_is_removed_and_the_cli_runs_cold(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.reslint]\n")
    (tmp_path / daemon.STATE_DIR).mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = {"pid": dead.pid, "socket": str(tmp_path / "nowhere.sock"), **daemon.identity()}
    (tmp_path / daemon.STATE_DIR / daemon.STATE_FILE).write_text(json.dumps(state))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESLINT_NO_DAEMON", raising=False)
    assert daemon.forward(["model.py:Net"]) is None
    assert daemon.read_state(str(tmp_path)) is None
    assert daemon.forward(["rule", "RL001"]) is None  # never forwarded
