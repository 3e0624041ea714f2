"""Regressions found by the differential test's bug classes of issue 13 (tests/generated_models.py), each
hand-minimized into a small model written for this project.

Each model marks its root causes `# expect: CODE`: eager execution crashes there, one after the other as
the author's repairs go in. reslint must report exactly one finding per marked line, with the instances
listed, and the maintainer's fix validated; pasted into the source (a statement fix) or the built model (a
layer fix), that fix must make the model run. The ones reslint does not pass yet are xfail(strict=True),
with what goes wrong: when one starts passing, drop its mark and the class from KNOWN_GAPS in
tests/test_differential.py.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import sys
import tempfile
import textwrap

import pytest
import torch

import reslint

_DIR = tempfile.mkdtemp(prefix="reslint-regressions-13-")
_COUNTER = itertools.count()


def load(source: str):
    source = textwrap.dedent(source).lstrip("\n")
    name = f"reslint_regression13_{next(_COUNTER)}"
    path = os.path.join(_DIR, f"{name}.py")
    with open(path, "w") as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, source


def expected(source: str) -> list[tuple[int, str]]:
    return sorted((i, code) for i, line in enumerate(source.splitlines(), 1) for code in re.findall(r"# expect: (RL\d{3})", line))


def paste(source: str, fix) -> str:
    """The source with fix.code in place of lines fix.line..fix.end_line, at the first line's indent."""
    lines = source.splitlines()
    first = lines[fix.line - 1]
    indent = first[: len(first) - len(first.lstrip())]
    lines[fix.line - 1 : fix.end_line] = [indent + line for line in textwrap.dedent(fix.code).splitlines()]
    return "\n".join(lines) + "\n"


def check(source: str, shape: tuple[int, ...], fix_kinds: dict[int, str], instances: dict[int, set[str]] | None = None):
    """reslint finds exactly the marked lines, with those instances and those fix kinds, validated, and each
    statement fix, pasted, makes the model run (the regressions below have one root cause each, or
    layer fixes)."""
    module, source = load(source)
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    report = reslint.check(module.Net().eval(), example)
    said = "\n".join(f"{f.code} {f.line} {f.module} {[i.module for i in f.instances]}: {f.message} / "
                     f"{f.fix and (f.fix.kind, f.fix.validated, f.fix.code)}" for f in report.findings)
    assert sorted((f.line, f.code) for f in report.findings) == expected(source), said
    for finding in report.findings:
        if instances and finding.line in instances:
            assert {i.module for i in finding.instances} == instances[finding.line], said
        if finding.line in fix_kinds:
            assert finding.fix is not None and finding.fix.validated and finding.fix.kind == fix_kinds[finding.line], said
            if finding.fix.line:
                pasted, _ = load(paste(source, finding.fix))
                with torch.no_grad():
                    pasted.Net().eval()(example)  # raises if the pasted fix does not make the model run


CAUSAL_CONV_ON_TOKENS = """
    import torch
    from torch import nn


    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(6)
            self.conv = nn.Conv1d(6, 6, 4, padding=3, groups=6)  # a causal conv: its output needs cropping
            self.proj = nn.Linear(6, 6)

        def forward(self, x):
            h = self.norm(x).transpose(1, 2)
            h = self.conv(h)  # should be self.conv(h)[..., :x.shape[1]]
            out = self.proj(h.transpose(1, 2))
            return x + out  # expect: RL001


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mixer = Mixer()
            self.head = nn.Linear(6, 10)

        def forward(self, x):
            return self.head(self.mixer(x))
"""


def test_causal_conv_in_token_layout_gets_the_crop():
    """The sequence is dim 1 of [B, T, D]: the uncropped causal conv used to get no fix at all (size fixes
    looked at convs only for dims 2 and up)."""
    check(CAUSAL_CONV_ON_TOKENS, (2, 8, 6), {15: "crop"})


CONVNEXT_METHOD_ADD = """
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.dwconv = nn.Conv2d(6, 6, 3, padding=1, groups=6)
            self.norm = nn.LayerNorm(6)
            self.pw = nn.Linear(6, 6)

        def forward(self, x):
            out = self.dwconv(x).permute(0, 2, 3, 1)
            out = self.pw(self.norm(out))  # missing: out = out.permute(0, 3, 1, 2)
            {join}  # expect: RL001


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = nn.Linear(6, 10)

        def forward(self, x):
            return self.head(self.block(x).mean(dim=(2, 3)))
"""


@pytest.mark.parametrize("join", ["return x + out", "return torch.add(out, x)"])
def test_convnext_missing_permute_back_operator_forms(join):
    """The control: with `+` or torch.add the missing permute back is found and fixed by permute-back."""
    check(CONVNEXT_METHOD_ADD.replace("{join}", join), (2, 6, 8, 5), {15: "permute-back"})


@pytest.mark.parametrize("join", ["return out.add(x)", "return x.add(out)"])
def test_convnext_missing_permute_back_method_forms(join):
    """`x.add(y)`: the receiver is the left operand, rewritten like `x + y`."""
    check(CONVNEXT_METHOD_ADD.replace("{join}", join), (2, 6, 8, 5), {15: "permute-back"})


DILATED_IDENTICAL_BLOCKS = """
    import torch
    from torch import nn


    class DilatedA(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=2, dilation=3)  # should be padding=3

        def forward(self, x):
            out = self.conv(x)
            return out + x  # expect: RL001


    class DilatedB(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=0, dilation=2)  # should be padding=2

        def forward(self, x):
            out = self.conv(x)
            return out + x  # expect: RL001


    class Stage(nn.Module):
        def __init__(self, *blocks):
            super().__init__()
            self.blocks = nn.Sequential(*blocks)

        def forward(self, x):
            out = self.blocks(x)
            return out + x


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage0 = Stage(DilatedA(), DilatedB())
            self.stage1 = Stage(DilatedB())
            self.head = nn.Linear(4, 10)

        def forward(self, x):
            x = self.stage1(self.stage0(x))
            return self.head(x.mean(dim=(2, 3)))
"""


def test_identical_dilated_blocks_do_not_cascade():
    check(DILATED_IDENTICAL_BLOCKS, (2, 4, 6, 10), {12: "repad-conv", 22: "repad-conv"},
          instances={12: {"stage0.blocks.0"}, 22: {"stage0.blocks.1", "stage1.blocks.0"}})


IDENTICAL_DILATED_BLOCKS_THEN_FIXED_SIZES = """
    import torch
    from torch import nn


    class Dilated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=0, dilation=2)  # should be padding=2

        def forward(self, x):
            out = self.conv(x)
            out = out + x  # expect: RL001
            return out


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(Dilated(), Dilated())
            self.head = nn.Linear(4, 10)

        def forward(self, x):
            x = self.blocks(x)
            x = x.view(-1, 4, 3, 2, 8, 2)  # windows of the 6x16 map: the sizes are written in
            return self.head(x.mean(dim=(2, 3, 4, 5)))
"""


def test_identical_dilated_blocks_before_a_view_with_written_sizes():
    check(IDENTICAL_DILATED_BLOCKS_THEN_FIXED_SIZES, (2, 4, 6, 16), {12: "repad-conv"}, instances={12: {"blocks.0", "blocks.1"}})


def test_one_dilated_block_before_a_view_with_written_sizes():
    """The control: the same with one block is one finding, and nothing else."""
    source = IDENTICAL_DILATED_BLOCKS_THEN_FIXED_SIZES.replace("nn.Sequential(Dilated(), Dilated())", "nn.Sequential(Dilated())")
    check(source, (2, 4, 6, 16), {12: "repad-conv"}, instances={12: {"blocks.0"}})
