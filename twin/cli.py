"""The ``twin`` command line: validate scenarios, run them, print the scenario JSON Schema."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twin.config import ScenarioError, load_scenario
from twin.config.scenario import Scenario
from twin.console import err, fail, fmt_estimate, out, write_json
from twin.robot_cli import robot_cell, robot_cell_problems
from twin.store_cli import runs_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="YueTwin: a digital twin of production lines. Times in minutes.")
app.add_typer(runs_app, name="runs")
app.command("robot-cell")(robot_cell)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Scenario YAML files.")) -> None:
    """Check scenario files; print every problem with file, line, path and fix. Exit 2 if any is bad."""
    problems: list[str] = []
    for file in files:
        try:
            loaded = load_scenario(file)
        except ScenarioError as exc:
            problems += [str(p) for p in exc.problems]
            continue
        out().print(f"[green]ok[/] {file} ({loaded.scenario.name})", highlight=False)
    if problems:
        fail(problems)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (point your editor's YAML plugin at it)."""
    out().print_json(json.dumps(Scenario.model_json_schema(by_alias=True)))


_LINE_ROWS = [
    ("throughput_per_hour", "Throughput", "parts/h"), ("wip_mean", "WIP", "parts"),
    ("lead_time_mean", "Lead time (mean)", "min"), ("lead_time_p95", "Lead time (p95)", "min"),
    ("oee", "OEE (bottleneck × line quality)", ""), ("availability", "Availability", ""),
    ("effectiveness", "Effectiveness", ""), ("quality_ratio", "Quality ratio", ""),
    ("first_pass_yield", "First pass yield", ""), ("scrap_ratio", "Scrap ratio", ""),
    ("energy_kwh_per_good_unit", "Energy per good unit", "kWh"), ("on_time_rate", "On-time delivery", ""),
    ("tardiness_mean", "Mean tardiness", "min"), ("rejection_rate", "Rejected arrivals", ""),
    ("agv_utilization", "AGV utilisation", ""),
]


def _print_tables(data: dict) -> None:
    meta = data["meta"]
    title = f"{data['scenario']} — {meta['reps']} replications, seed {meta['seed']}, mean ± 95% CI half-width"
    line = Table(title=title, title_justify="left")
    line.add_column("Line KPI")
    line.add_column("Value", justify="right")
    line.add_column("Unit")
    for key, label, unit in _LINE_ROWS:
        if data["line"][key]["mean"] is not None:
            line.add_row(label, fmt_estimate(data["line"][key]), unit)
    bottleneck = data["bottleneck"]
    if bottleneck["station"]:
        line.add_row("Bottleneck (active period)", bottleneck["station"], f"{bottleneck['share']:.0%} of reps")
    out().print(line)
    stations = Table(title="Stations: means over replications (fractions of time; CIs in --json)",
                     title_justify="left")
    for col in ("Station", "Util", "Avail", "OEE", "Busy", "Setup", "Idle", "Block", "Down", "Off",
                "Wait min", "Parts/h"):
        stations.add_column(col, justify="left" if col == "Station" else "right")
    for name, k in data["stations"].items():
        f = {state: e["mean"] or 0.0 for state, e in k["state_fractions"].items()}
        cells = [k["utilization"]["mean"], k["availability"]["mean"], k["oee"]["mean"], f["busy"], f["setup"],
                 f["idle"], f["blocked"], f["down"], f["off_shift"] + f["planned_down"]]
        stations.add_row(name, *("-" if c is None else f"{c:.2f}" for c in cells),
                         fmt_estimate({**k["queue_time_mean"], "ci_low": None}),
                         fmt_estimate({**k["throughput_per_hour"], "ci_low": None}))
    out().print(stations)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


@app.command()
def run(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    reps: Optional[int] = typer.Option(None, "--reps", min=1, help="Replications (default: run.replications)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Root seed (default: run.seed)."),
    set_: list[str] = typer.Option([], "--set", help="Override a parameter: PATH=VALUE, e.g. "
                                   "stations.oven.servers=2 (repeatable)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the KPI summary as JSON here."),
    events: Optional[Path] = typer.Option(None, "--events", help="Write the event log (.parquet or .csv)."),
) -> None:
    """Simulate a scenario and print its KPIs with 95% confidence intervals."""
    from twin.experiment import run_experiment

    try:
        loaded = load_scenario(file, set_)
    except ScenarioError as exc:
        fail([str(p) for p in exc.problems])
    problems = robot_cell_problems(loaded)
    if problems:
        fail(problems)
    if events is not None and events.suffix.lower() not in (".parquet", ".csv"):
        fail([f"--events {events}: use a file name ending in .parquet or .csv"])
    scenario = loaded.scenario
    total = reps or scenario.run.replications
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(f"Simulating {scenario.name}", total=total)
        result = run_experiment(scenario, total, seed, events, loaded.sha256,
                                on_replication=lambda _: progress.advance(task))
    if not result.replications:
        fail(["interrupted before the first replication finished; nothing to report"])
    data = _clean(result.to_json())
    _print_tables(data)
    if result.interrupted:
        err.print(f"[yellow]interrupted: kept {len(result.replications)} of {total} replications[/]")
    if json_out is not None:
        try:
            write_json(json_out, data)
        except OSError as exc:
            fallback = Path(tempfile.gettempdir()) / f"{scenario.name}-results.json"
            write_json(fallback, data)
            fail([f"--json {json_out}: cannot write ({exc.strerror}); results saved to {fallback} instead"])
        out().print(f"KPIs written to {json_out}", highlight=False)
    if events is not None:
        out().print(f"Event log written to {events}", highlight=False)
    if result.interrupted:
        raise typer.Exit(130)

