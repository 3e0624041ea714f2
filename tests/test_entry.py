"""The `reslint` entry point: the daemon's client half stays light, and finds the project as the config does."""

from __future__ import annotations

import os
import subprocess
import sys

from reslint.config import find_pyproject
from reslint.daemon import project_root


def test_forwarding_imports_neither_the_cli_nor_torch(tmp_path):
    """Everything `reslint ...` imports before it knows whether a daemon answers (none runs here)."""
    probe = (
        "import sys; import reslint.entry, reslint.daemon as d; d.forward(['model.py:Net'])\n"
        "heavy = sorted(m for m in ('typer', 'rich', 'torch', 'reslint.cli', 'reslint.config', 'subprocess') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    env = {k: v for k, v in os.environ.items() if k != "RESLINT_NO_DAEMON"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_project_root_is_the_folder_of_the_nearest_pyproject(tmp_path):
    project = tmp_path / "project"
    inner = project / "src" / "models"
    inner.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.reslint]\n")
    assert project_root(str(inner)) == os.path.dirname(find_pyproject(os.path.realpath(inner)))
    assert project_root(str(project)) == os.path.realpath(project)
    lone = tmp_path / "lone"
    lone.mkdir()
    expected = find_pyproject(os.path.realpath(lone))
    assert project_root(str(lone)) == (os.path.dirname(expected) if expected else os.path.realpath(lone))


def test_python_dash_m_reslint_runs_the_cli_without_a_daemon(tmp_path):
    env = {**os.environ, "RESLINT_NO_DAEMON": "1"}
    done = subprocess.run([sys.executable, "-m", "reslint", "rule", "RL001"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "RL001" in done.stdout
