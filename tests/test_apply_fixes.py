"""--diff and --fix: the proven fix written into the model's source, in the class's own parameters.

Each model file is linted in this process, its fixes applied with reslint.apply, and then: the diff
applies with `patch`, the edited model runs eagerly on the CPU, reslint finds nothing in it, and a
block instance that was right before computes the same output as before (same weights, same input).
"""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from reslint.apply import plan_fixes, write
from reslint.findings import Report
from reslint.runner import Job, lint_target

from conftest import run_cli

RESNET = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + x  # the skip
        return torch.relu(out)


class Net(nn.Module):
    example_input_array = torch.zeros(2, 3, 16, 16)

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        # stage 2 holds a right block (layers.1) and wrong ones (layers.0, layers.2)
        self.layers = nn.Sequential(Block(8, 16, 2), Block(16, 16), Block(16, 32, 2))

    def forward(self, x):
        return self.layers(self.stem(x)).mean((2, 3))
"""

DILATED = """
import torch
from torch import nn


class Dilated(nn.Module):
    def __init__(self, channels, dilation):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, dilation=dilation)  # padding should follow dilation

    def forward(self, x):
        return x + torch.relu(self.conv(x))


class Net(nn.Module):
    example_input_array = torch.zeros(1, 4, 20, 20)

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Dilated(4, 1), Dilated(4, 2), Dilated(4, 3))

    def forward(self, x):
        return self.blocks(x)
"""

FFN = """
import torch
from torch import nn


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, hidden)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


class Layer(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, 2 * dim)

    def forward(self, x):
        return x + self.ffn(self.norm(x))


class Net(nn.Module):
    example_input_array = torch.zeros(2, 5, 8)

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(Layer(8), Layer(8))

    def forward(self, x):
        return self.layers(x)
"""

UNET = """
import torch
import torch.nn.functional as F
from torch import nn


class UNet(nn.Module):
    example_input_array = torch.zeros(1, 3, 17, 17)

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.mid = nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.dec = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x):
        e = self.enc(x)
        m = self.mid(F.max_pool2d(e, 2, ceil_mode=True))
        return self.dec(torch.cat([e, self.up(m)], dim=1))
"""


def lint(path: str, name: str) -> Report:
    _forget(path)
    return Report(lint_target(Job(f"{path}:{name}")))


def _forget(path: str) -> None:
    for key, module in list(sys.modules.items()):
        if os.path.abspath(getattr(module, "__file__", None) or "") == os.path.abspath(path):
            del sys.modules[key]


def load(path: str, name: str, seed: int = 0):
    spec = importlib.util.spec_from_file_location(f"m{abs(hash((path, open(path).read())))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    return getattr(module, name)().eval()


CASES = [
    # source, class, a block that was right (None: every instance was wrong), its input
    pytest.param(RESNET, "Net", ("layers.1", (2, 16, 8, 8)), id="resnet-projection"),
    pytest.param(DILATED, "Net", ("blocks.0", (1, 4, 20, 20)), id="dilated-padding"),
    pytest.param(FFN, "Net", None, id="ffn-width"),
    pytest.param(UNET, "UNet", None, id="unet-cat"),
]


@pytest.mark.parametrize("source, name, right", CASES)
def test_fix_makes_the_model_clean_and_keeps_right_blocks(tmp_path, source, name, right):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(source))
    original = path.read_text()
    report = lint(str(path), name)
    assert report.findings and all(f.fix and f.fix.safe and f.fix.diff for f in report.findings)
    before = load(str(path), name)

    plan = plan_fixes(report, root=str(tmp_path))
    assert not plan.notes and plan.changed_files == [str(path)]
    # the diff applies to the original file
    patch_file = tmp_path / "fix.diff"
    patch_file.write_text(plan.diff.replace(os.path.relpath(str(path)), str(path)))
    check = subprocess.run(["patch", "--dry-run", "-p0", "-i", str(patch_file)], cwd="/", capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    write(plan)
    assert path.read_text() != original
    after = load(str(path), name)
    example = torch.randn(*before.example_input_array.shape)
    with torch.no_grad():
        after(example)  # (a) runs eagerly
    assert lint(str(path), name).exit_code == 0  # (b) nothing left
    if right is not None:  # (c) a block that was right computes what it did
        module, shape = right
        missing, unexpected = after.load_state_dict(before.state_dict(), strict=False)
        assert not unexpected and not any(k.startswith(module + ".") for k in missing)
        x = torch.randn(*shape)
        with torch.no_grad():
            assert torch.equal(before.get_submodule(module)(x), after.get_submodule(module)(x))


def test_resnet_fix_is_written_in_the_block_parameters_with_a_guard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the project: fixes go only into files below it
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(RESNET))
    report = lint(str(path), "Net")
    finding = report.findings[0]
    assert {i.module for i in finding.instances} == {"layers.0", "layers.2"}
    diff = report.apply_fixes(write=False)
    assert "nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)" in diff
    assert "if stride != 1 or in_planes != planes" in diff and "nn.Identity()" in diff
    assert "+        out = out + self.shortcut(x)  # the skip" in diff  # the comment is kept
    assert diff == finding.fix.diff and finding.fix.to_json()["safe"] is True


def test_unsafe_fix_needs_unsafe_fixes_and_site_packages_stay_report_only(tmp_path):
    # the padding fix changes a right block too when the guard cannot separate them: here every block
    # shares one line of code but a right one has no dilation parameter to tell it apart
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(DILATED))
    report = lint(str(path), "Net")
    fix = report.findings[0].fix
    fix.safe = False
    assert plan_fixes(report, root=str(tmp_path)).changed_files == []
    assert plan_fixes(report, unsafe=True, root=str(tmp_path)).changed_files == [str(path)]
    outside = plan_fixes(report, unsafe=True, root=str(tmp_path / "elsewhere"))
    assert outside.changed_files == [] and outside.notes


def test_cli_diff_then_fix(tmp_path):
    (tmp_path / "a.py").write_text(textwrap.dedent(RESNET))
    (tmp_path / "b.py").write_text(textwrap.dedent(FFN))
    shown = run_cli("--diff", "a.py:Net", "b.py:Net", cwd=str(tmp_path))
    assert shown.returncode == 1 and shown.stdout.startswith("--- a.py\n+++ a.py\n") and "+++ b.py" in shown.stdout
    assert (tmp_path / "a.py").read_text() == textwrap.dedent(RESNET)  # --diff changes nothing
    fixed = run_cli("--fix", "a.py:Net", "b.py:Net", cwd=str(tmp_path))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "self.shortcut(x)" in (tmp_path / "a.py").read_text()


# -- diffs a person would write --------------------------------------------------------------------------

DENSE_LIST = """
import torch
from torch import nn


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, growth, 3, stride=stride, padding=1)

    def forward(self, x):
        return torch.cat([x, self.conv(x)], dim=1)


class Net(nn.Module):
    example_input_array = torch.zeros(1, 4, 8, 8)

    def __init__(self, growth=2):
        super().__init__()
        strides = [1, 2, 1]
        self.layers = nn.Sequential(*[DenseLayer(4 + i * growth, growth, s) for i, s in enumerate(strides)])

    def forward(self, x):
        return self.layers(x)
"""

OUT_DIM_CALLER = """
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, dim, out_dim=None):
        super().__init__()
        self.up = nn.Linear(dim, 2 * dim)
        self.down = nn.Linear(2 * dim, out_dim or dim)

    def forward(self, x):
        return x + self.down(torch.relu(self.up(x)))


class Net(nn.Module):
    example_input_array = torch.zeros(2, 3, 8)

    def __init__(self, dim=8):
        super().__init__()
        widths = [None, None, 2 * dim]
        self.blocks = nn.Sequential(*[Mixer(dim, out_dim=w) for w in widths])
        self.head = nn.Linear(dim, 2)

    def forward(self, x):
        return self.head(self.blocks(x))
"""

POSITIONAL_POOL = """
import torch
from torch import nn


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Conv2d(cin, cout, 3, 2, 1)
        self.skip = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1))

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Net(nn.Module):
    example_input_array = torch.zeros(1, 4, 9, 9)

    def __init__(self):
        super().__init__()
        self.down = Down(4, 8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(self.down(x))
"""

HELPER_JOIN = """
import torch
from torch import nn


def add_skip(out, skip):
    return out + skip


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, 2, 1)
        self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.conv(x)
        sc = self.shortcut(x)
        return add_skip(out, sc)


class Net(nn.Module):
    example_input_array = torch.zeros(1, 4, 8, 8)

    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x)
"""

TWO_ON_A_LINE = """
import torch
from torch import nn


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(2, 2, 3, 2, 1), nn.Conv2d(4, 2, 3, 1, 1)])

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(torch.relu(layer(torch.cat(features, 1))))
        return torch.cat(features, 1)


class Net(nn.Module):
    example_input_array = torch.zeros(1, 2, 8, 8)

    def __init__(self):
        super().__init__()
        self.dense = Dense()

    def forward(self, x):
        return self.dense(x)
"""

WRITTEN_LIKE_A_PERSON = [
    # source, the lines the diff removes, the lines it adds (stripped; "..." stands for any text)
    pytest.param(DENSE_LIST, ["strides = [1, 2, 1]"], ["strides = [1, 1, 1]"], id="caller-list-element"),
    pytest.param(OUT_DIM_CALLER, ["self.blocks = nn.Sequential(*[Mixer(dim, out_dim=w) for w in widths])"],
                 ["self.blocks = nn.Sequential(*[Mixer(dim, out_dim=dim) for w in widths])"], id="caller-argument"),
    pytest.param(POSITIONAL_POOL, ["self.skip = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1))"],
                 ["self.skip = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(cin, cout, 1))"], id="keyword-only-added"),
    pytest.param(HELPER_JOIN, ["self.shortcut = nn.Identity()"],
                 ["self.shortcut = ...nn.Conv2d(4, 8, kernel_size=1, stride=2..."], id="identity-placeholder"),
    pytest.param(TWO_ON_A_LINE, ["self.layers = nn.ModuleList([nn.Conv2d(2, 2, 3, 2, 1), nn.Conv2d(4, 2, 3, 1, 1)])"],
                 ["self.layers = nn.ModuleList([nn.Conv2d(2, 2, 3, 1, 1), nn.Conv2d(4, 2, 3, 1, 1)])"], id="the-right-call-on-a-line"),
]


@pytest.mark.parametrize("source, removed, added", WRITTEN_LIKE_A_PERSON)
def test_the_diff_is_what_a_person_would_write_and_it_fixes_the_model(tmp_path, source, removed, added):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(source))
    report = lint(str(path), "Net")
    assert report.findings and all(f.fix and f.fix.safe for f in report.findings)
    plan = plan_fixes(report, root=str(tmp_path))
    lines = plan.diff.splitlines()
    assert [l[1:].strip() for l in lines if l.startswith("-") and not l.startswith("---")] == removed
    written = [l[1:].strip() for l in lines if l.startswith("+") and not l.startswith("+++")]
    assert len(written) == len(added)
    assert all(re.fullmatch(".*".join(map(re.escape, want.split("..."))), got) for got, want in zip(written, added)), written
    write(plan)
    model = load(str(path), "Net")
    with torch.no_grad():
        model(torch.randn(*model.example_input_array.shape))
    assert lint(str(path), "Net").exit_code == 0
