#!/usr/bin/env python
"""Scaling benchmark of the executors: a 4-level x 20-replication comparison run three ways.

Run from the repository root::

    python bench/compare_scaling.py            # full run (about 4 minutes on 2 idle cores)
    python bench/compare_scaling.py --quick    # a few seconds, for a smoke test

The comparison: ``scenarios/smt_line.yaml`` at the four tiers (basic, advanced, excellent, leading: the
levels ``twin compare`` runs), 20 replications each, all with the same root seed (common random numbers
across levels). The run is shortened (``run.warmup=2880``, ``run.length=10080``: two days of warm-up,
one week observed) so that a task takes about 1.3 s on average. The tiers differ a lot in cost -- about
0.3 s (basic), 0.4 s (advanced), 1.5 s (excellent) and 2.9 s (leading) per task here -- and at the
file's own 18,600-minute warm-up even a one-day window averages 1.7 s, hence the shorter warm-up. The
costliest tasks come last in the list, so the parallel runs end with at most one ~3 s task in flight.

The same 80 tasks are timed (wall clock) on

1. ``workers=1``: one after the other in this process;
2. ``workers=2``: a local process pool (its start-up, one forkserver plus two forked workers, is part of
   the timed run, as a user pays it on every call);
3. a ``distributed.LocalCluster(n_workers=2, threads_per_worker=1)``: started once, before any timing
   (its start-up is printed separately), then ``run_tasks(cluster=<its address>)``, so the timed part
   includes connecting a client, as for a remote cluster.

``--rounds N`` repeats the three timings N times, interleaved, and reports the medians (steadier when
other processes share the machine).

Printed: wall times, tasks/s, the speed-up over one worker against the target (>= 1.7x on 2 cores,
PASS/FAIL), the CPUs used during each run by this benchmark, by other processes and left idle (from
/proc on Linux: other processes on the machine skew the figures), a per-level KPI line,
and whether all three runs produced bit-identical KPIs. The script is a report: it exits 0 whether or
not the speed-up target is met; 1 if the results differ between executors, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twin.config import load_scenario  # noqa: E402
from twin.config.tiers import TIERS, level_levers  # noqa: E402
from twin.config.scenario import Scenario  # noqa: E402
from twin.executors import Task, result_differences, run_tasks  # noqa: E402
from twin.kpi import ReplicationKpis  # noqa: E402

TARGET = 1.7
SCENARIO = ROOT / "scenarios" / "smt_line.yaml"
WARMUP = 2_880.0
"""Warm-up minutes per replication (2 days; the file's own is 18,600)."""
LENGTH = 10_080.0
"""Observed minutes per replication (1 week): about 1.3 s per task averaged over the four tiers."""


def build_levels(path: Path, length: Optional[float],
                 warmup: Optional[float] = None) -> tuple[str, dict[str, Scenario]]:
    """The four tiers of the SMT example (the levels ``twin compare`` runs), with a shorter run."""
    run_length = length or LENGTH
    run_warmup = WARMUP if warmup is None else warmup
    scenario = load_scenario(path, [f"run.warmup={run_warmup}", f"run.length={run_length}"]).scenario
    levels = {tier: scenario.model_copy(update={"levers": level_levers(scenario, tier)}) for tier in TIERS}
    return (f"{path.relative_to(ROOT)} at the tiers {', '.join(TIERS)} (warm-up {scenario.run.warmup:g} min, "
            f"length {run_length:g} min)"), levels


def machine_ticks() -> Optional[tuple[int, int]]:
    """(idle, total) CPU time of the whole machine from /proc/stat (Linux), in clock ticks."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])


def own_ticks() -> Optional[int]:
    """CPU ticks of this process and all its descendants (pool workers, the forkserver, Dask workers),
    including those of descendants already reaped, from /proc/<pid>/stat (Linux)."""
    if not os.path.isdir("/proc/self"):
        return None
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                text = handle.read()
            rest = text[text.rindex(")") + 2:].split()
            stats[int(entry)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))  # ppid; u+s+cu+cs time
        except (OSError, ValueError, IndexError):
            continue
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += stats.get(pid, (0, 0))[1]
        stack.extend(children.get(pid, []))
    return total


OTHERS: list[float] = []
"""CPUs used by other processes during each timed run."""
OWN_CPU: dict[str, list[float]] = {}
"""CPU seconds this benchmark's processes used, per executor label."""


def timed(label: str, tasks: list[Task], **kwargs) -> tuple[float, dict[tuple, ReplicationKpis]]:
    """Wall time of one ``run_tasks`` call (progress shown on a terminal only). Also printed, from
    /proc: the mean number of CPUs this benchmark's processes used during the run, what other
    processes used, and what stayed idle -- other processes taking CPU time skew the speed-ups."""
    done = 0
    live = sys.stdout.isatty()

    def progress(task: Task, kpis: ReplicationKpis) -> None:
        nonlocal done
        done += 1
        if live:
            print(f"\r  {label}: {done}/{len(tasks)}", end="", flush=True)

    machine0, own0 = machine_ticks(), own_ticks()
    start = time.perf_counter()
    results, interrupted = run_tasks(tasks, on_result=progress, **kwargs)
    wall = time.perf_counter() - start
    machine1, own1 = machine_ticks(), own_ticks()
    usage = ""
    if machine0 and machine1 and own0 is not None and own1 is not None and machine1[1] > machine0[1]:
        cpus = os.cpu_count() or 1
        scale = cpus / (machine1[1] - machine0[1])
        idle = (machine1[0] - machine0[0]) * scale
        ours = (own1 - own0) * scale
        others = max(cpus - idle - ours, 0.0)
        OTHERS.append(others)
        OWN_CPU.setdefault(label, []).append((own1 - own0) / os.sysconf("SC_CLK_TCK"))
        usage = f"   CPUs: this benchmark {ours:.2f}, other processes {others:.2f}, idle {idle:.2f}"
    print(f"\r  {label}: {len(results)}/{len(tasks)} tasks in {wall:.2f} s{usage}", flush=True)
    if interrupted:
        print(f"interrupted during {label}: {len(results)} of {len(tasks)} tasks finished")
        raise SystemExit(130)
    return wall, results


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="Replications per level (default 20).")
    parser.add_argument("--length", type=float, default=None,
                        help=f"Observed minutes per replication (default {LENGTH:g} for the SMT line).")
    parser.add_argument("--workers", type=int, default=2, help="Local workers and cluster workers (default 2).")
    parser.add_argument("--scenario", type=Path, default=SCENARIO, help="Scenario file (default smt_line.yaml).")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Repeat the three timings this many times, interleaved; report medians.")
    parser.add_argument("--warmup", type=float, default=None,
                        help=f"Warm-up minutes per replication (default {WARMUP:g}).")
    parser.add_argument("--quick", action="store_true",
                        help="3 replications of a 1-day warm-up + 2-day run: a smoke test.")
    args = parser.parse_args()
    reps = 3 if args.quick else args.reps
    length = 2_880.0 if args.quick and args.length is None else args.length
    warmup = 1_440.0 if args.quick and args.warmup is None else args.warmup

    source, levels = build_levels(args.scenario, length, warmup)
    tasks = [Task((level, r), sc, r, sc.run.seed) for level, sc in levels.items() for r in range(reps)]
    print(f"Comparison: {len(levels)} levels x {reps} replications = {len(tasks)} tasks")
    print(f"  scenario: {source}")
    print(f"  levels:   {', '.join(levels)}")
    print(f"  {load()}")
    print()

    from distributed import LocalCluster

    walls: dict[str, list[float]] = {"serial": [], "pool": [], "dask": []}
    runs: dict[str, list[dict[tuple, ReplicationKpis]]] = {"serial": [], "pool": [], "dask": []}
    start = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        startup = time.perf_counter() - start
        print(f"LocalCluster(n_workers={args.workers}, threads_per_worker=1) started in {startup:.2f} s "
              f"(not part of the timings; it idles while the other executors run)")
        for round_no in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"round {round_no} of {args.rounds}")
            for name, label, kwargs in (
                    ("serial", "workers=1", {"workers": 1}),
                    ("pool", f"workers={args.workers}", {"workers": args.workers}),
                    ("dask", "Dask LocalCluster", {"cluster": cluster.scheduler_address})):
                wall, results = timed(label, tasks, **kwargs)
                walls[name].append(wall)
                runs[name].append(results)
            if round_no == 1:
                per_task = walls["serial"][0] / len(tasks)
                note = ("" if 0.5 <= per_task <= 1.5 or args.quick
                        else "  (outside the intended 0.5-1.5 s; adjust --length / --warmup)")
                print(f"  {per_task:.2f} s per task in process{note}")
    print(f"  {load()}")
    t1, t2, t3 = (statistics.median(walls[n]) for n in ("serial", "pool", "dask"))
    serial = runs["serial"][0]

    print()
    what = "median wall s" if args.rounds > 1 else "wall s"
    print(f"{'executor':<34}{what:>14}{'tasks/s':>9}{'speed-up':>10}  target >= {TARGET}x")
    rows = [("workers=1 (in process)", t1), (f"workers={args.workers} (process pool)", t2),
            (f"Dask LocalCluster ({args.workers} workers)", t3)]
    for index, (label, wall) in enumerate(rows):
        speedup = t1 / wall
        verdict = "" if index == 0 else ("PASS" if speedup >= TARGET else "FAIL")
        print(f"{label:<34}{wall:>14.2f}{len(tasks) / wall:>9.2f}{speedup:>9.2f}x  {verdict}")

    if OTHERS and max(OTHERS) > 0.2:
        print(f"warning: other processes used up to {max(OTHERS):.2f} CPUs during the timed runs; the "
              f"speed-ups above understate the executors (rerun on a quiet machine, or with --rounds)")
        serial_cpu = statistics.median(OWN_CPU.get("workers=1", [math.nan]))
        for label in (f"workers={args.workers}", "Dask LocalCluster"):
            cpu = statistics.median(OWN_CPU.get(label, [math.nan]))
            # Not a measurement: what the run would take with its CPUs to itself, if the CPU seconds it
            # needed (work + overhead) spread perfectly over the workers.
            print(f"  {label}: {cpu:.1f} CPU-s against {serial_cpu:.1f} in process -> an estimated "
                  f"{args.workers * serial_cpu / cpu:.2f}x on {args.workers} free CPUs (upper bound, not measured)")

    print()
    print("Per level (mean over replications, workers=1 run):")
    for level in levels:
        reps_k = [serial[(level, r)] for r in range(reps)]
        thr = statistics.fmean(k.line["throughput_per_hour"] for k in reps_k)
        lead = statistics.fmean(k.line["lead_time_mean"] for k in reps_k)
        wip = statistics.fmean(k.line["wip_mean"] for k in reps_k)
        print(f"  {level:<24} throughput {thr:8.3f}/h   lead time {lead:9.1f} min   WIP {wip:8.1f}")

    print()
    identical = True
    for name, label in (("serial", "workers=1"), ("pool", f"workers={args.workers}"), ("dask", "Dask LocalCluster")):
        for round_no, other in enumerate(runs[name], start=1):
            if other is serial:
                continue
            diffs = result_differences(serial, other)
            tag = f"{label} (round {round_no})" if args.rounds > 1 else label
            if diffs:
                identical = False
                print(f"DIFFERENT: workers=1 vs {tag}: {len(diffs)} values differ, e.g.")
                for d in diffs[:5]:
                    print(f"    {d}")
            else:
                print(f"identical: workers=1 vs {tag}: all {len(other)} ReplicationKpis bit-identical "
                      f"(every float, NaN-aware)")
    return 0 if identical else 1


if __name__ == "__main__":  # required: pool and cluster workers are separate processes
    sys.exit(main())
