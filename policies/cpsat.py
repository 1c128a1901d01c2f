"""Policies that plan a whole static job shop at ``reset`` and then replay the plan: CP-SAT
(``twin.planning.solve_jobshop``), optionally warm-started from another policy's schedule (the hybrid),
and the best of K sampled schedules of a learned policy.

``predict`` replays the plan, choosing the legal candidate whose next operation starts first in it (ties to
the lowest row). In ``JobShopEnv(schedule="active")`` every active schedule is reachable and the replay
reproduces the plan's makespan (or beats it, when the plan left an operation later than it could start).
In ``schedule="non_delay"`` the plan may be unreachable; the replay then only follows it.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from policies.base import Policy
from policies.evaluate import run_episode
from twin.planning import JobShopSolution, solve_jobshop

DEFAULT_TIME_LIMIT = 10.0
"""Seconds of search per instance when none is given."""


class NoScheduleFound(RuntimeError):
    """CP-SAT found no schedule within its time limit."""


def _jobshop(env: Any, who: str) -> Any:
    instance = getattr(env, "instance", None)
    if instance is None or not hasattr(env, "start_times"):
        raise ValueError(f"{who} plans a static job shop; {type(env).__name__} has no job-shop "
                         "instance (use envs.jobshop.JobShopEnv, reset before the policy)")
    return instance


def schedule_of(policy: Policy, env: Any, deterministic: bool = True) -> tuple[np.ndarray, int]:
    """(start times, makespan) of the schedule ``policy`` builds on a fresh copy of job-shop ``env``."""
    from envs.jobshop import JobShopEnv

    copy = JobShopEnv(env.instance, schedule=env.schedule, max_candidates=env.max_candidates)
    result = run_episode(copy, policy, seed=0, deterministic=deterministic)
    return copy.start_times.copy(), int(result.makespan)


class PlanReplay:
    """Replays ``self.plan`` (start times, jobs x operations) made by ``reset``."""

    name = "plan"
    schedule = "active"
    """The schedule generation scheme in which the replay reproduces the plan."""

    def __init__(self) -> None:
        self.plan: Optional[np.ndarray] = None
        self._env: Any = None

    def reset(self, env: Any) -> None:
        raise NotImplementedError

    def predict(self, observation: dict[str, np.ndarray], state: Optional[tuple] = None,
                episode_start: Optional[np.ndarray] = None,
                deterministic: bool = True) -> tuple[np.ndarray, Optional[tuple]]:
        """The legal row (job) whose next operation starts first in the plan, and None. Raises
        RuntimeError before ``reset`` and ValueError for a batch of observations (the policy replays the
        plan of one environment)."""
        if self.plan is None:
            raise RuntimeError(f"{type(self).__name__}.predict before reset(env): there is no plan to replay")
        legal = np.asarray(observation["mask"]) != 0
        if legal.ndim != 1:
            raise ValueError(f"{type(self).__name__} replays one environment's plan; got a batch of observations "
                             f"(mask shape {legal.shape}); give one observation")
        starts = self.plan
        n_jobs, n_ops = starts.shape
        next_op = np.count_nonzero(self._env.start_times >= 0, axis=1)
        legal = legal[:n_jobs] & (next_op < n_ops)
        if not legal.any():
            raise ValueError(f"{type(self).__name__}: the observation has no legal candidate; the episode "
                             "should have ended")
        planned = np.where(legal, starts[np.arange(n_jobs), np.minimum(next_op, n_ops - 1)], np.iinfo(np.int64).max)
        return np.asarray(planned.argmin(), dtype=np.int64), None


class CpsatPolicy(PlanReplay):
    """Solve the environment's instance with CP-SAT at ``reset`` and replay the solution.

    Args:
        time_limit: seconds per episode (wall clock, the warm start's schedule included; or CP-SAT's
            deterministic time).
        workers: CP-SAT search threads.
        deterministic: count ``time_limit`` in CP-SAT's deterministic time, so one worker gives the same
            schedule on any machine (training data must be reproducible).
        warm_start: a policy whose schedule (built first) is CP-SAT's hint: the hybrid.
        lns_only: search only by large neighbourhood search around the best schedule so far
            (``solve_jobshop``); None (default): when warm-started, since the hint is then a schedule to
            improve from the start.
    """

    def __init__(self, time_limit: float = DEFAULT_TIME_LIMIT, workers: int = 1, deterministic: bool = False,
                 warm_start: Optional[Policy] = None, lns_only: Optional[bool] = None):
        super().__init__()
        self.time_limit = time_limit
        self.workers = workers
        self.deterministic = deterministic
        self.warm_start = warm_start
        self.lns_only = warm_start is not None if lns_only is None else lns_only
        self.name = "cpsat" if warm_start is None else f"{warm_start.name}+cpsat"
        self.solution: Optional[JobShopSolution] = None
        """The last episode's solution (makespan, status, lower bound, seconds)."""

    def reset(self, env: Any) -> None:
        """Solve ``env.instance`` (a reset ``envs.jobshop.JobShopEnv``). Raises ValueError when the env
        has no job-shop instance and NoScheduleFound when CP-SAT found no schedule within the time limit (the
        hybrid then replays its hint)."""
        instance = _jobshop(env, type(self).__name__)
        started = time.perf_counter()
        hint = None if self.warm_start is None else schedule_of(self.warm_start, env)[0]
        # the warm start's seconds count in a wall-clock limit (CP-SAT keeps at least 1 % of it)
        limit = (self.time_limit if self.deterministic else
                 max(self.time_limit - (time.perf_counter() - started), self.time_limit / 100))
        solution = solve_jobshop(instance, limit, workers=self.workers, hint=hint,
                                 deterministic=self.deterministic, lns_only=self.lns_only)
        if solution.start_times is None and hint is None:
            raise NoScheduleFound(f"CP-SAT found no schedule for {instance.name!r} ({instance.n_jobs}x"
                                  f"{instance.n_machines}) in {self.time_limit:g} s; give it a longer time limit")
        self.solution = solution
        self.plan = hint if solution.start_times is None else solution.start_times
        self._env = env


class BestOfSamples(PlanReplay):
    """The best (lowest makespan) of the greedy schedule and ``samples`` - 1 schedules sampled from a
    policy's distribution (``predict(deterministic=False)``), then replayed."""

    def __init__(self, policy: Policy, samples: int):
        super().__init__()
        self.policy = policy
        self.samples = samples
        self.name = f"{policy.name}x{samples}"

    def reset(self, env: Any) -> None:
        _jobshop(env, type(self).__name__)
        best = schedule_of(self.policy, env, deterministic=True)
        for _ in range(self.samples - 1):
            candidate = schedule_of(self.policy, env, deterministic=False)
            if candidate[1] < best[1]:
                best = candidate
        self.plan = best[0]
        self._env = env
