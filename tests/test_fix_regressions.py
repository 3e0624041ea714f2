"""`reslint --fix` regressions found by the long differential run (tests/test_fix_differential.py).

Each model is small and holds one root cause the long run met: it is linted in this process, its
fixes written as `reslint --fix --unsafe-fixes` would (reslint.apply), and the edited file must then
run eagerly and lint clean.
"""

import importlib.util
import sys
import textwrap

import torch

from reslint.apply import plan_fixes, write
from reslint.findings import Report
from reslint.runner import Job, lint_target


def _lint(path: str, shape: str) -> Report:
    for key, module in list(sys.modules.items()):  # the file changed: import it again
        if getattr(module, "__file__", None) == path:
            del sys.modules[key]
    return Report(lint_target(Job(f"{path}:Net", inputs=(shape,))))


def _run(path: str, shape: tuple[int, ...]) -> torch.Tensor:
    spec = importlib.util.spec_from_file_location(f"reslint_fixreg_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        return module.Net().eval()(torch.randn(*shape))


def fix_and_check(tmp_path, source: str, shape: tuple[int, ...]) -> tuple[Report, str]:
    """Lint, write every fix, and check the edited model runs and lints clean; the first report and the diff."""
    path = str(tmp_path / "model.py")
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(source))
    spelled = ",".join(map(str, shape))
    report = _lint(path, spelled)
    assert report.findings
    plan = plan_fixes(report, unsafe=True, root=str(tmp_path))
    assert not plan.notes, plan.notes
    write(plan)
    _run(path, shape)
    again = _lint(path, spelled)
    assert again.exit_code == 0, [(f.code, f.line, f.message) for f in again.findings]
    return report, plan.diff


# Two block classes share an add helper and the same wrong padding: one finding (the helper's line)
# with two instances, each with its own fix in its own class. Every instance's fix is written, not
# just the first one's.
TWO_CLASSES_ONE_HELPER = """
import torch
from torch import nn


def add_skip(out, skip):
    return out + skip


class First(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, dilation=2)

    def forward(self, x):
        return add_skip(self.conv(x), x)


class Second(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, dilation=2)

    def forward(self, x):
        return add_skip(self.conv(x), x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(First(), Second())

    def forward(self, x):
        return self.blocks(x)
"""


def test_every_instance_of_a_shared_line_gets_its_own_fix_written(tmp_path):
    report, diff = fix_and_check(tmp_path, TWO_CLASSES_ONE_HELPER, (1, 4, 8, 8))
    assert len(report.findings) == 1 and len(report.findings[0].instances) == 2
    assert diff.count("padding=2, dilation=2") == 2


# A ConvNeXt-style block that never permutes back to channels first, adding in place: the transform
# is [B, H, W, C]. A 1x1 conv on it would take H for channels (and a stride for the width): the
# projection is judged on the roles of the operand it projects, not only the skip's, so none is offered.
CHANNELS_LAST_IN_PLACE = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.dwconv = nn.Conv2d(7, 7, 3, padding=1, groups=7)
        self.norm = nn.LayerNorm(7)
        self.pw1 = nn.Linear(7, 2)
        self.pw2 = nn.Linear(2, 7)

    def forward(self, x):
        out = self.dwconv(x)
        out = out.permute(0, 2, 3, 1)
        out = self.pw2(torch.relu(self.pw1(self.norm(out))))
        sc = x
        out.add_(sc)
        return out


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 7, 3, 1, 1)
        self.blocks = nn.Sequential(Block())

    def forward(self, x):
        return self.blocks(self.stem(x)).mean((2, 3))
"""


def test_no_projection_across_a_spatial_dim_of_a_channels_last_transform(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(CHANNELS_LAST_IN_PLACE))
    report = _lint(str(path), "2,3,4,4")
    assert [f.code for f in report.findings] == ["RL001"]
    fix = report.findings[0].fix
    assert fix is None or fix.kind not in ("project-transform", "project-skip") or not fix.validated
