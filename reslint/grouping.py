"""One bug, one finding: the findings of one source line and code, met in several modules, merged.

A block class with a bad skip is instantiated many times; each instance fails at the same line of
its `forward`. Reported once per module, that is one bug said N times. `group_findings` merges the
findings of a target that share (path, line, code) into the first of them, which keeps its fields
(message, shapes, fix: the first instance's, concrete as before) and lists every module in
`instances`, with the shapes there (reslint.report.words says them in a few words).

No torch here: the model is only asked for its named modules, to count the blocks of a class.
"""

from __future__ import annotations

from typing import Any

from reslint.findings import Finding, Instance

def group_findings(findings: list[Finding], model: Any = None) -> list[Finding]:
    """The findings, one per (path, line, code), in the order of their first instance.

    A finding without a source location is never merged (nothing says two of them are one bug).
    `model`, when given, is used to count the modules of the instances' class.
    """
    grouped: dict[tuple, Finding] = {}
    for finding in findings:
        key = (finding.target, finding.path, finding.line, finding.code) if finding.path else (id(finding),)
        first = grouped.get(key)
        if first is None:
            first = grouped[key] = finding
            first.instances = list(finding.instances) or [_instance(finding)]
            continue
        for instance in finding.instances or [_instance(finding)]:
            if not any(i.module == instance.module and i.shapes == instance.shapes for i in first.instances):
                first.instances.append(instance)
        first.consequences = list(dict.fromkeys([*first.consequences, *finding.consequences]))
    merged = list(grouped.values())
    if model is not None:
        for finding in merged:
            finding.modules_of_class = modules_of_class(model, [i.module for i in finding.instances])
    return merged


def _instance(finding: Finding) -> Instance:
    return Instance(finding.module, finding.shapes, finding.module_type, finding.fix)


def modules_of_class(model: Any, paths: list[str]) -> int:
    """How many modules of the class(es) at these paths the model has; 0 when a path is not a module."""
    try:
        modules = dict(model.named_modules())
    except Exception:  # noqa: BLE001  a model whose module tree cannot be walked: the count is unknown
        return 0
    if any(path not in modules for path in paths):
        return 0
    classes = {type(modules[path]) for path in paths}
    return sum(1 for module in modules.values() if type(module) in classes)
