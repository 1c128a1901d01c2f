"""Helpers for the validation suite: closed-form queueing results (computed here, independently of the
engine), scenario builders and the acceptance check.

Acceptance rule for every validated quantity: the analytic value lies inside the 99% Student-t
confidence interval of the mean over replications, AND the relative error of that mean is below 2%.
Times are in minutes, rates per minute unless a name says per hour.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from twin.config.scenario import Scenario
from twin.experiment import ExperimentResult, run_experiment
from twin.kpi import estimate

CONFIDENCE = 0.99
REL_TOL = 0.02


# ------------------------------------------------------------------------------ closed-form results
def mm1(lam: float, mu: float) -> dict[str, float]:
    """M/M/1 (FIFO, infinite buffer): utilisation, Wq, W, L, Lq."""
    assert lam < mu, "M/M/1 needs lam < mu"
    rho = lam / mu
    w = 1.0 / (mu - lam)
    wq = rho / (mu - lam)
    return {"rho": rho, "Wq": wq, "W": w, "L": lam * w, "Lq": lam * wq}


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival has to wait in M/M/c with offered load ``a = lam/mu``."""
    assert 0 < a < c, "Erlang C needs 0 < a < c"
    terms = [1.0]
    for k in range(1, c):
        terms.append(terms[-1] * a / k)  # a^k / k!
    top = terms[-1] * a / c * c / (c - a)  # a^c / c! * c / (c - a)
    return top / (sum(terms) + top)


def mmc(lam: float, mu: float, c: int) -> dict[str, float]:
    """M/M/c (FIFO, infinite buffer): P(wait), Wq = C(c, a) / (c mu - lam), W = Wq + 1/mu, L = lam W."""
    a = lam / mu
    pw = erlang_c(c, a)
    wq = pw / (c * mu - lam)
    w = wq + 1.0 / mu
    return {"rho": a / c, "P_wait": pw, "Wq": wq, "W": w, "L": lam * w}


def mm1k(lam: float, mu: float, k: int) -> dict[str, float]:
    """M/M/1/K loss system (K places including the one in service): blocking probability P_K (= the
    fraction of arrivals turned away, by PASTA) and throughput lam (1 - P_K)."""
    rho = lam / mu
    if math.isclose(rho, 1.0):
        p_k = 1.0 / (k + 1)
        p = [1.0 / (k + 1)] * (k + 1)
    else:
        p_k = (1 - rho) * rho**k / (1 - rho ** (k + 1))
        p = [(1 - rho) * rho**n / (1 - rho ** (k + 1)) for n in range(k + 1)]
    return {"P_K": p_k, "throughput": lam * (1 - p_k), "L": sum(n * pn for n, pn in enumerate(p))}


def mg1(lam: float, mean: float, second_moment: float) -> dict[str, float]:
    """M/G/1 (FIFO, infinite buffer), Pollaczek-Khinchine: Wq = lam E[S^2] / (2 (1 - rho))."""
    rho = lam * mean
    assert rho < 1, "M/G/1 needs rho < 1"
    wq = lam * second_moment / (2 * (1 - rho))
    return {"rho": rho, "Wq": wq, "W": wq + mean, "L": lam * (wq + mean)}


def two_station_blocking(mu1: float, mu2: float, buffer: int) -> dict[str, float]:
    """Two exponential machines in series, the first never starved, ``buffer`` places between them and
    blocking after service. The number n of parts past machine 1 (in the buffer, on machine 2, or held
    by a blocked machine 1) is a birth-death chain on 0..buffer+2 with birth rate mu1 and death rate
    mu2, so p_n is proportional to (mu1/mu2)^n; throughput = mu2 (1 - p_0), machine 1 is blocked a
    fraction p_(buffer+2) of the time and machine 2 idle a fraction p_0."""
    top = buffer + 2
    r = mu1 / mu2
    weights = [r**n for n in range(top + 1)]
    total = sum(weights)
    p = [w / total for w in weights]
    return {"throughput": mu2 * (1 - p[0]), "p_blocked": p[top], "p_starved": p[0]}


def jackson_tandem(lam: float, mus: Sequence[float]) -> dict[str, float]:
    """Tandem of M/M/1 stations with infinite buffers (a Jackson network): each station behaves as an
    independent M/M/1 with arrival rate lam, so W = sum 1/(mu_i - lam) and L = lam W."""
    assert all(lam < mu for mu in mus)
    w = sum(1.0 / (mu - lam) for mu in mus)
    return {"W": w, "L": lam * w, "W_i": [1.0 / (mu - lam) for mu in mus]}


def saturated_failing_machine(process_mean: float, mtbf: float, mttr: float) -> dict[str, float]:
    """A single always-busy machine with time-based failures and preemptive-resume work: the fraction
    of time up is MTBF / (MTBF + MTTR) (alternating renewal process) and work progresses only while
    up, so parts/hour = 60 / E[process time] x MTBF / (MTBF + MTTR) for any process-time law."""
    a = mtbf / (mtbf + mttr)
    return {"availability": a, "throughput_per_hour": 60.0 / process_mean * a}


# ------------------------------------------------------------------------------ scenario builders
def exponential(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def single_product_line(stations: list[dict[str, Any]], routing: list[dict[str, Any]],
                        mean_interarrival: float, *, warmup: float, length: float, replications: int,
                        seed: int, release: Optional[dict[str, Any]] = None, name: str = "validation"
                        ) -> Scenario:
    """One product ``a`` with Poisson orders of one unit each, 24/7 calendar."""
    data: dict[str, Any] = {
        "name": name,
        "run": {"warmup": warmup, "length": length, "replications": replications, "seed": seed},
        "products": [{"name": "a", "routing": routing}],
        "stations": stations,
        "orders": {"arrivals": {"type": "poisson", "mean_interarrival": mean_interarrival},
                   "mix": {"a": 1}},
    }
    if release is not None:
        data["release"] = release
    return Scenario.model_validate(data)


def run(scenario: Scenario) -> tuple[ExperimentResult, str]:
    """Run the scenario's own replications and seed; return the result and a note of the wall and
    CPU seconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_experiment(scenario)
    return result, f"{time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU"


def line_values(result: ExperimentResult, kpi: str) -> list[float]:
    return [r.line[kpi] for r in result.replications]


def station_values(result: ExperimentResult, station: str, kpi: str) -> list[float]:
    return [r.stations[station][kpi] for r in result.replications]


# ------------------------------------------------------------------------------ acceptance
@dataclass
class Checker:
    """Collects comparisons of simulated replication values against analytic values, so that one
    failing quantity does not hide the others; ``assert_all`` fails listing every comparison."""

    title: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def compare(self, label: str, values: Sequence[float], analytic: float,
                rel_tol: float = REL_TOL, confidence: float = CONFIDENCE) -> None:
        est = estimate(list(values), confidence=confidence)
        problems = []
        if est.n != len(values):
            problems.append(f"{len(values) - est.n} replication(s) gave a non-finite value")
        if est.mean is None:
            problems.append("no finite value")
            rel = math.inf
            ci = "n/a"
        else:
            rel = abs(est.mean - analytic) / abs(analytic)
            if est.ci_low is None:
                ci = "n/a (one replication)"
            else:
                ci = f"[{est.ci_low:.6g}, {est.ci_high:.6g}]"
                if not est.ci_low <= analytic <= est.ci_high:
                    problems.append(f"analytic value outside the {confidence:.0%} CI")
            if not rel < rel_tol:
                problems.append(f"relative error {rel:.2%} >= {rel_tol:.0%}")
        mean = "n/a" if est.mean is None else f"{est.mean:.6g}"
        line = (f"{label}: analytic {analytic:.6g}, simulated {mean}, {confidence:.0%} CI {ci}, "
                f"n={est.n}, rel. error {rel:.3%}")
        if problems:
            line += "  <-- FAIL: " + "; ".join(problems)
            self.failures.append(line)
        self.lines.append(line)
        print(f"[{self.title}] {line}")

    def note(self, text: str) -> None:
        self.lines.append(text)
        print(f"[{self.title}] {text}")

    def assert_all(self) -> None:
        assert not self.failures, (f"{self.title}: {len(self.failures)} of the compared quantities "
                                   "fail the acceptance rule (analytic inside the 99% CI and relative "
                                   "error < 2%):\n  " + "\n  ".join(self.lines))
