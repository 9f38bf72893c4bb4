"""The driver's view of runs in flight at once: the overall line counts those done and
under way, and each Ray task's progress line says its method, seed, stage and epoch."""
from __future__ import annotations

import time
from types import SimpleNamespace

from nasbench.runner.driver import FINAL, SEARCH, Driver, Job, Overall
from nasbench.store import RunKey

RANDOM, DARTS = RunKey("random", 0, "abc", "npz"), RunKey("darts", 1, "abc", "npz")


def test_the_overall_line_counts_runs_done_and_under_way_where_they_go_at_once():
    said = []
    overall = Overall(2, None, [], said.append, time.perf_counter(), concurrent=True)
    overall.stage(1, RANDOM, SEARCH)
    overall.stage(2, DARTS, SEARCH)
    overall.end(RANDOM, finished=True)
    overall.stage(2, DARTS, FINAL)
    assert [line.split(" (elapsed")[0] for line in said] == [
        "[1/2] random seed 0: search", "[2/2] darts seed 1: search", "[2/2] darts seed 1: final training"]
    assert [line.split("s, ", 1)[1] for line in said] == [
        "0 of 2 done, 1 under way)", "0 of 2 done, 2 under way)", "1 of 2 done, 1 under way)"]


def test_one_run_at_a_time_keeps_the_plain_line():
    said = []
    Overall(1, None, [], said.append, time.perf_counter()).stage(1, RANDOM, SEARCH)
    assert said[0].startswith("[1/1] random seed 0: search (elapsed ") and "done" not in said[0]


def driver(remote: bool) -> Driver:
    return Driver(store=None, request=SimpleNamespace(show_progress=True), executor=SimpleNamespace(remote=remote),
                  data=None, device=None, emit=print, say=print, overall=None)


def test_a_ray_task_has_a_progress_line_of_its_own(monkeypatch, capsys):
    monkeypatch.setenv("NASBENCH_PROGRESS", "1")
    job = Job(1, None, RANDOM, claim=None, release=None)
    ray = driver(remote=True)
    ray.show(job, "candidate 1", 1, 3, "epoch")
    ray.show(job, "candidate 1", 2, 3, "epoch")
    first = job.bar
    ray.show(job, "search", 1, 4, "step")
    assert job.bar is not first
    job.bar.close()
    err = capsys.readouterr().err
    assert "random seed 0: candidate 1: 2/3 epochs done" in err and "random seed 0: search: 1/4 steps done" in err
    assert "/s" not in err  # no rate: the driver hears of an epoch only once it is done


def test_in_process_the_task_draws_its_own_bars(monkeypatch, capsys):
    monkeypatch.setenv("NASBENCH_PROGRESS", "1")
    job = Job(1, None, RANDOM, claim=None, release=None)
    driver(remote=False).show(job, "candidate 1", 1, 3, "epoch")
    assert job.bar is None and capsys.readouterr().err == ""
