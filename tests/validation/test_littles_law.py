"""Little's law L = lambda W on every example scenario in ``scenarios/*.yaml``, with each file's own run
settings (warm-up, length, replications, seed), nothing shortened.

L is the time-average WIP of released end units (``wip_mean``); lambda is the rate at which end units
leave the line, good or scrapped (``exit_rate_per_hour`` / 60, per minute); W is the mean time from
release to leaving (``flow_time_mean``). Per replication the reference is lambda_r x W_r; the test
accepts when the mean of those references lies in the 99% confidence interval of ``wip_mean`` across
replications AND the relative error of the mean WIP against it is below 2%.

Little's law holds exactly only up to boundary effects (units in the line at the start and end of the
observation window); with a warm-up long enough to reach steady state these cancel on average.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import pytest

from twin.config import load_scenario
from twin.experiment import run_experiment
from twin.kpi import estimate

from .helpers import Checker, line_values

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
SLOW_SECONDS = 60.0
"""A scenario needing more CPU seconds than this (all of its replications) is reported with a warning.
CPU rather than wall time, so that a busy machine does not trigger it."""

_FILES = sorted(SCENARIO_DIR.glob("*.yaml"))
_PARAMS = [pytest.param(p, id=p.stem) for p in _FILES] or [
    pytest.param(None, id="no-scenarios", marks=pytest.mark.skip(reason=f"no *.yaml in {SCENARIO_DIR}"))]


@pytest.mark.parametrize("path", _PARAMS)
def test_littles_law_on_example_scenario(path: Path):
    scenario = load_scenario(path).scenario
    wall, cpu = time.perf_counter(), time.process_time()
    res = run_experiment(scenario)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    run = scenario.run
    c = Checker(f"Little {path.name}")
    c.note(f"{len(res.replications)} x {run.length:g} min (warm-up {run.warmup:g}), seed {run.seed}, "
           f"{wall:.1f} s wall, {cpu:.1f} s CPU")
    if cpu > SLOW_SECONDS:
        warnings.warn(f"{path.name} took {cpu:.0f} s of CPU (> {SLOW_SECONDS:.0f} s) for its "
                      f"{len(res.replications)} replications; consider a shorter run", UserWarning)

    wip = line_values(res, "wip_mean")
    lam = [x / 60.0 for x in line_values(res, "exit_rate_per_hour")]
    flow = line_values(res, "flow_time_mean")
    if not any(l > 0 and math.isfinite(w) for l, w in zip(lam, flow)):
        pytest.skip(f"{path.name}: no end unit left the line in the observation window")
    lam_w = [l * w for l, w in zip(lam, flow)]
    per_rep = ", ".join(f"{a:.4g}/{b:.4g}" for a, b in zip(wip, lam_w))
    c.note(f"per replication L / lambda W: {per_rep}")
    diff = estimate([a - b for a, b in zip(wip, lam_w)], confidence=0.99)
    if diff.ci_low is not None:  # information only: the paired differences are much tighter
        c.note(f"paired L - lambda W: mean {diff.mean:.4g}, 99% CI [{diff.ci_low:.4g}, {diff.ci_high:.4g}]")
    reference = sum(lam_w) / len(lam_w)
    c.compare("L = wip_mean vs lambda W = exit_rate/60 x flow_time_mean [units]", wip, reference)
    c.assert_all()
