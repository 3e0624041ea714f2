"""`--shard K/N`: the K-th of N disjoint parts of the planned jobs, so a CI matrix lints in parallel.

Every shard computes the same split from the same job list, with no coordination: jobs are ordered by
name (the target string, then its inputs) and dealt out. Without timings, job i goes to shard
i % N + 1. With a timings file (a previous `--format json` report), jobs are placed longest first on
the shard with the least time so far (ties: the lower shard, then the name), so the shards finish
together; a job the report does not know counts as the median known time.

No torch here: sharding happens while planning.
"""

from __future__ import annotations

import json
import re
import statistics
from typing import Sequence, TypeVar

from reslint.errors import TargetError

J = TypeVar("J")

SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); K counts from 1, as a GitHub Actions matrix index + 1 does."""
    match = SHARD.match(text or "")
    if not match:
        raise TargetError(f"--shard {text!r}: expected K/N, e.g. --shard 1/4 (K from 1 to N)")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise TargetError(f"--shard {text!r}: K must be between 1 and N, e.g. --shard 1/4")
    return index, count


def load_timings(path: str) -> dict[str, float]:
    """Seconds per target from a `--format json` report: build + trace + analyze, by target string."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise TargetError(f"--shard-timings {path}: cannot read it ({error.strerror or error}); give a report from reslint --format json") from error
    except ValueError as error:
        raise TargetError(f"--shard-timings {path}: not JSON ({error}); give a report from reslint --format json") from error
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, list):
        raise TargetError(f"--shard-timings {path}: no \"targets\" list; give a report from reslint --format json")
    timings: dict[str, float] = {}
    for entry in targets:
        if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
            continue
        spent = entry.get("timings") or {}
        seconds = sum(v for v in spent.values() if isinstance(v, (int, float))) if isinstance(spent, dict) else 0.0
        timings[entry["target"]] = timings.get(entry["target"], 0.0) + float(seconds)
    return timings


def job_name(job) -> str:
    """What a job is sorted by: its target string, then its inputs (the same target at two sizes)."""
    inputs = getattr(job, "inputs", ()) or ()
    return f"{job.target}\0{','.join(inputs)}" if inputs else str(job.target)


def job_seconds(job, timings: dict[str, float]) -> float | None:
    """A job's time in the report: its own target, or the models a bare file named (file.py:Name)."""
    target = str(job.target)
    if target in timings:
        return timings[target]
    parts = [seconds for name, seconds in timings.items() if name.startswith(target + ":")]
    return sum(parts) if parts else None


def split(jobs: Sequence[J], count: int, timings: dict[str, float] | None = None) -> list[list[J]]:
    """All N shards (each in name order): disjoint, together every job, the same on every machine."""
    ordered = sorted(jobs, key=job_name)
    shards: list[list[J]] = [[] for _ in range(count)]
    if not timings:
        for position, job in enumerate(ordered):
            shards[position % count].append(job)
        return shards
    known = [s for s in (job_seconds(j, timings) for j in ordered) if s is not None]
    default = statistics.median(known) if known else 1.0
    cost = {id(job): _or(job_seconds(job, timings), default) for job in ordered}
    load = [0.0] * count
    for job in sorted(ordered, key=lambda j: (-cost[id(j)], job_name(j))):
        lightest = min(range(count), key=lambda k: (load[k], k))
        shards[lightest].append(job)
        load[lightest] += cost[id(job)]
    return [sorted(shard, key=job_name) for shard in shards]


def shard_jobs(jobs: Sequence[J], shard: str, timings_file: str | None = None) -> list[J]:
    """The jobs of shard `K/N` (may be empty: N larger than the number of jobs is allowed)."""
    index, count = parse_shard(shard)
    timings = load_timings(timings_file) if timings_file else None
    return split(jobs, count, timings)[index - 1]


def _or(value: float | None, default: float) -> float:
    return default if value is None else value

