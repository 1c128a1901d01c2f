"""Optimised plans for the scheduling lever: a CP-SAT (OR-Tools) schedule of the work in the line, made on
the live state and followed by the stations until the next re-plan. Times in minutes.

The model works on lots: the units of one order (and product) that stand at the same operation form a
job. Every remaining operation of a job is an interval of its planned duration (PRI x units) on its
station group, a cumulative resource with one unit per parallel server; operations follow the routing;
an operation under way is finished first. The objective is total tardiness against
the order due dates, plus a small weight on completion times (which alone orders units without due
dates). The solver runs single-threaded with a *deterministic* time limit, so the same state always gives
the same plan, on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

SCALE = 10
"""Model time unit: 1/SCALE minute."""


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
    plan in time. Where two lots of one order pass the same operation, the earlier start is kept."""
    from ortools.sat.python import cp_model

    jobs = [j for j in jobs if j.ops]
    if not jobs:
        return {}
    model = cp_model.CpModel()

    def ticks(minutes: float) -> int:
        return max(0, round((minutes - now) * SCALE))

    horizon = max(ticks(j.ready) for j in jobs) + sum(max(1, round(d * SCALE)) for j in jobs for _, d, _ in j.ops)
    by_station: dict[str, list] = {}
    starts: dict[tuple[int, int, int], list] = {}
    tardiness, completions = [], []
    for job in jobs:
        previous_end = None
        for station, duration, index in job.ops:
            length = max(1, round(duration * SCALE))
            start = model.NewIntVar(ticks(job.ready), horizon, "")
            end = model.NewIntVar(0, horizon, "")
            by_station.setdefault(station, []).append(model.NewIntervalVar(start, length, end, ""))
            if previous_end is not None:
                model.Add(start >= previous_end)
            previous_end = end
            starts.setdefault(job.key + (index,), []).append(start)
        completions.append(previous_end)
        if math.isfinite(job.due):
            late = model.NewIntVar(0, horizon, "")
            model.Add(late >= previous_end - ticks(job.due))
            tardiness.append(late)
    for station, intervals in by_station.items():
        model.AddCumulative(intervals, [1] * len(intervals), capacity[station])
    model.Minimize(100 * sum(tardiness) + sum(completions))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = time_limit
    solver.parameters.random_seed = 0
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {key: now + min(solver.Value(v) for v in var) / SCALE for key, var in starts.items()}
