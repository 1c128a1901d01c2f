"""Replications of a scenario and their summary (means with 95% confidence intervals)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import twin
from twin.config.scenario import Scenario
from twin.engine import simulate
from twin.eventlog import EventLog
from twin.executors import Task, run_tasks
from twin.kpi import Estimate, ReplicationKpis, estimate, replication_kpis


@dataclass
class ExperimentResult:
    """Per-replication KPIs of a scenario run; ``interrupted`` when stopped before all replications."""

    scenario: Scenario
    seed: int
    replications: list[ReplicationKpis] = field(default_factory=list)
    scenario_sha256: str = ""
    interrupted: bool = False

    def line(self) -> dict[str, Estimate]:
        keys = self.replications[0].line if self.replications else {}
        return {k: estimate([r.line[k] for r in self.replications]) for k in keys}

    def _per_station(self, table: str) -> dict[str, dict[str, Estimate]]:
        out = {}
        for st in self.scenario.stations:
            rows = [getattr(r, table)[st.name] for r in self.replications]
            out[st.name] = {k: estimate([row[k] for row in rows]) for k in (rows[0] if rows else {})}
        return out

    def stations(self) -> dict[str, dict[str, Estimate]]:
        """Station KPIs across replications."""
        return self._per_station("stations")

    def state_fractions(self) -> dict[str, dict[str, Estimate]]:
        """Share of time per state and station across replications."""
        return self._per_station("state_fractions")

    def bottleneck(self) -> dict[str, Any]:
        """The station most often found as bottleneck, and in what share of replications."""
        counts = Counter(r.bottleneck for r in self.replications)
        if not counts:
            return {"station": None, "share": None, "counts": {}}
        station, n = counts.most_common(1)[0]
        return {"station": station, "share": n / len(self.replications), "counts": dict(counts)}

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``twin run --json``."""
        fractions = self.state_fractions()
        stations = {}
        for name, kpis in self.stations().items():
            stations[name] = {k: e.as_dict() for k, e in kpis.items()}
            stations[name]["state_fractions"] = {k: e.as_dict() for k, e in fractions[name].items()}
        workers = sorted({w for r in self.replications for w in r.workers})
        return {
            "scenario": self.scenario.name,
            "meta": {
                "seed": self.seed,
                "reps": len(self.replications),
                "version": twin.__version__,
                "scenario_sha256": self.scenario_sha256,
                "warmup_minutes": self.scenario.run.warmup,
                "length_minutes": self.scenario.run.length,
                "interrupted": self.interrupted,
            },
            "line": {k: e.as_dict() for k, e in self.line().items()},
            "bottleneck": self.bottleneck(),
            "stations": stations,
            "workers": {w: estimate([r.workers.get(w, float("nan")) for r in self.replications]).as_dict()
                        for w in workers},
        }


def run_experiment(scenario: Scenario, replications: Optional[int] = None, seed: Optional[int] = None,
                   events: Optional[Path] = None, scenario_sha256: str = "",
                   on_replication: Optional[Callable[[ReplicationKpis], None]] = None,
                   workers: int = 1, cluster: Optional[str] = None) -> ExperimentResult:
    """Run replications 0..N-1 of ``scenario`` on ``workers`` local processes or a Dask ``cluster``.
    Ctrl-C stops after the finished replications, which are kept (``interrupted`` is set). ``events``
    streams the event log of every replication to a file; the log is written in this process, so
    replications then run here one after the other."""
    reps = scenario.run.replications if replications is None else replications
    seed = scenario.run.seed if seed is None else seed
    result = ExperimentResult(scenario, seed, scenario_sha256=scenario_sha256)
    if events is None:
        tasks = [Task((r,), scenario, r, seed) for r in range(reps)]
        done, result.interrupted = run_tasks(tasks, workers=workers, cluster=cluster,
                                             on_result=lambda _, k: on_replication and on_replication(k))
        result.replications = list(done.values())
        return result
    log = EventLog(events)
    try:
        for r in range(reps):
            kpis = replication_kpis(simulate(scenario, r, seed, log), r)
            result.replications.append(kpis)
            if on_replication is not None:
                on_replication(kpis)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        log.close()
    return result
