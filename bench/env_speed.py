#!/usr/bin/env python
"""Environment speed benchmark: random legal steps per second, one core.

Run from the repository root::

    python bench/env_speed.py                 # 100,000 steps per case (a few seconds each)
    python bench/env_speed.py --steps 20000   # shorter

For each case the environment (the class itself, without ``gymnasium.make``'s wrappers) is reset with a
fixed seed and stepped with uniformly random legal actions (a row of ``obs["mask"]`` drawn from a
seeded Generator, the draw included in the timing), resetting after each episode, after one untimed
warm-up episode. Printed: wall and CPU steps/s, and episodes/s. The target is 20,000 steps/s for the
job shop on ta01 (a popular JSSP Gymnasium environment does about 10,800 on this machine).

One function per environment (``bench_jobshop``, ``bench_dispatch``: the line env on the SMT example and
the dynamic job shop, a fifth of the steps); each returns its rows, printed by ``main``. The script
is a report: it exits 0 whether or not the target is met (the PASS/FAIL line says which).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from envs.dispatch import DispatchEnv, DynamicJobShopEnv  # noqa: E402
from envs.jobshop import JobShopEnv  # noqa: E402

TARGET_STEPS_PER_SECOND = 20_000
"""Random legal steps/s the job shop must reach on ta01 (15 x 15) on one core."""


@dataclass(frozen=True)
class SpeedRow:
    """One measured case."""

    case: str
    steps: int
    wall_seconds: float
    cpu_seconds: float
    episodes: int

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.wall_seconds

    @property
    def cpu_steps_per_second(self) -> float:
        return self.steps / self.cpu_seconds


def random_legal_steps(case: str, env: gym.Env, steps: int, seed: int) -> SpeedRow:
    """Time ``steps`` uniformly random legal steps of ``env`` (any environment following
    ``envs.spaces``), resetting at the end of each episode, after one untimed warm-up episode."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))

    def act(observation: dict[str, np.ndarray]) -> int:
        legal = np.flatnonzero(observation["mask"])
        return int(legal[rng.integers(legal.size)])

    observation, _ = env.reset(seed=seed)
    done = False
    while not done:  # warm-up
        observation, _, terminated, truncated, _ = env.step(act(observation))
        done = terminated or truncated
    observation, _ = env.reset()
    episodes = 0
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(steps):
        observation, _, terminated, truncated, _ = env.step(act(observation))
        if terminated or truncated:
            episodes += 1
            observation, _ = env.reset()
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    return SpeedRow(case, steps, wall, cpu, episodes)


def bench_jobshop(steps: int, seed: int) -> list[SpeedRow]:
    """JobShopEnv on ta01 (15 x 15) and ta41 (30 x 20), in both schedule generation schemes."""
    return [random_legal_steps(f"JobShop {name} {schedule}", JobShopEnv(name, schedule=schedule), steps, seed)
            for name in ("ta01", "ta41") for schedule in ("non_delay", "active")]


def bench_dispatch(steps: int, seed: int) -> list[SpeedRow]:
    """DispatchEnv on the SMT example (one-week episodes: 10,080 min) and the dynamic job shop."""
    smt = ROOT / "scenarios" / "smt_line.yaml"
    return [random_legal_steps("Dispatch smt_line (1 week)", DispatchEnv(smt, horizon=10080), steps, seed),
            random_legal_steps("DynamicJobShop", DynamicJobShopEnv(), steps, seed)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="timed steps per case (default 100,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resets and the random actions")
    args = parser.parse_args()
    if args.steps < 1:
        print(f"error: --steps={args.steps} must be >= 1", file=sys.stderr)
        return 2

    print(f"Environment speed: random legal steps, one core (Python {sys.version.split()[0]}, "
          f"gymnasium {gym.__version__}, numpy {np.__version__}); {args.steps:,} steps per case, seed {args.seed}")
    rows = bench_jobshop(args.steps, args.seed) + bench_dispatch(max(1, args.steps // 5), args.seed)
    print(f"  {'case':<28}{'steps/s (wall)':>16}{'steps/s (CPU)':>16}{'episodes/s':>12}")
    for row in rows:
        print(f"  {row.case:<28}{row.steps_per_second:16,.0f}{row.cpu_steps_per_second:16,.0f}"
              f"{row.episodes / row.wall_seconds:12,.1f}")
    ta01 = [row for row in rows if row.case.startswith("JobShop ta01")]
    slowest = min(ta01, key=lambda row: row.steps_per_second)
    verdict = "PASS" if slowest.steps_per_second >= TARGET_STEPS_PER_SECOND else "FAIL"
    print(f"  slowest ta01 case {slowest.steps_per_second:,.0f} steps/s  "
          f"(target >= {TARGET_STEPS_PER_SECOND:,})  -> {verdict}")
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load > cores - 0.5:
        print(f"  note: load average {load:.1f} on {cores} CPUs while timing; the CPU-time figures are steadier")
    return 0


if __name__ == "__main__":
    sys.exit(main())
