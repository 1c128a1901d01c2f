"""Roadmap simulation: on the enterprise's own line, the current state and each candidate upgrade (one at a
time, then all together) simulated with common random numbers (the same seed and replication index for
every variant), paired differences with 95% CIs and economics from :mod:`twin.compare`, vouchers as
investment offsets, options ranked by payback and by throughput gain, and the calibration check of the
simulated current state against the KPIs the enterprise reported.

Money in CNY, payback in years, throughput in parts/hour, lead time in minutes, energy in kWh per unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from twin.compare import ComparisonResult, effective_lever, run_comparison
from twin.config import load_scenario
from twin.config.enterprise import EnterpriseProfile, Voucher
from twin.config.levers import Levers
from twin.config.scenario import suggest
from twin.config.tiers import AS_IS, level_levers
from twin.config.loader import Problem, ScenarioError
from twin.diagnose.assessment import Assessment, Candidate
from twin.diagnose.profile import LoadedProfile
from twin.executors import Task
from twin.kpi import ReplicationKpis

COMBINED = "combined"
"""The variant with every candidate upgrade at once."""
CALIBRATED_KPIS = (("output_per_hour", "throughput_per_hour"), ("oee", "oee"),
                   ("defect_rate", "first_pass_yield"), ("energy_kwh_per_unit", "energy_kwh_per_good_unit"),
                   ("lead_time_minutes", "lead_time_mean"))
"""Reported KPI -> simulated line KPI (the defect rate is compared with 1 - first-pass yield)."""


def variant_name(candidate: Candidate) -> str:
    """``lever@tier``, e.g. ``scheduling@advanced``."""
    return f"{candidate.lever}@{candidate.tier}"


def _offset(levers: Levers, lever: str, vouchers: list[Voucher]) -> Levers:
    """``levers`` with the investment of ``lever`` reduced by the vouchers for it (never below 0)."""
    value = getattr(levers, lever)
    subsidy = sum(v.amount for v in vouchers if v.lever == lever)
    if value is None or not subsidy:
        return levers
    offset = value.model_copy(update={"investment": max(0.0, value.investment - subsidy)})
    return levers.model_copy(update={lever: offset})


@dataclass
class Roadmap:
    """The simulated roadmap of one line. ``pairs[variant]`` compares the current state (level ``as_is``)
    with the variant (level ``variant``), so its ``deltas`` are paired and its ``economics`` payback is
    against today."""

    line: str
    scenario: str
    seed: int
    replications: int
    variants: list[str]
    baseline: ComparisonResult
    pairs: dict[str, ComparisonResult]
    not_represented: list[str]
    calibration: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    def current(self) -> dict[str, dict]:
        """Line KPIs of the current state (estimates with CIs)."""
        return self.baseline.line(AS_IS)

    def options(self) -> list[dict[str, Any]]:
        """Each variant's investment (after vouchers), payback and KPI changes against today."""
        out = []
        for name in self.variants:
            pair = self.pairs[name]
            econ = pair.economics(name)
            base = pair.economics(AS_IS)
            deltas = pair.deltas(name)
            out.append({"variant": name, "investment": econ["investment"] - base["investment"],
                        "running_cost_per_year": econ["running_cost_per_year"] - base["running_cost_per_year"],
                        "payback_years": econ["payback_years"],
                        "throughput_gain": deltas["throughput_per_hour"],
                        "lead_time_change": deltas["lead_time_mean"], "oee_change": deltas["oee"]})
        return out

    def by_payback(self) -> list[dict[str, Any]]:
        """Options, quickest payback first; those that never pay back last."""
        return sorted(self.options(), key=lambda o: (o["payback_years"] is None, o["payback_years"] or 0.0))

    def by_gain(self, change: str = "throughput_gain") -> list[dict[str, Any]]:
        """Options, best mean KPI change first: ``throughput_gain`` (largest first) or
        ``lead_time_change`` (most negative first: where output is bound by demand, upgrades show in lead
        time rather than in output)."""
        sign = 1.0 if change == "lead_time_change" else -1.0
        return sorted(self.options(), key=lambda o: sign * (o[change]["mean"] or 0.0))

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "scenario": self.scenario, "seed": self.seed, "replications": self.replications,
                "current": self.current(), "options": self.options(),
                "by_payback": [o["variant"] for o in self.by_payback()],
                "by_gain": [o["variant"] for o in self.by_gain()],
                "by_lead_time": [o["variant"] for o in self.by_gain("lead_time_change")],
                "not_represented": self.not_represented, "calibration": self.calibration,
                "interrupted": self.interrupted}


def calibrate(profile: EnterpriseProfile, line: str, current: dict[str, dict],
              tolerance: float) -> list[dict[str, Any]]:
    """Reported KPIs of ``line`` against the simulated current state: relative mismatch, flagged when
    larger than ``tolerance`` (fraction)."""
    reported = next(item for item in profile.lines if item.name == line).reported
    out = []
    for name, kpi in CALIBRATED_KPIS:
        value = getattr(reported, name)
        simulated = current.get(kpi, {}).get("mean")
        if value is None or simulated is None or not math.isfinite(simulated):
            continue
        if kpi == "first_pass_yield":
            simulated = 1.0 - simulated
        mismatch = abs(simulated - value) / value if value else abs(simulated)
        out.append({"kpi": name, "reported": value, "simulated": simulated, "mismatch": mismatch,
                    "flagged": mismatch > tolerance})
    return out


def simulate_roadmap(loaded: LoadedProfile, assessment: Assessment, tolerance: float, line: Optional[str] = None,
                     replications: int = 3, seed: int = 42, workers: int = 1, overrides: Optional[list[str]] = None,
                     on_result: Optional[Callable[[Task, ReplicationKpis], None]] = None,
                     on_plan: Optional[Callable[[int], None]] = None) -> Roadmap:
    """Simulate the candidate upgrades of ``assessment`` on ``line`` (default: the profile's first line).

    ``overrides`` (``PATH=VALUE``, as ``twin run --set``) change the line scenario, e.g. a shorter
    ``run.length``. Candidates whose lever has no effect on this line (e.g. AGVs on a line without an AGV
    section) are listed in ``not_represented`` and not simulated. Raises :class:`ScenarioError`."""
    profile = loaded.profile
    names = [item.name for item in profile.lines]
    line = line or names[0]
    if line not in loaded.scenario_paths:
        raise ScenarioError([Problem(str(loaded.path), "--line", None, f"no line '{line}'." + suggest(line, names))])
    scenario = load_scenario(loaded.scenario_paths[line], overrides).scenario
    as_is_level = next(item for item in profile.lines if item.name == line).as_is
    current = level_levers(scenario, AS_IS if as_is_level == "scenario" else as_is_level)
    variants: dict[str, Levers] = {}
    not_represented = []
    for candidate in assessment.candidates:
        upgraded = getattr(level_levers(scenario, candidate.tier), candidate.lever)
        levers = current.model_copy(update={candidate.lever: upgraded})
        if effective_lever(scenario, candidate.lever, levers) == effective_lever(scenario, candidate.lever, current):
            not_represented.append(variant_name(candidate))
            continue
        variants[variant_name(candidate)] = _offset(levers, candidate.lever, profile.vouchers)
    if len(variants) > 1:
        combined = current.model_copy(update={name.split("@")[0]: getattr(levers, name.split("@")[0])
                                              for name, levers in variants.items()})
        variants[COMBINED] = combined
    level_levers_map = {AS_IS: current, **variants}
    result = run_comparison(scenario, list(level_levers_map), replications, seed, workers, attribution_reps=0,
                            on_result=on_result, on_plan=on_plan, lever_sets=level_levers_map)
    reps, interrupted = result.replications, result.interrupted
    pairs = {name: ComparisonResult(scenario, seed, [AS_IS, name], {AS_IS: current, name: variants[name]},
                                    {AS_IS: reps[AS_IS], name: reps[name]}, interrupted=interrupted)
             for name in variants}
    baseline = ComparisonResult(scenario, seed, [AS_IS], {AS_IS: current}, {AS_IS: reps[AS_IS]},
                                interrupted=interrupted)
    roadmap = Roadmap(line, scenario.name, seed, replications, list(variants), baseline, pairs, not_represented,
                      interrupted=interrupted)
    if reps[AS_IS]:
        roadmap.calibration = calibrate(profile, line, roadmap.current(), tolerance)
    return roadmap
