"""What the analysis produces: findings with their fixes, per-target results, the report.

Plain data with no torch in sight, so reporters and the CLI can use it without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum

VERSION = "0.2.0"


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    ERROR = 2  # a target could not be analyzed, or a usage error


@dataclass
class Fix:
    kind: str  # project-skip | restride-skip | resize-transform | ...
    module: str  # module path the change goes into
    code: str  # code to paste
    validated: bool  # the whole model's shapes propagate with the fix applied
    description: str = ""  # one sentence: what to change where
    # For a fix that rewrites a statement of the user's code (a pad call, a cat, a missing permute back):
    # the lines fix.code replaces, as is. 0 for a layer (fix.code is the layer's constructor).
    line: int = 0
    end_line: int = 0
    # The fix as an edit of the user's source (reslint/source_fixes.py), in the class's own parameters:
    # `diff` is it as a unified diff, `edits` the same as data for --fix (reslint.edits; not in the JSON).
    # `safe`: validated on every instance it touches, and changes nothing that was right (--fix applies
    # it; the others need --unsafe-fixes).
    diff: str = ""
    safe: bool = False
    edits: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"kind": self.kind, "module": self.module, "code": self.code, "validated": self.validated,
                "safe": self.safe, "diff": self.diff}


@dataclass
class Instance:
    """One place a finding's bug occurs: a module where its source line ran, with the shapes there.

    `fix` is the fix proven for this instance alone (the finding's own `fix` is its first instance's);
    it is not part of the JSON, which lists `{module, shapes}`.
    """

    module: str
    shapes: dict[str, list[int] | None] = field(default_factory=dict)
    module_type: str = ""
    fix: Fix | None = None

    def to_json(self) -> dict:
        return {"module": self.module, "shapes": self.shapes}


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    target: str
    path: str
    line: int
    column: int
    module: str
    module_type: str
    shapes: dict[str, list[int] | None] = field(default_factory=dict)
    fix: Fix | None = None
    end_column: int = 0  # for underlining the source; not part of the JSON contract
    # Later failures that happen only because of this one ("path:line in module: what"), when its
    # result is carried on as written instead of as meant: a note on the root, never findings.
    consequences: list[str] = field(default_factory=list)
    # Every module where this line fails the same way (reslint.grouping merges them; the fields above
    # are the first instance's). Empty for a finding made outside the analysis: then it is its only one.
    instances: list[Instance] = field(default_factory=list)
    # How many modules of the instances' class the model has (for "in 11 of 12 blocks"); 0 unknown.
    # Not part of the JSON contract.
    modules_of_class: int = 0

    def to_json(self) -> dict:
        data = asdict(self)
        del data["end_column"], data["modules_of_class"]
        data["fix"] = self.fix.to_json() if self.fix else None
        instances = self.instances or [Instance(self.module, self.shapes)]
        data["instances"] = [instance.to_json() for instance in instances]
        return data


@dataclass
class TargetResult:
    target: str
    status: str  # ok | findings | incomplete | error | skipped
    frontend: str | None = None
    inputs: list[str] = field(default_factory=list)
    joins: int = 0
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # assumptions said out loud (guessed input, CPU build)
    findings: list[Finding] = field(default_factory=list)
    # Parts of the model that were not analyzed, each "where: why". Non-empty means the target is not
    # clean: status `incomplete` (or `findings`, which then says both) and exit 2 unless allowed.
    incomplete: list[str] = field(default_factory=list)
    traceback: str | None = None  # of the error, for --debug; not part of the JSON contract
    output: str = ""  # what the model's code printed (captured); shown on stderr, not part of the JSON
    join_sites: list = field(default_factory=list)  # reslint.join_sites, when a job asks (the server's hover); not in the JSON

    def finish(self) -> None:
        """Status from what was found: findings first, then whether every part was analyzed."""
        if self.status in ("error", "skipped"):
            return
        self.status = "findings" if self.findings else ("incomplete" if self.incomplete else "ok")

    def to_json(self) -> dict:
        return {
            "target": self.target, "status": self.status, "frontend": self.frontend, "inputs": self.inputs,
            "joins": self.joins, "error": self.error, "timings": self.timings, "notes": self.notes,
            "incomplete": self.incomplete,
        }


@dataclass
class Report:
    targets: list[TargetResult] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [finding for target in self.targets for finding in target.findings]

    allow_incomplete: bool = False  # --allow-incomplete: a partly analyzed target does not fail the run

    @property
    def ok(self) -> bool:
        return self.exit_code is ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        """1 if any finding, else 2 if any target errored or was not wholly analyzed, else 0."""
        if self.findings:
            return ExitCode.FINDINGS
        if any(t.status == "error" for t in self.targets):
            return ExitCode.ERROR
        if not self.allow_incomplete and any(t.incomplete for t in self.targets):
            return ExitCode.ERROR
        return ExitCode.OK

    def apply_fixes(self, unsafe: bool = False, write: bool = True) -> str:
        """Write the findings' fixes into the user's files as source edits (the safe ones; all with
        `unsafe`) and return them as a unified diff; `write=False` only returns the diff."""
        from reslint.apply import apply_fixes

        return apply_fixes(self, unsafe=unsafe, write_files=write)

    def to_json(self) -> dict:
        return {
            "reslint": VERSION,
            "targets": [t.to_json() for t in self.targets],
            "findings": [f.to_json() for f in self.findings],
        }
