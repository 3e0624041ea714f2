"""Checks torch's meta kernels skip, so that propagation on meta rejects what a CPU run rejects.

torch's meta kernel for conv_transpose accepts any number of input channels (CPU raises), so a
transposed conv after a join would never reject a wrong width there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CONV_TRANSPOSE_FUNCTIONS = {torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d}


def check_call(target: Any, args: tuple, kwargs: dict) -> None:
    """Raise as a CPU run would, for a layer or function whose meta kernel does not check its input."""
    if isinstance(target, nn.modules.conv._ConvTransposeNd):
        weight = target.weight
    elif target in CONV_TRANSPOSE_FUNCTIONS:
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
    else:
        return
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, torch.Tensor) or not isinstance(weight, torch.Tensor) or x.dim() < 2:
        return
    channels = x.shape[1] if x.dim() == weight.dim() else x.shape[0]  # batched, or one unbatched sample
    if channels != weight.shape[0]:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} to have "
            f"{weight.shape[0]} channels, but got {channels} channels instead"
        )
