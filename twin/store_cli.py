"""``twin runs``: list, show and export the runs kept in the results store (see :mod:`twin.store`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from twin.console import fail, fmt_estimate
from twin.console import out as stdout
from twin.store import DEFAULT_STORE, EXPORT_FORMATS, ResultStore, StoreError

runs_app = typer.Typer(help="Stored runs and comparisons.", no_args_is_help=True, add_completion=False)

_STORE_HELP = f"Results store file (default: {DEFAULT_STORE} in the working directory)."


def _open(store: Path) -> ResultStore:
    """Open an existing store; reading commands never create one."""
    if not store.exists():
        fail([f"no results store at {store}; runs are recorded there by `twin run`, "
              "or pass --store PATH to read another file"])
    try:
        return ResultStore(store)
    except StoreError as exc:
        fail([str(exc)])


def _run_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        fail([f"run id '{text}' is not a number; see `twin runs list` for the ids"])


@runs_app.command("list")
def list_(store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP)) -> None:
    """List the stored runs, oldest first."""
    with _open(store) as db:
        try:
            runs = db.list_runs()
        except StoreError as exc:
            fail([str(exc)])
    out = stdout()
    if not runs:
        out.print(f"no runs in {store}", highlight=False)
        return
    table = Table(title=f"Runs in {store}", title_justify="left")
    for col in ("ID", "Kind", "Scenario", "Levels", "Reps", "Seed", "Status", "Started (UTC)", "Scenario hash"):
        table.add_column(col, justify="right" if col in ("ID", "Reps", "Seed") else "left")
    for r in runs:
        planned = r["replications_planned"] * len(r["levels"])
        levels = ", ".join(r["levels"])
        table.add_row(str(r["run_id"]), r["kind"], r["scenario"], levels if len(levels) <= 30 else levels[:29] + "…",
                      f"{r['replications_done']}/{planned}", str(r["seed"]), r["status"],
                      (r["started_at"] or "").replace("T", " ").rstrip("Z"), r["scenario_sha256"][:12])
    out.print(table)


@runs_app.command()
def show(run_id: str = typer.Argument(..., metavar="ID", help="Run id (see `twin runs list`)."),
         store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP)) -> None:
    """Show a run: what was run, and its KPI means ± 95% CI half-width per level."""
    rid = _run_id(run_id)
    with _open(store) as db:
        try:
            run = db.run(rid)
        except StoreError as exc:
            fail([str(exc)])
    out = stdout()
    meta = Table(title=f"Run {rid}", title_justify="left", show_header=False)
    meta.add_column("Field", style="bold")
    meta.add_column("Value", overflow="fold")
    rows = [("Kind", run["kind"]), ("Scenario", run["scenario"]), ("Scenario hash", run["scenario_sha256"]),
            ("Seed", str(run["seed"])), ("YueTwin version", run["version"]), ("Status", run["status"]),
            ("Started (UTC)", run["started_at"]), ("Finished (UTC)", run["finished_at"] or "-"),
            ("Levels", ", ".join(run["levels"])),
            ("Levers", json.dumps(run["levers"], ensure_ascii=False) if run["levers"] else "-"),
            ("Replications", f"{run['replications_done']} of {run['replications_planned']} per level × "
                             f"{len(run['levels'])} level(s)"),
            ("Event log", run["events"] or "-")]
    for key, value in rows:
        meta.add_row(key, value)
    out.print(meta)

    from twin.kpi import LINE_KPIS

    summary = run["summary"]
    levels = run["levels"]
    line = Table(title="Line KPIs: mean ± 95% CI half-width over replications", title_justify="left")
    line.add_column("KPI")
    for level in levels:
        line.add_column(f"{level} (n={summary[level]['replications']})", justify="right")
    keys = list(dict.fromkeys([*LINE_KPIS, *(k for lv in levels for k in summary[lv]["line"])]))
    for key in keys:
        cells = [summary[lv]["line"].get(key) for lv in levels]
        if all(c is None or c["mean"] is None for c in cells):
            continue
        line.add_row(key, *(fmt_estimate(c) if c else "-" for c in cells))
    cells = []
    for lv in levels:
        b = summary[lv]["bottleneck"]
        cells.append(f"{b['station']} ({b['share']:.0%})" if b["station"] else "-")
    line.add_row("bottleneck (share of reps)", *cells)
    out.print(line)

    for level in levels:
        s = summary[level]
        if not s["stations"]:
            continue
        title = "Stations: mean ± 95% CI half-width" + (f" — level {level}" if len(levels) > 1 else "")
        st = Table(title=title, title_justify="left")
        cols = [("utilization", "Util"), ("availability", "Avail"), ("oee", "OEE"),
                ("throughput_per_hour", "Parts/h"), ("queue_time_mean", "Wait min")]
        st.add_column("Station")
        for _, label in cols:
            st.add_column(label, justify="right")
        st.add_column("Bottleneck", justify="right")
        counts = s["bottleneck"]["counts"]
        for name, kpis in s["stations"].items():
            share = counts.get(name, 0) / s["replications"] if s["replications"] else 0.0
            st.add_row(name, *(fmt_estimate(kpis[k]) if k in kpis else "-" for k, _ in cols),
                       f"{share:.0%}" if share else "")
        out.print(st)
    if run["status"] == "running":
        out.print("[yellow]status running: the run is still going, or its process was killed "
                  "(its finished replications are kept)[/]")


@runs_app.command()
def export(run_id: str = typer.Argument(..., metavar="ID", help="Run id (see `twin runs list`)."),
           fmt: str = typer.Option(..., "--format", metavar="csv|parquet", help="File format: csv or parquet."),
           out_dir: Path = typer.Option(Path("."), "--out", help="Folder for the files (default: here)."),
           store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP)) -> None:
    """Write a run's KPIs per replication: run-ID-line, -stations, -states and -workers files."""
    rid = _run_id(run_id)
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        fail([f"--format {fmt}: use csv or parquet"])
    with _open(store) as db:
        try:
            paths = db.export(rid, fmt, out_dir)
        except StoreError as exc:
            fail([str(exc)])
    out = stdout()
    for path in paths:
        out.print(f"wrote {path}", highlight=False)

