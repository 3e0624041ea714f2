"""`--format sarif`: SARIF 2.1.0, as GitHub code scanning accepts it."""

from __future__ import annotations

import json
import os
import subprocess
from functools import lru_cache

from reslint.findings import VERSION, Report
from reslint.report.words import describe_consequences, describe_instances
from reslint.rules import RULES, rule_doc

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning"}


def render_sarif(report: Report) -> str:
    codes = list(RULES)
    rules = []
    for code in codes:
        info, doc = RULES[code], rule_doc(code) or ""
        summary = doc.splitlines()[0].partition(": ")[2] if doc else info.name
        rules.append({
            "id": code,
            "name": info.name,
            "shortDescription": {"text": summary},
            "fullDescription": {"text": summary},
            "help": {"text": doc, "markdown": doc},
            "defaultConfiguration": {"level": LEVELS[info.severity]},
        })
    results = []
    for finding in report.findings:
        result = {
            "ruleId": finding.code,
            "ruleIndex": codes.index(finding.code),
            "level": LEVELS.get(finding.severity, "warning"),
            "message": {"text": _message(finding)},
        }
        properties = _properties(finding)
        if properties:
            result["properties"] = properties
        if finding.path:
            region = {"startLine": finding.line}
            if finding.column:
                region["startColumn"] = finding.column
            result["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(finding.path), "region": region}}]
        results.append(result)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "reslint", "version": VERSION, "informationUri": "https://github.com/reslint/reslint", "rules": rules}},
            "invocations": [_invocation(report)],
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _invocation(report: Report) -> dict:
    """Targets that were not (wholly) analyzed, as notifications: a run is successful only without them.

    Code scanning shows results only; these keep a target that could not be analyzed from looking clean
    to anything that reads the log.
    """
    notifications = []
    for target in report.targets:
        if target.status == "error":
            notifications.append(_notification("error", "target-error", target.error or f"{target.target}: could not be analyzed"))
        elif target.status == "skipped":
            notifications.append(_notification("note", "target-skipped", f"skipped: {target.target}: {target.error}"))
        for reason in target.incomplete:
            level = "warning" if report.allow_incomplete else "error"
            notifications.append(_notification(level, "target-incomplete", f"incomplete: {target.target}: {reason}"))
    failed = any(n["level"] == "error" for n in notifications)
    return {"executionSuccessful": not failed, "toolExecutionNotifications": notifications}


def _notification(level: str, kind: str, text: str) -> dict:
    return {"level": level, "descriptor": {"id": kind}, "message": {"text": text}}


def _message(finding) -> str:
    text = finding.message
    for extra in (describe_instances(finding), describe_consequences(finding)):
        if extra:
            text += f"\n{extra[0].upper()}{extra[1:]}"
    if finding.fix is not None:
        status = "validated" if finding.fix.validated else "not validated"
        text += f"\nFix ({finding.fix.kind}, {status}): {finding.fix.description}\n{finding.fix.code}"
    return text


def _properties(finding) -> dict:
    """Each instance's module and shapes, and what fails because of the finding, for tools to read."""
    properties = {}
    if len(finding.instances) > 1:
        properties["instances"] = [instance.to_json() for instance in finding.instances]
    if finding.consequences:
        properties["consequences"] = list(finding.consequences)
    return properties


def _artifact(path: str) -> dict:
    """A repository-relative uri (code scanning maps it to the file); absolute outside the repository."""
    absolute = os.path.abspath(path)
    root = _repository_root()
    if root and (absolute + os.sep).startswith(root + os.sep):
        return {"uri": os.path.relpath(absolute, root).replace(os.sep, "/"), "uriBaseId": "%SRCROOT%"}
    return {"uri": "file://" + absolute.replace(os.sep, "/")}


@lru_cache(maxsize=1)
def _repository_root() -> str | None:
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return os.getcwd()
    return os.path.abspath(top.stdout.strip()) if top.returncode == 0 else os.getcwd()
