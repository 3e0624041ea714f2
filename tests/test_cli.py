"""The command line as users and CI meet it: exit codes, formats, and bad input as one clear line."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT

BROKEN = "examples/resnet_missing_projection.py:ResNet"
FIXED = "examples/resnet_fixed.py:ResNet"


def test_broken_example_exits_1_with_findings_at_the_join(cli):
    result = cli(BROKEN, "--format", "concise")
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # one finding per source line: both blocks that fail there are its instances
    assert all(line.startswith("examples/resnet_missing_projection.py:22:9: RL001") for line in lines)
    assert "stages.1.0" in lines[0] and "stages.2.0" in lines[0]


def test_fixed_twin_exits_0(cli):
    result = cli(FIXED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exit_zero(cli):
    assert cli(BROKEN, "--exit-zero").returncode == 0


def test_full_format_shows_source_shapes_and_fix(cli):
    out = cli(BROKEN).stdout
    assert "out += x" in out
    assert "[2, 16, 32, 32]" in out and "[2, 32, 16, 16]" in out
    assert "nn.Sequential(nn.Conv2d(16, 32, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(32))" in out


def test_json_contract(cli):
    result = cli(BROKEN, FIXED, "--format", "json")
    report = json.loads(result.stdout)
    assert report["reslint"] == "0.2.0"
    broken, fixed = report["targets"]
    assert broken["target"] == BROKEN and broken["status"] == "findings" and fixed["status"] == "ok"
    assert broken["frontend"] == "fx" and broken["inputs"] == ["2,3,32,32"] and broken["error"] is None
    assert broken["joins"] == 9
    assert set(broken["timings"]) == {"build", "trace", "analyze"}
    finding = report["findings"][0]
    assert set(finding) == {
        "code", "severity", "message", "target", "path", "line", "column", "module", "module_type", "shapes", "fix",
        "consequences", "instances",
    }
    assert [i["module"] for i in finding["instances"]] == ["stages.1.0", "stages.2.0"]
    assert finding["instances"][1]["shapes"] == {"skip": [2, 32, 16, 16], "transform": [2, 64, 8, 8]}
    assert (finding["code"], finding["severity"], finding["target"]) == ("RL001", "error", BROKEN)
    assert (finding["path"], finding["line"], finding["column"]) == ("examples/resnet_missing_projection.py", 22, 9)
    assert (finding["module"], finding["module_type"]) == ("stages.1.0", "BasicBlock")
    assert finding["shapes"] == {"skip": [2, 16, 32, 32], "transform": [2, 32, 16, 16]}
    assert {key: finding["fix"][key] for key in ("kind", "module", "code", "validated")} == {
        "kind": "project-skip",
        "module": "stages.1.0",
        "code": "nn.Sequential(nn.Conv2d(16, 32, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(32))",
        "validated": True,
    }


def test_input_option_and_dtype(cli):
    result = cli("examples/transformer_ffn_width.py:TinyGPT", "--input", "3,8:int64", "--format", "json")
    target = json.loads(result.stdout)["targets"][0]
    assert target["inputs"] == ["3,8:int64"]


def test_eager_frontend_gives_the_same_findings(cli):
    fx = json.loads(cli(BROKEN, "--format", "json").stdout)["findings"]
    eager_report = json.loads(cli(BROKEN, "--format", "json", "--frontend", "eager").stdout)
    assert eager_report["targets"][0]["frontend"] == "eager"
    assert eager_report["findings"] == fx


def test_bare_file_lints_classes_that_build_without_arguments(cli):
    result = cli("examples/resnet_missing_projection.py", "--format", "json")
    targets = {t["target"]: t["status"] for t in json.loads(result.stdout)["targets"]}
    # ResNet builds with its defaults; BasicBlock needs arguments: listed as skipped, with what it needs.
    assert targets == {"examples/resnet_missing_projection.py:ResNet": "findings", "examples/resnet_missing_projection.py:BasicBlock": "skipped"}


def test_target_with_literal_arguments(cli):
    result = cli("examples/resnet_missing_projection.py:ResNet(widths=(8, 8, 8))", "--format", "json")
    finding, = json.loads(result.stdout)["findings"]  # one line, two instances
    # Equal widths: only the stride of the stage transitions breaks the skip now.
    assert [i["shapes"] for i in finding["instances"]] == [
        {"skip": [2, 8, 32, 32], "transform": [2, 8, 16, 16]},
        {"skip": [2, 8, 16, 16], "transform": [2, 8, 8, 8]},
    ]


BAD_INPUTS = {
    "missing file": (["nope.py:Net"], "nope.py: file not found"),
    "missing module": (["no_such_package.models:Net"], "module 'no_such_package.models' not found"),
    "name not found": (["examples/resnet_fixed.py:Missing"], "'Missing' not found"),
    "needs arguments": (["examples/resnet_fixed.py:BasicBlock"], "BasicBlock needs arguments (in_channels, out_channels)"),
    "bad input spec": ([FIXED, "--input", "2,x,32"], "expected comma-separated sizes"),
    "bad dtype": ([FIXED, "--input", "2,3:int77"], "unknown dtype 'int77'"),
    "eval attempt": (["examples/resnet_fixed.py:ResNet(widths=__import__('os'))"], "is not allowed"),
    "unknown rule": ([FIXED, "--select", "RL999"], "unknown rule code RL999"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_line_and_exit_2(cli, case):
    args, expected = BAD_INPUTS[case]
    result = cli(*args, "--format", "concise")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert expected in result.stdout + result.stderr


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import torch\nclass Net(torch.nn.Module:\n    pass\n", "model.py:2: syntax error"),
        ("value = 3\n", "value is a int, not an nn.Module class or a function returning one"),
        (
            "import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = torch.nn.Linear(4, 4)\n    def forward(self, x):\n        raise KeyError('boom')\n",
            "forward raised KeyError: 'boom' at",
        ),
        ("import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n        raise ValueError('no')\n", "constructing Net raised ValueError: no at"),
    ],
)
def test_bad_model_files(cli, model_file, source, expected):
    path = model_file(source)
    name = "value" if "value =" in source else "Net"
    result = cli(f"{path}:{name}", "--format", "concise", "--input", "2,4", cwd=str(__import__("os").path.dirname(path)))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert expected in result.stdout + result.stderr


def test_debug_shows_the_traceback(cli):
    result = cli("examples/resnet_fixed.py:BasicBlock", "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_version_help_and_rule_do_not_import_torch():
    code = (
        "import sys; from reslint.cli import app\n"
        "for args in (['--version'], ['--help'], ['rule', 'RL001'], ['rules']):\n"
        "    try:\n        app(args)\n    except SystemExit as e:\n        assert e.code in (0, None), (args, e.code)\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "RL001: residual add with mismatched shapes." in result.stdout


def test_rule_docs_have_the_four_sections(cli):
    from reslint.rules import RULES, rule_doc

    for code in RULES:
        doc = rule_doc(code)
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert section in doc, (code, section)


ISOLATION = '''
import os
import time

from torch import nn


class Hangs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        while True:
            time.sleep(0.1)


class Dies(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        os._exit(3)
'''


def test_a_hanging_or_dying_target_does_not_stop_the_others(cli, model_file):
    path = model_file(ISOLATION)
    result = cli(f"{path}:Hangs", f"{path}:Dies", BROKEN, "--timeout", "20", "-j", "2", "--format", "json")
    assert result.returncode == 1  # a finding decides the exit code; the errors are reported beside it
    hangs, dies, broken = json.loads(result.stdout)["targets"]
    assert hangs["status"] == "error" and "timed out after 20 s" in hangs["error"]
    assert dies["status"] == "error" and "exit code 3" in dies["error"]
    assert broken["status"] == "findings" and broken["target"] == BROKEN
