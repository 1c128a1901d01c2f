"""``twin bench jssp`` as a user runs it, and ``policies.lookup``: known optima, the rules run directly,
exit codes and messages for bad names, Ctrl-C."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envs.jobshop import JobShopEnv
from policies.cpsat import DEFAULT_TIME_LIMIT, CpsatPolicy
from policies.evaluate import run_episode
from policies.lookup import POLICY_NAMES, load_policy
from policies.rules import make_rule
from tests.conftest import interruptible
from twin.cli import app

TWIN = str(Path(sys.executable).with_name("twin"))
BEST_KNOWN = {"ft06": 55, "la01": 666}
"""Proven optimal makespans (Muth & Thompson 1963; Lawrence 1984)."""


def bench(*args: str):
    return CliRunner().invoke(app, ["bench", "jssp", *args])


@pytest.mark.parametrize("policy", ["cpsat", "learned+cpsat"])
def test_cpsat_and_the_hybrid_reach_the_ft06_optimum(tmp_path, policy):
    out = tmp_path / "cpsat.json"
    result = bench("--instances", "ft06", "--policy", policy, "--time-limit", "30", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["instances"]["ft06"]["makespan"] == 55 and data["instances"]["ft06"]["gap_pct"] == 0.0
    assert (data["policy"], data["schedule"], data["mean_gap_pct"]) == (policy, "active", 0.0)
    assert "ft06" in result.stdout and "6x6" in result.stdout


def test_rule_matches_the_rule_run_directly_and_json_shape(tmp_path):
    out = tmp_path / "mwkr.json"
    result = bench("--instances", "ft06,la01", "--policy", "MWKR", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"instances", "mean_gap_pct", "policy", "schedule", "interrupted"}
    assert (data["policy"], data["schedule"], data["interrupted"]) == ("mwkr", "non_delay", False)
    assert list(data["instances"]) == ["ft06", "la01"]
    gaps = []
    for name, row in data["instances"].items():
        assert set(row) == {"makespan", "upper_bound", "lower_bound", "gap_pct", "seconds"}
        direct = run_episode(JobShopEnv(name, schedule="non_delay"), make_rule("mwkr")).makespan
        assert row["makespan"] == direct >= BEST_KNOWN[name]
        assert row["upper_bound"] == row["lower_bound"] == BEST_KNOWN[name]
        assert row["gap_pct"] == pytest.approx(100 * (direct - BEST_KNOWN[name]) / BEST_KNOWN[name])
        assert row["seconds"] >= 0
        gaps.append(row["gap_pct"])
    assert data["mean_gap_pct"] == pytest.approx(sum(gaps) / 2)


@pytest.mark.parametrize("args, message", [
    (["--instances", "ft6", "--policy", "mwkr"], "did you mean ft06"),
    (["--instances", "ft06,ta01-ta99", "--policy", "mwkr"], "unknown job-shop instance 'ta81'"),
    (["--instances", "ft06", "--policy", "mwrk"], "did you mean 'mwkr'"),
    (["--instances", "ft06", "--policy", "nonsense"], "valid policies: fifo, spt"),
    (["--instances", "ft06", "--policy", "spt", "--time-limit", "5"], "applies to cpsat and learned+cpsat only"),
    (["--instances", "ft06", "--policy", "spt", "--samples", "4"], "--samples"),
    (["--instances", "ft06", "--policy", "spt", "--schedule", "actve"], "did you mean 'active'"),
])
def test_bad_input_exits_2_naming_the_fix(args, message):
    result = bench(*args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_load_policy_names():
    assert load_policy(" Spt ").name == "spt"
    assert isinstance(load_policy("cpsat"), CpsatPolicy) and load_policy("cpsat").time_limit == DEFAULT_TIME_LIMIT
    assert load_policy("cpsat", time_limit=2.5).time_limit == 2.5
    with pytest.raises(ValueError, match="did you mean 'cpsat'") as error:
        load_policy("cpsta")
    assert all(name in str(error.value) for name in POLICY_NAMES)
    with pytest.raises(ValueError, match="positive number of seconds"):
        load_policy("cpsat", time_limit=-1)


def test_ctrl_c_keeps_the_finished_instances(tmp_path):
    out = tmp_path / "partial.json"
    with interruptible([TWIN, "bench", "jssp", "--instances", "ft06,ta01", "--policy", "cpsat",
                        "--time-limit", "120", "--json", str(out)]) as proc:
        time.sleep(8)  # ft06 is solved in a fraction of a second; ta01 then runs for up to 120 s
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "kept 1 of 2 instances" in stderr
    assert "ft06" in stdout
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and list(data["instances"]) == ["ft06"]
    assert data["instances"]["ft06"]["makespan"] == 55


def test_no_schedule_in_time_keeps_the_finished_instances_and_exits_2(tmp_path):
    out = tmp_path / "short.json"
    result = bench("--instances", "ft06,ta71", "--policy", "cpsat", "--time-limit", "0.1", "--json", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no schedule for 'ta71' (100x20)" in result.stderr and "kept 1 of 2 instances" in result.stderr
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and list(data["instances"]) == ["ft06"]
