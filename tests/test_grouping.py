"""One bug, one finding: findings of one (path, line, code) merge into one that lists its instances."""

import json

from torch import nn

from reslint.findings import Finding, Fix, Report, TargetResult
from reslint.grouping import group_findings
from reslint.report import Format, render
from reslint.report.words import describe_instances, module_list


def finding(module: str, line: int = 22, code: str = "RL001", width: int = 16, path: str = "m.py", consequences=()) -> Finding:
    fix = Fix("project-skip", module, f"nn.Conv2d({width}, {2 * width}, kernel_size=1)", True)
    return Finding(
        code, "error", f"residual add in {module}", "m.py:Net", path, line, 9, module, "Block",
        {"skip": [2, width, 8, 8], "transform": [2, 2 * width, 4, 4]}, fix, consequences=list(consequences),
    )


def test_instances_of_one_line_are_one_finding_keeping_the_first_instance_fields():
    merged = group_findings([finding("stages.1.0", consequences=["m.py:30 in stages.1.1: add fails"]),
                             finding("stages.2.0", width=32, consequences=["m.py:30 in stages.2.1: add fails"])])
    only, = merged
    assert (only.module, only.fix.module, only.shapes["skip"]) == ("stages.1.0", "stages.1.0", [2, 16, 8, 8])
    assert [i.module for i in only.instances] == ["stages.1.0", "stages.2.0"]
    assert only.instances[1].fix.code == "nn.Conv2d(32, 64, kernel_size=1)"  # each instance keeps its own fix
    assert len(only.consequences) == 2
    data = only.to_json()
    assert data["instances"] == [
        {"module": "stages.1.0", "shapes": {"skip": [2, 16, 8, 8], "transform": [2, 32, 4, 4]}},
        {"module": "stages.2.0", "shapes": {"skip": [2, 32, 8, 8], "transform": [2, 64, 4, 4]}},
    ]
    assert "modules_of_class" not in data


def test_other_lines_codes_and_unlocated_findings_stay_apart():
    findings = [finding("a"), finding("b", line=23), finding("c", code="RL002"), finding("d", path=""), finding("e", path="")]
    assert len(group_findings(findings)) == 5


def test_a_finding_made_outside_the_analysis_is_its_own_instance_in_json():
    data = finding("block").to_json()
    assert [i["module"] for i in data["instances"]] == ["block"]


def test_many_instances_are_counted_against_the_blocks_of_their_class():
    class Block(nn.Module):
        pass

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(*[Block() for _ in range(12)])

    merged, = group_findings([finding(f"layers.{i}") for i in range(11)], Net())
    assert merged.modules_of_class == 12
    assert describe_instances(merged).startswith("in 11 of 12 ")
    assert describe_instances(merged).endswith("layers.0–10")
    assert describe_instances(group_findings([finding("layers.0"), finding("layers.1")])[0]) == "2 instances: layers.0, layers.1"
    assert describe_instances(finding("a")) == ""


def test_module_lists_compress_runs_of_numbered_siblings():
    assert module_list(["stages.2.0", "stages.1.0"]) == "stages.1.0, stages.2.0"
    assert module_list([f"layer1.{i}" for i in range(3)] + ["layer2.0"]) == "layer1.0–2, layer2.0"
    assert module_list(list("abcdefgh")).endswith("… and 3 more")


def test_every_format_says_one_finding_with_its_instances():
    merged = group_findings([finding("stages.1.0", consequences=["m.py:30 in x: add fails"]), finding("stages.2.0", width=32)])
    report = Report([TargetResult("m.py:Net", "findings", findings=merged)])
    concise = render(report, Format.concise).splitlines()
    assert len(concise) == 1 and "stages.2.0" in concise[0]
    full = render(report, Format.full)
    assert full.count("RL001") == 1 and "stages.2.0" in full and "add fails" in full
    github = render(report, Format.github).splitlines()
    assert len(github) == 1 and "stages.2.0" in github[0]
    result, = json.loads(render(report, Format.sarif))["runs"][0]["results"]
    assert [i["module"] for i in result["properties"]["instances"]] == ["stages.1.0", "stages.2.0"]
    assert "stages.2.0" in result["message"]["text"]
    assert len(json.loads(render(report, Format.json))["findings"][0]["instances"]) == 2
