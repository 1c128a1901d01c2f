#!/usr/bin/env python
"""Robot cell benchmark: what a physics-timed robot station costs, cold and from the cache.

Run from the repository root::

    python bench/robot_cell.py            # about half a minute
    python bench/robot_cell.py --quick    # a few seconds, for a smoke test

What it measures (wall time, median of interleaved rounds):

1. **Cycle time of a cell.** The two-task Panda cell below (load a machine from a conveyor, unload it;
   a pedestal, a table and a fixture as obstacles), and the same cell on the KUKA iiwa with a 12 cm tool:

   * ``import pybullet`` in a fresh process (paid once per process, only when a cell must be simulated);
   * cold: the full physics computation (IK, trajectories, simulated execution with collision checks),
     no cache;
   * from the disk cache: a fresh :class:`~lines.robot_cell.CycleTimeCache` on a warm directory
     (key hashing + reading one JSON file), as a new process would see it;
   * from the memory cache: the same cache object again (key hashing + a dictionary look-up).

2. **Overhead in a line run.** A three-station line (press -> robot loader -> pack, a few thousand parts)
   simulated twice per round: once with the loader's processing time written as a constant equal to the
   cached cycle time (a plain station), once obtaining it through ``lines.robot_cell.processing_time``
   from the cache, as the engine will when a station has a ``robot:`` block. The target: the cached
   robot station costs no more than a plain one (difference within the noise, under 2 %).

Exits 0 always: it is a report (the PASS/FAIL line states the target).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lines import robot_cell as rc  # noqa: E402
from twin.config.distributions import Constant  # noqa: E402
from twin.config.robot import RobotCellConfig  # noqa: E402
from twin.config.scenario import Scenario  # noqa: E402
from twin.engine import simulate  # noqa: E402

CELL = {
    "model": "panda",
    "base": {"position": [0.0, 0.0, 0.8]},
    "gripper": {"type": "parallel", "grip_time_s": 0.4, "release_time_s": 0.3},
    "obstacles": [
        {"name": "pedestal", "center": [0.0, 0.0, 0.4], "half_extents": [0.12, 0.12, 0.4]},
        {"name": "table", "center": [0.55, 0.0, 0.4], "half_extents": [0.3, 0.6, 0.4]},
        {"name": "fixture", "center": [0.5, 0.3, 0.83], "half_extents": [0.04, 0.04, 0.03]},
    ],
    "poses": {"conveyor": {"position": [0.45, -0.3, 0.85]}, "machine": {"position": [0.5, 0.3, 0.9]}},
    "tasks": [{"name": "load_machine", "pick": "conveyor", "place": "machine"},
              {"name": "unload_machine", "pick": "machine", "place": "conveyor"}],
}


def line(loader_minutes: float) -> Scenario:
    return Scenario.model_validate({
        "name": "robot_bench",
        "run": {"warmup": 0, "length": 4_000, "replications": 1, "seed": 3},
        "products": [{"name": "a", "routing": [
            {"station": "press", "time": {"dist": "exponential", "mean": 0.2}},
            {"station": "loader", "time": loader_minutes},
            {"station": "pack", "time": {"dist": "exponential", "mean": 0.15}}]}],
        "stations": [{"name": "press", "buffer": 5}, {"name": "loader", "buffer": 5}, {"name": "pack", "buffer": 5}],
        "orders": {"arrivals": {"type": "poisson", "mean_interarrival": 0.2}, "mix": {"a": 1}},
    })


def median_time(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def import_time() -> float:
    code = ("import time; t=time.perf_counter(); from lines.robot_cell import _pybullet; _pybullet(); "
            "print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.strip())


def cell_section(rounds: int) -> float:
    print("1. Cycle time of a cell (seconds of wall time, median)")
    print(f"   import pybullet (fresh process, banner silenced): {import_time():.3f} s")
    panda_cycle = 0.0
    for model, tool in (("panda", 0.0), ("kuka_iiwa", 0.12)):  # the iiwa has no hand: give it a 12 cm tool
        cfg = RobotCellConfig.model_validate({**CELL, "model": model, "tool_offset_m": tool})
        first = rc.cycle_time(cfg, cache=None)
        cold = median_time(lambda: rc.cycle_time(cfg, cache=None), rounds)
        with tempfile.TemporaryDirectory() as tmp:
            rc.cycle_time(cfg, cache=rc.CycleTimeCache(tmp))
            disk = median_time(lambda: rc.cycle_time(cfg, cache=rc.CycleTimeCache(tmp)), rounds * 20)
            memory_cache = rc.CycleTimeCache(tmp)
            rc.cycle_time(cfg, cache=memory_cache)
            memory = median_time(lambda: rc.cycle_time(cfg, cache=memory_cache), rounds * 200)
        key = median_time(lambda: rc.cell_key(cfg), rounds * 200)
        steps = first.diagnostics["physics_steps"]
        print(f"   {model:9s}: cycle {first.cycle_time_s:.3f} s simulated ({steps} physics steps); "
              f"cold {cold * 1e3:7.1f} ms ({cold / steps * 1e6:.0f} us/step) | disk cache {disk * 1e3:6.2f} ms | "
              f"memory cache {memory * 1e6:6.0f} us (of which key hashing {key * 1e6:.0f} us) | "
              f"cold / memory = {cold / memory:,.0f}x")
        if model == "panda":
            panda_cycle = first.cycle_time_s
    return panda_cycle


def line_section(rounds: int) -> None:
    print()
    cfg = RobotCellConfig.model_validate(CELL)
    cache = rc.CycleTimeCache(None)  # memory only: what a process sees after its first look-up
    minutes = rc.processing_time(cfg, cache=cache).mean
    plain = line(minutes)
    print(f"2. Overhead in a line run: press -> loader (robot, {minutes:.4f} min per part) -> pack, "
          f"{plain.run.length:,.0f} simulated minutes")

    def run_plain() -> int:
        return simulate(plain, 0).good

    def run_robot() -> int:
        dist = rc.processing_time(cfg, cache=cache)  # what the engine does for a station with robot:
        return simulate(line(dist.value if isinstance(dist, Constant) else dist.mean), 0).good

    good_plain, good_robot = run_plain(), run_robot()
    if good_plain != good_robot:
        print(f"   the two runs differ ({good_plain} vs {good_robot} good parts): not the same line")
        return
    wall: dict[str, list[float]] = {"plain": [], "robot": []}
    cpu: dict[str, list[float]] = {"plain": [], "robot": []}
    for i in range(2 * rounds):  # interleaved, alternating who goes first, so drifts hit both alike
        for name, fn in (("plain", run_plain), ("robot", run_robot))[:: 1 if i % 2 else -1]:
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    pw, rw = statistics.median(wall["plain"]), statistics.median(wall["robot"])
    pc, rcpu = statistics.median(cpu["plain"]), statistics.median(cpu["robot"])
    diffs = [r - p for p, r in zip(cpu["plain"], cpu["robot"])]
    diff = statistics.median(diffs)
    noise = statistics.median(abs(d - diff) for d in diffs)  # median absolute deviation of the paired differences
    lookup = median_time(lambda: rc.processing_time(cfg, cache=cache), rounds * 100)
    print(f"   {good_plain:,} good parts per run, {2 * rounds} paired runs")
    print(f"   plain station:           wall {pw * 1e3:7.1f} ms, CPU {pc * 1e3:7.1f} ms per run")
    print(f"   robot station (cached):  wall {rw * 1e3:7.1f} ms, CPU {rcpu * 1e3:7.1f} ms per run")
    print(f"   paired CPU difference robot - plain: {diff * 1e3:+.1f} ms ({100 * diff / pc:+.1f} %), noise (MAD) "
          f"{noise * 1e3:.1f} ms")
    print(f"   the only extra work: the cached processing-time look-up, {lookup * 1e6:.0f} us per run "
          f"({100 * lookup / pc:.3f} % of a run); per part nothing (the sampler is the plain station's)")
    ok = diff <= max(0.02 * pc, 2 * noise)
    print(f"   {'PASS' if ok else 'FAIL'}: a cached robot station costs no more than a plain one "
          "(paired difference within 2 % or within the noise)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (smoke test)")
    args = parser.parse_args()
    rounds = 3 if args.quick else 10
    cell_section(rounds)
    line_section(rounds)


if __name__ == "__main__":
    main()
