"""Words for how two shapes differ, shared by the rules' messages."""

from __future__ import annotations


def describe_difference(skip: list[int], transform: list[int]) -> str:
    """'channels 64→128, spatial /2' for NCHW-like tensors, 'width 512→2048' for features."""
    if len(skip) != len(transform):
        return f"rank {len(skip)}→{len(transform)}"
    if skip[:-1] == transform[:-1]:
        return f"width {skip[-1]}→{transform[-1]}"
    parts = []
    if skip[0] != transform[0]:
        parts.append(f"batch {skip[0]}→{transform[0]}")
    if len(skip) >= 3:
        if skip[1] != transform[1]:
            parts.append(f"channels {skip[1]}→{transform[1]}")
        spatial_skip, spatial_transform = skip[2:], transform[2:]
        if spatial_skip != spatial_transform:
            ratios = {s / t for s, t in zip(spatial_skip, spatial_transform) if t}
            if all(t == 1 for t in spatial_transform) or all(s == 1 for s in spatial_skip):
                parts.append(f"spatial {'x'.join(map(str, spatial_skip))}→{'x'.join(map(str, spatial_transform))}")
            elif len(ratios) == 1 and next(iter(ratios)) in (2, 4, 8, 16, 32):
                parts.append(f"spatial /{int(next(iter(ratios)))}")
            elif len(ratios) == 1 and next(iter(ratios)) in (0.5, 0.25, 0.125):
                parts.append(f"spatial x{int(1 / next(iter(ratios)))}")
            else:
                parts.append(f"spatial {'x'.join(map(str, spatial_skip))}→{'x'.join(map(str, spatial_transform))}")
    elif skip[1:] != transform[1:]:
        parts.append(f"dim 1 {skip[1]}→{transform[1]}")
    return ", ".join(parts)


def module_phrase(module: str, module_type: str) -> str:
    return f"{module} ({module_type})" if module else module_type


def where(node) -> str:
    """'layer3.0 (Bottleneck)': the module a graph node was recorded in."""
    return module_phrase(node.meta.get("module_path", ""), node.meta.get("module_type", ""))
