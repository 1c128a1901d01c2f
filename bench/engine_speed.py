#!/usr/bin/env python
"""Engine speed benchmark: YueTwin against a minimal hand-written SimPy model of the same line.

Run from the repository root::

    python bench/engine_speed.py            # full run (about 1-3 minutes)
    python bench/engine_speed.py --quick    # short run (seconds), for a smoke test

What it measures (times in minutes of simulated time, wall time in seconds):

1. **Tandem line, side by side.** A 10-station serial line, one server per station, an input buffer of
   5 parts in front of every station, blocking after service (a finished part stays on its machine until
   the next buffer has a slot), exponential processing times with one bottleneck, and a saturated source
   (the first station never starves). The same system is built twice:

   * in YueTwin, from a scenario: one schedule order at time 0 for more units than the line can make,
     released by ``push``; the units wait at the door of the first station;
   * as the plainest correct SimPy model: one process per station, ``simpy.Store`` buffers of capacity
     5 (``get`` -> ``timeout`` -> ``put``; the ``put`` waits while the store is full, which *is*
     blocking after service), and a first station that always has a part.

   Both draw processing times from numpy ``Generator`` objects in blocks of 512, the way YueTwin's
   samplers do. The two models are first checked to be the same system: with constant times the number
   of good parts is known exactly and both must hit it; with exponential times both throughputs must
   agree within statistical noise (batch means, |z| < 4). Then they are timed alternately (interleaved
   rounds, median wall time per model). Printed: wall and CPU time, SimPy events processed, events/s,
   parts/s, and the ratio YueTwin time / minimal time against the target of at most 1.5 (the CPU-time
   ratio is printed next to it: steadier when the machine is busy).

   Events are counted without touching either model: every ``Environment.schedule`` call draws an id
   from ``env._eid`` (an ``itertools.count``), so after a run ``next(env._eid)`` is the number of events
   scheduled, minus those still queued = events processed. This costs nothing during the timed run.

   The same YueTwin run is repeated with the event log streaming to a temporary Parquet file (extra
   line, no target).

2. **SMT example, one year.** ``scenarios/smt_line.yaml`` (skipped with a message if absent) with the run
   length set to 525,600 minutes and no warm-up, one replication, in a child process so its memory is
   measured alone: simulated minutes (and days) per wall-clock second, events/s, peak RSS of the child,
   and the tracemalloc peak of a second, traced run (made only if the untraced one took at most
   ``--trace-limit`` CPU seconds, as tracing slows the engine several times over).

The script is a report: it exits 0 whether or not the speed target is met (the PASS/FAIL line says
which). It exits 1 only if the two models do not behave as the same system, since the timing would
then compare different things.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import simpy  # noqa: E402

from twin.config import load_scenario  # noqa: E402
from twin.config.scenario import Scenario  # noqa: E402
from twin.engine import simulate  # noqa: E402
from twin.eventlog import EventLog  # noqa: E402

# --------------------------------------------------------------------------------------- the line
STATIONS = 10
BUFFER = 5
"""Input buffer capacity in front of every station (parts waiting, not counting the one in service)."""
BOTTLENECK = 4
EXP_MEANS = tuple(1.0 if i == BOTTLENECK else 0.8 for i in range(STATIONS))
"""Mean processing times (minutes) of the exponential line; the bottleneck bounds throughput by 1/min."""
CONST_TIMES = tuple(1.0 if i == BOTTLENECK else 0.5 for i in range(STATIONS))
"""Constant processing times of the exactness check."""
TARGET_RATIO = 1.5
YEAR = 525_600.0
BLOCK = 512
Z_LIMIT = 4.0


def expected_constant_good(length: float) -> int:
    """Good parts out of the constant-time line by ``length``: the first part leaves after the sum of the
    times, then one every bottleneck time (upstream is faster, so the bottleneck never starves; downstream
    is faster, so it never blocks). The times are chosen so that no exit falls exactly on ``length``."""
    first = sum(CONST_TIMES)
    cycle = max(CONST_TIMES)
    return 0 if length < first else math.floor((length - first) / cycle) + 1


def events_processed(env: simpy.Environment) -> int:
    """Events the environment has processed: ids handed out by ``schedule`` minus those still queued."""
    return next(env._eid) - len(env._queue)


# --------------------------------------------------------------------------------------- YueTwin
def yuetwin_scenario(length: float, exponential: bool, seed: int = 1) -> Scenario:
    """The tandem line as a YueTwin scenario; saturated by one order at time 0 for more units than fit."""
    if exponential:
        times = [{"dist": "exponential", "mean": m} for m in EXP_MEANS]
        bound = max(EXP_MEANS)
    else:
        times = list(CONST_TIMES)
        bound = max(CONST_TIMES)
    quantity = int(1.2 * length / bound) + 1_000
    return Scenario.model_validate({
        "name": "tandem10",
        "description": "Benchmark: 10 stations in series, buffers of 5, blocking after service.",
        "run": {"warmup": 0, "length": length, "replications": 1, "seed": seed},
        "products": [{"name": "part", "routing": [
            {"station": f"s{i}", "time": t} for i, t in enumerate(times)]}],
        "stations": [{"name": f"s{i}", "servers": 1, "buffer": BUFFER} for i in range(STATIONS)],
        "orders": {"arrivals": {"type": "schedule",
                                "orders": [{"time": 0, "product": "part", "quantity": quantity}]}},
        "release": {"policy": "push"},
    })


class Result:
    """One run of either model."""

    def __init__(self, wall: float, cpu: float, good: int, events: int, exits: list[float],
                 saturated: bool = True, log_rows: int = 0, log_bytes: int = 0):
        self.wall = wall
        self.cpu = cpu
        self.good = good
        self.events = events
        self.exits = exits
        self.saturated = saturated
        self.log_rows = log_rows
        self.log_bytes = log_bytes


def run_yuetwin(sc: Scenario, log_dir: Optional[str] = None) -> Result:
    log = EventLog(Path(log_dir) / "tandem_events.parquet") if log_dir else None
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    line = simulate(sc, 0, log=log)
    if log is not None:
        log.close()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    # every unit arrived at time 0, so its lead time is its exit time
    exits = line.lead_times
    assert len(exits) == line.good, "lead_times and good disagree"
    # the line holds at most STATIONS * (BUFFER + 1) units (one on each machine, blocked or busy); any
    # more left over were still waiting at the door at the end, so they waited all along
    quantity = sc.orders.arrivals.orders[0].quantity
    saturated = quantity - line.good > STATIONS * (BUFFER + 1)
    rows = log.rows if log is not None else 0
    size = log.path.stat().st_size if log is not None else 0
    return Result(wall, cpu, line.good, events_processed(line.env), exits, saturated, rows, size)


# --------------------------------------------------------------------------------------- minimal SimPy
def block_sampler(draw: Callable[[int], np.ndarray]) -> Callable[[], float]:
    """Draws made ``BLOCK`` at a time, handed out one by one (as YueTwin's samplers do)."""
    def blocks():
        while True:
            yield from draw(BLOCK).tolist()
    return blocks().__next__


def run_minimal(length: float, exponential: bool, seed: int = 1) -> Result:
    """The plainest correct SimPy model of the same line."""
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    env = simpy.Environment()
    buffers = [simpy.Store(env, capacity=BUFFER) for _ in range(STATIONS - 1)]
    exits: list[float] = []

    def station(i: int, sample: Callable[[], float]):
        inbox = buffers[i - 1] if i > 0 else None
        outbox = buffers[i] if i < STATIONS - 1 else None
        part = None
        while True:
            if inbox is not None:
                part = yield inbox.get()       # starved while the input buffer is empty
            yield env.timeout(sample())
            if outbox is not None:
                yield outbox.put(part)         # blocked while the next buffer is full
            else:
                exits.append(env.now)

    for i in range(STATIONS):
        if exponential:
            rng = np.random.default_rng([seed, i])
            sample = block_sampler(lambda n, rng=rng, mean=EXP_MEANS[i]: rng.exponential(mean, n))
        else:
            sample = (lambda value: lambda: value)(CONST_TIMES[i])
        env.process(station(i, sample))
    env.run(until=length)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return Result(wall, cpu, len(exits), events_processed(env), exits)


# --------------------------------------------------------------------------------------- statistics
def rate_with_se(exits: list[float], length: float, batches: int = 20) -> tuple[float, float]:
    """Throughput (parts/min) and its standard error by non-overlapping batch means."""
    counts, _ = np.histogram(np.asarray(exits), bins=batches, range=(0.0, length))
    rates = counts / (length / batches)
    return len(exits) / length, float(rates.std(ddof=1) / math.sqrt(batches))


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


# --------------------------------------------------------------------------------------- SMT year
def _status_bytes(key: str) -> Optional[int]:
    """A memory figure from /proc/self/status (Linux), in bytes; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith(key + ":"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def smt_child(path: str, length: float, trace: bool, trace_limit: float) -> None:
    """Run in a fresh process: one replication of the SMT scenario; prints a JSON line.

    Peak RSS is the kernel's high-water mark (VmHWM), reset just before the run, so it is the peak of
    the run itself (imports and loading included in the baseline). ``ru_maxrss`` is reported as well;
    on Linux it is inherited across fork/exec and may show the parent's peak instead."""
    sc = load_scenario(path).scenario
    sc = sc.model_copy(update={"run": sc.run.model_copy(update={"length": length, "warmup": 0.0})})
    gc.collect()
    rss_before = _status_bytes("VmRSS")
    reset = _reset_peak_rss()
    c0 = time.process_time()
    t0 = time.perf_counter()
    line = simulate(sc, 0)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out = {
        "scenario": sc.name, "length": length, "wall": wall, "cpu": cpu, "good": line.good,
        "events": events_processed(line.env),
        "rss_before": rss_before,
        "rss_peak": _status_bytes("VmHWM") if reset else None,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "traced_peak": None, "traced_wall": None,
    }
    del line
    if trace and cpu <= trace_limit:
        gc.collect()
        tracemalloc.start()
        t0 = time.perf_counter()
        simulate(sc, 0)
        out["traced_wall"] = time.perf_counter() - t0
        out["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps(out))


def smt_section(path: Path, length: float, trace_limit: float) -> None:
    print()
    print(f"SMT example: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}, "
          f"{length:,.0f} simulated minutes ({length / 1440:,g} days), warm-up 0, replication 0")
    if not path.exists():
        print(f"  SKIPPED: {path} not found (the SMT example scenario is not there yet)")
        return
    cmd = [sys.executable, str(Path(__file__).resolve()), "--smt-child", str(path),
           "--smt-length", repr(length), "--trace-limit", repr(trace_limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  ERROR: the SMT run failed (exit code {proc.returncode}):")
        for ln in (proc.stderr or proc.stdout).strip().splitlines()[-15:]:
            print(f"    {ln}")
        return
    r = json.loads(lines[-1])
    wall = r["wall"]
    print(f"  wall time               {wall:10.2f} s   (CPU {r['cpu']:.2f} s; {r['good']:,} good parts, {r['events']:,} events, "
          f"{r['events'] / wall:,.0f} events/s)")
    print(f"  simulated time / wall   {length / wall:12,.0f} sim-min/s  = {length / wall / 1440:,.1f} sim-days/s"
          f"  ({'one year' if length == YEAR else 'this run'} in {wall:.1f} s)")
    if r["rss_peak"] is not None:
        print(f"  peak RSS during the run {mib(r['rss_peak']):>12}   (RSS after imports and loading "
              f"{mib(r['rss_before'])}: the run adds {mib(r['rss_peak'] - r['rss_before'])})")
    else:
        print(f"  peak RSS (ru_maxrss)    {mib(r['ru_maxrss']):>12}   (process peak, imports included)")
    if r["traced_peak"] is not None:
        print(f"  tracemalloc peak        {mib(r['traced_peak']):>12}   (second run under tracemalloc, "
              f"{r['traced_wall']:.1f} s)")
    else:
        print(f"  tracemalloc peak        skipped: the untraced run took {r['cpu']:.0f} CPU s "
              f"(> {trace_limit:.0f} s; raise --trace-limit)")


# --------------------------------------------------------------------------------------- main
def check_same_system(length: float) -> bool:
    """Constant times: both models must produce exactly the known count. Exponential: agree within noise."""
    ok = True
    want = expected_constant_good(length)
    yt = run_yuetwin(yuetwin_scenario(length, exponential=False))
    mn = run_minimal(length, exponential=False)
    verdict = "OK" if yt.good == want == mn.good and yt.saturated else "FAIL"
    ok &= verdict == "OK"
    print(f"  constant times, {length:,.0f} min: known good = {want:,}; YueTwin {yt.good:,}, "
          f"minimal {mn.good:,}  -> {verdict}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (smoke test)")
    ap.add_argument("--length", type=float, help="tandem line simulated minutes (default 100,000; quick 10,000)")
    ap.add_argument("--rounds", type=int, help="interleaved timing rounds per model (default 3; quick 2)")
    ap.add_argument("--smt", type=Path, default=ROOT / "scenarios" / "smt_line.yaml", help="SMT scenario file")
    ap.add_argument("--smt-length", type=float, help="SMT simulated minutes (default one year; quick 30 days)")
    ap.add_argument("--trace-limit", type=float, default=12.0,
                    help="skip the tracemalloc run of the SMT year if the untraced run took more CPU "
                         "seconds than this (tracing is several times slower)")
    ap.add_argument("--smt-child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.smt_child:
        smt_child(args.smt_child, args.smt_length or YEAR, True, args.trace_limit)
        return 0

    length = args.length or (10_000.0 if args.quick else 100_000.0)
    rounds = args.rounds or (2 if args.quick else 3)
    smt_length = args.smt_length or (30 * 1440.0 if args.quick else YEAR)

    print(f"YueTwin engine speed  (Python {sys.version.split()[0]}, SimPy {simpy.__version__}, "
          f"numpy {np.__version__}{', QUICK' if args.quick else ''})")
    print()
    print(f"Tandem line: {STATIONS} stations in series, input buffers of {BUFFER}, blocking after service, "
          f"saturated source")
    print(f"  exponential means {EXP_MEANS[0]} min, bottleneck s{BOTTLENECK} {EXP_MEANS[BOTTLENECK]} min; "
          f"{length:,.0f} simulated minutes; {rounds} interleaved rounds")

    print("Same system?")
    same = check_same_system(min(length, 10_000.0) + 0.25)

    yt_runs: list[Result] = []
    mn_runs: list[Result] = []
    sc = yuetwin_scenario(length, exponential=True)
    for r in range(rounds):  # alternate which model goes first
        order = (("mn", "yt") if r % 2 == 0 else ("yt", "mn"))
        for which in order:
            if which == "yt":
                yt_runs.append(run_yuetwin(sc))
            else:
                mn_runs.append(run_minimal(length, exponential=True))
    yt, mn = yt_runs[0], mn_runs[0]

    yt_rate, yt_se = rate_with_se(yt.exits, length)
    mn_rate, mn_se = rate_with_se(mn.exits, length)
    z = (yt_rate - mn_rate) / math.sqrt(yt_se**2 + mn_se**2)
    agree = abs(z) < Z_LIMIT and yt.saturated
    print(f"  exponential, {length:,.0f} min: throughput YueTwin {yt_rate:.4f} +- {yt_se:.4f} parts/min, "
          f"minimal {mn_rate:.4f} +- {mn_se:.4f}  (z = {z:+.2f}; bound 1/{max(EXP_MEANS)} = "
          f"{1 / max(EXP_MEANS):.3f})  -> {'OK' if agree else 'FAIL'}")
    if not yt.saturated:
        print("  FAIL: the YueTwin source ran dry (no units left at the door of s0); raise the order quantity")
    same &= agree
    if not same:
        print()
        print("!" * 100)
        print("FAIL: the two models do not behave as the same system; the timing below compares different "
              "things")
        print("!" * 100)

    yt_wall = statistics.median(r.wall for r in yt_runs)
    mn_wall = statistics.median(r.wall for r in mn_runs)
    yt_cpu = statistics.median(r.cpu for r in yt_runs)
    mn_cpu = statistics.median(r.cpu for r in mn_runs)
    ratio = yt_wall / mn_wall
    print()
    print(f"  {'model':<22}{'wall s (median)':>16}{'runs (wall s)':>22}{'CPU s':>8}{'events':>12}"
          f"{'events/s':>11}{'ev/part':>9}{'parts/s':>9}")
    for name, runs, wall, cpu, res in (("minimal SimPy", mn_runs, mn_wall, mn_cpu, mn),
                                       ("YueTwin", yt_runs, yt_wall, yt_cpu, yt)):
        each = " ".join(f"{r.wall:.2f}" for r in runs)
        print(f"  {name:<22}{wall:16.3f}{each:>22}{cpu:8.2f}{res.events:12,}{res.events / wall:11,.0f}"
              f"{res.events / res.good:9.1f}{res.good / wall:9,.0f}")

    with tempfile.TemporaryDirectory(prefix="yuetwin-bench-") as tmp:
        logged = run_yuetwin(sc, log_dir=tmp)
    print(f"  {'YueTwin + event log':<22}{logged.wall:16.3f}{'1 run':>22}{logged.cpu:8.2f}{logged.events:12,}"
          f"{logged.events / logged.wall:11,.0f}{logged.events / logged.good:9.1f}"
          f"{logged.good / logged.wall:9,.0f}")
    print(f"    event log: {logged.log_rows:,} rows, {mib(logged.log_bytes)} Parquet; "
          f"{logged.wall / mn_wall:.2f}x minimal, {logged.wall / yt_wall:.2f}x YueTwin without the log "
          f"(CPU time: {logged.cpu / mn_cpu:.2f}x, {logged.cpu / yt_cpu:.2f}x; no target)")
    print("    (events = SimPy events processed; the minimal model spends about 3 per part and station: "
          "get, timeout, put)")
    print()
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"  ratio YueTwin / minimal wall time = {ratio:.2f}x  (target <= {TARGET_RATIO}x)  -> {verdict}"
          f"   [CPU-time ratio {yt_cpu / mn_cpu:.2f}x]")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = os.cpu_count() or 1
    if load > cores - 0.5:
        print(f"  note: load average {load:.1f} on {cores} CPUs while timing; wall times are inflated and "
              "noisy, the CPU-time ratio is the steadier figure")
    print(f"  process peak RSS so far: {mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}")

    smt_section(args.smt.resolve(), smt_length, args.trace_limit)
    if not same:
        print()
        print("FAIL: YueTwin and the minimal model disagree (see 'Same system?' above); exit code 1")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
