"""Real models: torchvision's classification zoo is clean, and removing a skip projection is caught."""

import os

import pytest
import torch

torchvision = pytest.importorskip("torchvision")

from reslint.analyze import analyze_model  # noqa: E402
from reslint.load import build  # noqa: E402
from reslint.target import TargetSpec  # noqa: E402


def meta_model(name: str):
    builder = torchvision.models.get_model_builder(name)
    return build(builder, TargetSpec(source="torchvision.models", name=name, text=name), name).module


def lint(model, size=224, frontend="auto"):
    return analyze_model(model, (torch.empty(2, 3, size, size, device="meta"),), "model", frontend=frontend)


def test_resnet50_without_layer3_downsample():
    model = meta_model("resnet50")
    model.layer3[0].downsample = None
    result = lint(model)
    finding, = result.findings
    assert finding.code == "RL001"
    assert finding.path.endswith(os.path.join("torchvision", "models", "resnet.py"))
    with open(torchvision.models.resnet.__file__) as handle:
        assert handle.read().splitlines()[finding.line - 1].strip() == "out += identity"
    assert (finding.module, finding.module_type) == ("layer3.0", "Bottleneck")
    assert finding.shapes == {"skip": [2, 512, 28, 28], "transform": [2, 1024, 14, 14]}
    assert finding.fix.kind == "project-skip" and finding.fix.validated
    assert finding.fix.code == "nn.Sequential(nn.Conv2d(512, 1024, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(1024))"


CLEAN = [
    "resnet18", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
    "regnet_y_400mf", "convnext_tiny", "vit_b_16", "swin_t", "densenet121", "shufflenet_v2_x0_5", "vgg11",
]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_torchvision_models_have_no_findings(name):
    result = lint(meta_model(name))
    assert result.findings == []
    assert result.status == "ok" and result.frontend == "fx"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "swin_t"])
def test_eager_frontend_agrees_on_clean_models(name):
    result = lint(meta_model(name), frontend="eager")
    assert result.findings == [] and result.frontend == "eager"


def mutants(model):
    """Every skip projection removed, every residual flag forced: (block path, mutate)."""
    for path, module in model.named_modules():
        if isinstance(getattr(module, "downsample", None), torch.nn.Module):
            yield path, lambda m=module: setattr(m, "downsample", None)
        if getattr(module, "use_res_connect", True) is False:
            yield path, lambda m=module: setattr(m, "use_res_connect", True)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_every_removed_projection_is_found_with_a_validated_fix(name):
    paths = [path for path, _ in mutants(meta_model(name))]
    assert paths
    for path in paths:
        model = meta_model(name)
        dict(mutants(model))[path]()
        finding, = lint(model).findings
        assert (finding.code, finding.module) == ("RL001", path)
        assert finding.fix.validated, finding
