"""Executors: the same tasks give bit-identical KPIs in process, on a local process pool and on a Dask
cluster; results come back in task order; progress callbacks run once per task in this process; Ctrl-C
keeps what finished; an unreachable scheduler fails fast with an actionable message.

Real processes and a real ``LocalCluster(processes=True)``: nothing is mocked.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import asdict

import pytest

from twin.config.scenario import Scenario
from twin.executors import ClusterError, ClusterUnreachableError, Task, result_differences, run_one, run_tasks

distributed = pytest.importorskip("distributed")


def line(length: float = 2000, buffer: int = 2, seed: int = 7) -> Scenario:
    """Three stations in a row with exponential times and small buffers (blocking happens)."""
    return Scenario.model_validate({
        "name": "exec_test",
        "run": {"warmup": 100, "length": length, "replications": 1, "seed": seed},
        "products": [{"name": "a", "routing": [
            {"station": "m1", "time": {"dist": "exponential", "mean": 0.8}},
            {"station": "m2", "time": {"dist": "exponential", "mean": 0.9}, "scrap": 0.02},
            {"station": "m3", "time": {"dist": "exponential", "mean": 0.7}},
        ]}],
        "stations": [{"name": "m1"}, {"name": "m2", "buffer": buffer}, {"name": "m3", "buffer": 1}],
        "orders": {"arrivals": {"type": "poisson", "mean_interarrival": 1.0}, "mix": {"a": 1},
                   "due_date": {"allowance": 30}},
    })


def level_tasks(reps: int = 3) -> list[Task]:
    """Two "levels" (buffer 1 and 4 in front of m2) x ``reps`` replications."""
    levels = {"buf1": line(buffer=1), "buf4": line(buffer=4)}
    return [Task((name, r), sc, r, 2024) for name, sc in levels.items() for r in range(reps)]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def inline_results():
    return run_tasks(level_tasks(), workers=1)


def test_inline_runs_every_task_and_replications_differ(inline_results):
    results, interrupted = inline_results
    assert not interrupted
    assert list(results) == [t.key for t in level_tasks()]
    assert results[("buf1", 0)].line != results[("buf1", 1)].line  # the replication number matters
    # Plain data with NaNs in it (no failures -> mtbf undefined), so the comparison must be NaN-aware.
    assert any(v != v for v in results[("buf1", 0)].stations["m1"].values())


def test_differences_are_reported():
    a, _ = run_tasks(level_tasks(1), workers=1)
    b = dict(a)
    b[("buf1", 0)] = run_one(Task(("buf1", 0), line(buffer=1), 0, 2025))  # another seed
    assert result_differences(a, a) == []
    assert result_differences(a, b) and all(d.startswith("('buf1', 0)") for d in result_differences(a, b))


@pytest.mark.parametrize("where", ["pool", "dask_address", "dask_object"])
def test_bit_identical_on_every_executor(where, cluster, inline_results):
    reference, _ = inline_results
    tasks = level_tasks()
    calls: list[tuple[tuple, int]] = []
    kwargs = {"pool": {"workers": 2}, "dask_address": {"cluster": cluster.scheduler_address},
              "dask_object": {"cluster": cluster}}[where]
    results, interrupted = run_tasks(tasks, on_result=lambda t, k: calls.append((t.key, os.getpid())), **kwargs)
    assert not interrupted
    assert list(results) == [t.key for t in tasks]
    assert result_differences(reference, results) == []
    for key in results:  # the same check spelled out on the plain dicts
        a, b = asdict(reference[key]), asdict(results[key])
        assert a.keys() == b.keys()
        assert repr(a) == repr(b)  # repr shows every float digit and 'nan' for NaN
    assert sorted(k for k, _ in calls) == sorted(t.key for t in tasks)  # once per task
    assert {pid for _, pid in calls} == {os.getpid()}  # in this process


@pytest.mark.parametrize("where", ["pool", "dask"])
def test_results_in_task_order_whatever_the_completion_order(where, cluster):
    # Task 0 is long; the other worker finishes short ones first.
    tasks = [Task(("long", 0), line(length=150_000), 0, 1)]
    tasks += [Task(("short", r), line(length=500), r, 1) for r in range(5)]
    seen: list[tuple] = []
    kwargs = {"workers": 2} if where == "pool" else {"cluster": cluster.scheduler_address}
    results, interrupted = run_tasks(tasks, on_result=lambda t, k: seen.append(t.key), **kwargs)
    assert not interrupted
    assert seen[0] != ("long", 0)  # completion order differs from task order (a scheduler may still queue
    # a short task behind the long one on the same worker, so the long one need not be last) ...
    assert list(results) == [t.key for t in tasks]  # ... the results do not
    assert sorted(seen) == sorted(results)
    for task in tasks:
        assert results[task.key].replication == task.replication


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_keeps_finished_tasks_and_stops_promptly(workers, ctrl_c_raises):
    # A short task first, then long ones (about a second each): Ctrl-C comes with the first result,
    # while the other worker is in the middle of a long task and six more are queued.
    tasks = [Task(("rep", 0), line(length=3000), 0, 3)]
    tasks += [Task(("rep", r), line(length=100_000), r, 3) for r in range(1, 8)]
    seen: list[tuple] = []
    stamp: dict[str, float] = {}

    def interrupt_after_first(task, kpis):
        seen.append(task.key)
        if len(seen) == 1:
            stamp["sigint"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal Ctrl-C delivers to this process
            time.sleep(2)  # the KeyboardInterrupt is raised in here

    results, interrupted = run_tasks(tasks, workers=workers, on_result=interrupt_after_first)
    stopped = time.perf_counter() - stamp["sigint"]
    assert interrupted
    assert list(results) == seen == [("rep", 0)]
    assert stopped < 0.9, f"took {stopped:.2f} s to stop after Ctrl-C"  # the running task is abandoned
    alone, _ = run_tasks(tasks[:1])
    assert result_differences(alone, results) == []
    # The pool machinery is fine afterwards.
    again, interrupted = run_tasks(tasks[:3:2] + [Task(("x", 0), line(length=500), 0, 3)], workers=workers)
    assert not interrupted and len(again) == 3


def test_sigint_reaching_pool_workers_does_not_break_the_run():
    """A terminal Ctrl-C goes to the whole process group; the workers leave the decision to the parent."""
    import multiprocessing

    tasks = [Task(("rep", r), line(length=20_000), r, 5) for r in range(6)]
    before = {p.pid for p in multiprocessing.active_children()}  # e.g. the Dask fixture's workers
    hit: list[int] = []

    def sigint_workers(task, kpis):
        if not hit:
            for child in multiprocessing.active_children():
                if child.pid not in before and "Dask" not in child.name:  # this call's pool workers
                    os.kill(child.pid, signal.SIGINT)
                    hit.append(child.pid)

    results, interrupted = run_tasks(tasks, workers=2, on_result=sigint_workers)
    assert len(hit) == 2
    assert not interrupted and list(results) == [t.key for t in tasks]


def test_task_errors_propagate_with_the_task_key():
    bad = Task(("broken", 0), None, 0, 1)  # type: ignore[arg-type]
    with pytest.raises(AttributeError) as info:
        run_tasks([Task(("ok", 0), line(length=200), 0, 1), bad], workers=2)
    assert "('broken', 0)" in "".join(getattr(info.value, "__notes__", []))


def test_duplicate_keys_are_refused():
    task = Task(("same",), line(length=100), 0, 1)
    with pytest.raises(ValueError, match="unique"):
        run_tasks([task, task])


def test_unreachable_scheduler_fails_fast_with_the_fix():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    start = time.perf_counter()
    with pytest.raises(ClusterUnreachableError) as info:
        run_tasks(level_tasks(1), cluster=address, connect_timeout=1.0)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert address in message and "dask scheduler" in message and f"dask worker {address}" in message
    assert isinstance(info.value, ClusterError)
