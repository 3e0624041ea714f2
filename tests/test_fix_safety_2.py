"""When a rewritten statement is a `safe` fix (reslint/source_fixes.py, statement_reach.py, statement_terms.py):
a concat operand resized to its neighbour changes nothing where the concat ran; an instance whose `if` skips
the statement keeps what it had; per-instance numbers in `__init__` are written in the constructor's terms;
an unbuilt subclass that runs the method on other inputs makes the fix unsafe.

Each model is linted in this process, its safe fixes written, and the edited file is run eagerly.
"""


import torch

from reslint.apply import plan_fixes, write
from fix_workbench import lint as _lint, load as _load, write_model as _write, write_safe_fixes

# Two decoder steps of one class: the first gets an odd-sized skip (its transposed conv overshoots by one),
# the second is right. A subclass the lint does not build pads its input first.
DECODER = """
import torch
import torch.nn.functional as F
from torch import nn


class Up(nn.Module):
    grow = False

    def __init__(self, c):
        super().__init__()
        self.up = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.conv = nn.Conv2d(2 * c, c, 3, padding=1)

    def forward(self, x, skip):
        y = self.up(x)
        if self.grow:
            skip = F.pad(skip, (0, 1, 0, 1))
        return self.conv(torch.cat([skip, y], dim=1))


class UpGrown(Up):
    grow = True


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.d2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.u2 = Up(4)
        self.u1 = Up(4)

    def forward(self, x):
        a = self.d1(x)
        b = self.d2(a)
        return self.u1(self.u2(b, a), x)
"""

# A shortcut pooled only when the block downsamples: the block that does not never runs the pooling line.
POOLED_WHEN_DOWN = """
import torch.nn.functional as F
from torch import nn


class Res(nn.Module):
    def __init__(self, cin, cout, down=True, ceil=False):
        super().__init__()
        self.down = down
        self.ceil = ceil
        self.body = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=1)
        self.proj = nn.Conv2d(cin, cout, 1)

    def skip(self, x):
        x = self.proj(x)
        if self.down:
            x = F.avg_pool2d(x, 2, ceil_mode=self.ceil)
        return x

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Net(nn.Module):
    ceil = False

    def __init__(self):
        super().__init__()
        self.a = Res(4, 8, ceil=self.ceil)
        self.b = Res(8, 8, down=False, ceil=self.ceil)

    def forward(self, x):
        return self.b(self.a(x))


class NetCeil(Net):
    ceil = True
"""

# A padded shortcut whose amount is a fraction of the width: the blocks that widen need a quarter, not a half.
QUARTER_PAD = """
import torch.nn.functional as F
from torch import nn


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Unit(nn.Module):
    part = 2

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())
        self.skip = nn.Identity()
        if stride != 1 or cin != cout:
            k = self.part
            self.skip = Fn(lambda x: F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, cout // k, cout // k)))

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Quarter(Unit):
    part = 4


class Net(nn.Module):
    unit = Unit

    def __init__(self):
        super().__init__()
        u = self.unit
        self.units = nn.Sequential(u(8, 8), u(8, 16, 2), u(16, 16), u(16, 32, 2))

    def forward(self, x):
        return self.units(x)


class NetQuarter(Net):
    unit = Quarter
"""

# A channels-last mixer that forgets to permute back; a subclass the lint does not build permutes back.
PERMUTED = """
from torch import nn


class Mix(nn.Module):
    back = False

    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.fc = nn.Linear(c, c)

    def forward(self, x):
        y = self.fc(self.dw(x).permute(0, 2, 3, 1))
        if self.back:
            y = y.permute(0, 3, 1, 2)
        return x + y


class MixBack(Mix):
    back = True


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = Mix(8)

    def forward(self, x):
        return self.mix(x)
"""


def _same(a: torch.nn.Module, b: torch.nn.Module, *x) -> bool:
    a.load_state_dict(b.state_dict())
    with torch.no_grad():
        return torch.equal(a(*x), b(*x))


def test_a_concat_operand_resized_to_its_neighbour_is_safe_beside_right_instances_and_other_configurations(tmp_path):
    path, report = _write(tmp_path, DECODER, (1, 4, 10, 10))
    skip, x = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 3, 3)  # a grown decoder step that ran right before
    grown_before = _load(str(path), "UpGrown", 4)
    right_before = _load(str(path), "Up", 4)
    write_safe_fixes(tmp_path, path, report)
    assert "interpolate" in path.read_text()
    assert _lint(path, (1, 4, 10, 10)).exit_code == 0
    with torch.no_grad():
        assert _load(str(path), "Net")(torch.randn(1, 4, 10, 10)).shape == (1, 4, 10, 10)
    assert _same(_load(str(path), "UpGrown", 4), grown_before, x, skip[:, :, :5, :5])
    assert _same(_load(str(path), "Up", 4), right_before, x, skip)


def test_an_instance_whose_if_skips_the_rewritten_line_keeps_what_it_had(tmp_path):
    path, report = _write(tmp_path, POOLED_WHEN_DOWN, (1, 4, 9, 9))
    x = torch.randn(1, 4, 10, 10)
    before = _load(str(path), "NetCeil")
    write_safe_fixes(tmp_path, path, report)
    assert "ceil_mode=True" in path.read_text()
    assert _lint(path, (1, 4, 9, 9)).exit_code == 0
    with torch.no_grad():
        assert _load(str(path), "Net")(torch.randn(1, 4, 9, 9)).shape == (1, 8, 5, 5)
    assert _same(_load(str(path), "NetCeil"), before, x)


def test_numbers_that_differ_per_instance_are_written_in_the_constructors_terms(tmp_path):
    path, report = _write(tmp_path, QUARTER_PAD, (1, 8, 8, 8))
    x = torch.randn(1, 8, 8, 8)
    before = _load(str(path), "NetQuarter")
    write_safe_fixes(tmp_path, path, report)
    text = path.read_text()
    assert "cout // 4, cout // 4" in text and "cout // k" not in text
    assert _lint(path, (1, 8, 8, 8)).exit_code == 0
    with torch.no_grad():
        assert _load(str(path), "Net")(x).shape == (1, 32, 2, 2)
    assert _same(_load(str(path), "NetQuarter"), before, x)  # the subclass that was right computes the same


def test_a_statement_fix_is_unsafe_when_an_unbuilt_subclass_runs_the_method_on_other_inputs(tmp_path):
    path, report = _write(tmp_path, PERMUTED, (1, 8, 5, 6))
    fixes = [f.fix for f in report.findings if f.fix is not None and f.fix.diff]
    assert fixes and not any(fix.safe for fix in fixes)
    assert not plan_fixes(report, root=str(tmp_path)).changed_files


def test_a_built_subclass_that_inherits_the_method_and_was_right_makes_a_statement_fix_unsafe(tmp_path):
    source = PERMUTED.replace("self.mix = Mix(8)", "self.mix = Mix(8)\n        self.mix_back = MixBack(8)").replace(
        "return self.mix(x)", "return self.mix_back(self.mix(x))")
    path, report = _write(tmp_path, source, (1, 8, 5, 6))
    fixes = [f.fix for f in report.findings if f.fix is not None and f.fix.diff]
    assert fixes and not any(fix.safe for fix in fixes)
