"""[tool.reslint] is checked before anything is linted, and pre-commit lints what a change concerns.

Bad configs are one line naming the key and exit 2 (in-process through the CLI: torch is never needed
for them). The pre-commit cases plan jobs in-process from changed file paths; one subprocess run checks
the issue's example end to end.
"""

import json
import os
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from conftest import run_cli
from reslint.cli import app
from reslint.config import load_config, parse_memory
from reslint.plan import plan_jobs


def write(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def pyproject(folder, body: str) -> None:
    write(folder, {"pyproject.toml": body})


# ---- bad configs: one line, exit 2, naming the key ----

BAD_CONFIGS = {
    "jobs not a number": ('[tool.reslint]\njobs = "two"\n', "jobs"),
    "timeout with a unit": ('[tool.reslint]\ntimeout = "30s"\n', "timeout"),
    "negative timeout": ("[tool.reslint]\ntimeout = -5\n", "timeout"),
    "jobs zero": ("[tool.reslint]\njobs = 0\n", "jobs"),
    "jobs a bool": ("[tool.reslint]\njobs = true\n", "jobs"),
    "depth too small": ("[tool.reslint]\nrl005-depth = 1\n", "rl005-depth"),
    "frontend unknown": ('[tool.reslint]\nfrontend = "jit"\n', "frontend"),
    "select unknown code": ('[tool.reslint]\nselect = ["RL999"]\n', "select"),
    "ignore not strings": ("[tool.reslint]\nignore = [5]\n", "ignore"),
    "allow-incomplete a string": ('[tool.reslint]\nallow-incomplete = "yes"\n', "allow-incomplete"),
    "memory without a number": ('[tool.reslint]\nmax-build-memory = "lots"\n', "max-build-memory"),
    "memory over 100%": ('[tool.reslint]\nmax-build-memory = "150%"\n', "max-build-memory"),
    "reslint not a table": ('[tool]\nreslint = "on"\n', "reslint"),
    "unknown key": ("[tool.reslint]\nworkers = 2\n", "workers"),
    "inputs a number": ('[[tool.reslint.targets]]\nmodel = "m.py:Net"\ninputs = 5\n', "inputs"),
    "inputs table of numbers": ('[[tool.reslint.targets]]\nmodel = "m.py:Net"\ninputs = {x = 5}\n', "inputs"),
    "target without model": ('[[tool.reslint.targets]]\ninputs = ["2,4"]\n', "model"),
    "unknown key in a target": ('[[tool.reslint.targets]]\nmodel = "m.py:Net"\ninput = ["2,4"]\n', "input"),
    "targets not an array of tables": ('[tool.reslint]\ntargets = "m.py:Net"\n', "targets"),
    "unparsable target": ('[[tool.reslint.targets]]\nmodel = "m.py:Net(__import__(\'os\'))"\n', "m.py"),
    "invalid TOML": ("[tool.reslint\njobs = 2\n", "pyproject.toml"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_is_one_line_naming_the_key_and_exit_2(tmp_path, monkeypatch, case):
    body, key = BAD_CONFIGS[case]
    pyproject(tmp_path, body)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "m.py:Net"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert key in lines[0] and "pyproject.toml" in lines[0]
    assert "Traceback" not in result.output


def test_a_bad_config_stops_before_torch_is_imported(tmp_path):
    pyproject(tmp_path, '[tool.reslint]\njobs = "two"\n')
    code = (
        "import sys\nfrom reslint.cli import app\n"
        "try:\n    app(['check', 'm.py:Net'])\nexcept SystemExit as e:\n    assert e.code == 2, e.code\n"
        "assert 'torch' not in sys.modules\n"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# ---- valid configs ----


def test_a_valid_config_loads_every_key(tmp_path):
    write(tmp_path, {"models/unet.py": "", "pkg/__init__.py": "", "pkg/nets.py": ""})
    pyproject(tmp_path, """
        [tool.reslint]
        select = "RL00"
        ignore = ["RL005"]
        rl005-depth = 24
        frontend = "eager"
        timeout = 30
        jobs = 2
        allow-incomplete = true
        max-build-memory = "8GiB"

        [[tool.reslint.targets]]
        model = "models/unet.py:UNet(channels=16)"
        inputs = "1,3,64,64"

        [[tool.reslint.targets]]
        model = "pkg.nets:Net"
        inputs = {time = "2", x = "2,3,32,32"}
    """)
    (tmp_path / "sub").mkdir()
    config = load_config(str(tmp_path / "sub"))  # found from a folder below, as from a subfolder's shell
    assert config.select == ["RL00"] and config.ignore == ["RL005"]
    assert config.options == {"rl005-depth": 24}
    assert (config.frontend, config.timeout, config.jobs) == ("eager", 30.0, 2)
    assert config.allow_incomplete is True and config.max_build_memory == 8 * 2**30
    unet, nets = config.targets
    assert unet.model == os.path.join(str(tmp_path), "models", "unet.py") + ":UNet(channels=16)"
    assert unet.inputs == ["1,3,64,64"] and unet.file == str(tmp_path / "models" / "unet.py")
    # A module target resolves from the pyproject's folder, whatever the current directory.
    assert nets.model == "pkg.nets:Net" and nets.root == str(tmp_path)
    assert nets.file == str(tmp_path / "pkg" / "nets.py")
    assert nets.inputs == ["time=2", "x=2,3,32,32"]


def test_no_section_and_no_file_are_empty_configs(tmp_path):
    assert load_config(str(tmp_path)).targets == []
    pyproject(tmp_path, "[tool.other]\nx = 1\n")
    config = load_config(str(tmp_path))
    assert config.targets == [] and config.jobs is None and config.allow_incomplete is False


@pytest.mark.parametrize(
    "value, expected",
    [(1000, 1000), ('"500MB"', 500 * 10**6), ('"8GiB"', 8 * 2**30), ('"1.5 GB"', 1_500_000_000), ('"512m"', 512 * 2**20)],
)
def test_max_build_memory_sizes(tmp_path, value, expected):
    pyproject(tmp_path, f"[tool.reslint]\nmax-build-memory = {value}\n")
    assert load_config(str(tmp_path)).max_build_memory == expected


def test_max_build_memory_share_of_ram():
    half = parse_memory("50%")
    assert 0 < half < parse_memory("100%")


def test_cli_module_target_gets_the_pyproject_folder_as_root(tmp_path, monkeypatch):
    pyproject(tmp_path, "[tool.reslint]\n")
    config = load_config(str(tmp_path))
    (job,) = plan_jobs(["pkg.nets:Net"], config, [], None, None, "auto", {})
    assert job.root == str(tmp_path)


# ---- pre-commit mode: a configured target is linted when a file it imports changed ----

PROJECT = {
    # script-style: model.py imports its sibling
    "projB/model.py": "from layers import Block\nclass Net(Block):\n    pass\n",
    "projB/layers.py": "from common import helper\nclass Block:\n    pass\n",
    "projB/common.py": "def helper():\n    pass\n",  # model -> layers -> common: a chain of two
    # a package with relative imports
    "unet/__init__.py": "",
    "unet/unet_model.py": "from .parts import *\nfrom ..shared import tools\n",
    "unet/parts.py": "X = 1\n",
    "shared/__init__.py": "",
    "shared/tools.py": "",
    # absolute imports of a package: `import a.b.c` runs each __init__.py
    "app/net.py": "import deep.inner.leaf\nfrom flat import thing\n",
    "deep/__init__.py": "",
    "deep/inner/__init__.py": "",
    "deep/inner/leaf.py": "",
    "flat/thing.py": "",  # a namespace package: `from flat import thing` names a submodule
    "unrelated.py": "print('not imported by anything')\n",
    "projB/notes.py": "# sits next to model.py but is not imported by it\n",
}
CONFIG = """
[[tool.reslint.targets]]
model = "projB/model.py:Net"

[[tool.reslint.targets]]
model = "unet.unet_model:UNet"

[[tool.reslint.targets]]
model = "app/net.py:Net"
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    write(tmp_path, PROJECT)
    pyproject(tmp_path, CONFIG)
    monkeypatch.chdir(tmp_path)
    return load_config(".")


def planned(config, *changed: str) -> list[str]:
    """The configured targets planned for the changed files (discovered-file jobs left out)."""
    return [os.path.relpath(j.target) if "/" in j.target else j.target
            for j in plan_jobs(list(changed), config, [], None, None, "auto", {}) if not j.discovered]


@pytest.mark.parametrize(
    "changed, expected",
    [
        ("projB/model.py", ["projB/model.py:Net"]),
        ("projB/layers.py", ["projB/model.py:Net"]),  # a sibling import, script style
        ("projB/common.py", ["projB/model.py:Net"]),  # a transitive chain of two files
        ("unet/parts.py", ["unet.unet_model:UNet"]),  # from .parts import *
        ("shared/tools.py", ["unet.unet_model:UNet"]),  # from ..shared import tools
        ("unet/__init__.py", ["unet.unet_model:UNet"]),  # the package's own __init__ runs first
        ("deep/__init__.py", ["app/net.py:Net"]),
        ("deep/inner/__init__.py", ["app/net.py:Net"]),
        ("deep/inner/leaf.py", ["app/net.py:Net"]),
        ("flat/thing.py", ["app/net.py:Net"]),
        ("unrelated.py", []),
        ("projB/notes.py", []),
    ],
)
def test_precommit_lints_targets_whose_imports_changed(project, changed, expected):
    assert planned(project, changed) == expected


def test_a_target_concerned_by_several_changed_files_is_planned_once(project):
    assert planned(project, "projB/layers.py", "projB/common.py", "projB/model.py") == ["projB/model.py:Net"]


def test_configured_jobs_carry_the_pyproject_folder(project, tmp_path):
    jobs = plan_jobs([], project, [], None, None, "auto", {})
    assert {job.root for job in jobs} == {str(tmp_path)}


def test_changed_files_are_still_discovered_and_files_without_models_pass(project, tmp_path):
    write(tmp_path, {"models.py": "from torch import nn\nclass A(nn.Module):\n    pass\n"})
    jobs = plan_jobs(["models.py", "unrelated.py"], project, [], None, None, "auto", {})
    assert [(j.target, j.discovered) for j in jobs] == [("models.py", True)]  # unrelated.py has no Module


EDITED_LAYER = {
    "projB/model.py": """
        from torch import nn
        from layers import Block

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block(8, 16)

            def forward(self, x):
                return self.block(x)
    """,
    "projB/layers.py": """
        from torch import nn

        class Block(nn.Module):
            def __init__(self, width_in, width_out):
                super().__init__()
                self.fc = nn.Linear(width_in, width_out)

            def forward(self, x):
                return x + self.fc(x)  # the edit: the skip no longer matches
    """,
    "pyproject.toml": """
        [[tool.reslint.targets]]
        model = "projB/model.py:Net"
        inputs = ["2,8"]
    """,
}


def test_the_issue_example_end_to_end(tmp_path):
    """projB/layers.py edited: its importer projB/model.py:Net is linted, and the bug is found (exit 1)."""
    write(tmp_path, EDITED_LAYER)
    result = run_cli("projB/layers.py", "--format", "json", cwd=str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [t["target"] for t in report["targets"] if t["status"] == "findings"] == [str(tmp_path / "projB" / "model.py") + ":Net"]
    assert {f["code"] for f in report["findings"]} == {"RL001"}
