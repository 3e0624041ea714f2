"""Random residual models written as real Python source, with their broken joins known by construction.

`models()` is a hypothesis strategy for a `ModelSpec`: a tree of blocks (conv residual blocks that change
channels and stride, transformer-style token blocks that change width, DenseNet-style and U-Net-style
concatenated skips, residual wrappers around whole stages), nested in nn.Sequential, nn.ModuleList,
plain attributes and helper functions, joined with every add form. `spec.source` is a Python file
defining `Net`; the test writes it to disk and imports it, so every join has a real line.

Every block knows, by construction, the shapes of both operands of its join, hence whether the join is
broken (they can be neither added nor concatenated), the line of the join, and how to repair it on a
built model (`repair`: put in the layer the author meant). A join is equal, a crash (RL001, RL003), or a
silent broadcast (RL002): a transform narrowed to width 1 or pooled to size 1 (`nn.AdaptiveAvgPool2d(1)`
on a feature map, `nn.AdaptiveAvgPool1d(1)` on tokens, which pools the features), or a skip projected
to width 1. Size-1 dims appear only through such a bug. Written in place (`out += sc`, `out.add_(sc)`),
a join whose narrow side is `out` crashes instead: eager PyTorch cannot grow `out`.

Bug classes of real code (issue 13): ConvNeXt blocks (permute to NHWC, LayerNorm, Linear, GELU, Linear)
missing the permute back, Swin window attention whose window_reverse gets H and W swapped, causal Conv1d
(padding k-1) not cropped, dilated convs whose padding is not the dilation, ResNet-D avg-pool shortcuts
that floor an odd size (layer or F.avg_pool2d), CIFAR option-A F.pad shortcuts with the wrong amount or
axis, U-Net decoders that pop a skip list in a loop (odd sizes), nested 3-tensor cats, and identical blocks
(one class, one configuration, 2-3 instances: one root cause at one line). Blocks whose bug is in
`forward` are repaired by giving the built instance the forward its author meant (swap_forward).

The intended shape after a broken join is the one the rest of the model is built for: the transform's
for an add (it carries the block's declared channels and stride), except for a block whose transform
has the wrong width (the skip's, then); the skip's for a concatenation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

BATCH = 2
MAX_DEPTH = 2  # nesting of wrappers, U-Net levels and Sequential groups

# A block's join, with `out` the transform and `sc` the skip; "helper" calls the module's add_skip.
ADD_FORMS = {
    "plus": "out = out + sc",
    "plus-skip-first": "out = sc + out",
    "augmented": "out += sc",
    "torch.add": "out = torch.add(out, sc)",
    "torch.add-skip-first": "out = torch.add(sc, out)",
    "method": "out = out.add(sc)",
    "method-on-skip": "out = sc.add(out)",
    "in-place method": "out.add_(sc)",
    "scaled": "out = sc + out * 0.5",  # a scaled residual (layer scale, DropPath at inference)
    "helper": "out = add_skip(out, sc)",
}
INPLACE_FORMS = {"augmented", "in-place method"}  # `out` is written in place: it cannot grow by broadcasting
# The module-level helper: its lines, and the index of the join line among them.
HELPER_FORMS = {
    "plus": (["def add_skip(out, skip):", "    return out + skip"], 1),
    "plus-skip-first": (["def add_skip(out, skip):", "    return skip + out"], 1),
    "torch.add": (["def add_skip(out, skip):", "    return torch.add(out, skip)"], 1),
    "augmented": (["def add_skip(out, skip):", "    out += skip", "    return out"], 1),
    "method": (["def add_skip(out, skip):", "    return out.add(skip)"], 1),
}
CAT_FORMS = {
    "list-kw": "torch.cat([{a}, {b}], dim=1)",
    "tuple-pos": "torch.cat(({a}, {b}), 1)",
    "concat": "torch.concat([{a}, {b}], dim=1)",
    "list-pos": "torch.cat([{a}, {b}], 1)",
}
CONTAINERS = ["seq", "list", "attrs", "helper"]
TOKEN_KINDS = {"causal"}  # block kinds on tokens only (Gen.item)


# -- shapes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The intended tensor between blocks: NCHW with `spatial` = (H, W), or tokens [B, T, D] with (T,)."""

    kind: str  # "conv" | "token"
    ch: int
    spatial: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (BATCH, self.ch, *self.spatial) if self.kind == "conv" else (BATCH, self.spatial[0], self.ch)


def down(hw: tuple[int, ...], stride: int) -> tuple[int, ...]:
    """Spatial size after a 3x3 conv with padding 1, or a 1x1 conv without padding, at `stride`."""
    return tuple((n - 1) // stride + 1 for n in hw)


def add_status(a: tuple[int, ...], b: tuple[int, ...], inplace: bool = False) -> str:
    """How `a + b` goes ("ok", "broadcast" or "broken"); `inplace`: written `a += b`, which cannot grow a."""
    if a == b:
        return "ok"
    if len(a) == len(b) and all(x == y or x == 1 or y == 1 for x, y in zip(a, b)):
        grows_a = any(x == 1 and y != 1 for x, y in zip(a, b))
        return "broken" if inplace and grows_a else "broadcast"
    return "broken"


def cat_status(a: tuple[int, ...], b: tuple[int, ...], dim: int = 1) -> str:
    same = len(a) == len(b) and all(x == y for i, (x, y) in enumerate(zip(a, b)) if i != dim)
    return "ok" if same else "broken"


def shape_of(kind: str, ch: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
    return State(kind, ch, spatial).shape


# -- source ---------------------------------------------------------------------------------------------


class Writer:
    """Lines of the generated file, numbered as they are written (children's classes come first)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, line: str = "") -> int:
        self.lines.append(line)
        return len(self.lines)

    def emit_class(self, name: str, init: list[str], forward: list[str | tuple[str, str]]) -> dict[str, int]:
        """A module class; forward lines given as (tag, line) get their line number returned by tag."""
        tagged = {}
        self.emit()
        self.emit()
        self.emit(f"class {name}(nn.Module):")
        self.emit("    def __init__(self):")
        self.emit("        super().__init__()")
        for line in init:
            self.emit(f"        {line}")
        self.emit()
        self.emit("    def forward(self, x):")
        for line in forward:
            if isinstance(line, tuple):
                tagged[line[0]] = self.emit(f"        {line[1]}")
            else:
                self.emit(f"        {line}")
        return tagged

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def norm_code(norm: str, groups: int, ch: int) -> str | None:
    if norm == "bn":
        return f"nn.BatchNorm2d({ch})"
    if norm == "gn":
        return f"nn.GroupNorm({groups}, {ch})"
    return None


def conv_projection(cin: int, cout: int, stride: int, norm: str, groups: int) -> str:
    stride_arg = f", stride={stride}" if stride != 1 else ""
    norm_layer = norm_code(norm, groups, cout)
    if norm_layer is None:
        return f"nn.Conv2d({cin}, {cout}, kernel_size=1{stride_arg})"
    return f"nn.Sequential(nn.Conv2d({cin}, {cout}, kernel_size=1{stride_arg}, bias=False), {norm_layer})"


# -- blocks -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Block:
    uid: int
    path: str = ""  # module path in the built model, set when rendered
    line: int = 0  # the join's line in the generated file
    broken: bool = False
    bug: str = "none"  # what is wrong, for reports
    code: str = "RL001"

    def children(self) -> list[Block]:
        return []

    @property
    def crashes(self) -> bool:
        """Broken so that eager execution raises (not a silent broadcast)."""
        return self.broken and self.code != "RL002"

    def walk(self):
        yield self
        for child in self.children():
            yield from child.walk()

    @property
    def has_join(self) -> bool:
        return True

    def repair(self, module: Any) -> None:
        """Put the intended layer into the built block, so that its join lines up."""
        raise NotImplementedError


@dataclass(eq=False)
class Container:
    """A list of blocks applied in order, held as nn.Sequential, nn.ModuleList, attributes or via a helper."""

    items: list[Block]
    style: str

    def render(self, w: Writer, owner_path: str, attr: str, src: str, dst: str, helper_run: bool = True) -> tuple[list[str], list[str]]:
        prefix = f"{owner_path}." if owner_path else ""
        if not self.items:
            return [], ([f"{dst} = {src}"] if dst != src else [])
        if self.style == "attrs":
            exprs = [item.render(w, f"{prefix}{attr}_{i}") for i, item in enumerate(self.items)]
            init = [f"self.{attr}_{i} = {e}" for i, e in enumerate(exprs)]
            forward = [f"{dst} = self.{attr}_{i}({src if i == 0 else dst})" for i in range(len(exprs))]
            return init, forward
        exprs = [item.render(w, f"{prefix}{attr}.{i}") for i, item in enumerate(self.items)]
        if self.style == "seq":
            return [f"self.{attr} = nn.Sequential({', '.join(exprs)})"], [f"{dst} = self.{attr}({src})"]
        init = [f"self.{attr} = nn.ModuleList([{', '.join(exprs)}])"]
        if self.style == "helper":
            return init, [f"{dst} = run_blocks(self.{attr}, {src})"]
        forward = [f"{dst} = {src}"] if dst != src else []
        forward += [f"for blk in self.{attr}:", f"    {dst} = blk({dst})"]
        return init, forward


@dataclass(eq=False)
class Group(Block):
    """Blocks in an inline nn.Sequential(...), itself an item of a container: no join of its own."""

    items: list[Block] = field(default_factory=list)

    def children(self):
        return self.items

    @property
    def has_join(self) -> bool:
        return False

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        return f"nn.Sequential({', '.join(item.render(w, f'{path}.{i}') for i, item in enumerate(self.items))})"


def _join_line(w: Writer, tagged: dict[str, int], form: str, helper_line: int) -> int:
    return helper_line if form == "helper" else tagged["join"]


@dataclass(eq=False)
class ConvRes(Block):
    """conv-norm(-act-conv-norm) + shortcut: the ResNet basic block, changing channels and stride."""

    cin: int = 0
    cout: int = 0
    stride: int = 1
    in_hw: tuple[int, ...] = ()
    depth: int = 1  # 1 or 2 3x3 convs, or 3: a 1x1-3x3-1x1 bottleneck
    mid: int = 0  # the bottleneck's width
    norm: str = "bn"
    groups: int = 1
    skip: str = "identity"  # identity | proj | proj_stride | proj_width
    skip_stride: int = 1
    width: int = 0  # the wrong width of proj_width's projection or of the transform
    transform_width: bool = False
    pool: str = ""  # a pooling layer wrongly ending the transform
    form: str = "plus"
    helper_line: int = 0

    def layers(self, last_out: int) -> list[tuple[int, int, int, int, int]]:
        """The transform's convs as (in, out, kernel, stride, padding): basic (1 or 2 3x3) or bottleneck."""
        if self.depth == 1:
            return [(self.cin, last_out, 3, self.stride, 1)]
        if self.depth == 2:
            return [(self.cin, self.cout, 3, self.stride, 1), (self.cout, last_out, 3, 1, 1)]
        return [(self.cin, self.mid, 1, 1, 0), (self.mid, self.mid, 3, self.stride, 1), (self.mid, last_out, 1, 1, 0)]

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        init, forward = [], []
        bias = "" if self.norm == "none" else ", bias=False"
        layers = self.layers(self.width if self.transform_width else self.cout)
        for i, (cin, cout, kernel, stride, pad) in enumerate(layers, 1):
            init.append(f"self.conv{i} = nn.Conv2d({cin}, {cout}, {kernel}, {stride}, {pad}{bias})")
            if i > 1:
                forward.append("out = torch.relu(out)")
            source = "x" if i == 1 else "out"
            if self.norm != "none":
                init.append(f"self.norm{i} = {norm_code(self.norm, self.groups, cout)}")
                forward.append(f"out = self.norm{i}(self.conv{i}({source}))")
            else:
                forward.append(f"out = self.conv{i}({source})")
        if self.pool:
            init.append(f"self.pool = {self.pool}")
            forward.append("out = self.pool(out)")
        init.append(f"self.shortcut = {self.skip_code()}")
        forward += ["sc = self.shortcut(x)", ("join", ADD_FORMS[self.form]), "return torch.relu(out)"]
        tagged = w.emit_class(f"ConvBlock{self.uid}", init, forward)
        self.line = _join_line(w, tagged, self.form, self.helper_line)
        return f"ConvBlock{self.uid}()"

    def skip_code(self) -> str:
        if self.skip == "identity":
            return "nn.Identity()"
        if self.skip == "proj":
            return conv_projection(self.cin, self.cout, self.stride, self.norm, self.groups)
        if self.skip == "proj_stride":
            return conv_projection(self.cin, self.cout, self.skip_stride, self.norm, self.groups)
        return conv_projection(self.cin, self.width, self.stride, self.norm, self.groups)

    def repair(self, module):
        import torch
        from torch import nn

        if self.pool:
            module.pool = nn.Identity()
        elif self.transform_width:
            last = len(self.layers(self.cout))
            cin, cout, kernel, stride, pad = self.layers(self.cout)[-1]
            setattr(module, f"conv{last}", nn.Conv2d(cin, cout, kernel, stride, pad, bias=self.norm == "none"))
            if self.norm != "none":
                setattr(module, f"norm{last}", eval(norm_code(self.norm, self.groups, self.cout), {"nn": nn, "torch": torch}))
        else:
            module.shortcut = eval(conv_projection(self.cin, self.cout, self.stride, self.norm, self.groups), {"nn": nn})


@dataclass(eq=False)
class TokenRes(Block):
    """x + sublayer(norm(x)) on [B, T, D]: an MLP or attention sublayer, changing the width."""

    din: int = 0
    dout: int = 0
    hidden: int = 0
    sub: str = "mlp"  # mlp | attn
    heads: int = 1
    prenorm: bool = True
    skip: str = "identity"  # identity | proj | proj_width
    width: int = 0
    transform_width: bool = False
    pool: str = ""  # a pooling layer wrongly ending the transform
    form: str = "plus"
    helper_line: int = 0

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        t_out = self.width if self.transform_width else self.dout
        init, forward = [], []
        if self.prenorm:
            init.append(f"self.norm = nn.LayerNorm({self.din})")
            forward.append("h = self.norm(x)")
        else:
            forward.append("h = x")
        if self.sub == "mlp":
            init.append(f"self.mlp = nn.Sequential(nn.Linear({self.din}, {self.hidden}), nn.GELU(), nn.Linear({self.hidden}, {t_out}))")
            forward.append("out = self.mlp(h)")
        else:
            init.append(f"self.attn = nn.MultiheadAttention({self.din}, {self.heads}, batch_first=True)")
            init.append(f"self.proj = nn.Linear({self.din}, {t_out})")
            forward.append("out = self.attn(h, h, h, need_weights=False)[0]")
            forward.append("out = self.proj(out)")
        if self.pool:
            init.append(f"self.pool = {self.pool}")
            forward.append("out = self.pool(out)")
        skip = {"identity": "nn.Identity()", "proj": f"nn.Linear({self.din}, {self.dout})", "proj_width": f"nn.Linear({self.din}, {self.width})"}
        init.append(f"self.shortcut = {skip[self.skip]}")
        forward += ["sc = self.shortcut(x)", ("join", ADD_FORMS[self.form]), "return out"]
        tagged = w.emit_class(f"TokenBlock{self.uid}", init, forward)
        self.line = _join_line(w, tagged, self.form, self.helper_line)
        return f"TokenBlock{self.uid}()"

    def repair(self, module):
        from torch import nn

        if self.pool:
            module.pool = nn.Identity()
        elif self.transform_width:
            if self.sub == "mlp":
                module.mlp[2] = nn.Linear(self.hidden, self.dout)
            else:
                module.proj = nn.Linear(self.din, self.dout)
        else:
            module.shortcut = nn.Linear(self.din, self.dout)


@dataclass(eq=False)
class Wrap(Block):
    """shortcut(x) + stage(x) around a whole stage of blocks: a long skip whose inside may be broken too."""

    inner: Container = None  # type: ignore[assignment]
    state_in: State = None  # type: ignore[assignment]
    state_out: State = None  # type: ignore[assignment]
    stride: int = 1  # the stage's total stride
    skip: str = "identity"  # identity | proj | proj_stride | proj_width
    skip_stride: int = 1
    width: int = 0
    norm: str = "bn"
    form: str = "plus"
    helper_line: int = 0

    def children(self):
        return self.inner.items

    def projection(self, ch: int, stride: int) -> str:
        if self.state_in.kind == "token":
            return f"nn.Linear({self.state_in.ch}, {ch})"
        return conv_projection(self.state_in.ch, ch, stride, self.norm, 1)

    def skip_code(self) -> str:
        if self.skip == "identity":
            return "nn.Identity()"
        if self.skip == "proj":
            return self.projection(self.state_out.ch, self.stride)
        if self.skip == "proj_stride":
            return self.projection(self.state_out.ch, self.skip_stride)
        return self.projection(self.width, self.stride)

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        init, apply = self.inner.render(w, path, "fn", "x", "out")
        init = init + [f"self.shortcut = {self.skip_code()}"]
        forward = apply + ["sc = self.shortcut(x)", ("join", ADD_FORMS[self.form]), "return out"]
        tagged = w.emit_class(f"Wrap{self.uid}", init, forward)
        self.line = _join_line(w, tagged, self.form, self.helper_line)
        return f"Wrap{self.uid}()"

    def repair(self, module):
        from torch import nn

        module.shortcut = eval(self.projection(self.state_out.ch, self.stride), {"nn": nn})


@dataclass(eq=False)
class Dense(Block):
    """cat([x, conv(x)], dim=1): a DenseNet layer; broken when the conv changes the spatial size."""

    cin: int = 0
    growth: int = 0
    in_hw: tuple[int, ...] = ()
    conv_stride: int = 1
    conv_pad: int = 1
    skip_first: bool = True
    cat: str = "list-kw"
    code: str = "RL003"

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        init = [f"self.conv = nn.Conv2d({self.cin}, {self.growth}, 3, {self.conv_stride}, {self.conv_pad})"]
        a, b = ("x", "new") if self.skip_first else ("new", "x")
        forward = ["new = torch.relu(self.conv(x))", ("join", "return " + CAT_FORMS[self.cat].format(a=a, b=b))]
        self.line = w.emit_class(f"Dense{self.uid}", init, forward)["join"]
        return f"Dense{self.uid}()"

    def repair(self, module):
        from torch import nn

        module.conv = nn.Conv2d(self.cin, self.growth, 3, 1, 1)


@dataclass(eq=False)
class DenseBlock(Block):
    """A DenseNet block: each layer sees the concat of the input and every earlier layer's output.

    A layer with a stray stride breaks the next concat (in the loop, or the block's final one), and its
    output is concatenated again by every later one: one bug, one broken join.
    """

    cin: int = 0
    growth: int = 0
    count: int = 2
    strided: int = -1  # the layer with a stray stride, if any
    code: str = "RL003"

    def layer(self, index: int, stride: int = 1) -> str:
        return f"nn.Conv2d({self.cin + index * self.growth}, {self.growth}, 3, {stride}, 1)"

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        layers = ", ".join(self.layer(i, 2 if i == self.strided else 1) for i in range(self.count))
        forward = [
            "features = [x]",
            "for layer in self.layers:",
            ("loop", "    features.append(torch.relu(layer(torch.cat(features, 1))))"),
            ("final", "return torch.cat(features, 1)"),
        ]
        tagged = w.emit_class(f"DenseBlock{self.uid}", [f"self.layers = nn.ModuleList([{layers}])"], forward)
        self.line = tagged["final" if self.strided == self.count - 1 else "loop"]
        return f"DenseBlock{self.uid}()"

    def repair(self, module):
        from torch import nn

        module.layers[self.strided] = eval(self.layer(self.strided), {"nn": nn})


@dataclass(eq=False)
class UNet(Block):
    """enc -> down -> inner stage -> up, then cat([up, enc]): broken when the up path misses the size."""

    cin: int = 0
    enc: int = 0
    down_ch: int = 0
    inner: Container = None  # type: ignore[assignment]
    inner_out: State = None  # type: ignore[assignment]
    up: str = "convT"  # convT | upsample | sized
    up_ch: int = 0
    in_hw: tuple[int, ...] = ()
    skip_first: bool = False
    cat: str = "list-kw"
    code: str = "RL003"

    def children(self):
        return self.inner.items

    def up_code(self, kind: str) -> str:
        ci, cu = self.inner_out.ch, self.up_ch
        if kind == "convT":
            return f"nn.ConvTranspose2d({ci}, {cu}, 2, stride=2)"
        if kind == "upsample":
            return f"nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d({ci}, {cu}, 1))"
        return f"nn.Sequential(nn.Upsample(size={self.in_hw}), nn.Conv2d({ci}, {cu}, 1))"

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        inner_init, apply = self.inner.render(w, path, "inner", "y", "y")
        init = [
            f"self.enc = nn.Sequential(nn.Conv2d({self.cin}, {self.enc}, 3, 1, 1), nn.ReLU())",
            f"self.down = nn.Conv2d({self.enc}, {self.down_ch}, 3, 2, 1)",
            *inner_init,
            f"self.up = {self.up_code(self.up)}",
        ]
        a, b = ("skip", "y") if self.skip_first else ("y", "skip")
        forward = ["skip = self.enc(x)", "y = self.down(skip)", *apply, "y = self.up(y)",
                   ("join", "return " + CAT_FORMS[self.cat].format(a=a, b=b))]
        self.line = w.emit_class(f"Level{self.uid}", init, forward)["join"]
        return f"Level{self.uid}()"

    def repair(self, module):
        from torch import nn

        module.up = eval(self.up_code("sized"), {"nn": nn})


# -- bug classes of real code (issue 13) ------------------------------------------------------------------
#
# Blocks whose bug is in `forward` (a missing permute back or crop, a swapped window reverse, a pad's
# amounts, a pool call without ceil_mode, a decoder cat) are repaired on a built model by giving the
# instance the forward its author meant (`swap_forward`); the others by putting in the layer meant.

WINDOW_HELPERS = [
    "",
    "",
    "def window_partition(x, ws, h, w, c):",
    "    return x.view(-1, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)",
    "",
    "",
    "def window_reverse(windows, ws, h, w, c):",
    "    return windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)",
]


def swap_forward(module: Any, lines: list[str]) -> None:
    """Give one built instance the forward its author meant, compiled in the generated file's namespace."""
    import sys
    import types

    namespace = dict(sys.modules[type(module).__module__].__dict__)
    source = "def forward(self, x):\n" + "".join(f"    {line}\n" for line in lines)
    exec(compile(source, f"<intended forward of {type(module).__name__}>", "exec"), namespace)  # noqa: S102
    module.forward = types.MethodType(namespace["forward"], module)


def _plain(lines: list[str | tuple[str, str]]) -> list[str]:
    return [line[1] if isinstance(line, tuple) else line for line in lines]


@dataclass(eq=False)
class ConvNeXt(Block):
    """dwconv, permute to NHWC, LayerNorm, Linear, GELU, Linear, permute back, + x. Bug: no permute back."""

    ch: int = 0
    hidden: int = 0
    form: str = "plus"
    intended: list[str] = field(default_factory=list)

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        c = self.ch
        init = [f"self.dwconv = nn.Conv2d({c}, {c}, 3, padding=1, groups={c})", f"self.norm = nn.LayerNorm({c})",
                f"self.pw1 = nn.Linear({c}, {self.hidden})", "self.act = nn.GELU()", f"self.pw2 = nn.Linear({self.hidden}, {c})"]
        head = ["out = self.dwconv(x)", "out = out.permute(0, 2, 3, 1)", "out = self.pw2(self.act(self.pw1(self.norm(out))))"]
        back = ["out = out.permute(0, 3, 1, 2)"]
        tail = ["sc = x", ("join", ADD_FORMS[self.form]), "return out"]
        forward = head + ([] if self.broken else back) + tail
        self.intended = _plain(head + back + tail)
        self.line = w.emit_class(f"ConvNeXt{self.uid}", init, forward)["join"]
        return f"ConvNeXt{self.uid}()"

    def repair(self, module):
        swap_forward(module, self.intended)


@dataclass(eq=False)
class WindowAttn(Block):
    """Swin-style: NHWC, LayerNorm, window partition, attention, window reverse, NCHW, + x.
    Bug: window_reverse called with H and W swapped (H != W)."""

    ch: int = 0
    hw: tuple[int, ...] = ()
    ws: int = 2
    form: str = "plus"
    intended: list[str] = field(default_factory=list)

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        c, (h, wd), ws = self.ch, self.hw, self.ws
        init = [f"self.norm = nn.LayerNorm({c})", f"self.attn = nn.MultiheadAttention({c}, 1, batch_first=True)"]
        reverse = (wd, h) if self.broken else (h, wd)

        def lines(rh: int, rw: int) -> list:
            return [
                "h = self.norm(x.permute(0, 2, 3, 1))",
                f"h = window_partition(h, {ws}, {h}, {wd}, {c})",
                "h = self.attn(h, h, h, need_weights=False)[0]",
                f"h = window_reverse(h, {ws}, {rh}, {rw}, {c})",
                "out = h.permute(0, 3, 1, 2)",
                "sc = x",
                ("join", ADD_FORMS[self.form]),
                "return out",
            ]

        self.intended = _plain(lines(h, wd))
        self.line = w.emit_class(f"WindowBlock{self.uid}", init, lines(*reverse))["join"]
        return f"WindowBlock{self.uid}()"

    def repair(self, module):
        swap_forward(module, self.intended)


@dataclass(eq=False)
class CausalConv(Block):
    """Mamba-style on tokens [B, T, D]: a depthwise Conv1d padded k-1, cropped to T, + x. Bug: no crop."""

    ch: int = 0
    kernel: int = 3
    form: str = "plus"
    intended: list[str] = field(default_factory=list)

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        c, k = self.ch, self.kernel
        init = [f"self.norm = nn.LayerNorm({c})", f"self.conv = nn.Conv1d({c}, {c}, {k}, padding={k - 1}, groups={c})",
                f"self.proj = nn.Linear({c}, {c})"]

        def lines(crop: bool) -> list:
            return [
                "h = self.norm(x).transpose(1, 2)",
                "h = self.conv(h)[..., :x.shape[1]]" if crop else "h = self.conv(h)",
                "out = self.proj(torch.nn.functional.silu(h).transpose(1, 2))",
                "sc = x",
                ("join", ADD_FORMS[self.form]),
                "return out",
            ]

        self.intended = _plain(lines(True))
        self.line = w.emit_class(f"CausalBlock{self.uid}", init, lines(not self.broken))["join"]
        return f"CausalBlock{self.uid}()"

    def repair(self, module):
        swap_forward(module, self.intended)


@dataclass(eq=False)
class Dilated(Block):
    """conv 3x3 with dilation d (padding d), norm, relu, conv 1x1, + x. Bug: padding != dilation."""

    ch: int = 0
    dilation: int = 2
    padding: int = 2
    form: str = "plus"

    def conv_code(self, padding: int) -> str:
        return f"nn.Conv2d({self.ch}, {self.ch}, 3, padding={padding}, dilation={self.dilation}, bias=False)"

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        c = self.ch
        init = [f"self.conv = {self.conv_code(self.padding)}", f"self.bn = nn.BatchNorm2d({c})", f"self.pw = nn.Conv2d({c}, {c}, 1)"]
        forward = ["out = self.pw(torch.relu(self.bn(self.conv(x))))", "sc = x", ("join", ADD_FORMS[self.form]), "return out"]
        tagged = w.emit_class(f"DilatedBlock{self.uid}", init, forward)
        self.line = _join_line(w, tagged, self.form, self.helper_line)
        return f"DilatedBlock{self.uid}()"

    helper_line: int = 0

    def repair(self, module):
        from torch import nn

        module.conv = eval(self.conv_code(self.dilation), {"nn": nn})


@dataclass(eq=False)
class PoolShortcut(Block):
    """ResNet-D: conv 3x3 stride 2 + norm; shortcut: avg-pool 2 (ceil_mode, count_include_pad=False), 1x1 conv,
    norm. Bug: the pool floors an odd size (no ceil_mode). The pool is a layer, or an F.avg_pool2d call."""

    cin: int = 0
    cout: int = 0
    functional: bool = False
    form: str = "plus"
    helper_line: int = 0
    intended: list[str] = field(default_factory=list)

    def pool(self, ceil: bool) -> str:
        if self.functional:
            return "F.avg_pool2d(x, 2, 2" + (", ceil_mode=True" if ceil else "") + ", count_include_pad=False)"
        return "nn.AvgPool2d(2" + (", ceil_mode=True" if ceil else "") + ", count_include_pad=False)"

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        ci, co = self.cin, self.cout
        project = f"nn.Conv2d({ci}, {co}, 1, bias=False), nn.BatchNorm2d({co})"
        init = [f"self.conv = nn.Conv2d({ci}, {co}, 3, 2, 1, bias=False)", f"self.bn = nn.BatchNorm2d({co})"]
        if self.functional:
            init.append(f"self.shortcut = nn.Sequential({project})")
        else:
            init.append(f"self.shortcut = nn.Sequential({self.pool(not self.broken)}, {project})")

        def lines(ceil: bool) -> list:
            skip = [f"sc = self.shortcut({self.pool(ceil)})"] if self.functional else ["sc = self.shortcut(x)"]
            return ["out = self.bn(self.conv(x))", *skip, ("join", ADD_FORMS[self.form]), "return torch.relu(out)"]

        self.intended = _plain(lines(True))
        tagged = w.emit_class(f"PoolShortcut{self.uid}", init, lines(not self.broken))
        self.line = _join_line(w, tagged, self.form, self.helper_line)
        return f"PoolShortcut{self.uid}()"

    def repair(self, module):
        from torch import nn

        if self.functional:
            swap_forward(module, self.intended)
        else:
            module.shortcut[0] = nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)


@dataclass(eq=False)
class OptionA(Block):
    """CIFAR ResNet option A: the shortcut subsamples and zero-pads the channels with F.pad.
    Bug: the pad's amount is wrong, or its axes are swapped (pads the width instead of the channels)."""

    cin: int = 0
    cout: int = 0
    stride: int = 1
    pad: tuple[int, ...] = ()
    form: str = "plus"
    helper_line: int = 0
    intended: list[str] = field(default_factory=list)

    def intended_pad(self) -> tuple[int, ...]:
        extra = self.cout - self.cin
        return (0, 0, 0, 0, extra // 2, extra - extra // 2)

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        ci, co, s = self.cin, self.cout, self.stride
        init = [f"self.conv1 = nn.Conv2d({ci}, {co}, 3, {s}, 1, bias=False)", f"self.bn1 = nn.BatchNorm2d({co})",
                f"self.conv2 = nn.Conv2d({co}, {co}, 3, 1, 1, bias=False)", f"self.bn2 = nn.BatchNorm2d({co})"]
        source = "x[:, :, ::2, ::2]" if s == 2 else "x"

        def lines(pad: tuple[int, ...]) -> list:
            return ["out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))", f"sc = F.pad({source}, {pad})",
                    ("join", ADD_FORMS[self.form]), "return torch.relu(out)"]

        self.intended = _plain(lines(self.intended_pad()))
        tagged = w.emit_class(f"OptionA{self.uid}", init, lines(self.pad))
        self.line = _join_line(w, tagged, self.form, self.helper_line)
        return f"OptionA{self.uid}()"

    def repair(self, module):
        swap_forward(module, self.intended)


@dataclass(eq=False)
class PopUNet(Block):
    """A U-Net whose encoder appends its features to a list and whose decoder pops them:
    `torch.cat([x, skips.pop()], dim=1)` in a loop. Broken when a level's size is odd (the max-pool floors it)."""

    cin: int = 0
    chans: list[int] = field(default_factory=list)  # encoder widths, one per level
    mid: int = 0
    ups: list[int] = field(default_factory=list)  # the up-convs' widths, deepest first
    out_ch: int = 0
    skip_first: bool = False
    code: str = "RL003"
    intended: list[str] = field(default_factory=list)

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        ins = [self.cin, *self.chans[:-1]]
        downs = ", ".join(f"nn.Conv2d({a}, {b}, 3, 1, 1)" for a, b in zip(ins, self.chans))
        below = [self.mid, *self.fuse_widths()[:-1]]
        ups = ", ".join(f"nn.ConvTranspose2d({a}, {b}, 2, stride=2)" for a, b in zip(below, self.ups))
        skips = list(reversed(self.chans))
        fuses = ", ".join(f"nn.Conv2d({u + s}, {o}, 1)" for u, s, o in zip(self.ups, skips, self.fuse_widths()))
        init = [f"self.downs = nn.ModuleList([{downs}])", "self.pool = nn.MaxPool2d(2)",
                f"self.mid = nn.Conv2d({self.chans[-1]}, {self.mid}, 3, 1, 1)",
                f"self.ups = nn.ModuleList([{ups}])", f"self.fuses = nn.ModuleList([{fuses}])"]
        head = ["skips = []", "for down in self.downs:", "    x = torch.relu(down(x))", "    skips.append(x)",
                "    x = self.pool(x)", "x = self.mid(x)", "for up, fuse in zip(self.ups, self.fuses):", "    x = up(x)"]
        operands = "skips.pop(), x" if self.skip_first else "x, skips.pop()"
        forward = head + [("join", f"    x = torch.cat([{operands}], dim=1)"), "    x = fuse(x)", "return x"]
        meant = "skip, x" if self.skip_first else "x, skip"
        self.intended = head + ["    skip = skips.pop()", "    x = F.interpolate(x, size=skip.shape[2:])",
                                f"    x = torch.cat([{meant}], dim=1)", "    x = fuse(x)", "return x"]
        self.line = w.emit_class(f"PopUNet{self.uid}", init, forward)["join"]
        return f"PopUNet{self.uid}()"

    def fuse_widths(self) -> list[int]:
        return [*self.ups[1:], self.out_ch]  # fuse i feeds up i + 1

    def repair(self, module):
        swap_forward(module, self.intended)


@dataclass(eq=False)
class Nested(Block):
    """A nested (UNet++-style) node: cat of two same-level features and the upsampled deeper one, 3 tensors.
    Broken when the up path misses the size (odd input)."""

    cin: int = 0
    enc: int = 0
    mid: int = 0
    down_ch: int = 0
    up_ch: int = 0
    in_hw: tuple[int, ...] = ()
    order: tuple[str, ...] = ("a", "b", "y")
    cat: str = "list-kw"
    code: str = "RL003"

    def up_code(self, sized: bool) -> str:
        if sized:
            return f"nn.Sequential(nn.Upsample(size={self.in_hw}), nn.Conv2d({self.down_ch}, {self.up_ch}, 1))"
        return f"nn.ConvTranspose2d({self.down_ch}, {self.up_ch}, 2, stride=2)"

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        init = [f"self.enc = nn.Conv2d({self.cin}, {self.enc}, 3, 1, 1)", f"self.mid = nn.Conv2d({self.enc}, {self.mid}, 3, 1, 1)",
                f"self.down = nn.Conv2d({self.enc}, {self.down_ch}, 3, 2, 1)",
                f"self.up = {self.up_code(not self.broken and min(self.in_hw) > 0 and any(n % 2 for n in self.in_hw))}"]
        tensors = ", ".join(self.order)
        joined = {"list-kw": f"torch.cat([{tensors}], dim=1)", "tuple-pos": f"torch.cat(({tensors}), 1)",
                  "concat": f"torch.concat([{tensors}], dim=1)", "list-pos": f"torch.cat([{tensors}], 1)"}[self.cat]
        forward = ["a = torch.relu(self.enc(x))", "b = torch.relu(self.mid(a))", "y = self.up(torch.relu(self.down(a)))",
                   ("join", f"return {joined}")]
        self.line = w.emit_class(f"Nested{self.uid}", init, forward)["join"]
        return f"Nested{self.uid}()"

    def repair(self, module):
        from torch import nn

        module.up = eval(self.up_code(True), {"nn": nn})


@dataclass(eq=False)
class Repeat(Block):
    """Identical blocks: several instances of one class with one configuration, in an nn.Sequential.
    A bug in the class is one root cause at one line, in every instance: one finding with instances."""

    copies: list[Block] = field(default_factory=list)

    def children(self):
        return self.copies

    @property
    def has_join(self) -> bool:
        return False

    def render(self, w: Writer, path: str) -> str:
        self.path = path
        first = self.copies[0]
        expression = first.render(w, f"{path}.0")
        for i, copy in enumerate(self.copies[1:], 1):
            copy.path, copy.line = f"{path}.{i}", first.line
            if hasattr(first, "intended"):
                copy.intended = first.intended
        return f"nn.Sequential({', '.join([expression] * len(self.copies))})"


# -- the model ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ModelSpec:
    domain: str  # conv | token | conv2token
    input_shape: tuple[int, ...]
    stem: str
    conv_stages: list[Container]
    token_stages: list[Container]
    conv_out: State | None
    token_out: State | None
    pos: bool
    shape_branch: bool  # a branch on x.shape that torch.fx cannot trace: reslint's eager frontend runs
    helper_form: str
    source: str = ""

    def blocks(self) -> list[Block]:
        return [b for stage in self.conv_stages + self.token_stages for item in stage.items for b in item.walk()]

    def joins(self) -> list[Block]:
        return [b for b in self.blocks() if b.has_join]

    def broken(self) -> list[Block]:
        return [b for b in self.joins() if b.broken]

    def render(self) -> str:
        w = Writer()
        w.emit('"""A model generated by tests/generated_models.py."""')
        w.emit("import torch")
        w.emit("import torch.nn.functional as F")
        w.emit("from torch import nn")
        w.emit()
        w.emit()
        lines, join_index = HELPER_FORMS[self.helper_form]
        helper_line = 0
        for i, line in enumerate(lines):
            number = w.emit(line)
            if i == join_index:
                helper_line = number
        w.emit()
        w.emit()
        w.emit("def run_blocks(blocks, x):")
        w.emit("    for block in blocks:")
        w.emit("        x = block(x)")
        w.emit("    return x")
        for line in WINDOW_HELPERS:
            w.emit(line)
        for block in self.blocks():
            if hasattr(block, "helper_line"):
                block.helper_line = helper_line
        init, forward = [f"self.stem = {self.stem}"], []
        if self.shape_branch:
            forward += ["if x.shape[0] == 0:", "    return x"]
        forward.append("x = self.stem(x)")
        for i, stage in enumerate(self.conv_stages):
            stage_init, apply = stage.render(w, "", f"stage{i}", "x", "x")
            init += stage_init
            forward += apply
        if self.domain == "conv":
            init.append(f"self.head = nn.Linear({self.conv_out.ch}, 10)")
            forward += ["x = x.mean(dim=(2, 3))", "return self.head(x)"]
        else:
            if self.domain == "conv2token":
                forward.append("x = x.flatten(2).transpose(1, 2)")
            if self.pos:
                first = self.token_first
                init.append(f"self.pos = nn.Parameter(torch.zeros(1, {first.spatial[0]}, {first.ch}))")
                forward.append("x = x + self.pos")
            for i, stage in enumerate(self.token_stages):
                stage_init, apply = stage.render(w, "", f"blocks{i}", "x", "x")
                init += stage_init
                forward += apply
            init += [f"self.norm = nn.LayerNorm({self.token_out.ch})", f"self.head = nn.Linear({self.token_out.ch}, 10)"]
            forward += ["x = self.norm(x).mean(dim=1)", "return self.head(x)"]
        w.emit_class("Net", init, forward)
        self.source = w.text
        return self.source

    token_first: State | None = None


class Budget:
    """How many broken joins a model may still get (None: any number)."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.used = 0

    def can(self) -> bool:
        return self.limit is None or self.used < self.limit

    def take(self) -> None:
        assert self.can()
        self.used += 1


class Gen:
    def __init__(self, draw: Callable, budget: Budget, max_blocks: int, helper_form: str, kinds: tuple[str, ...] = ()):
        self.kinds = kinds  # only these kinds of blocks (and the containers around them); empty: all
        self.draw = draw
        self.budget = budget
        self.helper_form = helper_form
        self.uids = itertools.count()
        self.blocks_left = max_blocks

    def want_bug(self) -> bool:
        return self.budget.can() and self.draw(st.integers(0, 2)) == 0  # about one block in three

    def ints(self, lo: int, hi: int, exclude: tuple[int, ...] = (), even: bool = False) -> int:
        options = [n for n in range(lo, hi + 1) if n not in exclude and (not even or n % 2 == 0)]
        return self.draw(st.sampled_from(options))

    def container(self, state: State, depth: int, min_items: int = 1, max_items: int = 3) -> tuple[Container, State]:
        style = self.draw(st.sampled_from(CONTAINERS))
        count = self.draw(st.integers(min_items, max_items))
        items = []
        for index in range(count):
            if self.blocks_left <= 0 and index >= min_items:
                break
            item, state = self.item(state, depth)
            items.append(item)
        return Container(items, style), state

    def item(self, state: State, depth: int) -> tuple[Block, State]:
        self.blocks_left -= 1
        kinds = ["res", "repeat"]
        if state.kind == "conv":
            kinds += ["dense", "denseblock", "convnext", "window", "dilated", "poolshortcut", "optiona", "popunet", "nested"]
            if min(state.spatial) >= 3 and depth < MAX_DEPTH:
                kinds.append("unet")
        else:
            kinds += ["causal"]
        if depth < MAX_DEPTH:
            kinds += ["wrap", "group"]
        if self.kinds:
            kinds = [k for k in kinds if k in self.kinds or k in ("wrap", "group")] or ["res"]
        kind = self.draw(st.sampled_from(kinds))
        leaf = {"convnext": self.convnext, "window": self.window, "dilated": self.dilated, "poolshortcut": self.pool_shortcut,
                "optiona": self.option_a, "popunet": self.pop_unet, "nested": self.nested, "causal": self.causal,
                "repeat": self.repeat, "dense": self.dense, "denseblock": self.dense_block}
        if kind in leaf:
            made = leaf[kind](state)
            if made is not None:
                return made
            kind = "res"  # the state does not allow this kind
        if kind == "res":
            return self.conv_res(state) if state.kind == "conv" else self.token_res(state)
        if kind == "unet":
            return self.unet(state, depth)
        if kind == "wrap":
            return self.wrap(state, depth)
        container, out = self.container(state, depth + 1, 1, 2)
        if not container.items:
            return self.conv_res(state) if state.kind == "conv" else self.token_res(state)
        return Group(next(self.uids), items=container.items), out

    def form(self, helper: bool = True) -> str:
        return self.draw(st.sampled_from([f for f in ADD_FORMS if helper or f != "helper"]))

    def writes_out_in_place(self, form: str) -> bool:
        return form in INPLACE_FORMS or (form == "helper" and self.helper_form == "augmented")

    def conv_res(self, state: State, same: bool = False) -> tuple[Block, State]:
        """A ResNet block; `same`: keeping channels and size (a block that can be repeated)."""
        cin, hw = state.ch, state.spatial
        cout = cin if same else self.ints(2, 16)
        stride = 1 if same else self.draw(st.sampled_from([1, 2] if min(hw) >= 3 else [1]))
        out_hw = down(hw, stride)
        norm = self.draw(st.sampled_from(["bn", "none", "gn"]))
        groups = 2 if norm == "gn" and cout % 2 == 0 and self.draw(st.booleans()) else 1
        depth = self.draw(st.integers(1, 3))
        block = ConvRes(next(self.uids), cin=cin, cout=cout, stride=stride, in_hw=hw, depth=depth,
                        mid=self.ints(2, 16, even=groups == 2) if depth == 3 else 0, norm=norm, groups=groups, form=self.form())
        needs = cin != cout or stride != 1
        block.skip = "proj" if needs else self.draw(st.sampled_from(["identity", "proj"]))
        transform = shape_of("conv", cout, out_hw)
        if self.want_bug():
            strides = [s for s in (1, 2, 3) if s != stride and add_status(shape_of("conv", cout, down(hw, s)), transform) == "broken"]
            bugs = (["missing"] if needs else []) + (["proj_stride"] if strides else []) + ["proj_width", "transform_width"]
            bugs += (["proj_width_one", "transform_width_one"] if groups == 1 else []) + (["pooled"] if max(out_hw) > 1 else [])
            block.bug = self.draw(st.sampled_from(bugs))
            if block.bug == "missing":
                block.skip = "identity"
            elif block.bug == "proj_stride":
                block.skip, block.skip_stride = "proj_stride", self.draw(st.sampled_from(strides))
            elif block.bug == "proj_width":
                block.skip, block.width = "proj_width", self.ints(2, 16, (cout,), even=groups == 2)
            elif block.bug == "proj_width_one":
                block.skip, block.width = "proj_width", 1
            elif block.bug == "transform_width_one":
                block.transform_width, block.width = True, 1
            elif block.bug == "pooled":
                block.pool = self.draw(st.sampled_from(["nn.AdaptiveAvgPool2d(1)", "nn.AdaptiveMaxPool2d((1, 1))"]))
            else:
                block.transform_width, block.width = True, self.ints(2, 16, (cout,), even=groups == 2)
        skip = {
            "identity": shape_of("conv", cin, hw),
            "proj": transform,
            "proj_stride": shape_of("conv", cout, down(hw, block.skip_stride)),
            "proj_width": shape_of("conv", block.width, out_hw),
        }[block.skip]
        actual = shape_of("conv", block.width if block.transform_width else cout, (1, 1) if block.pool else out_hw)
        self._settle(block, add_status(actual, skip, self.writes_out_in_place(block.form)))
        return block, State("conv", cout, out_hw)

    def token_res(self, state: State, same: bool = False) -> tuple[Block, State]:
        din = state.ch
        dout = din if same else self.ints(2, 16)
        sub = self.draw(st.sampled_from(["mlp", "attn"]))
        block = TokenRes(next(self.uids), din=din, dout=dout, hidden=self.ints(2, 16), sub=sub,
                         heads=2 if sub == "attn" and din % 2 == 0 and self.draw(st.booleans()) else 1,
                         prenorm=self.draw(st.booleans()), form=self.form())
        needs = din != dout
        block.skip = "proj" if needs else self.draw(st.sampled_from(["identity", "proj"]))
        if self.want_bug():
            bugs = ["missing"] if needs else []
            bugs += ["proj_width", "transform_width", "proj_width_one", "transform_width_one", "pooled"]
            block.bug = self.draw(st.sampled_from(bugs))
            if block.bug == "missing":
                block.skip = "identity"
            elif block.bug == "proj_width":
                block.skip, block.width = "proj_width", self.ints(2, 16, (dout,))
            elif block.bug == "proj_width_one":
                block.skip, block.width = "proj_width", 1
            elif block.bug == "transform_width_one":
                block.transform_width, block.width = True, 1
            elif block.bug == "pooled":
                block.pool = "nn.AdaptiveAvgPool1d(1)"  # pools the last dim: the features, not the tokens
            else:
                block.transform_width, block.width = True, self.ints(2, 16, (dout,))
        t = state.spatial
        skip = {"identity": shape_of("token", din, t), "proj": shape_of("token", dout, t), "proj_width": shape_of("token", block.width, t)}[block.skip]
        actual = shape_of("token", 1 if block.pool else block.width if block.transform_width else dout, t)
        self._settle(block, add_status(actual, skip, self.writes_out_in_place(block.form)))
        return block, State("token", dout, t)

    def wrap(self, state: State, depth: int) -> tuple[Block, State]:
        inner, out = self.container(state, depth + 1, 1, 2)
        stride = 1
        if state.kind == "conv":
            strides = [s for s in range(1, 65) if down(state.spatial, s) == out.spatial]
            assert strides, (state, out)
            stride = strides[0]
        block = Wrap(next(self.uids), inner=inner, state_in=state, state_out=out, stride=stride,
                     norm=self.draw(st.sampled_from(["bn", "none"])), form=self.form())
        needs = state != out
        block.skip = "proj" if needs else self.draw(st.sampled_from(["identity", "proj"]))
        transform = out.shape
        if self.want_bug():
            strides = []
            if state.kind == "conv":
                strides = [s for s in (1, 2, 3, 4) if s != stride and add_status(shape_of("conv", out.ch, down(state.spatial, s)), transform) == "broken"]
            bugs = (["missing"] if needs else []) + (["proj_stride"] if strides else []) + ["proj_width", "proj_width_one"]
            block.bug = self.draw(st.sampled_from(bugs))
            if block.bug == "missing":
                block.skip = "identity"
            elif block.bug == "proj_stride":
                block.skip, block.skip_stride = "proj_stride", self.draw(st.sampled_from(strides))
            else:
                block.skip, block.width = "proj_width", 1 if block.bug == "proj_width_one" else self.ints(2, 16, (out.ch,))
        skip = {
            "identity": state.shape,
            "proj": transform,
            "proj_stride": shape_of(state.kind, out.ch, down(state.spatial, block.skip_stride)) if state.kind == "conv" else None,
            "proj_width": shape_of(state.kind, block.width, out.spatial),
        }[block.skip]
        self._settle(block, add_status(transform, skip, self.writes_out_in_place(block.form)))
        return block, out

    def dense(self, state: State) -> tuple[Block, State]:
        block = Dense(next(self.uids), cin=state.ch, growth=self.ints(2, 8), in_hw=state.spatial,
                      skip_first=self.draw(st.booleans()), cat=self.draw(st.sampled_from(list(CAT_FORMS))))
        if self.want_bug():
            block.bug = self.draw(st.sampled_from(["stride"] + (["nopad"] if min(state.spatial) >= 3 else [])))
            if block.bug == "stride":
                block.conv_stride = 2
            else:
                block.conv_pad = 0
        new_hw = tuple((n + 2 * block.conv_pad - 3) // block.conv_stride + 1 for n in state.spatial)
        self._settle(block, cat_status(state.shape, shape_of("conv", block.growth, new_hw)))
        return block, State("conv", state.ch + block.growth, state.spatial)

    def dense_block(self, state: State) -> tuple[Block, State]:
        block = DenseBlock(next(self.uids), cin=state.ch, growth=self.ints(2, 6), count=self.draw(st.integers(2, 3)))
        if max(state.spatial) >= 2 and self.want_bug():
            block.strided = self.draw(st.integers(0, block.count - 1))
            block.bug = f"layer {block.strided} has stride 2"
        self._settle(block, "broken" if block.strided >= 0 else "ok")
        return block, State("conv", state.ch + block.count * block.growth, state.spatial)

    def unet(self, state: State, depth: int) -> tuple[Block, State]:
        enc, down_ch = self.ints(2, 12), self.ints(2, 12)
        inner, inner_out = self.container(State("conv", down_ch, down(state.spatial, 2)), depth + 1, 0, 2)
        block = UNet(next(self.uids), cin=state.ch, enc=enc, down_ch=down_ch, inner=inner, inner_out=inner_out,
                     up=self.draw(st.sampled_from(["convT", "upsample", "sized"])), up_ch=self.ints(2, 12), in_hw=state.spatial,
                     skip_first=self.draw(st.booleans()), cat=self.draw(st.sampled_from(list(CAT_FORMS))))
        up_hw = state.spatial if block.up == "sized" else tuple(2 * n for n in inner_out.spatial)
        if up_hw != state.spatial and not self.budget.can():
            block.up, up_hw = "sized", state.spatial  # no bug left to spend: the model's author got it right
        if up_hw != state.spatial:
            block.bug = f"up path gives {up_hw}, skip is {state.spatial}"
        self._settle(block, cat_status(shape_of("conv", enc, state.spatial), shape_of("conv", block.up_ch, up_hw)))
        return block, State("conv", enc + block.up_ch, state.spatial)

    # -- bug classes of real code ---------------------------------------------------------------------

    def plant(self, block: Block, possible: bool, bug: str) -> None:
        """Give the block its bug if it can have one and one is wanted, and settle it."""
        if possible and self.want_bug():
            block.bug = bug
        self._settle(block, "broken" if block.bug != "none" else "ok")

    def convnext(self, state: State) -> tuple[Block, State]:
        c, (h, w) = state.ch, state.spatial
        block = ConvNeXt(next(self.uids), ch=c, hidden=self.ints(2, 16), form=self.form(helper=False))
        self.plant(block, min(h, w) >= 2 and not c == h == w, "no permute back")
        return block, state

    def window(self, state: State) -> tuple[Block, State] | None:
        h, w = state.spatial
        sizes = [ws for ws in (2, 3) if h % ws == 0 and w % ws == 0]
        if not sizes:
            return None
        block = WindowAttn(next(self.uids), ch=state.ch, hw=(h, w), ws=self.draw(st.sampled_from(sizes)), form=self.form(helper=False))
        self.plant(block, h != w, "window_reverse with H and W swapped")
        return block, state

    def causal(self, state: State) -> tuple[Block, State]:
        block = CausalConv(next(self.uids), ch=state.ch, kernel=self.ints(2, 4), form=self.form(helper=False))
        self.plant(block, state.spatial[0] >= 2, "causal conv not cropped")
        return block, state

    def dilated(self, state: State) -> tuple[Block, State]:
        d = self.ints(2, 3)
        block = Dilated(next(self.uids), ch=state.ch, dilation=d, padding=d, form=self.form())
        wrong = [p for p in range(0, d + 2) if p != d and min(state.spatial) + 2 * p - 2 * d >= 2]
        self.plant(block, bool(wrong), "padding != dilation")
        if block.broken:
            block.padding = self.draw(st.sampled_from(wrong))
        return block, state

    def pool_shortcut(self, state: State) -> tuple[Block, State] | None:
        if min(state.spatial) < 4:
            return None
        block = PoolShortcut(next(self.uids), cin=state.ch, cout=self.ints(2, 16), functional=self.draw(st.booleans()), form=self.form())
        self.plant(block, any(n % 2 for n in state.spatial), "avg-pool shortcut without ceil_mode")
        return block, State("conv", block.cout, down(state.spatial, 2))

    def option_a(self, state: State) -> tuple[Block, State]:
        cin = state.ch
        stride = self.draw(st.sampled_from([1, 2] if min(state.spatial) >= 3 else [1]))
        block = OptionA(next(self.uids), cin=cin, cout=self.ints(cin + 1, cin + 8), stride=stride, form=self.form())
        block.pad = block.intended_pad()
        self.plant(block, True, "")
        if block.broken:
            extra = block.cout - cin
            kind = self.draw(st.sampled_from(["amount", "axes"]))
            if kind == "axes":
                block.bug = "F.pad shortcut pads the wrong axis"
                block.pad = (*block.pad[4:], 0, 0, 0, 0) if self.draw(st.booleans()) else (0, 0, *block.pad[4:], 0, 0)
            else:
                block.bug = "F.pad shortcut pads the wrong amount"
                pairs = [(a, b) for a in range(0, extra + 3) for b in range(0, extra + 3) if a + b != extra]
                block.pad = (0, 0, 0, 0, *self.draw(st.sampled_from(pairs)))
        return block, State("conv", block.cout, down(state.spatial, stride))

    def pop_unet(self, state: State) -> tuple[Block, State] | None:
        def odd(levels: int) -> bool:
            hw = state.spatial
            for _ in range(levels):
                if any(n % 2 for n in hw):
                    return True
                hw = tuple(n // 2 for n in hw)
            return False

        options = [levels for levels in (1, 2) if min(state.spatial) >= 2 ** levels]
        if not options:
            return None
        broken = [n for n in options if odd(n)]
        fine = [n for n in options if not odd(n)]
        if broken and self.budget.can() and (not fine or self.want_bug()):
            levels, bug = self.draw(st.sampled_from(broken)), "odd size at a U-Net level (decoder pops its skips)"
        elif fine:
            levels, bug = self.draw(st.sampled_from(fine)), "none"
        else:
            return None
        block = PopUNet(next(self.uids), cin=state.ch, chans=[self.ints(2, 12) for _ in range(levels)], mid=self.ints(2, 12),
                        ups=[self.ints(2, 12) for _ in range(levels)], out_ch=self.ints(2, 12), skip_first=self.draw(st.booleans()), bug=bug)
        self._settle(block, "broken" if bug != "none" else "ok")
        return block, State("conv", block.out_ch, state.spatial)

    def nested(self, state: State) -> tuple[Block, State] | None:
        if min(state.spatial) < 2:
            return None
        block = Nested(next(self.uids), cin=state.ch, enc=self.ints(2, 12), mid=self.ints(2, 12), down_ch=self.ints(2, 12),
                       up_ch=self.ints(2, 12), in_hw=state.spatial, order=tuple(self.draw(st.permutations(["a", "b", "y"]))),
                       cat=self.draw(st.sampled_from(list(CAT_FORMS))))
        self.plant(block, any(n % 2 for n in state.spatial), "odd size: the up path of a 3-tensor cat misses it")
        return block, State("conv", block.enc + block.mid + block.up_ch, state.spatial)

    def repeat(self, state: State) -> tuple[Block, State]:
        """Identical blocks: one class, one configuration, 2 or 3 instances (a bug is one root cause)."""
        if state.kind == "conv":
            kinds = ["res", "dilated", "convnext"]
        else:
            kinds = ["res", "causal"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "res":
            template, out = self.conv_res(state, same=True) if state.kind == "conv" else self.token_res(state, same=True)
        else:
            template, out = {"dilated": self.dilated, "convnext": self.convnext, "causal": self.causal}[kind](state)
        assert out == state
        copies = [template] + [dataclasses.replace(template) for _ in range(self.draw(st.integers(1, 2)))]
        return Repeat(next(self.uids), copies=copies), state

    def _settle(self, block: Block, status: str) -> None:
        block.broken = status != "ok"
        if status == "broadcast":
            block.code = "RL002"
        assert block.broken == (block.bug != "none"), (block, status)
        if block.broken:
            self.budget.take()


@st.composite
def models(draw, max_bugs: int | None = None, max_blocks: int = 7, kinds: tuple[str, ...] = ()) -> ModelSpec:
    """A random residual model with at most `max_bugs` root causes (broken joins, identical blocks counting
    once), its source rendered; `kinds`: only those kinds of blocks (Gen.item's names), in any container."""
    helper_form = draw(st.sampled_from(list(HELPER_FORMS)))
    gen = Gen(draw, Budget(max_bugs), max_blocks, helper_form, kinds)
    domains = ["conv", "token", "conv2token"]
    if kinds and set(kinds) <= TOKEN_KINDS:
        domains = ["token"]
    elif kinds and not set(kinds) & (TOKEN_KINDS | {"res", "repeat"}):
        domains = ["conv"]
    domain = draw(st.sampled_from(domains))
    conv_stages, token_stages, conv_out, token_out, token_first = [], [], None, None, None
    if domain == "token":
        t, d_in, d0 = draw(st.integers(2, 8)), gen.ints(2, 16), gen.ints(2, 16)
        input_shape, stem = (BATCH, t, d_in), f"nn.Linear({d_in}, {d0})"
        state = State("token", d0, (t,))
    else:
        h, w, c0 = draw(st.integers(4, 16)), draw(st.integers(4, 16)), gen.ints(2, 16)
        if domain == "conv2token":
            h, w = min(h, 8), min(w, 8)
        input_shape, stem = (BATCH, 3, h, w), f"nn.Conv2d(3, {c0}, 3, 1, 1)"
        state = State("conv", c0, (h, w))
        for _ in range(draw(st.integers(1, 2))):
            stage, state = gen.container(state, 0)
            conv_stages.append(stage)
        conv_out = state
        if domain == "conv2token":
            state = State("token", state.ch, (state.spatial[0] * state.spatial[1],))
    if domain != "conv":
        token_first = state
        for _ in range(draw(st.integers(1, 2))):
            stage, state = gen.container(state, 0)
            token_stages.append(stage)
        token_out = state
    spec = ModelSpec(domain, input_shape, stem, conv_stages, token_stages, conv_out, token_out,
                     pos=domain != "conv" and draw(st.booleans()), shape_branch=draw(st.booleans()),
                     helper_form=helper_form, token_first=token_first)
    spec.render()
    return spec
