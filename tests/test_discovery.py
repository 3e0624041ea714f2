"""A run of named files that lints nothing fails; pre-commit's changed files without models pass."""

import os
import subprocess
import sys

from conftest import ROOT

NOTHING_BUILDS = """
import torch
from torch import nn

class NeedsWeights(nn.Module):
    def __init__(self):
        super().__init__()
        raise OSError("could not fetch pretrained weights")

class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc(x)
"""

SCRIPTED_ELSEWHERE = """
import torch
from torch import nn

SCRIPTED = torch.jit.load(__file__.replace(".py", ".pt"))  # a compiled file: no Python to analyze

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = SCRIPTED
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.inner(self.fc(x))
"""


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "reslint", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_a_named_file_that_lints_nothing_exits_2_and_precommit_passes(model_file):
    path = model_file(NOTHING_BUILDS)
    named = run(path, "--format", "concise")
    assert named.returncode == 2, named.stdout + named.stderr
    said = named.stdout + named.stderr
    assert "NeedsWeights" in said and "Block(width=" in said  # each class with what it needs
    hook = run(path, "--format", "concise", env={"PRE_COMMIT": "1"})
    assert hook.returncode == 0, hook.stdout + hook.stderr


def test_a_submodule_scripted_elsewhere_makes_the_target_incomplete(model_file):
    import torch

    path = model_file(SCRIPTED_ELSEWHERE, "scripted.py")
    torch.jit.save(torch.jit.script(torch.nn.Linear(8, 8)), path.replace(".py", ".pt"))
    result = run(f"{path}:Net", "--input", "2,8", "--format", "concise")
    assert result.returncode == 2 and "incomplete" in result.stdout, result.stdout + result.stderr
    assert run(f"{path}:Net", "--input", "2,8", "--allow-incomplete").returncode == 0


BUILD_TIME_SURPRISES = """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, x):
        return x + self.fc(x)  # expect: RL001

class Compiled(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = torch.compile(Block())

    def forward(self, x):
        return self.block(x)

class DefaultDevice(nn.Module):
    def __init__(self):
        super().__init__()
        torch.set_default_device("cuda")
        self.block = Block()

    def forward(self, x):
        return self.block(x)

class Yields(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        yield self.block(x)
"""


def test_compile_default_device_and_a_forward_that_runs_nothing(model_file):
    import json

    path = model_file(BUILD_TIME_SURPRISES, "surprises.py")
    run_ = run(*(f"{path}:{name}" for name in ("Compiled", "DefaultDevice", "Yields")), "--input", "2,8", "--format", "json")
    report = json.loads(run_.stdout)
    statuses = {t["target"].rpartition(":")[2]: t["status"] for t in report["targets"]}
    assert statuses == {"Compiled": "findings", "DefaultDevice": "findings", "Yields": "incomplete"}, run_.stderr
    assert run_.returncode == 1


def test_a_named_file_or_folder_without_models_exits_2(tmp_path):
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "helpers.py").write_text("import os\n")
    folder = tmp_path / "nomodels"
    folder.mkdir()
    (folder / "util.py").write_text("X = 1\n")
    for path in (tmp_path / "empty.py", tmp_path / "helpers.py", folder):
        assert run(str(path), "--format", "concise").returncode == 2, path
    assert run(str(tmp_path / "helpers.py"), env={"PRE_COMMIT": "1"}).returncode == 0
