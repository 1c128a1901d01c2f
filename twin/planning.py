"""CP-SAT (OR-Tools) schedules: the project's one way to build them. Two models share the solver setup
(``_solve``) and the resource constraint (``_add_resource``):

* :func:`make_plan`, the optimised plans of the scheduling lever: a schedule of the work in the line,
  made on the live state and followed by the stations until the next re-plan. Times in minutes;
* :func:`solve_jobshop`, the classic n x m job shop (minimise the makespan), for the benchmarks and as the
  expert of the learned dispatcher. Times in the instance's units (minutes for a line).

A resource with one server is disjunctive and gets ``NoOverlap`` (far stronger propagation than a
cumulative of capacity 1); a resource with several servers gets ``Cumulative``.

Line plans: the model works on lots, the units of one order (and product) that stand at the same
operation. Every remaining operation of a lot is an interval of its planned duration (PRI x units) on
its station group; operations follow the routing; an operation under way is finished first. The
objective is total tardiness against the order due dates, plus a small weight on completion times
(which alone orders units without due dates). The solver runs single-threaded with a *deterministic*
time limit, so the same state always gives the same plan, on any machine.

Ctrl-C during a solve stops the search at once and raises KeyboardInterrupt in the caller (CP-SAT's own
SIGINT handler would end the search as if the time limit had been reached, and the caller would go on).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Optional, Protocol

import numpy as np

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

SCALE = 10
"""Line-plan model time unit: 1/SCALE minute."""

SolveStatus = Literal["optimal", "feasible", "unknown"]


def _add_resource(model: cp_model.CpModel, intervals: list[cp_model.IntervalVar], capacity: int) -> None:
    """At most ``capacity`` of ``intervals`` at any time: NoOverlap for one server, else Cumulative."""
    if capacity == 1:
        model.add_no_overlap(intervals)
    else:
        model.add_cumulative(intervals, [1] * len(intervals), capacity)


def _solve(model: cp_model.CpModel, *, time_limit: float, workers: int, deterministic: bool,
           callback: Optional[cp_model.CpSolverSolutionCallback] = None,
           lns_only: bool = False) -> tuple[cp_model.CpSolver, SolveStatus]:
    """Solve ``model`` within ``time_limit`` seconds: deterministic time (about seconds of one core; the
    same model then gives the same answer on any machine when ``workers`` is 1) or wall-clock time.
    Returns the solver (for values and bounds) and the status. Ctrl-C stops the search and raises
    KeyboardInterrupt."""
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    solver.parameters.catch_sigint_signal = False
    solver.parameters.use_lns_only = lns_only
    if deterministic:
        solver.parameters.max_deterministic_time = time_limit
    else:
        solver.parameters.max_time_in_seconds = time_limit
    outcome: list[Any] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(solver.solve(model, callback))
        except BaseException as exc:  # handed to the calling thread below
            outcome.append(exc)
        finally:
            finished.set()

    # The search runs in a thread so that the calling (main) thread stays free to receive Ctrl-C. It waits
    # on an Event: a Thread.join() interrupted by Ctrl-C marks a running thread as stopped (Python 3.11).
    threading.Thread(target=run, name="cp-sat", daemon=True).start()
    try:
        finished.wait()
    except KeyboardInterrupt:
        solver.stop_search()
        finished.wait()
        raise
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible"}.get(outcome[0], "unknown")
    return solver, status


# ----------------------------------------------------------------------------------------- line plans
@dataclass(frozen=True)
class PlanJob:
    """A lot in the line: its key (order id, product index), the remaining operations as (station, planned
    minutes for the whole lot, op index), when its first one can start (minutes) and its due date
    (minutes, inf = none)."""

    key: tuple[int, int]
    ops: tuple[tuple[str, float, int], ...]
    ready: float
    due: float


def make_plan(jobs: list[PlanJob], capacity: dict[str, int], now: float,
              time_limit: float) -> Optional[dict[tuple[int, int, int], float]]:
    """Planned start (minutes) per (order id, product index, op index), or None when the solver found no
    plan within ``time_limit`` (deterministic seconds, one worker). ``capacity`` is the number of servers
    per station. Where two lots of one order pass the same operation, the earlier start is kept."""
    from ortools.sat.python import cp_model

    jobs = [j for j in jobs if j.ops]
    if not jobs:
        return {}
    model = cp_model.CpModel()

    def ticks(minutes: float) -> int:
        return max(0, round((minutes - now) * SCALE))

    horizon = max(ticks(j.ready) for j in jobs) + sum(max(1, round(d * SCALE)) for j in jobs for _, d, _ in j.ops)
    by_station: dict[str, list[cp_model.IntervalVar]] = {}
    starts: dict[tuple[int, int, int], list[cp_model.IntVar]] = {}
    tardiness, completions = [], []
    for job in jobs:
        previous_end = None
        for station, duration, index in job.ops:
            length = max(1, round(duration * SCALE))
            start = model.new_int_var(ticks(job.ready), horizon, "")
            end = model.new_int_var(0, horizon, "")
            by_station.setdefault(station, []).append(model.new_interval_var(start, length, end, ""))
            if previous_end is not None:
                model.add(start >= previous_end)
            previous_end = end
            starts.setdefault(job.key + (index,), []).append(start)
        completions.append(previous_end)
        if math.isfinite(job.due):
            late = model.new_int_var(0, horizon, "")
            model.add(late >= previous_end - ticks(job.due))
            tardiness.append(late)
    for station, intervals in by_station.items():
        _add_resource(model, intervals, capacity[station])
    model.minimize(100 * sum(tardiness) + sum(completions))
    solver, status = _solve(model, time_limit=time_limit, workers=1, deterministic=True)
    if status == "unknown":
        return None
    return {key: now + min(solver.value(v) for v in var) / SCALE for key, var in starts.items()}


# ----------------------------------------------------------------------------------------- job shop
class JobShop(Protocol):
    """What :func:`solve_jobshop` reads of a job shop (``envs.instances.JobShopInstance`` has it)."""

    name: str
    durations: np.ndarray
    """Integer (n_jobs, n_ops): job j's k-th operation takes ``durations[j, k]`` time units."""
    machines: np.ndarray
    """Integer (n_jobs, n_ops): the machine of job j's k-th operation."""


@dataclass(frozen=True)
class JobShopSolution:
    """The best schedule CP-SAT found for a job shop. Times in the instance's units."""

    makespan: Optional[int]
    """Latest end of the schedule; None when no schedule was found in time (status ``unknown``)."""
    start_times: Optional[np.ndarray]
    """int64 (n_jobs, n_ops): start of job j's k-th operation (the layout of ``JobShopEnv.start_times``);
    None when no schedule was found."""
    status: SolveStatus
    """``optimal`` (proven), ``feasible`` (time limit reached with a schedule) or ``unknown`` (none)."""
    lower_bound: int
    """The solver's best proven lower bound of the makespan."""
    seconds: float
    """Wall-clock seconds of building and solving the model."""
    first_makespan: Optional[int]
    """Makespan of the first schedule found: the hint's own when a feasible full hint was given."""


def _check_jobshop_arguments(instance: JobShop, durations: np.ndarray, machines: np.ndarray, time_limit: float,
                             workers: int, hint: Optional[np.ndarray]) -> None:
    """Raise ValueError naming the bad argument, its value and the fix."""
    name = getattr(instance, "name", "job shop")
    if durations.ndim != 2 or durations.shape != machines.shape or durations.size == 0:
        raise ValueError(f"instance {name!r}: durations {durations.shape} and machines {machines.shape} must be "
                         "non-empty 2-D arrays of one shape (n_jobs, n_ops)")
    if (durations < 0).any() or (machines < 0).any():
        raise ValueError(f"instance {name!r}: durations and machine numbers must be >= 0, found "
                         f"{min(durations.min(), machines.min())}")
    if not (isinstance(time_limit, (int, float)) and math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit={time_limit!r} must be a positive number of seconds")
    if not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise ValueError(f"workers={workers!r} must be a positive integer (CP-SAT search threads)")
    if hint is not None:
        if hint.shape != durations.shape:
            raise ValueError(f"hint has shape {hint.shape}; give the start of every operation, shape "
                             f"{durations.shape} (n_jobs, n_ops) of instance {name!r}")
        if (hint < 0).any():
            raise ValueError(f"hint has negative starts (e.g. {hint.min()}): it must be a full schedule, "
                             "not a partly built one (-1 marks unscheduled operations in JobShopEnv)")


def _first_objective_recorder() -> cp_model.CpSolverSolutionCallback:
    """A CP-SAT solution callback whose ``value`` is the objective of the first solution (None before)."""
    from ortools.sat.python import cp_model

    class FirstObjective(cp_model.CpSolverSolutionCallback):
        def __init__(self) -> None:
            super().__init__()
            self.value: Optional[int] = None

        def on_solution_callback(self) -> None:
            if self.value is None:
                self.value = round(self.objective_value)

    return FirstObjective()


def solve_jobshop(instance: JobShop, time_limit: float, workers: int = 1, hint: Optional[np.ndarray] = None,
                  deterministic: bool = False, lns_only: bool = False) -> JobShopSolution:
    """Minimise the makespan of a job shop with CP-SAT: one machine runs one operation at a time
    (NoOverlap per machine), a job's operations run in order, none is interrupted.

    Args:
        instance: the job shop (``envs.instances.JobShopInstance`` or anything with ``durations`` and
            ``machines``); a job may visit a machine more than once.
        time_limit: seconds of search: wall-clock seconds, or deterministic seconds when ``deterministic``.
        workers: CP-SAT search threads (1 is reproducible with ``deterministic``; more search better).
        hint: a full schedule to start from, int (n_jobs, n_ops) start times; the solver begins with it
            when it is feasible (``first_makespan`` then equals its makespan), else only as a search guide.
        deterministic: count ``time_limit`` in deterministic time, so one worker gives the same schedule on
            any machine.
        lns_only: every worker improves the best schedule so far by large neighbourhood search (CP-SAT's
            ``use_lns_only``) instead of CP-SAT's portfolio, whose tree searches find the first schedule
            and prove optimality. With a hint there is a schedule from the start, and on shops of 30 x 20
            and more this finds better schedules within a minute; it seldom proves optimality (status
            mostly ``feasible``, a weak lower bound; ft06 it does prove), and on small shops the
            portfolio is as good or better.
    """
    from ortools.sat.python import cp_model

    started = time.perf_counter()
    durations = np.asarray(instance.durations)
    machines = np.asarray(instance.machines)
    hint = None if hint is None else np.asarray(hint)
    _check_jobshop_arguments(instance, durations, machines, time_limit, workers, hint)
    n_jobs, n_ops = durations.shape
    horizon = int(durations.sum())
    model = cp_model.CpModel()
    starts = [[model.new_int_var(0, horizon, f"s{j}_{k}") for k in range(n_ops)] for j in range(n_jobs)]
    by_machine: dict[int, list[cp_model.IntervalVar]] = {}
    for j in range(n_jobs):
        for k in range(n_ops):
            duration = int(durations[j, k])
            interval = model.new_fixed_size_interval_var(starts[j][k], duration, f"o{j}_{k}")
            by_machine.setdefault(int(machines[j, k]), []).append(interval)
            if k:
                model.add(starts[j][k] >= starts[j][k - 1] + int(durations[j, k - 1]))
    for intervals in by_machine.values():
        _add_resource(model, intervals, 1)
    makespan = model.new_int_var(0, horizon, "makespan")
    for j in range(n_jobs):
        model.add(makespan >= starts[j][-1] + int(durations[j, -1]))
    model.minimize(makespan)
    if hint is not None:
        for j in range(n_jobs):
            for k in range(n_ops):
                model.add_hint(starts[j][k], int(hint[j, k]))
        model.add_hint(makespan, int((hint + durations).max()))
    first = _first_objective_recorder()
    solver, status = _solve(model, time_limit=time_limit, workers=workers, deterministic=deterministic,
                            callback=first, lns_only=lns_only)
    found = status != "unknown"
    bound = solver.best_objective_bound
    return JobShopSolution(
        makespan=round(solver.objective_value) if found else None,
        start_times=(np.array([[solver.value(v) for v in row] for row in starts], dtype=np.int64)
                     if found else None),
        status=status,
        lower_bound=max(0, math.ceil(bound - 1e-6)) if math.isfinite(bound) else 0,
        seconds=time.perf_counter() - started,
        first_makespan=first.value)
