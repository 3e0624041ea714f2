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
