"""When a written fix is `safe` (reslint/source_fixes.py): proven on every instance of the class the linted model
builds, and every instance that was right keeps what it had, including instances the lint never saw
(another configuration of the same class).

Each model is linted in this process, its safe fixes written, and the edited file is run eagerly.
"""


import torch

from reslint.apply import plan_fixes, write
from fix_workbench import lint, load as _load, write_model

# A block that projects its skip only when it strides: the stride-1 block that widens breaks.
# The fix a maintainer writes widens the condition; the blocks that had the projection keep it.
STRIDE_ONLY = """
import torch
from torch import nn


class Unit(nn.Module):
    def __init__(self, cin, cout, stride=1, always=False):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = nn.Conv2d(cin, cout, 1, stride=stride) if stride > 1 or always else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class Net(nn.Module):
    always = False

    def __init__(self):
        super().__init__()
        a = self.always
        self.units = nn.Sequential(Unit(4, 4, 1, a), Unit(4, 8, 1, a), Unit(8, 16, 2, a), Unit(16, 16, 1, a))

    def forward(self, x):
        return self.units(x)


class NetAlways(Net):
    always = True
"""

# A block built with `downsample=None` whose caller never passes one: the projection is built in the block,
# guarded, and a block given a downsample keeps it.
NO_DOWNSAMPLE = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.conv2(torch.relu(self.conv1(x)))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return torch.relu(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(4, 4), Block(4, 8, 2), Block(8, 8))

    def forward(self, x):
        return self.blocks(x)


class NetGiven(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(4, 4), Block(4, 8, 2, nn.Conv2d(4, 8, 3, 2, 1)), Block(8, 8))

    def forward(self, x):
        return self.blocks(x)
"""


def _fix(tmp_path, source: str, shape: tuple[int, ...]):
    path, report = write_model(tmp_path, source, shape)
    assert all(f.fix is not None and f.fix.safe for f in report.findings), [f.fix for f in report.findings]
    before = {name: _load(str(path), name) for name in ("Net", "NetAlways", "NetGiven") if name in path.read_text()}
    plan = plan_fixes(report, root=str(tmp_path))
    assert write(plan) == [str(path)]
    return path, before


def _same(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> bool:
    """Same parameters (names and shapes) and, given a's weights, the same output."""
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    if shapes(a) != shapes(b):
        return False
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        return torch.allclose(a(x), b(x))


def test_a_stride_only_projection_gets_its_condition_widened_and_the_other_configuration_is_unchanged(tmp_path):
    path, before = _fix(tmp_path, STRIDE_ONLY, (1, 4, 8, 8))
    text = path.read_text()
    assert "if stride > 1 or always or " in text  # the user's condition kept, the guard added
    assert lint(path, (1, 4, 8, 8)).exit_code == 0
    after = _load(str(path), "Net")
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert after(x).shape == (1, 16, 4, 4)
    for index in (0, 2, 3):  # right before: an identity, a projection, an identity
        assert _same(before["Net"].units[index], after.units[index], torch.randn(1, after.units[index].body[0].in_channels, 8, 8))
    assert _same(before["NetAlways"], _load(str(path), "NetAlways"), x)  # a configuration the lint did not see


def test_a_block_whose_caller_never_passes_a_downsample_builds_it_guarded(tmp_path):
    path, before = _fix(tmp_path, NO_DOWNSAMPLE, (1, 4, 8, 8))
    text = path.read_text()
    assert "if downsample is None and (stride != 1 or cin != planes)" in text
    assert lint(path, (1, 4, 8, 8)).exit_code == 0
    after = _load(str(path), "Net")
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert after(x).shape == (1, 8, 4, 4)
    assert after.blocks[0].downsample is None and after.blocks[2].downsample is None
    assert _same(before["Net"].blocks[0], after.blocks[0], x)
    assert _same(before["NetGiven"], _load(str(path), "NetGiven"), x)  # a passed downsample is kept


POOLED = """
import torch
from torch import nn


class Unit(nn.Module):
    def __init__(self, cin, cout, stride=1, always=False):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = nn.Conv2d(cin, cout, 1, stride=stride) if always else nn.Identity()
        self.pool = nn.AvgPool2d(stride) if stride > 1 and cin == cout and not always else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.pool(self.skip(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.units = nn.Sequential(Unit(4, 4, 2), Unit(4, 8, 2), Unit(8, 8))

    def forward(self, x):
        return self.units(x)
"""


def test_a_guard_that_does_not_separate_the_instances_is_not_safe(tmp_path):
    # Unit(4, 8, 2) needs a strided projection; the guard `stride != 1 or cin != cout` also holds on
    # Unit(4, 4, 2), which was right (it pools its skip): giving it a projection would change it.
    path, report = write_model(tmp_path, POOLED, (1, 4, 8, 8))
    projections = [f.fix for f in report.findings if f.fix is not None and f.fix.kind == "project-skip" and f.fix.diff]
    assert projections and not any(fix.safe for fix in projections)
    plan = plan_fixes(report, root=str(tmp_path))
    assert not plan.changed_files
