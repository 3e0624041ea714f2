"""The maintainer's fix first: size fixes on the layer or call that changed a size, pasted and run.

Each model below has one bug of a kind seen in real code. reslint must propose the fix a maintainer
would write (not a new layer on top), validated; pasting it into the model's source (a statement fix
replaces lines fix.line..fix.end_line; a layer fix replaces the layer) must make the model run on a
real CPU tensor.
"""

import importlib.util
import itertools
import textwrap

import pytest
import torch
from torch import nn

import reslint
from reslint import fix_source

MODELS = {
    "resnet_d": """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.conv(x) + self.shortcut(x))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(8, 16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.block(x))

INPUT = (2, 8, 7, 7)
""",
    "dilated": """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, dilation=2)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        out = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(out + x)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block(8)

    def forward(self, x):
        return self.block(self.stem(x))

INPUT = (2, 3, 16, 16)
""",
    "pool_padding": """
import torch
from torch import nn

class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x):
        return self.pool(self.conv(x)) + self.shortcut(x)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = Down(4, 8)

    def forward(self, x):
        return self.down(x)

INPUT = (2, 4, 16, 16)
""",
    "option_a": """
import torch
import torch.nn.functional as F
from torch import nn

class Block(nn.Module):
    def __init__(self, planes_in, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(planes_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.planes = planes

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        planes = self.planes
        shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 2, planes // 2), "constant", 0)
        return F.relu(out + shortcut)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(16, 32, 2)

    def forward(self, x):
        return self.block(x)

INPUT = (2, 16, 8, 8)
""",
    "convnext": """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        x = shortcut + x
        return x

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.blocks = nn.Sequential(Block(16), Block(16))
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))

INPUT = (2, 3, 32, 32)
""",
    "causal": """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv = nn.Conv1d(c, c, k, padding=k - 1)
        self.proj = nn.Conv1d(c, c, 1)

    def forward(self, x):
        h = self.conv(x)
        h = self.proj(torch.relu(h))
        return x + h

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(8, 4)

    def forward(self, x):
        return self.block(x)

INPUT = (2, 8, 20)
""",
    "unet_pop": """
import torch
import torch.nn.functional as F
from torch import nn

class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.ModuleList([nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(16, 16, 2, stride=2)])
        self.dec = nn.Conv2d(24, 8, 3, padding=1)

    def forward(self, x):
        h = []
        x = self.down[0](x)
        h.append(x)
        x = F.max_pool2d(x, 2)
        x = self.down[1](x)
        x = self.up[0](x)
        x = torch.cat((x, h.pop()), dim=1)
        return self.dec(x)

INPUT = (1, 3, 15, 15)
""",
    "transformer": """
import torch
from torch import nn

class Layer(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.in_proj = nn.Linear(d, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def forward(self, x):
        return x + self.out_proj(torch.relu(self.in_proj(self.norm(x))))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Layer(16, 32), Layer(16, 32)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

INPUT = (2, 5, 16)
""",
}

_COUNTER = itertools.count()


def load(source: str, directory):
    """Import a model's source from a file of its own, so its lines are real."""
    path = directory / f"sized_model_{next(_COUNTER)}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def build(module):
    return (getattr(module, "Net", None) or module.UNet)()


def lint(name: str, directory):
    module, path = load(MODELS[name], directory)
    report = reslint.check(build(module), torch.randn(*module.INPUT))
    return module, path, report.findings


def pasted(path, fix) -> str:
    """The model's source with fix.code in place of the statement it rewrites, at that statement's indent."""
    lines = path.read_text().splitlines()
    first = lines[fix.line - 1]
    indent = first[: len(first) - len(first.lstrip())]
    lines[fix.line - 1 : fix.end_line] = [indent + line for line in fix.code.splitlines()]
    return "\n".join(lines) + "\n"


def runs_with_statement_fix(path, fix, directory) -> torch.Tensor:
    assert fix.line > 0
    module, _ = load(pasted(path, fix), directory)
    return build(module)(torch.randn(*module.INPUT))


def runs_with_layer_fixes(module, fixes) -> torch.Tensor:
    model = build(module)
    for fix in fixes:
        assert fix.line == 0
        parent, _, name = fix.module.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, name, eval(fix.code, {"nn": nn}))
    return model(torch.randn(*module.INPUT))


@pytest.mark.parametrize(
    "name, kind, code, layer",
    [
        ("resnet_d", "ceil-mode-pool", "nn.AvgPool2d(2, ceil_mode=True)", "block.shortcut.0"),
        ("dilated", "repad-conv", "nn.Conv2d(8, 8, kernel_size=3, padding=2, dilation=2)", "block.conv1"),
        ("pool_padding", "repad-pool", "nn.MaxPool2d(3, stride=2, padding=1)", "down.pool"),
    ],
)
def test_layer_size_fixes(tmp_path, name, kind, code, layer):
    module, _, findings = lint(name, tmp_path)
    finding, = findings
    assert finding.code == "RL001"
    assert (finding.fix.kind, finding.fix.code, finding.fix.module, finding.fix.validated) == (kind, code, layer, True)
    runs_with_layer_fixes(module, [finding.fix])


def test_option_a_pad_shortcut_with_the_wrong_amount_points_at_the_pad(tmp_path):
    _, path, findings = lint("option_a", tmp_path)
    finding, = findings
    fix = finding.fix
    assert (fix.kind, fix.validated) == ("fix-pad", True)
    assert "planes // 4, planes // 4" in fix.code  # the user's expression, with the right amount
    assert "Conv" not in fix.code
    assert runs_with_statement_fix(path, fix, tmp_path).shape == (2, 32, 4, 4)


def test_convnext_block_without_the_permute_back(tmp_path):
    _, path, findings = lint("convnext", tmp_path)
    finding, = findings  # the same line, in both identical blocks: one finding, two instances
    assert [i.module for i in finding.instances] == ["blocks.0", "blocks.1"]
    for fix in (i.fix for i in finding.instances):
        assert (fix.kind, fix.validated) == ("permute-back", True)
        assert fix.code == "x = shortcut + x.permute(0, 3, 1, 2)"
    assert runs_with_statement_fix(path, finding.fix, tmp_path).shape == (2, 2, 8, 8)


def test_causal_conv_without_the_crop_gets_the_crop_not_a_projection_of_the_sequence(tmp_path):
    _, path, findings = lint("causal", tmp_path)
    finding, = findings
    fix = finding.fix
    assert (fix.kind, fix.validated) == ("crop", True)
    assert fix.code == "h = self.conv(x)[..., :x.shape[-1]]"
    assert runs_with_statement_fix(path, fix, tmp_path).shape == (2, 8, 20)


def test_unet_cat_of_a_popped_skip_evaluates_pop_once(tmp_path):
    _, path, findings = lint("unet_pop", tmp_path)
    finding, = findings
    fix = finding.fix
    assert (finding.code, fix.kind, fix.validated) == ("RL003", "resize-to-skip", True)
    assert fix.code.count("h.pop()") == 1
    assert runs_with_statement_fix(path, fix, tmp_path).shape == (1, 8, 15, 15)


def test_identical_blocks_get_the_same_fix(tmp_path):
    """The last block alone could project its skip; its twin cannot: both get resize-transform."""
    module, _, findings = lint("transformer", tmp_path)
    finding, = findings
    assert [i.module for i in finding.instances] == ["layers.0", "layers.1"]
    fixes = [i.fix for i in finding.instances]
    kinds = {(f.kind, f.module.split(".")[-1], f.code, f.validated) for f in fixes}
    assert kinds == {("resize-transform", "out_proj", "nn.Linear(32, 16)", True)}
    assert runs_with_layer_fixes(module, fixes).shape == (2, 5, 16)


def test_code_that_reads_names_outside_the_scope_is_not_pasteable(tmp_path):
    module, path = load(MODELS["unet_pop"], tmp_path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "torch.cat" in text)
    statement = fix_source.statement_at(str(path), line)
    assert fix_source.pasteable("x = torch.cat((F.interpolate(x, size=h[-1].shape[2:]), h.pop()), dim=1)", statement)
    assert not fix_source.pasteable("decoder = F.interpolate(decoder, size=skip.shape[2:])", statement)
    assert not fix_source.pasteable("x = torch.cat((x,", statement)


SMALL_CASES = '''
import torch
import torch.nn.functional as F
from torch import nn

class SwappedPad(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, (3, 1))

    def forward(self, x):
        y = F.pad(self.conv(x), (1, 1, 0, 0))
        return x + y

class PoolCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.short = nn.Conv2d(4, 8, 1, stride=2)

    def forward(self, x):
        return F.max_pool2d(self.conv(x), 3, 2) + self.short(x)

class InPlacePermute(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        out = self.lin(x.permute(0, 2, 3, 1))
        out += x
        return out

INPUT = (2, 4, 8, 8)
'''


@pytest.mark.parametrize(
    "name, kind, code",
    [
        ("SwappedPad", "fix-pad", "y = F.pad(self.conv(x), (0, 0, 1, 1))"),
        ("PoolCall", "repad-pool", "return F.max_pool2d(self.conv(x), 3, 2, padding=1) + self.short(x)"),
        ("InPlacePermute", "permute-back", "out = out.permute(0, 3, 1, 2) + x"),
    ],
)
def test_statement_size_fixes(tmp_path, name, kind, code):
    """Axes swapped in a pad, a functional pool without its padding, an in-place add of a permuted tensor."""
    module, path = load(SMALL_CASES, tmp_path)
    finding, = reslint.check(getattr(module, name)(), torch.randn(*module.INPUT)).findings
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == (kind, code, True)
    fixed, _ = load(pasted(path, finding.fix), tmp_path)
    getattr(fixed, name)()(torch.randn(*module.INPUT))


MORE_CASES = '''
import torch
import torch.nn.functional as F
from torch import nn

class CausalChain(nn.Module):
    """Two causal convs in a Sequential, neither cropped: one crop at the call that runs them."""
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(4, 4, 3, padding=2), nn.ReLU(), nn.Conv1d(4, 4, 3, padding=4, dilation=2))

    def forward(self, x):
        y = self.body(x)
        return x + y

class GatedCausal(nn.Module):
    """The uncropped conv's output is multiplied by a gate of the input's length: RL000, cropped."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 4, padding=3, groups=4)

    def forward(self, x):
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return x + h * torch.sigmoid(x)

class TailCrop(nn.Module):
    """The crop keeps the padding ([..., -(k - 1):]) instead of dropping it."""
    def __init__(self, k=3):
        super().__init__()
        self.k = k
        self.conv = nn.Conv1d(4, 4, k, padding=k - 1)

    def forward(self, x):
        h = self.conv(x.transpose(1, 2))[..., -(self.k - 1):]
        return x * h.transpose(1, 2)

class ChannelsLastWiden(nn.Module):
    """A channels-last block that widens: the projection cannot copy its LayerNorm (wrong layout)."""
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(self.norm(self.dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return h + x

class PooledResidual(nn.Module):
    """The residual branch average-pools by 2, the shortcut does not: pool the shortcut."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 4, 3, padding=1)
        self.sc = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return F.avg_pool2d(self.c(x), 2) + self.sc(x)

class OddHourglass(nn.Module):
    """Pooled and upsampled by 2: an odd size loses a row."""
    def __init__(self):
        super().__init__()
        self.low = nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x):
        up = self.up(self.low(F.max_pool2d(x, 2)))
        return x + up

class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], 1)

class TwoDowns(nn.Module):
    """A conv branch and a pool branch round odd sizes differently, in two blocks made at one line."""
    def __init__(self):
        super().__init__()
        self.d1 = Down(4, 8)
        self.d2 = Down(8, 16)

    def forward(self, x):
        return self.d2(self.d1(x))

class ComputedPad(nn.Module):
    """The pad amounts are computed in forward, with the axes swapped."""
    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, skip):
        x = self.up(F.max_pool2d(skip, 2))
        dy = skip.size(2) - x.size(2)
        dx = skip.size(3) - x.size(3)
        x = F.pad(x, [dy // 2, dy - dy // 2, dx // 2, dx - dx // 2])
        return torch.cat([skip, x], dim=1)

class InPlaceStart(nn.Module):
    """The branch's first ReLU is in place: it overwrites the skip."""
    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x):
        x = x * 1.0
        out = self.branch(x)
        out += x
        return out

class AddedGate(nn.Module):
    """A squeeze-and-excitation gate added instead of multiplied."""
    def __init__(self):
        super().__init__()
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1), nn.Sigmoid())

    def forward(self, x):
        gate = self.se(x)
        return x + gate

class TokensNotMerged(nn.Module):
    """Tokens viewed as a grid for a windowed op and never merged back."""
    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(4, 4)

    def forward(self, x):
        grid = self.mix(x).view(x.shape[0], 4, 4, 4)
        return x + grid
'''

MORE_INPUTS = {"CausalChain": [(2, 4, 10)], "GatedCausal": [(2, 10, 4)], "TailCrop": [(2, 10, 4)],
               "ChannelsLastWiden": [(2, 4, 6, 6)], "PooledResidual": [(2, 4, 8, 8)], "OddHourglass": [(2, 4, 7, 9)],
               "TwoDowns": [(2, 4, 13, 13)], "ComputedPad": [(2, 4, 8, 11)], "InPlaceStart": [(2, 4, 6, 6)],
               "AddedGate": [(2, 4, 6, 6)], "TokensNotMerged": [(2, 16, 4)]}


@pytest.mark.parametrize(
    "name, code, kind, fix_code",
    [
        ("CausalChain", "RL001", "crop", "y = self.body(x)[..., :x.shape[-1]]"),
        ("GatedCausal", "RL000", "crop", "h = self.conv(x.transpose(1, 2))[..., :-self.conv.padding[0]].transpose(1, 2)"),
        ("TailCrop", "RL000", "crop", "h = self.conv(x.transpose(1, 2))[..., :-(self.k - 1)]"),
        ("PooledResidual", "RL001", "pool-skip", "return F.avg_pool2d(self.c(x), 2) + F.avg_pool2d(self.sc(x), 2)"),
        ("OddHourglass", "RL001", "resize-to-skip", "return x + F.interpolate(up, size=x.shape[2:])"),
        ("ComputedPad", "RL003", "fix-pad", "x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])"),
        ("AddedGate", "RL002", "multiply-gate", "return x * gate"),
        ("TokensNotMerged", "RL001", "reshape-back", "return x + grid.flatten(1, 2)"),
    ],
)
def test_statement_fixes_of_real_bug_classes(tmp_path, name, code, kind, fix_code):
    """Causal convs cropped (a chain at its call, a non-simple argument, a crop at the wrong end), a
    pooled shortcut, an upsampled add, computed pad amounts with axes swapped, a gate, unmerged tokens:
    each the fix a maintainer writes, validated, and the model runs once it is pasted."""
    module, path = load(MORE_CASES, tmp_path)
    inputs = [torch.randn(*shape) for shape in MORE_INPUTS[name]]
    finding, = [f for f in reslint.check(getattr(module, name)(), *inputs).findings if f.code == code]
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == (kind, fix_code, True)
    fixed, _ = load(pasted(path, finding.fix), tmp_path)
    getattr(fixed, name)()(*inputs)


def test_projection_of_a_channels_last_block_skips_the_norm_it_cannot_apply(tmp_path):
    module, _ = load(MORE_CASES, tmp_path)
    model, x = module.ChannelsLastWiden(), torch.randn(2, 4, 6, 6)
    finding, = reslint.check(model, x).findings
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == ("project-skip", "nn.Conv2d(4, 8, kernel_size=1)", True)
    projection = eval(finding.fix.code, {"nn": nn})
    model.forward = lambda x: model.fc(model.norm(model.dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2) + projection(x)
    assert model(x).shape == (2, 8, 6, 6)


def test_pool_branch_of_a_cat_gets_ceil_mode_in_every_block_made_at_its_line(tmp_path):
    """The pool's fix is pasted into the line that makes both blocks' pools: validated on both."""
    module, _ = load(MORE_CASES, tmp_path)
    finding, = reslint.check(module.TwoDowns(), torch.randn(2, 4, 13, 13)).findings
    fix = finding.fix
    assert (finding.code, fix.kind, fix.code, fix.validated) == ("RL003", "ceil-mode-pool", "nn.MaxPool2d(2, ceil_mode=True)", True)
    model = module.TwoDowns()
    model.d1.pool, model.d2.pool = eval(fix.code, {"nn": nn}), eval(fix.code, {"nn": nn})
    assert model(torch.randn(2, 4, 13, 13)).shape == (2, 16, 4, 4)


def test_inplace_relu_over_a_skip_gets_the_relu_not_in_place(tmp_path):
    module, _ = load(MORE_CASES, tmp_path)
    finding, = reslint.check(module.InPlaceStart(), torch.randn(2, 4, 6, 6)).findings
    assert (finding.code, finding.fix.kind, finding.fix.code, finding.fix.validated) == ("RL006", "not-inplace", "nn.ReLU(inplace=False)", True)
    model = module.InPlaceStart()
    model.branch[0] = eval(finding.fix.code, {"nn": nn})
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(model(x), model.branch(x) + x)  # the skip is x itself again
