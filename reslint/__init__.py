"""reslint: a static linter for the skip connections of PyTorch models.

    >>> report = reslint.check(model, torch.empty(2, 3, 224, 224))
    >>> report.ok
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reslint.findings import VERSION as __version__
from reslint.findings import Finding, Fix, Report, TargetResult

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check", "recording", "Report", "Finding", "Fix", "TargetResult", "__version__"]


def check(
    model: "nn.Module", *example_inputs: Any, select: list[str] | None = None, ignore: list[str] | None = None,
    frontend: str = "auto",
) -> Report:
    """Lint a model object. Inputs may be real or meta tensors; only their shapes and dtypes are used.

    `frontend` is "auto" (torch.fx, else the eager recording), "fx" or "eager", as `--frontend`.
    """
    import torch

    from reslint.analyze import analyze_model
    from reslint.load import meta_copy

    meta_inputs = tuple(
        torch.empty(x.shape, dtype=x.dtype, device="meta") if isinstance(x, torch.Tensor) else x for x in example_inputs
    )
    module = meta_copy(model)
    return Report([analyze_model(module, meta_inputs, type(model).__name__, select, ignore, frontend)])


def recording():
    """A context manager: models built inside it record their constructor arguments, so that
    `report.apply_fixes()` can write each fix in the class's own parameters (the CLI always does)."""
    from reslint.constructor_args import recording as record_constructors

    return record_constructors()
