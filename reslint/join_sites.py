"""Where each skip join is and its operands' shapes: what the language server shows on hover.

The analysis keeps these only when a job asks for them (the `join-sites` option, which `reslint
server` sets on its jobs): they ride back from the forked worker on `TargetResult.join_sites`, plain
data that pickles. The CLI never asks, so it never pays for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

OPTION = "join-sites"  # the analysis option (Job.options) that asks for them


@dataclass
class JoinSite:
    """A skip join the analysis saw: where it is, in which module, and its operands' shapes."""

    path: str  # absolute
    line: int
    column: int
    end_column: int
    kind: str  # add | cat
    module: str
    module_type: str
    shapes: dict[str, list[int] | None] = field(default_factory=dict)  # skip, transform, operand 3..., result


def join_sites(analysis) -> list[JoinSite]:
    """The joins of an analysis (reslint.analyze.Analysis) that have a source line, with their shapes."""
    from reslint.joins import join_operands

    sites = []
    for join in analysis.joins:
        source = join.node.meta.get("source")
        if source is None:
            continue
        shapes: dict[str, list[int] | None] = {"skip": analysis.shape(join.skip), "transform": analysis.shape(join.transform)}
        others = [n for n in join_operands(join.node) if n is not join.skip and n is not join.transform]
        for index, node in enumerate(others, 3):
            shapes[f"operand {index}"] = analysis.shape(node)
        shapes["result"] = analysis.shape(join.node)
        sites.append(JoinSite(
            os.path.abspath(source.path), source.line, source.column, source.end_column, join.kind,
            join.node.meta.get("module_path", ""), join.node.meta.get("module_type", ""), shapes,
        ))
    return sites
