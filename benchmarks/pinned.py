"""reslint as committed at a revision, extracted to a temp dir for a benchmark run.

Benchmarks run for a long time; pinning reslint/ to a commit keeps edits made meanwhile out of the
run, and names exactly what was measured. Put the folder first on the children's PYTHONPATH.
"""

from __future__ import annotations

import subprocess
import tempfile


def git(root: str, *args: str) -> str:
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=True).stdout.strip()


def reslint_snapshot(root: str, rev: str, prefix: str) -> tuple[str | None, str]:
    """(folder holding reslint/ at `rev`, or None for "live", the working tree; what that is, in words)."""
    if rev == "live":
        dirty = git(root, "status", "--porcelain", "--", "reslint")
        return None, f"working tree at {git(root, 'rev-parse', '--short', 'HEAD')}" + (
            " with uncommitted changes in reslint/" if dirty else ""
        )
    commit = git(root, "rev-parse", "--short", rev)
    folder = tempfile.mkdtemp(prefix=prefix)
    archive = subprocess.run(["git", "-C", root, "archive", commit, "reslint"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    changed = git(root, "log", "-1", "--format=%h (%s)", commit, "--", "reslint")[:100]
    return folder, f"reslint/ at {commit}, last changed in {changed}"
