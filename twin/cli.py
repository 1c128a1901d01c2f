"""The ``twin`` command line: validate scenarios, run them, print the scenario JSON Schema."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from twin.config import ScenarioError, load_scenario
from twin.config.scenario import Scenario

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="YueTwin: a digital twin of production lines. Times in minutes.")
out = Console()
if not out.is_terminal:  # piped or captured: wide enough for the station table
    out = Console(width=120)
err = Console(stderr=True)


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        err.print(Text("error: ", style="bold red") + Text(line), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)
    os.replace(tmp, path)


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
        out.print(f"[green]ok[/] {file} ({loaded.scenario.name})", highlight=False)
    if problems:
        _fail(problems)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (point your editor's YAML plugin at it)."""
    out.print_json(json.dumps(Scenario.model_json_schema(by_alias=True)))


def _fmt(e: dict) -> str:
    mean = e["mean"]
    if mean is None:
        return "-"
    digits = 3 if abs(mean) < 10 else 1
    if e["ci_low"] is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(e['ci_high'] - e['ci_low']) / 2:.{digits}f}"


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
            line.add_row(label, _fmt(data["line"][key]), unit)
    bottleneck = data["bottleneck"]
    if bottleneck["station"]:
        line.add_row("Bottleneck (active period)", bottleneck["station"], f"{bottleneck['share']:.0%} of reps")
    out.print(line)
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
                         _fmt({**k["queue_time_mean"], "ci_low": None}),
                         _fmt({**k["throughput_per_hour"], "ci_low": None}))
    out.print(stations)


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
        _fail([str(p) for p in exc.problems])
    if events is not None and events.suffix.lower() not in (".parquet", ".csv"):
        _fail([f"--events {events}: use a file name ending in .parquet or .csv"])
    scenario = loaded.scenario
    total = reps or scenario.run.replications
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(f"Simulating {scenario.name}", total=total)
        result = run_experiment(scenario, total, seed, events, loaded.sha256,
                                on_replication=lambda _: progress.advance(task))
    if not result.replications:
        _fail(["interrupted before the first replication finished; nothing to report"])
    data = _clean(result.to_json())
    _print_tables(data)
    if result.interrupted:
        err.print(f"[yellow]interrupted: kept {len(result.replications)} of {total} replications[/]")
    if json_out is not None:
        try:
            _write_json(json_out, data)
        except OSError as exc:
            fallback = Path(tempfile.gettempdir()) / f"{scenario.name}-results.json"
            _write_json(fallback, data)
            _fail([f"--json {json_out}: cannot write ({exc.strerror}); results saved to {fallback} instead"])
        out.print(f"KPIs written to {json_out}", highlight=False)
    if events is not None:
        out.print(f"Event log written to {events}", highlight=False)
    if result.interrupted:
        raise typer.Exit(130)

