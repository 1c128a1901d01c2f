"""``twin bench``: benchmarks of the dispatching policies on the bundled job-shop instances.

``twin bench jssp --instances ft06,la01,ta01-ta10 --policy mwkr`` runs the policy through the one evaluation
routine (``policies.evaluate.run_episode``) on each instance and reports the makespan and its gap (%) to the
best known upper bound. Register the group on the main app with ``app.add_typer(bench_app, name="bench")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from envs.instances import load_instance, parse_instance_list
from envs.jobshop import JobShopEnv
from policies.cpsat import DEFAULT_TIME_LIMIT, NoScheduleFound
from policies.evaluate import gap_pct, run_episode
from policies.lookup import POLICY_NAMES, default_schedule, load_policy
from twin.console import err, fail, out, progress_bar, save_json

bench_app = typer.Typer(help="Benchmarks of the dispatching policies.", no_args_is_help=True,
                        add_completion=False)


@bench_app.command("jssp")
def jssp(
    instances: str = typer.Option(..., "--instances",
                                  help="Comma-separated bundled instances, ranges allowed: ft06,la01,ta01-ta10."),
    policy_spec: str = typer.Option(..., "--policy", help=f"Policy: {', '.join(POLICY_NAMES)}."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit",
                                               help=f"CP-SAT wall-clock seconds per instance (cpsat; default "
                                                    f"{DEFAULT_TIME_LIMIT:g})."),
    samples: int = typer.Option(1, "--samples", min=1,
                                help="Schedules sampled per instance, the best kept (learned policy)."),
    workers: int = typer.Option(1, "--workers", min=1, help="CP-SAT search threads (cpsat, learned+cpsat)."),
    schedule: Optional[str] = typer.Option(None, "--schedule",
                                           help="non_delay or active (default: non_delay for the rules; "
                                                "active for cpsat, where it replays the solver's schedule)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON here."),
) -> None:
    """Makespan of a policy on standard job-shop instances and its gap (%) to the best known makespan."""

    try:
        names = parse_instance_list(instances)
    except KeyError as exc:
        fail([f"--instances: {exc.args[0]}"])
    if not names:
        fail([f"--instances {instances!r} names no instance; give e.g. ft06,la01,ta01-ta10"])
    try:
        policy = load_policy(policy_spec, time_limit=time_limit, samples=samples, workers=workers)
    except ValueError as exc:
        fail([str(exc)])
    schedule = schedule or default_schedule(policy)
    try:
        JobShopEnv(names[0], schedule=schedule)
    except ValueError as exc:
        fail([f"--schedule: {exc}"])

    results: dict[str, dict[str, Any]] = {}
    sizes: dict[str, str] = {}
    interrupted, problem = False, None
    try:
        with progress_bar() as progress:
            task = progress.add_task(policy.name, total=len(names))
            for name in names:
                instance = load_instance(name)
                sizes[name] = f"{instance.n_jobs}x{instance.n_machines}"
                progress.update(task, description=f"{policy.name} on {name} ({sizes[name]})")
                episode = run_episode(JobShopEnv(instance, schedule=schedule), policy, seed=0)
                makespan = int(episode.makespan)
                results[name] = {"makespan": makespan, "upper_bound": instance.upper_bound,
                                 "lower_bound": instance.lower_bound,
                                 "gap_pct": gap_pct(makespan, instance.upper_bound),
                                 "seconds": episode.wall_seconds}
                progress.advance(task)
    except KeyboardInterrupt:
        interrupted = True
    except NoScheduleFound as exc:
        problem = str(exc)
    if not results:
        fail([problem or "interrupted before the first instance finished; nothing to report"])
    data = {"policy": policy.name, "schedule": schedule,
            "mean_gap_pct": sum(r["gap_pct"] for r in results.values()) / len(results),
            "instances": results, "interrupted": len(results) < len(names)}
    _print_table(data, sizes)
    save_json(json_out, data, f"bench-{policy.name}")
    kept = f"kept {len(results)} of {len(names)} instances"
    if problem is not None:
        fail([f"{problem}; {kept}"])
    if interrupted:
        err.print(f"[yellow]interrupted: {kept}[/]", highlight=False)
        raise typer.Exit(130)


def _print_table(data: dict[str, Any], sizes: dict[str, str]) -> None:
    table = Table(title=f"{data['policy']} ({data['schedule']} schedules): gap to the best known makespan",
                  title_justify="left")
    for column in ("Instance", "Size", "Makespan", "Upper bound", "Gap %", "Seconds"):
        table.add_column(column, justify="left" if column in ("Instance", "Size") else "right")
    for name, row in data["instances"].items():
        table.add_row(name, sizes[name], str(row["makespan"]), str(row["upper_bound"]), f"{row['gap_pct']:.1f}",
                      f"{row['seconds']:.2f}")
    table.add_section()
    table.add_row("mean", "", "", "", f"{data['mean_gap_pct']:.1f}", "")
    out().print(table)
