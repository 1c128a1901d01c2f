"""The `twin` command as a user runs it: exit codes, messages without tracebacks, JSON shape, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import interruptible

TWIN = str(Path(sys.executable).with_name("twin"))
TINY = """\
name: cli_line
run: {warmup: 100, length: 3000, replications: 3, seed: 5}
products:
  - name: a
    routing:
      - {station: m1, time: {dist: exponential, mean: 1.0}}
      - {station: m2, time: {dist: exponential, mean: 1.2}, scrap: 0.05}
stations:
  - {name: m1, power: {idle: 1, busy: 3}}
  - {name: m2, buffer: 4, power: {idle: 1, busy: 5}}
orders:
  arrivals: {type: poisson, mean_interarrival: 2}
  mix: {a: 1}
  due_date: {allowance: 30}
"""
LINE_KEYS = {"throughput_per_hour", "wip_mean", "lead_time_mean", "oee", "availability", "effectiveness",
             "quality_ratio", "energy_kwh_per_good_unit", "on_time_rate", "tardiness_mean"}


def twin(*args: str, **kw) -> subprocess.CompletedProcess:
    """Run the command in a scratch folder, so its results store stays out of the repository."""
    kw.setdefault("cwd", tempfile.mkdtemp(prefix="twin-cli-"))
    return subprocess.run([TWIN, *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "line.yaml"
    path.write_text(TINY)
    return path


def test_run_writes_the_documented_json(scenario, tmp_path):
    out = tmp_path / "r.json"
    res = twin("run", str(scenario), "--reps", "4", "--seed", "9", "--json", str(out), "--events",
               str(tmp_path / "ev.parquet"))
    assert res.returncode == 0, res.stderr
    assert "Throughput" in res.stdout and "m2" in res.stdout
    data = json.loads(out.read_text())
    assert data["scenario"] == "cli_line"
    assert {"seed", "reps", "version", "scenario_sha256"} <= set(data["meta"])
    assert data["meta"]["reps"] == 4 and data["meta"]["seed"] == 9
    assert LINE_KEYS <= set(data["line"])
    for est in data["line"].values():
        assert set(est) == {"mean", "ci_low", "ci_high", "n"}
    wip = data["line"]["wip_mean"]
    assert wip["ci_low"] <= wip["mean"] <= wip["ci_high"] and wip["n"] == 4
    for station in ("m1", "m2"):
        assert "utilization" in data["stations"][station]
        fractions = data["stations"][station]["state_fractions"]
        assert sum(f["mean"] for f in fractions.values()) == pytest.approx(1.0)
    events = pq.read_table(tmp_path / "ev.parquet")
    assert set(events.column("replication").to_pylist()) == {0, 1, 2, 3}


def test_set_changes_a_parameter_for_a_what_if(scenario, tmp_path):
    base, what_if = tmp_path / "a.json", tmp_path / "b.json"
    assert twin("run", str(scenario), "--json", str(base)).returncode == 0
    assert twin("run", str(scenario), "--set", "stations.m2.servers=2", "--json", str(what_if)).returncode == 0
    a, b = json.loads(base.read_text()), json.loads(what_if.read_text())
    assert a["meta"]["scenario_sha256"] != b["meta"]["scenario_sha256"]
    assert b["line"]["lead_time_mean"]["mean"] < a["line"]["lead_time_mean"]["mean"]


def test_bad_input_exits_2_without_traceback(scenario, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("buffer: 4", "bufer: 4"))
    for args in (["validate", str(bad)], ["run", str(bad)], ["run", str(scenario), "--set", "stations.m3.buffer=1"],
                 ["run", str(tmp_path / "missing.yaml")], ["run", str(scenario), "--events", "x.txt"]):
        res = twin(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr and res.stderr.startswith("error:")
    res = twin("validate", str(bad))
    assert f"{bad}:10: stations[m2].bufer: unknown field 'bufer'. Did you mean 'buffer'?" in res.stderr


def test_validate_accepts_several_files(scenario):
    res = twin("validate", str(scenario), str(scenario))
    assert res.returncode == 0 and res.stdout.count("ok") == 2


def test_schema_is_json():
    res = twin("schema")
    assert res.returncode == 0
    assert "stations" in json.loads(res.stdout)["properties"]


def test_ctrl_c_keeps_finished_replications(scenario, tmp_path):
    out = tmp_path / "partial.json"
    with interruptible([TWIN, "run", str(scenario), "--reps", "100000", "--set", "run.length=20000",
                        "--json", str(out), "--store", str(tmp_path / "s.duckdb")]) as proc:
        time.sleep(6)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    data = json.loads(out.read_text())
    assert data["meta"]["interrupted"] is True and 1 <= data["meta"]["reps"] < 100000
    listed = twin("runs", "list", "--store", str(tmp_path / "s.duckdb"))
    assert listed.returncode == 0 and "interrupted" in listed.stdout
