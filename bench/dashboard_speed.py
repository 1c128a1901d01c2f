#!/usr/bin/env python
"""Time to interactive of each dashboard page on a 4-tier x 20-replication comparison of the largest example.

Run from the repository root::

    python bench/dashboard_speed.py                    # builds the comparison (a few minutes on 2 cores)
    python bench/dashboard_speed.py --store S.duckdb   # reuses the newest comparison kept in S.duckdb
    python bench/dashboard_speed.py --quick            # 2 replications, one observed day: a smoke test

The comparison: ``scenarios/aircon_assembly.yaml`` (the largest example: 12 stations, 21 servers, 6
products, conveyors and AGVs) at basic, advanced, excellent and leading, 20 replications each, one week
observed after two days of warm-up (``--weeks`` changes it; ``--full`` keeps the file's own run), lever
attribution on one replication. It is kept in ``--store`` (default: a new file in the system's temp
folder, printed, so that it can be reused).

Each page is then opened in headless Chromium (Debian's chromium and chromium-driver) from this process's
own server, and the seconds until it is interactive -- its main element shown, no Dash callback pending,
every graph drawn -- are printed against the 2 s target. The browser first loads one page so that the
scripts are in its cache, as for anyone who has opened the dashboard before (that first load is printed
too). The line page is timed on the first replication, whose event log `twin compare` keeps (the bench
does the same), and on the first visit of another replication, which is simulated again with its log (a
simulation, not held to the target). The script is a report: it exits 0 whether or not the target is met.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboards import data, harness  # noqa: E402
from dashboards.app import create_app  # noqa: E402
from twin.compare import keep_comparison, record_replication  # noqa: E402
from twin.config import load_scenario  # noqa: E402
from twin.config.tiers import TIERS  # noqa: E402
from twin.store import ResultStore  # noqa: E402

TARGET = 2.0
SCENARIO = ROOT / "scenarios" / "aircon_assembly.yaml"


def build(store: Path, reps: int, weeks: float, full: bool, workers: int) -> int:
    overrides = [] if full else ["run.warmup=2880", f"run.length={weeks * 10080:g}"]
    loaded = load_scenario(SCENARIO, overrides)
    print(f"building: {loaded.scenario.name}, {len(TIERS)} tiers x {reps} replications, "
          f"{loaded.scenario.run.length / 10080:g} week(s) observed, {workers} worker(s) ...", flush=True)
    start = time.perf_counter()
    with ResultStore(store) as db:
        run_id, _ = keep_comparison(db, loaded, list(TIERS), reps, loaded.scenario.run.seed, workers=workers,
                                    attribution_reps=1)
    for tier in TIERS:  # as `twin compare` does: the first replication's event log of every level
        record_replication(store, run_id, tier, 0)
    print(f"built run {run_id} in {time.perf_counter() - start:.0f} s, kept in {store}")
    return run_id


def measure(store: Path, run_id: int) -> list[tuple[str, float]]:
    meta = data.run_meta(store, run_id)
    last = meta["levels"][-1]
    events = ResultStore(store).replication_events_path(run_id, last, 0)
    pages = [("maturity comparison", f"/?run={run_id}", "#kpi-table"),
             ("line (first replication: event log kept by twin compare)", f"/line?run={run_id}&level={last}&rep=0",
              "#line-gantt-graph"),
             ("line, first visit of another replication (simulated again)", f"/line?run={run_id}&level={last}&rep=1",
              "#line-gantt-graph"),
             ("what-if", f"/what-if?run={run_id}", "#whatif-go"),
             ("runs", "/runs", "#runs-table")]
    times = []
    with harness.serve(create_app(store)) as url, harness.chromium() as driver:
        times.append(("first load of the app (scripts not cached)", harness.open_page(driver, f"{url}/runs",
                                                                                      "#runs-table")))
        for name, path, ready in pages:
            times.append((name, harness.open_page(driver, url + path, ready)))
    print(f"event log of the line page: {data.event_rows(events):,} rows in {events}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="Reuse the newest comparison in this results store.")
    parser.add_argument("--run", type=int, help="With --store: the comparison's run id.")
    parser.add_argument("--reps", type=int, default=20, help="Replications per tier (default 20).")
    parser.add_argument("--weeks", type=float, default=1, help="Weeks observed per replication (default 1).")
    parser.add_argument("--full", action="store_true", help="Keep the scenario's own warm-up and length.")
    parser.add_argument("--workers", type=int, default=2, help="Local processes for the simulations.")
    parser.add_argument("--quick", action="store_true", help="2 replications, one observed day.")
    args = parser.parse_args()
    missing = harness.browser_missing()
    if missing:
        print(f"cannot measure: {missing}", file=sys.stderr)
        return 2
    if args.store is not None and args.store.exists():
        store = args.store
        runs = [r for r in data.list_runs(store) if r["kind"] == "compare"]
        if not runs:
            print(f"{store} holds no comparison; leave out --store to build one", file=sys.stderr)
            return 2
        run_id = args.run if args.run is not None else runs[0]["run_id"]
    else:
        store = args.store or Path(tempfile.mkdtemp(prefix="yuetwin-bench-")) / "dashboard.duckdb"
        reps, weeks = (2, 1 / 7) if args.quick else (args.reps, args.weeks)
        run_id = build(store, reps, weeks, args.full, args.workers)
    summary = data.run_summary(store, run_id)
    reps = {lv: s["replications"] for lv, s in summary["summary"].items()}
    print(f"run {run_id}: {summary['scenario']}, replications per level {reps}")
    times = measure(store, run_id)
    width = max(len(name) for name, _ in times)
    print(f"\ntime to interactive per page (target {TARGET:g} s):")
    for name, seconds in times:
        verdict = "" if name.startswith(("first load", "line, first visit")) else (
            "  ok" if seconds <= TARGET else "  OVER")
        print(f"  {name:<{width}}  {seconds:6.2f} s{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
