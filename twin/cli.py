"""The ``twin`` command line: validate scenarios, run them, print the scenario JSON Schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

import twin
from twin.config import LoadedScenario, ScenarioError, load_scenario
from twin.config.scenario import Scenario
from twin.config.tiers import AS_IS, TIERS, level_levers
from twin.executors import ClusterError
from twin.kpi import ReplicationKpis
from twin.store import DEFAULT_STORE, ResultStore, StoreError
from twin.console import err, fail, fmt_estimate, out, progress_bar, save_json, warn
from twin.dashboard_cli import dashboard
from twin.robot_cli import robot_cell, robot_cell_problems
from twin.store_cli import runs_app
from twin.diagnose_cli import diagnose_app
from twin.train_cli import train
from twin.bench_cli import bench_app
from twin.lab_cli import lab_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="YueTwin: a digital twin of production lines. Times in minutes.")
app.add_typer(runs_app, name="runs")
app.add_typer(diagnose_app, name="diagnose")
app.add_typer(lab_app, name="lab")
app.add_typer(bench_app, name="bench")
app.command("robot-cell")(robot_cell)
app.command("dashboard")(dashboard)
app.command("train")(train)


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


def _load(file: Path, set_: list[str], levels: tuple[str, ...] = (AS_IS,)) -> LoadedScenario:
    """A validated scenario whose robot cells can do their tasks and whose learned dispatchers (at each of
    ``levels``) load, or exit 2 naming every problem."""
    try:
        loaded = load_scenario(file, set_)
        lever_sets = [level_levers(loaded.scenario, level) for level in levels]
    except ScenarioError as exc:
        fail([str(p) for p in exc.problems])
    problems = robot_cell_problems(loaded)
    untrained_line = False
    for levers in lever_sets:
        scheduling = levers.scheduling
        if scheduling is not None and scheduling.method == "learned_dispatch":
            from envs.dispatch import DYNAMIC_JOB_SHOP, learned_decider
            from policies.learned import SHIPPED_MODELS, ModelFileError

            try:
                learned_decider(scheduling.model)
            except ModelFileError as exc:
                problems.append(f"{file}: levers.scheduling.model: {exc}; name a shipped model "
                                f"({', '.join(SHIPPED_MODELS)}) or a model file written by `twin train`")
            untrained_line |= scheduling.model in (None, "line") and Path(file).resolve() != DYNAMIC_JOB_SHOP
    if problems:
        fail(problems)
    if untrained_line:
        warn(f"{file}: levers.scheduling: learned_dispatch uses the generic line model, trained on the dynamic job "
             "shop (scenarios/dynamic_job_shop.yaml) only and not validated on this line, where it can leave "
             "orders later than a plain rule; give the line a model of its own: `twin train --env "
             f"yuetwin/Dispatch-v0 --scenario {file} --out MODEL.pt`, named in levers.scheduling.model")
    return loaded


def _start_run(store: Path, kind: str, loaded: LoadedScenario, seed: int, levels: list[str], levers: dict,
               reps: int) -> tuple[ResultStore, int]:
    try:
        db = ResultStore(store)
        return db, db.start_run(kind, loaded.scenario.name, loaded.sha256, loaded.scenario.model_dump_json(),
                                seed, twin.__version__, levels, levers, reps)
    except StoreError as exc:
        fail([str(exc)])


_STORE = typer.Option(DEFAULT_STORE, "--store", help="Results store (DuckDB file) where the run is kept.")
_WORKERS = typer.Option(1, "--workers", min=1, help="Local processes running replications in parallel.")
_CLUSTER = typer.Option(None, "--cluster", help="Dask scheduler address tcp://HOST:PORT to run on.")
_SET = typer.Option([], "--set", help="Override a parameter: PATH=VALUE, e.g. stations.oven.servers=2 (repeatable).")


@app.command()
def run(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    reps: Optional[int] = typer.Option(None, "--reps", min=1, help="Replications (default: run.replications)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Root seed (default: run.seed)."),
    set_: list[str] = _SET,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the KPI summary as JSON here."),
    events: Optional[Path] = typer.Option(None, "--events", help="Write the event log (.parquet or .csv)."),
    keep_events: bool = typer.Option(False, "--keep-events", help="Keep the event log as Parquet beside the store."),
    store: Path = _STORE,
    workers: int = _WORKERS,
    cluster: Optional[str] = _CLUSTER,
) -> None:
    """Simulate a scenario and print its KPIs with 95% confidence intervals; the run is kept in the store."""
    from twin.experiment import run_experiment

    loaded = _load(file, set_)
    if events is not None and events.suffix.lower() not in (".parquet", ".csv"):
        fail([f"--events {events}: use a file name ending in .parquet or .csv"])
    scenario = loaded.scenario
    total = reps or scenario.run.replications
    seed = scenario.run.seed if seed is None else seed
    db, run_id = _start_run(store, "run", loaded, seed, [AS_IS], scenario.levers.model_dump(mode="json"), total)
    if keep_events and events is None:
        events = db.events_path(run_id)

    def keep(kpis: ReplicationKpis) -> None:
        db.add_replication(run_id, AS_IS, kpis)
        progress.advance(task)

    try:
        with progress_bar() as progress:
            task = progress.add_task(f"Simulating {scenario.name}", total=total)
            result = run_experiment(scenario, total, seed, events, loaded.sha256, on_replication=keep,
                                    workers=workers, cluster=cluster)
    except ClusterError as exc:
        db.finish_run(run_id, "failed")
        fail([str(exc)])
    db.finish_run(run_id, "interrupted" if result.interrupted else "finished")
    if not result.replications:
        fail(["interrupted before the first replication finished; nothing to report"])
    data = _clean(result.to_json())
    data["meta"]["run_id"] = run_id
    _print_tables(data)
    out().print(f"Kept as run {run_id} in {store}", highlight=False)
    if result.interrupted:
        err.print(f"[yellow]interrupted: kept {len(result.replications)} of {total} replications[/]")
    save_json(json_out, data, scenario.name)
    if events is not None:
        out().print(f"Event log written to {events}", highlight=False)
    if result.interrupted:
        raise typer.Exit(130)


_COMPARE_ROWS = [row for row in _LINE_ROWS if row[0] != "rejection_rate"] + [
    ("defect_escape_rate", "Defects escaping", ""), ("energy_cost_per_good_unit", "Energy cost per good unit", "CNY")]


@app.command()
def compare(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    levels: str = typer.Option(",".join(TIERS), "--levels", help="Comma-separated tiers (basic, advanced, "
                               "excellent, leading), as_is for the scenario's own levers, or preset .yaml files; "
                               "the first is the baseline."),
    reps: Optional[int] = typer.Option(None, "--reps", min=1, help="Replications per level."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Root seed (default: run.seed)."),
    set_: list[str] = _SET,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write levels, deltas and attribution as JSON."),
    attribution_reps: int = typer.Option(3, "--attribution-reps", min=0,
                                         help="Replications per lever combination for the attribution (0: none)."),
    store: Path = _STORE,
    workers: int = _WORKERS,
    cluster: Optional[str] = _CLUSTER,
    keep_events: bool = typer.Option(True, "--keep-events/--no-keep-events",
                                     help="Keep the event log of each level's first replication beside the "
                                          "store (the dashboard's line page shows it at once)."),
) -> None:
    """Compare maturity levels of a line with common random numbers: KPIs with 95% CIs, paired differences
    to the baseline, the attribution of each step to its levers, and cost and payback."""
    from twin.compare import keep_comparison, record_replication

    names = [x.strip() for x in levels.split(",") if x.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        fail([f"--levels {levels}: give two or more distinct levels, e.g. basic,leading"])
    loaded = _load(file, set_, tuple(names))
    scenario = loaded.scenario
    total = reps or scenario.run.replications
    seed = scenario.run.seed if seed is None else seed
    try:
        db = ResultStore(store)
        with progress_bar() as progress:
            bar = progress.add_task(f"Comparing {scenario.name}", total=None)
            run_id, result = keep_comparison(db, loaded, names, total, seed, workers, cluster, attribution_reps,
                                             on_result=lambda task_, kpis: progress.advance(bar),
                                             on_plan=lambda n: progress.update(bar, total=n))
            if keep_events and not result.interrupted:
                logs = progress.add_task("Keeping the first replication's event log", total=len(names))
                for name in names:
                    record_replication(store, run_id, name, 0)
                    progress.advance(logs)
    except (ClusterError, StoreError) as exc:
        fail([str(exc)])
    if not all(result.replications.values()):
        fail(["interrupted before every level had a replication; nothing to compare"])
    data = _clean(result.to_json())
    data["meta"]["run_id"] = run_id
    _print_comparison(data)
    out().print(f"Kept as run {run_id} in {store}", highlight=False)
    save_json(json_out, data, scenario.name)
    if result.interrupted:
        err.print("[yellow]interrupted: the finished replications are kept; no attribution[/]")
        raise typer.Exit(130)


def _print_comparison(data: dict) -> None:
    levels = list(data["levels"])
    table = Table(title=f"{data['scenario']}: KPIs per level (mean ± 95% CI half-width)", title_justify="left")
    table.add_column("KPI")
    for level in levels:
        label = data["levels"][level]["label"]
        table.add_column(f"{label['en']} {label['zh']}", justify="right")
    for key, label, unit in _COMPARE_ROWS:
        cells = [data["levels"][lv]["line"][key] for lv in levels]
        if all(c["mean"] is None for c in cells):
            continue
        table.add_row(f"{label} ({unit})" if unit else label, *(fmt_estimate(c) for c in cells))
    for key, label in (("investment", "Investment (CNY)"), ("cost_per_unit", "Cost per unit: levers + energy (CNY)"),
                       ("payback_years", "Payback vs previous (years)")):
        values = [data["levels"][lv]["economics"][key] for lv in levels]
        table.add_row(label, *("-" if v is None else f"{v:,.2f}" if key != "investment" else f"{v:,.0f}"
                               for v in values))
    out().print(table)
    base = levels[0]
    deltas = Table(title=f"Paired change against {base} (common random numbers; 95% CI)", title_justify="left")
    deltas.add_column("KPI")
    for level in levels[1:]:
        deltas.add_column(level, justify="right")
    for key, label, unit in _COMPARE_ROWS:
        cells = [data["deltas"][lv][key] for lv in levels[1:]]
        if all(c["mean"] is None for c in cells):
            continue
        deltas.add_row(label, *(fmt_estimate(c) for c in cells))
    out().print(deltas)
    for step, attribution in data["attribution"].items():
        waterfall = Table(title=f"{step}: change attributed to levers ({attribution['method']} Shapley, "
                                f"{attribution['replications']} replications each)", title_justify="left")
        waterfall.add_column("Lever")
        kpis = ("throughput_per_hour", "lead_time_mean", "oee", "energy_kwh_per_good_unit")
        for kpi in kpis:
            waterfall.add_column(kpi, justify="right")
        for lever in attribution["levers"]:
            waterfall.add_row(lever, *(_signed(attribution["kpis"][k]["shares"][lever]) for k in kpis))
        waterfall.add_row("total", *(_signed(attribution["kpis"][k]["total"]) for k in kpis))
        out().print(waterfall)


def _signed(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.3f}"
