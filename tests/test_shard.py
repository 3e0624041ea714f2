"""`--shard K/N`: deterministic, disjoint, covering splits of the planned jobs, balanced by timings."""

from __future__ import annotations

import json
import random

import pytest

from reslint.errors import TargetError
from reslint.runner import Job
from reslint.shard import load_timings, parse_shard, shard_jobs, split

JOBS = [Job(f"models/m{i:02d}.py:Net", ("1,3,32,32",) if i % 3 else ()) for i in range(23)]


def names(jobs):
    return sorted((j.target, j.inputs) for j in jobs)


@pytest.mark.parametrize("count", [1, 2, 4, 7, 30])
def test_shards_are_disjoint_and_cover_every_job(count):
    shards = split(JOBS, count)
    assert len(shards) == count
    flat = [j for shard in shards for j in shard]
    assert names(flat) == names(JOBS) and len(flat) == len(JOBS)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_the_split_does_not_depend_on_the_order_jobs_were_planned_in():
    shuffled = JOBS[:]
    random.Random(3).shuffle(shuffled)
    assert [names(s) for s in split(shuffled, 4)] == [names(s) for s in split(JOBS, 4)]


def test_shard_k_of_n_is_one_of_the_splits():
    assert shard_jobs(JOBS, "2/4") == split(JOBS, 4)[1]
    assert shard_jobs(JOBS[:2], "4/4") == []  # more shards than jobs: the rest are empty


@pytest.mark.parametrize("text", ["0/4", "5/4", "4", "a/b", "1/0", ""])
def test_a_bad_shard_is_a_usage_error(text):
    with pytest.raises(TargetError):
        parse_shard(text)


def test_timings_balance_the_shards(tmp_path):
    jobs = [Job(f"m{i}.py:Net") for i in range(8)]
    seconds = {"m0.py:Net": 40.0, "m1.py:Net": 30.0, **{f"m{i}.py:Net": 1.0 for i in range(2, 8)}}
    report = tmp_path / "last.json"
    report.write_text(json.dumps({"reslint": "0.2.0", "findings": [], "targets": [
        {"target": name, "status": "ok", "timings": {"build": s / 2, "trace": s / 4, "analyze": s / 4}} for name, s in seconds.items()]}))
    timings = load_timings(str(report))
    assert timings["m0.py:Net"] == pytest.approx(40.0)
    shards = split(jobs, 2, timings)
    loads = [sum(seconds[j.target] for j in shard) for shard in shards]
    assert sorted(loads) == [36.0, 40.0]  # the two slow ones apart, the small ones filling the gap
    assert names([j for s in shards for j in s]) == names(jobs)
    assert [names(s) for s in split(list(reversed(jobs)), 2, timings)] == [names(s) for s in shards]


def test_a_bare_file_takes_the_time_of_the_models_it_named_and_unknown_jobs_the_median(tmp_path):
    report = tmp_path / "last.json"
    report.write_text(json.dumps({"targets": [
        {"target": "a.py:A", "timings": {"analyze": 10}}, {"target": "a.py:B", "timings": {"analyze": 10}},
        {"target": "b.py:Net", "timings": {"analyze": 1}}, {"target": "c.py:Net", "timings": {"analyze": 3}}]}))
    timings = load_timings(str(report))
    shards = split([Job("a.py"), Job("b.py:Net"), Job("c.py:Net"), Job("new.py:Net")], 2, timings)
    assert names(shards[0]) == names([Job("a.py")])  # 20 s alone; 1 + 3 + median 3 on the other


@pytest.mark.parametrize("content", ["not json", "[]", '{"targets": 3}'])
def test_a_timings_file_that_is_not_a_report_is_a_usage_error(tmp_path, content):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(TargetError):
        load_timings(str(path))
    with pytest.raises(TargetError):
        load_timings(str(tmp_path / "missing.json"))
