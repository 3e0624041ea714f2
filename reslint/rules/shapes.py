"""Words for how two shapes differ, shared by the rules' messages.

Dims are named by their role (reslint.roles): "sequence 101→96", "channels 64→128, spatial /2",
"features 512→2048", "heads 8→4", never "channels" for a sequence length or a spatial size.
"""

from __future__ import annotations

from typing import Sequence

SPATIAL, UNKNOWN = "spatial", "unknown"


def guessed_roles(rank: int) -> list[str]:
    """Roles when nothing is known: NCHW-like for rank 3 and more, [batch, features] below."""
    if rank >= 4:
        return ["batch", "channels"] + [SPATIAL] * (rank - 2)
    if rank == 3:
        return ["batch", "channels", "sequence"]
    return ["batch", "features"][-rank:] if rank else []


def merged_roles(*roles: Sequence[str] | None) -> list[str] | None:
    """One role per dim from several tensors' roles (the operands of a join): the first known one."""
    known = [list(r) for r in roles if r]
    if not known or len({len(r) for r in known}) != 1:
        return known[0] if known else None
    return [next((r[d] for r in known if r[d] != UNKNOWN), UNKNOWN) for d in range(len(known[0]))]


def join_roles(analysis, *nodes) -> list[str] | None:
    """The roles of a join's operands, merged; None if they are not known."""
    from reslint.roles import roles_of  # imports torch: only when a rule builds a message

    try:
        return merged_roles(*(roles_of(analysis.propagation, node) for node in nodes))
    except Exception:  # roles are for words; a message never fails for want of them
        return None


def role_name(roles: Sequence[str], dim: int) -> str:
    role = roles[dim] if 0 <= dim < len(roles) else UNKNOWN
    return f"dim {dim}" if role == UNKNOWN else role


def describe_difference(skip: list[int], transform: list[int], roles: Sequence[str] | None = None) -> str:
    """'channels 64→128, spatial /2', 'sequence 101→96', 'features 512→2048', 'heads 8→4'."""
    if len(skip) != len(transform):
        return f"rank {len(skip)}→{len(transform)}"
    roles = list(roles) if roles is not None and len(roles) == len(skip) else guessed_roles(len(skip))
    parts = []
    spatial = [d for d, role in enumerate(roles) if role == SPATIAL]
    for dim, (a, b) in enumerate(zip(skip, transform)):
        if dim in spatial:
            if dim == spatial[0]:
                phrase = _spatial_phrase([skip[d] for d in spatial], [transform[d] for d in spatial])
                if phrase:
                    parts.append(phrase)
        elif a != b:
            parts.append(f"{role_name(roles, dim)} {a}→{b}")
    return ", ".join(parts) or "same shape"


def _spatial_phrase(skip: list[int], transform: list[int]) -> str:
    if skip == transform:
        return ""
    both = f"spatial {'x'.join(map(str, skip))}→{'x'.join(map(str, transform))}"
    if all(t == 1 for t in transform) or all(s == 1 for s in skip):
        return both
    ratios = {s / t for s, t in zip(skip, transform) if t}
    if len(ratios) == 1:
        ratio = next(iter(ratios))
        if ratio in (2, 4, 8, 16, 32):
            return f"spatial /{int(ratio)}"
        if ratio in (0.5, 0.25, 0.125, 0.0625, 0.03125):
            return f"spatial x{int(1 / ratio)}"
    return both


def module_phrase(module: str, module_type: str) -> str:
    return f"{module} ({module_type})" if module else module_type


def where(node) -> str:
    """'layer3.0 (Bottleneck)': the module a graph node was recorded in."""
    return module_phrase(node.meta.get("module_path", ""), node.meta.get("module_type", ""))
