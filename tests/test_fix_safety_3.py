"""A layer fix is written as it was validated (reslint/source_fixes.py `_alike_get_it`, reslint/layer_runs.py):
the validation changes every layer made alike at the call, so the edit does too; it is `safe` only when each
of those the lint proved right (ran on the model's own values) computes what it did, and one that ran only
downstream of a failure (on a substitute) was never proven right.

A pad with its axes swapped is checked on every instance that ran it (reslint/pad_instances.py), and an
nn.Identity on a name bound to the input (`identity = x`) becomes the projection.

Each model is linted in this process, its fixes planned, and the edited file is run eagerly.
"""


import torch

from reslint.apply import plan_fixes, write
from fix_workbench import lint as _lint, load as _load, write_model as _write, write_safe_fixes

# One down-sampling block class used twice in a row: the first gets an odd size (its 3x3/s2/p1 conv rounds
# up, its 2x2/s2 pool rounds down); the second only looked right because it ran on the first's substitute.
CHAINED = """
import torch
from torch import nn


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)

    def forward(self, x):
        return torch.relu(torch.cat([self.conv(x), self.pool(x)], 1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.down1 = Down(3, 8)
        self.down2 = Down(8, 16)

    def forward(self, x):
        return self.down2(self.down1(x))
"""

# The same broken block, and a pool made at the same call that ran right on the model's input first:
# on an even input ceil_mode changes nothing there, on an odd one it would make that pool's output larger.
BESIDE = """
import torch
from torch import nn


def pool():
    return nn.MaxPool2d(2, stride=2)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1)
        self.pool = pool()

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.context = pool()
        self.down = Down(3, 8)

    def forward(self, x):
        return self.down(x), self.context(x[..., :EDGE, :EDGE])
"""


# A decoder step whose pad has its axes swapped, used twice: the first pads H where W is short; the second
# ran only on the first's substitute. UNUSED adds a third step that is built and never run.
SWAPPED_PAD = """
import torch
import torch.nn.functional as F
from torch import nn


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.conv = nn.Conv2d(2 * c, c, 3, padding=1)

    def forward(self, low, skip):
        low = self.up(low)
        dh = skip.size(2) - low.size(2)
        dw = skip.size(3) - low.size(3)
        low = F.pad(low, [dh // 2, dh - dh // 2, dw // 2, dw - dw // 2])
        return self.conv(torch.cat([skip, low], dim=1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1 = nn.MaxPool2d(2)
        self.d2 = nn.MaxPool2d(2)
        self.u2 = Up(4)
        self.u1 = Up(4)
        UNUSED

    def forward(self, x):
        a = self.d1(x)
        return self.u1(self.u2(self.d2(a), a), x)
"""


# A block whose skip goes through `self.skip(identity)`, `identity = x` bound before x is rebound, with an
# nn.Identity there unless `proj` asks for the 1x1 conv: widened to every block that changes the width.
ALIASED_IDENTITY = """
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, proj=False):
        super().__init__()
        self.body = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if proj and cin != cout else nn.Identity()

    def forward(self, x):
        identity = x
        x = self.body(x)
        return x + self.skip(identity)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block(4, 8)
        self.b = Block(8, 8)

    def forward(self, x):
        return self.b(self.a(x))
"""


def test_a_layer_made_alike_downstream_of_the_failure_gets_the_fix_that_was_validated(tmp_path):
    path, report = _write(tmp_path, CHAINED, (1, 3, 33, 33))
    write_safe_fixes(tmp_path, path, report)
    text = path.read_text()
    assert "nn.MaxPool2d(2, stride=2, ceil_mode=True)" in text and " if " not in text  # every block, no guard
    assert _lint(path, (1, 3, 33, 33)).exit_code == 0
    with torch.no_grad():
        assert _load(str(path), "Net")(torch.randn(1, 3, 33, 33)).shape == (1, 16, 9, 9)


def test_a_layer_proven_right_that_the_change_leaves_as_it_was_keeps_the_fix_safe(tmp_path):
    path, report = _write(tmp_path, BESIDE.replace("EDGE", "32"), (1, 3, 33, 33))  # the context pool ran on 32x32
    x = torch.randn(1, 3, 33, 33)
    context_before = _load(str(path), "Net").context(x[..., :32, :32])
    write_safe_fixes(tmp_path, path, report)
    assert "ceil_mode=True" in path.read_text()
    assert _lint(path, (1, 3, 33, 33)).exit_code == 0
    fixed = _load(str(path), "Net")
    with torch.no_grad():
        assert fixed(x)[0].shape == (1, 8, 17, 17)
        assert torch.equal(fixed.context(x[..., :32, :32]), context_before)


def test_a_layer_proven_right_that_the_change_would_alter_makes_the_fix_unsafe(tmp_path):
    path, report = _write(tmp_path, BESIDE.replace("EDGE", "33"), (1, 3, 33, 33))  # 33x33: ceil_mode gives 17, not 16
    fixes = [f.fix for f in report.findings if f.fix is not None and f.fix.diff]
    assert fixes and all("ceil_mode=True" in f.diff and not f.safe for f in fixes)
    assert write(plan_fixes(report, root=str(tmp_path))) == []  # --fix applies safe fixes only


def test_a_pad_with_its_axes_swapped_is_safe_when_every_instance_that_ran_it_is_fixed_or_unchanged(tmp_path):
    path, report = _write(tmp_path, SWAPPED_PAD.replace("UNUSED", ""), (1, 4, 16, 22))  # u2: 8x11 skip, 4x5 up to 8x10: W short, H padded
    write_safe_fixes(tmp_path, path, report)
    assert "[dw // 2, dw - dw // 2, dh // 2, dh - dh // 2]" in path.read_text()
    assert _lint(path, (1, 4, 16, 22)).exit_code == 0
    with torch.no_grad():
        assert _load(str(path), "Net")(torch.randn(1, 4, 16, 22)).shape == (1, 4, 16, 22)


def test_a_pad_with_its_axes_swapped_is_unsafe_beside_an_instance_that_never_ran(tmp_path):
    path, report = _write(tmp_path, SWAPPED_PAD.replace("UNUSED", "self.u0 = Up(4)"), (1, 4, 16, 22))
    fixes = [f.fix for f in report.findings if f.fix is not None and f.fix.diff]
    assert fixes and not any(f.safe for f in fixes)


def test_an_identity_on_a_name_bound_to_the_input_becomes_the_projection(tmp_path):
    path, report = _write(tmp_path, ALIASED_IDENTITY, (1, 4, 8, 8))
    x = torch.randn(1, 8, 8, 8)
    right_before = _load(str(path), "Net").b
    write_safe_fixes(tmp_path, path, report)
    assert "nn.Conv2d(cin, cout, 1) if proj and cin != cout or cin != cout else nn.Identity()" in path.read_text()
    assert _lint(path, (1, 4, 8, 8)).exit_code == 0
    fixed = _load(str(path), "Net")
    assert isinstance(fixed.b.skip, torch.nn.Identity)  # the block that was right keeps its identity
    fixed.b.load_state_dict(right_before.state_dict())
    with torch.no_grad():
        assert fixed(torch.randn(1, 4, 8, 8)).shape == (1, 8, 8, 8)
        assert torch.equal(fixed.b(x), right_before(x))
