"""Inputs as a new user meets them: guessed from the layer the forward calls first, tried until one runs,
named for forwards with several arguments, and every mistake in a spec one clear line."""

import torch
import torch.nn.functional as F
from torch import nn

import pytest

import reslint
from reslint.analyze import analyze_built
from reslint.inputs import parse_input_spec
from reslint.errors import TargetError
from reslint.load import BuiltModel


def lint(cls, *specs, discovered=False, **options):
    with torch.device("meta"):
        model = cls()
    return analyze_built(lambda: BuiltModel(model, cls.__name__, []), cls.__name__, list(specs), discovered=discovered, **options)


def codes(result):
    return [f.code for f in result.findings]


# -- models -----------------------------------------------------------------------------------------------


class CifarNet(nn.Module):
    """Two stride-2 convs, then a classifier sized for 32x32: only 32 px runs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 2, 1)
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1))


class ImageNetHead(nn.Module):
    """A 3x3 stem and a classifier sized for 224 px (7x7 after five halvings)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*[nn.Sequential(nn.Conv2d(3 if i == 0 else 8, 8, 3, 1, 1), nn.MaxPool2d(2)) for i in range(5)])
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mix = nn.Linear(dim, dim)

    def forward(self, x):
        return x + self.mix(self.norm(x))


class TokenMixer(nn.Module):
    """Takes [B, T, 24]: the first registered layer is the head (Linear 32), the first called is `embed`."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(32, 5)
        self.blocks = nn.Sequential(Block(32), Block(32))
        self.embed = nn.Linear(24, 32)

    def forward(self, x):
        batch, tokens, _ = x.shape
        h = self.blocks(self.embed(x))
        return self.head(h.reshape(batch, tokens, -1))


class TinyLM(nn.Module):
    """Token ids in; a learned position table of 8 positions, so T must stay within 8."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 50)
        self.wte = nn.Embedding(50, 16)
        self.wpe = nn.Embedding(8, 16)
        self.block = Block(16)

    def forward(self, idx):
        positions = torch.arange(idx.shape[1], device=idx.device)
        return self.head(self.block(self.wte(idx) + self.wpe(positions)))


class TinyViT(nn.Module):
    """Patch 8 and a position table for 64 patches plus a class token: only 64x64 images fit."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 8, 8)
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos_embed = nn.Parameter(torch.zeros(1, 65, 16))
        self.block = Block(16)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.block(x)


class Denoiser(nn.Module):
    """forward(x, time): the time goes through a small MLP into the residual blocks."""

    def __init__(self):
        super().__init__()
        self.time = nn.Linear(1, 8)
        self.conv_in = nn.Conv2d(3, 8, 3, 1, 1)
        self.conv = nn.Conv2d(8, 8, 3, 1, 1)

    def forward(self, x, time, scale=1.0):
        h = self.conv_in(x)
        t = self.time(time[:, None])[:, :, None, None]
        return h + self.conv(h + t) * scale


class BrokenDenoiser(Denoiser):
    """The residual add joins 8 channels with 16: a real RL001 at every input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, 1, 1)


class Conditioned(nn.Module):
    """forward(x, context): nothing says what `context` is."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.ctx = nn.Linear(12, 8)

    def forward(self, x, context):
        return self.conv(x) + self.ctx(context)[:, :, None, None]


class KeywordOnly(nn.Module):
    """forward(x, mask=None, *, time): a keyword-only argument after an optional one."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)

    def forward(self, x, mask=None, *, time):
        return self.conv(x) + time[:, None, None, None]


class ShapeCheckedMixer(TokenMixer):
    """A branch on the input's shape before the first layer: fx cannot trace it, an eager probe can."""

    def forward(self, x):
        if x.shape[1] > 1000:
            x = x[:, :1000]
        return super().forward(x)


class IndexedTimesteps(nn.Module):
    """forward(x, t) where t indexes a table of timestep embeddings: an int64 guess."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.steps = nn.Embedding(1000, 8)

    def forward(self, x, t):
        return self.conv(x) + self.steps(t)[:, :, None, None]


class DeepUNet(nn.Module):
    """Six halvings: 32 px runs out of pixels; only powers of two from 64 up line the skips up."""

    def __init__(self, depth=6):
        super().__init__()
        self.inc = nn.Conv2d(3, 4, 3, padding=1)
        self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1)) for _ in range(depth)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(4, 4, 2, 2) for _ in range(depth)])
        self.merge = nn.ModuleList([nn.Conv2d(8, 4, 3, padding=1) for _ in range(depth)])

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up, merge in zip(self.ups, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], 1))
        return x


class OneDim(nn.Module):
    """A 1-D signal net: no image guess can run it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 5)

    def forward(self, x):
        return self.fc(x.view(x.shape[0], 7))


# -- guesses ----------------------------------------------------------------------------------------------


def test_cifar_net_is_guessed_at_32_px():
    result = lint(CifarNet)
    assert result.status == "ok" and result.inputs == ["2,3,32,32"]
    assert any("conv1: Conv2d" in note and "2,3,32,32" in note for note in result.notes)


def test_imagenet_classifier_gets_224_after_the_smaller_guesses_fail():
    result = lint(ImageNetHead)
    assert result.status == "ok" and result.inputs == ["2,3,224,224"]
    note = next(n for n in result.notes if n.startswith("no --input given"))
    assert "tried 2,3,32,32 (RL000" in note


def test_token_model_is_guessed_from_the_first_called_layer_not_the_first_registered():
    result = lint(TokenMixer)
    assert result.status == "ok" and result.inputs == ["2,16,24"]
    assert any("embed: Linear" in note for note in result.notes)


def test_first_called_layer_found_by_an_eager_probe_when_fx_cannot_trace():
    result = lint(ShapeCheckedMixer)
    assert result.status == "ok" and result.inputs == ["2,16,24"] and result.frontend == "eager"


def test_unet_gets_a_power_of_two_that_its_skips_line_up_at():
    result = lint(DeepUNet)
    assert result.status == "ok" and result.inputs == ["2,3,64,64"]


def test_embedding_model_gets_int64_tokens_within_its_positions():
    result = lint(TinyLM)
    assert result.status == "ok" and result.inputs == ["2,8:int64"]


def test_vit_gets_the_image_size_its_position_table_fits():
    result = lint(TinyViT)
    assert result.status == "ok" and result.inputs == ["2,3,64,64"]


def test_time_argument_is_guessed_from_its_name_and_findings_are_kept():
    ok = lint(Denoiser)
    assert ok.status == "ok" and ok.inputs == ["2,3,32,32", "time=2"]
    broken = lint(BrokenDenoiser)
    assert codes(broken) == ["RL001"] and broken.inputs == ["2,3,32,32", "time=2"]


def test_a_timestep_that_indexes_an_embedding_is_guessed_as_int64():
    result = lint(IndexedTimesteps)
    assert result.status == "ok" and result.inputs == ["2,3,32,32", "t=2:int64"]


def test_every_guess_failing_is_an_error_that_says_the_input_was_guessed():
    result = lint(OneDim)
    assert result.status == "error" and result.inputs
    assert "no --input given" in result.error and "--input" in result.error and "tried" in result.error
    skipped = lint(OneDim, discovered=True)
    assert skipped.status == "skipped" and "[[tool.reslint.targets]]" in skipped.error


def test_rl000_is_looked_for_even_when_not_selected():
    result = lint(ImageNetHead, select=["RL001"])
    assert result.inputs == ["2,3,224,224"] and result.status == "ok"


# -- named inputs and forwards with several arguments ------------------------------------------------------


def test_named_inputs_in_any_order():
    result = lint(Denoiser, "time=2", "x=2,3,16,16")
    assert result.status == "ok" and result.inputs == ["x=2,3,16,16", "time=2"]
    assert codes(lint(BrokenDenoiser, "time=4", "x=4,3,16,16")) == ["RL001"]


def test_positional_then_named():
    result = lint(Denoiser, "2,3,16,16", "time=2")
    assert result.status == "ok" and result.inputs == ["2,3,16,16", "time=2"]


def test_a_given_first_input_still_gets_a_guessed_time():
    result = lint(Denoiser, "4,3,16,16")
    assert result.status == "ok" and result.inputs == ["4,3,16,16", "time=4"]


def test_keyword_only_argument_by_name():
    result = lint(KeywordOnly, "2,3,16,16", "time=2", frontend="fx")
    assert result.status == "ok" and result.inputs == ["2,3,16,16", "time=2"]


def test_missing_argument_is_named_with_the_flag_to_give_it():
    result = lint(Conditioned)
    assert result.status == "error" and "context" in result.error and "--input context=" in result.error
    given = lint(Conditioned, "2,3,16,16")
    assert given.status == "error" and "--input x=2,3,16,16 --input context=" in given.error


def test_unknown_name_lists_the_forward_arguments():
    result = lint(Denoiser, "x=2,3,16,16", "tim=2")
    assert result.status == "error" and "'tim'" in result.error and "x, time, scale" in result.error


@pytest.mark.parametrize("frontend", ["fx", "eager"])
def test_too_many_inputs_is_an_error_naming_the_arguments(frontend):
    result = lint(CifarNet, "2,3,32,32", "2,3,32,32", frontend=frontend)
    assert result.status == "error" and "takes 1 (x)" in result.error


# -- bad sizes are one line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["99999999999999999999,3", "0,3", "-2,3", "2,x", "2,3:int77", "100000,100000,100000,100000,100000", "time=", "2 3=4"],
)
def test_bad_sizes_are_one_line(spec):
    result = lint(CifarNet, spec)
    assert result.status == "error" and "\n" not in result.error and "--input" in result.error
    if "=" not in spec:
        with pytest.raises(TargetError):
            parse_input_spec(spec)


def test_optional_forward_arguments_keep_their_defaults_under_fx():
    """`forward(x, mask=None)` is traced with mask=None, not down its `if mask is not None:` branch."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)
            self.up = torch.nn.Linear(8, 16)

        def forward(self, x, mask=None):
            h = self.fc(x)
            if mask is not None:
                h = h * mask
            return x + self.up(h)

    result = reslint.check(Net(), torch.empty(2, 8), frontend="fx").targets[0]
    assert [f.code for f in result.findings] == ["RL001"] and result.frontend == "fx"


def test_a_forward_that_patchifies_its_input_gets_an_image():
    """A ViT without a conv stem reshapes the image into patches before its first layer (a LayerNorm
    over p*p*3 values): the width of that layer says nothing about the input, so images are tried too."""

    class Patches(nn.Module):
        def forward(self, x):
            b, c, h, w = x.shape
            x = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 3, 5, 1)
            return x.reshape(b, (h // 4) * (w // 4), 16 * c)

    class PatchViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Sequential(Patches(), nn.LayerNorm(48), nn.Linear(48, 32))
            self.pos = nn.Parameter(torch.zeros(1, 64, 32))
            self.mlp = nn.Sequential(nn.LayerNorm(32), nn.Linear(32, 32))

        def forward(self, img):
            x = self.embed(img) + self.pos
            return x + self.mlp(x)

    result = analyze_built(lambda: BuiltModel(PatchViT().to("meta"), "vit.py:PatchViT", []), "vit.py:PatchViT", [])
    assert result.status == "ok" and result.inputs == ["2,3,32,32"], (result.status, result.inputs, result.error)


def test_a_model_of_bare_parameters_is_guessed_from_its_first_weight_matrix():
    class Experts(nn.Module):
        def __init__(self):
            super().__init__()
            self.w_gate = nn.Parameter(torch.randn(16, 4))
            self.w1 = nn.Parameter(torch.randn(4, 16, 32))
            self.w2 = nn.Parameter(torch.randn(4, 32, 16))

        def forward(self, x):
            gates = (x @ self.w_gate).softmax(-1)
            h = torch.einsum("btd,edh->beth", x, self.w1).relu()
            return x + torch.einsum("beth,ehd->btd", h * gates.permute(0, 2, 1)[..., None], self.w2)

    result = analyze_built(lambda: BuiltModel(Experts().to("meta"), "moe.py:Experts", []), "moe.py:Experts", [])
    assert result.status == "ok" and result.inputs == ["2,16,16"], (result.status, result.inputs, result.error)
