"""Comparison of maturity levels: the same line at several tiers, with common random numbers, paired
differences to the first level, Shapley attribution of each step's change to the levers that differ,
and the economics of each step (CNY, per year). :func:`keep_comparison` runs one into the results store,
:func:`load_comparison` reads any stored run back as a :class:`ComparisonResult`.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import twin
from twin.config import LoadedScenario
from twin.config.levers import LEVER_NAMES, Levers
from twin.config.scenario import Scenario
from twin.config.tiers import AS_IS, level_levers, load_preset
from twin.calendar import planned_calendar
from twin.executors import Task, run_tasks
from twin.kpi import ReplicationKpis, estimate
from twin.store import ResultStore, StoreError

ATTRIBUTED_KPIS = ("throughput_per_hour", "oee", "lead_time_mean", "wip_mean", "energy_kwh_per_good_unit",
                   "on_time_rate", "defect_escape_rate")
"""KPIs whose change from one level to the next is attributed to the levers."""
EXACT_UP_TO = 3
"""With at most this many differing levers, Shapley values are exact (all orders); else sampled."""


@dataclass
class ComparisonResult:
    """Replications per level and the attribution of each step between consecutive levels."""

    scenario: Scenario
    seed: int
    levels: list[str]
    levers: dict[str, Levers]
    replications: dict[str, list[ReplicationKpis]]
    attribution: dict[str, dict[str, Any]] = field(default_factory=dict)
    scenario_sha256: str = ""
    interrupted: bool = False

    def line(self, level: str) -> dict[str, dict]:
        reps = self.replications[level]
        keys = reps[0].line if reps else {}
        return {k: estimate([r.line[k] for r in reps]).as_dict() for k in keys}

    def deltas(self, level: str) -> dict[str, dict]:
        """Paired differences level - first level, per KPI, over the replications both have."""
        base = {r.replication: r for r in self.replications[self.levels[0]]}
        pairs = [(r, base[r.replication]) for r in self.replications[level] if r.replication in base]
        keys = pairs[0][0].line if pairs else {}
        return {k: estimate([a.line[k] - b.line[k] for a, b in pairs]).as_dict() for k in keys}

    def economics(self, level: str) -> dict[str, Optional[float]]:
        """Investment, running cost, annual output and margin, cost per unit and payback against the
        previous level (years; None when the step does not pay back)."""
        return _economics(self, level)

    def lever_payback(self, step: str, lever: str) -> Optional[float]:
        """Years until ``lever``'s own extra investment in ``step`` (e.g. ``"basic->advanced"``) pays back:
        its attributed throughput gain (parts/h) x planned hours per year x margin per unit (CNY), less its
        extra running cost per year. None when it never pays back; needs the step's attribution."""
        before, after = step.split("->")
        share = self.attribution[step]["kpis"]["throughput_per_hour"]["shares"][lever]
        old, new = getattr(self.levers[before], lever), getattr(self.levers[after], lever)
        gain = (share * _hours_per_year(self.scenario) * self.scenario.economics.margin_per_unit
                - ((new.running_cost_per_year if new else 0.0) - (old.running_cost_per_year if old else 0.0)))
        return payback_years((new.investment if new else 0.0) - (old.investment if old else 0.0), gain)

    def to_json(self) -> dict[str, Any]:
        levels = {}
        for level in self.levels:
            preset = None if level == AS_IS else load_preset(level)
            levels[level] = {
                "label": preset.label.model_dump() if preset else {"en": "As is", "zh": "现状"},
                "gbt39116_level": preset.gbt39116_level if preset else None,
                "replications": len(self.replications[level]),
                "levers": self.levers[level].model_dump(mode="json"),
                "line": self.line(level),
                "economics": self.economics(level),
            }
        return {
            "scenario": self.scenario.name,
            "meta": {"seed": self.seed, "version": twin.__version__, "scenario_sha256": self.scenario_sha256,
                     "baseline": self.levels[0], "interrupted": self.interrupted},
            "levels": levels,
            "deltas": {level: self.deltas(level) for level in self.levels[1:]},
            "attribution": self.attribution,
        }


def _mean(reps: list[ReplicationKpis], kpi: str) -> Optional[float]:
    return estimate([r.line[kpi] for r in reps]).mean


def payback_years(extra_investment: float, gain_per_year: float) -> Optional[float]:
    """Years for ``gain_per_year`` (CNY/year) to repay ``extra_investment`` (CNY): 0 when nothing extra is
    invested, None when the gain is not positive (it never pays back)."""
    if gain_per_year <= 0:
        return None
    return max(extra_investment, 0.0) / gain_per_year


def _hours_per_year(sc: Scenario) -> float:
    """Planned hours per year of the scenario's calendar."""
    calendar = planned_calendar(sc.calendar)
    return (168.0 if calendar.always else calendar.per_week / 60) * sc.economics.weeks_per_year


def _economics(result: ComparisonResult, level: str) -> dict[str, Optional[float]]:
    sc = result.scenario
    econ = sc.economics
    reps = result.replications[level]
    throughput = _mean(reps, "throughput_per_hour") or 0.0
    units = throughput * _hours_per_year(sc)
    levers = result.levers[level]
    energy_unit = _mean(reps, "energy_cost_per_good_unit")
    out: dict[str, Optional[float]] = {
        "investment": levers.investment(),
        "running_cost_per_year": levers.running_cost_per_year(),
        "good_units_per_year": units,
        "margin_per_year": units * econ.margin_per_unit,
        "energy_cost_per_year": energy_unit * units if energy_unit is not None else None,
        "cost_per_unit": ((levers.running_cost_per_year() + levers.investment() / econ.depreciation_years) / units
                          + (energy_unit or 0.0)) if units else None,
        "payback_years": None,
    }
    index = result.levels.index(level)
    if index > 0:
        prev = _economics(result, result.levels[index - 1])
        gain = (out["margin_per_year"] - prev["margin_per_year"]
                - (out["running_cost_per_year"] - prev["running_cost_per_year"])
                - ((out["energy_cost_per_year"] or 0.0) - (prev["energy_cost_per_year"] or 0.0)))
        out["payback_years"] = payback_years(out["investment"] - prev["investment"], gain)
    return out


def effective_lever(scenario: Scenario, name: str, levers: Levers) -> Any:
    """What of lever ``name`` the engine actually uses on this scenario (costs and levers acting on
    features the line does not have are dropped), so levers that change nothing get no simulations."""
    lever = getattr(levers, name)
    if lever is None:
        return None
    ops = [op for p in scenario.products for op in p.routing]
    if name == "maintenance" and not any(st.failures for st in scenario.stations):
        return None
    if name == "quality" and not any(op.defect > 0 for op in ops):
        return None
    if name == "changeover" and not any(st.setup for st in scenario.stations):
        return None
    if name == "material_flow" and scenario.transport.agv is None:
        return None
    data = lever.model_dump(mode="json", exclude={"investment", "running_cost_per_year"})
    if name == "energy" and data["mode"] in ("none", "metered"):
        data["mode"] = "passive"  # metering changes what is known, not how the line runs
    return data


def _orders(levers: list[str], samples: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    if len(levers) <= EXACT_UP_TO:
        return list(itertools.permutations(levers))
    return [tuple(rng.permutation(levers)) for _ in range(samples)]


def _mixed(a: Levers, b: Levers, taken: frozenset[str]) -> Levers:
    """Levers of ``a`` with those named in ``taken`` set as in ``b``."""
    return a.model_copy(update={name: getattr(b, name) for name in taken})


def run_comparison(scenario: Scenario, levels: list[str], replications: int, seed: int,
                   workers: int = 1, cluster: Optional[str] = None, attribution_reps: int = 3,
                   permutations: int = 4, scenario_sha256: str = "",
                   on_result: Optional[Callable[[Task, ReplicationKpis], None]] = None,
                   on_plan: Optional[Callable[[int], None]] = None,
                   lever_sets: Optional[dict[str, Levers]] = None) -> ComparisonResult:
    """Simulate ``scenario`` at each level (same seeds: common random numbers) and attribute each step.

    The attribution of a step a -> b runs the levers that differ in what the engine does with them (a
    lever on a feature the line lacks, or one differing only in cost, has no effect) in orders: exactly all
    orders when at most three differ, else ``permutations`` orders drawn from the seed. Each lever's
    share is its mean marginal change (its Shapley value); the shares add up to the step's change on
    the first ``attribution_reps`` replications. ``on_plan`` receives the number of simulations.
    ``lever_sets`` gives each level's levers (e.g. candidate upgrades); by default a level is a tier preset
    (or ``as_is``, or a preset file) resolved by ``level_levers``."""
    if lever_sets is None:
        lever_sets = {level: level_levers(scenario, level) for level in levels}
    tasks = [Task((level, r), scenario.model_copy(update={"levers": lever_sets[level]}), r, seed)
             for level in levels for r in range(replications)]
    steps = []
    rng = np.random.default_rng(seed)
    attr_reps = min(attribution_reps, replications)
    for a, b in zip(levels, levels[1:]):
        la, lb = lever_sets[a], lever_sets[b]
        differing = [n for n in LEVER_NAMES if effective_lever(scenario, n, la) != effective_lever(scenario, n, lb)]
        orders = _orders(differing, permutations, rng) if attr_reps else []
        subsets = {frozenset(order[:i]) for order in orders for i in range(1, len(order))}
        step = f"{a}->{b}"
        for subset in sorted(subsets, key=sorted):
            variant = scenario.model_copy(update={"levers": _mixed(la, lb, subset)})
            tasks += [Task((step, tuple(sorted(subset)), r), variant, r, seed) for r in range(attr_reps)]
        steps.append((step, a, b, differing, orders))
    if on_plan is not None:
        on_plan(len(tasks))
    done, interrupted = run_tasks(tasks, workers=workers, cluster=cluster, on_result=on_result)
    result = ComparisonResult(scenario, seed, levels, lever_sets,
                              {level: [done[(level, r)] for r in range(replications) if (level, r) in done]
                               for level in levels},
                              scenario_sha256=scenario_sha256, interrupted=interrupted)
    if not interrupted and attr_reps:
        for step, a, b, differing, orders in steps:
            result.attribution[step] = _attribute(done, a, b, step, differing, orders, attr_reps)
    return result


def _attribute(done: dict, a: str, b: str, step: str, differing: list[str], orders: list[tuple[str, ...]],
               reps: int) -> dict[str, Any]:
    def value(subset: frozenset[str], kpi: str) -> float:
        if not subset:
            keys = [(a, r) for r in range(reps)]
        elif len(subset) == len(differing):
            keys = [(b, r) for r in range(reps)]
        else:
            keys = [(step, tuple(sorted(subset)), r) for r in range(reps)]
        values = [done[k].line[kpi] for k in keys]
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else math.nan

    out: dict[str, Any] = {"levers": differing, "orders": len(orders),
                           "method": "exact" if len(differing) <= EXACT_UP_TO else "sampled", "replications": reps,
                           "kpis": {}}
    for kpi in ATTRIBUTED_KPIS:
        shares = {name: 0.0 for name in differing}
        for order in orders:
            taken: frozenset[str] = frozenset()
            for name in order:
                after = taken | {name}
                shares[name] += (value(after, kpi) - value(taken, kpi)) / len(orders)
                taken = after
        total = value(frozenset(differing), kpi) - value(frozenset(), kpi) if differing else 0.0
        out["kpis"][kpi] = {"total": None if math.isnan(total) else total,
                            "shares": {n: (None if math.isnan(v) else v) for n, v in shares.items()}}
    return out


def keep_comparison(db: ResultStore, loaded: LoadedScenario, levels: list[str], replications: int, seed: int,
                    workers: int = 1, cluster: Optional[str] = None, attribution_reps: int = 3,
                    permutations: int = 4, on_result: Optional[Callable[[Task, ReplicationKpis], None]] = None,
                    on_plan: Optional[Callable[[int], None]] = None) -> tuple[int, ComparisonResult]:
    """:func:`run_comparison` kept in the results store ``db`` as a run of kind ``compare``: each level's
    replications as they finish (attribution variants are not kept), then the attribution, then the status
    ``finished`` or ``interrupted`` (``failed`` if it raised). Returns the run id and the result.
    ``on_result`` and ``on_plan`` are passed on (e.g. to drive a progress bar)."""
    scenario = loaded.scenario
    lever_sets = {level: level_levers(scenario, level).model_dump(mode="json") for level in levels}
    run_id = db.start_run("compare", scenario.name, loaded.sha256, scenario.model_dump_json(), seed,
                          twin.__version__, list(levels), lever_sets, replications)

    def keep(task: Task, kpis: ReplicationKpis) -> None:
        if len(task.key) == 2:  # a level's replication, not an attribution variant
            db.add_replication(run_id, task.key[0], kpis)
        if on_result is not None:
            on_result(task, kpis)

    try:
        result = run_comparison(scenario, list(levels), replications, seed, workers, cluster, attribution_reps,
                                permutations, loaded.sha256, on_result=keep, on_plan=on_plan)
    except BaseException:
        db.finish_run(run_id, "failed")
        raise
    if result.attribution:
        db.save_attribution(run_id, result.attribution)
    db.finish_run(run_id, "interrupted" if result.interrupted else "finished")
    return run_id, result


def load_comparison(db: ResultStore, run_id: int) -> ComparisonResult:
    """A stored run as a :class:`ComparisonResult`: the stored scenario, seed, levels, levers (a
    comparison's per level; a plain or what-if run's own) and replications, and the kept attribution
    ({} when none was kept). Paired deltas and economics are recomputed from the stored replications.
    Raises :class:`twin.store.StoreError` (e.g. :class:`~twin.store.RunNotFoundError`)."""
    meta = db.run(run_id, summary=False)
    scenario = Scenario.model_validate_json(meta["scenario_text"])
    if meta["kind"] == "compare":
        levers = {level: Levers.model_validate(meta["levers"][level]) for level in meta["levels"]}
    else:
        levers = {level: scenario.levers for level in meta["levels"]}
    return ComparisonResult(scenario, meta["seed"], meta["levels"], levers, db.replications_by_level(run_id),
                            db.attribution(run_id), meta["scenario_sha256"],
                            interrupted=meta["status"] == "interrupted")


class ReplayMismatchError(StoreError):
    """A stored replication does not come out as stored when simulated again (another YueTwin version)."""


def level_scenario(meta: dict[str, Any], level: str) -> Scenario:
    """The scenario exactly as level ``level`` of a stored run (``ResultStore.run``) simulated it (a
    comparison replaces the scenario's levers with the level's)."""
    scenario = Scenario.model_validate_json(meta["scenario_text"])
    if meta["kind"] == "compare":
        scenario = scenario.model_copy(update={"levers": Levers.model_validate(meta["levers"][level])})
    return scenario


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def record_replication(path: Path, run_id: int, level: str, replication: int) -> Path:
    """Simulate replication ``replication`` of ``level`` of a stored run again, with the same seed (so the
    same random numbers), writing its event log beside the store (``ResultStore.replication_events_path``)
    under a temporary name renamed when complete; returns the log's path.

    The re-simulated KPIs must equal the stored ones: if they do not (the run was made by another
    YueTwin version), nothing is kept and :class:`ReplayMismatchError` says so. A level or replication the
    run does not have raises :class:`~twin.store.StoreError`."""
    from twin.engine import simulate
    from twin.eventlog import EventLog
    from twin.kpi import replication_kpis

    with ResultStore(path) as db:
        meta = db.run(run_id, summary=False)
        if level not in meta["levels"]:
            raise StoreError(f"run {run_id} has no level '{level}'; its levels are {', '.join(meta['levels'])}")
        stored = {k.replication: k for k in db.replications(run_id, level)}
        target = db.replication_events_path(run_id, level, replication)
    if replication not in stored:
        raise StoreError(f"run {run_id} has no stored replication {replication} of level '{level}'; "
                         f"stored: {', '.join(map(str, sorted(stored))) or 'none'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".parquet")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        events = EventLog(tmp)
        try:
            line = simulate(level_scenario(meta, level), replication, meta["seed"], events)
        finally:
            events.close()
        again = replication_kpis(line, replication).line
        before = stored[replication].line
        differing = [k for k in before if not _same(before[k], again.get(k, math.nan))]
        if differing:
            raise ReplayMismatchError(
                f"replication {replication} of run {run_id} ({level}) does not come out as stored when simulated "
                f"again with YueTwin {twin.__version__} (the run was made with {meta['version']}; "
                f"{', '.join(differing[:3])} differ), so its event log would not belong to the stored KPIs; "
                "run the comparison again with this version")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
