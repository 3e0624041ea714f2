"""Every way of writing a residual add is found, at its line, with a validated projection."""

import pytest
import torch

import reslint
from conftest import expected_lines

BLOCK = '''
import torch
from torch import nn


def add_skip(out, x):
    return {join}  # expect: RL001


class Block(nn.Module):
    def __init__(self, cin=8, cout=16, stride=2, project=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if project else nn.Identity()

    def forward(self, x):
        out = self.bn(self.conv(x))
        x = self.shortcut(x)
        {statement}
        return out


class Net(nn.Module):
    def __init__(self, project=False):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.block = Block(project=project)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))
'''

FORMS = {
    "binary": ("out = out + x  # expect: RL001", ""),
    "skip-first": ("out = x + out  # expect: RL001", ""),
    "augmented": ("out += x  # expect: RL001", ""),
    "torch.add": ("out = torch.add(out, x)  # expect: RL001", ""),
    "method": ("out = out.add(x)  # expect: RL001", ""),
    "in-place method": ("out.add_(x)  # expect: RL001", ""),
    "helper function": ("out = add_skip(out, x)", "out + x"),
}


def load(path, name="Net", **kwargs):
    from reslint.load import build, import_source
    from reslint.target import TargetSpec

    spec = TargetSpec(source=path, name=name, kwargs=kwargs, text=f"{path}:{name}")
    return build(getattr(import_source(spec), name), spec, spec.text).module


@pytest.mark.parametrize("form", FORMS)
def test_each_add_form_is_found_at_its_line(model_file, form):
    statement, join = FORMS[form]
    path = model_file(BLOCK.format(statement=statement, join=join or "out"), name=f"m_{abs(hash(form))}.py")
    report = reslint.check(load(path), torch.empty(2, 3, 16, 16))
    assert [f.code for f in report.findings] == ["RL001"]
    finding = report.findings[0]
    assert finding.line in expected_lines(path, "RL001")
    assert finding.shapes == {"skip": [2, 8, 16, 16], "transform": [2, 16, 8, 8]}
    assert finding.fix.kind == "project-skip" and finding.fix.validated
    assert finding.fix.code == "nn.Sequential(nn.Conv2d(8, 16, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(16))"


@pytest.mark.parametrize("form", FORMS)
def test_projected_twin_is_clean(model_file, form):
    statement, join = FORMS[form]
    path = model_file(BLOCK.format(statement=statement, join=join or "out"), name=f"ok_{abs(hash(form))}.py")
    report = reslint.check(load(path, project=True), torch.empty(2, 3, 16, 16))
    assert report.ok, report.findings
    assert report.targets[0].joins == 1


def test_the_fix_makes_the_real_model_run(model_file):
    path = model_file(BLOCK.format(statement="out += x  # expect: RL001", join="out"))
    finding = reslint.check(load(path), torch.empty(2, 3, 16, 16)).findings[0]
    from reslint.load import import_source
    from reslint.target import TargetSpec

    model = getattr(import_source(TargetSpec(source=path, name="Net")), "Net")()
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 3, 16, 16))
    model.block.shortcut = eval(finding.fix.code, {"nn": torch.nn})  # the code the user pastes
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
