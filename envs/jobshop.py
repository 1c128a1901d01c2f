"""The static n x m job shop as a Gymnasium environment: one step schedules one operation.

Every job visits every machine once in its own order; an operation cannot be interrupted; a machine runs
one operation at a time. The agent builds the schedule operation by operation, always appending to the
end of a machine's sequence (no insertion into earlier gaps), under one of two classic schedule
generation schemes:

* ``schedule="non_delay"``: at each decision, t* is the earliest time any job's next operation can start
  (the later of the job being ready and its machine being free); the legal candidates are the jobs whose
  next operation can start at t*, and the chosen one starts at t*. No machine is ever left idle while an
  operation could run on it (the non-delay schedules, in which the published dispatching-rule gaps are
  measured).
* ``schedule="active"``: the Giffler-Thompson conflict set. The operation that can complete first (at
  c*, on machine M*; ties to the lowest job) defines the conflict; the legal candidates are the jobs
  whose next operation runs on M* and can start before c*; the chosen one starts as early as it can.
  Every active schedule, hence an optimal one, can be built this way.

Times are in the instance's time units (minutes for a line; the benchmark instances are unit-free).
Every operation takes exactly one step, even when it is the only legal candidate (no decision is applied
automatically), so an episode has n_jobs x n_machines steps. The episode ends (``terminated``) when all
operations are scheduled; it is never ``truncated``: the problem is static and every episode finishes.

Observation and action follow ``envs.spaces``: candidate row j is job j (rows from n_jobs on are
padding, mask 0) and describes the job's next operation even when it is not a legal choice; rows of
finished jobs are zeros. In the static job shop:

* "now", the decision time, is t* (non-delay) or the earliest start among the conflict set (active);
  ``waiting`` = (now - the time the job's previous operation ends) / time_scale, negative for a job
  that is still on its previous machine;
* ``slack``, ``has_due`` and ``setup`` are 0 (no due dates, no setups);
* a machine's queue is the next operations of the unfinished jobs that run on it, so
  ``next_queue_work`` is the work of the next operations that run on the machine of the job's
  following operation, and line ``queued_work`` the work of all next operations;
* line ``utilisation`` is the scheduled work / (n_machines x the makespan of the schedule so far).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, Optional, get_args

import gymnasium as gym
import numpy as np

from envs.instances import JobShopInstance, generate_instance, load_instance
from envs.spaces import FEATURE, N_CANDIDATE_FEATURES, action_space, observation_space

ScheduleScheme = Literal["non_delay", "active"]
RewardKind = Literal["makespan"]

DEFAULT_SIZE = 15
"""Jobs and machines of the generated instances when ``n_jobs`` / ``n_machines`` are not given."""

_NEVER = np.iinfo(np.int64).max // 4
"""A start time later than any real one: the earliest start of a finished job's (absent) next operation."""


def _check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise ValueError naming ``field``, the bad ``value`` and the allowed values (with a close match)."""
    if value in allowed:
        return
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{field}={value!r} is not one of {', '.join(map(repr, allowed))}{hint}")


def _check_instance(instance: JobShopInstance) -> None:
    """Raise ValueError if the instance's arrays are not a valid job shop."""
    durations, machines = np.asarray(instance.durations), np.asarray(instance.machines)
    if durations.ndim != 2 or durations.shape != machines.shape or durations.size == 0:
        raise ValueError(f"instance {instance.name!r}: durations {durations.shape} and machines "
                         f"{machines.shape} must be non-empty 2-D arrays of one shape (n_jobs, n_machines)")
    if not np.issubdtype(durations.dtype, np.integer):
        raise ValueError(f"instance {instance.name!r}: durations are {durations.dtype}; they must be integers "
                         "(scale and round them, e.g. to tenths of a minute)")
    if (durations < 0).any():
        raise ValueError(f"instance {instance.name!r}: durations must be >= 0, found {durations.min()}")
    expected = np.arange(machines.shape[1])
    for job, row in enumerate(machines):
        if not np.array_equal(np.sort(row), expected):
            raise ValueError(f"instance {instance.name!r}: job {job} visits machines {row.tolist()}; each "
                             f"job must visit every machine 0..{machines.shape[1] - 1} exactly once")


class JobShopEnv(gym.Env):
    """Build a job-shop schedule one operation at a time (see the module docstring for the rules).

    Args:
        instance: a bundled benchmark name (``"ta01"``, see ``envs.instances.instance_names()``), a
            ``JobShopInstance``, or None for a Taillard-style random instance of ``n_jobs`` x
            ``n_machines`` (durations 1..99) drawn anew at every ``reset`` from ``self.np_random`` (a
            Generator seeded through ``numpy.random.SeedSequence`` by ``reset(seed=...)``).
        n_jobs, n_machines: the size of the generated instances (default 15 x 15); when ``instance`` is
            given they may be omitted and must match it otherwise.
        schedule: ``"non_delay"`` or ``"active"`` (module docstring).
        max_candidates: rows of the observation and actions (default n_jobs; at least n_jobs), so one
            policy can serve instances of several sizes.
        reward: ``"makespan"``, the only kind: a dense reward equal to minus the increase of a lower bound
            of the makespan, divided by ``time_scale``. The bound is LB = max(max over jobs of (ready time
            + remaining work), max over machines of (free time + remaining work on it)): it never falls
            and equals the makespan when the schedule is complete. The bound before the first step counts
            as 0, so the first reward includes -LB(initial state)/time_scale, a constant of the instance,
            every reward is <= 0 and an episode's rewards sum to exactly -makespan/time_scale.

    Public attributes (valid after ``reset``):
        instance: the instance being scheduled.
        start_times: int64 (n_jobs, n_machines); ``start_times[j, k]`` is the start of job j's k-th
            operation, -1 while unscheduled.
        makespan: the latest end of the operations scheduled so far (time units); the makespan of the
            schedule once the episode has terminated.
        time_scale: the mean operation duration of the instance (time units); features and rewards are
            divided by it.

    ``info`` is empty except on the last step, where it holds ``makespan``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, instance: str | JobShopInstance | None = None, *, n_jobs: Optional[int] = None,
                 n_machines: Optional[int] = None, schedule: ScheduleScheme = "non_delay",
                 max_candidates: Optional[int] = None, reward: RewardKind = "makespan"):
        _check_choice("schedule", schedule, get_args(ScheduleScheme))
        _check_choice("reward", reward, get_args(RewardKind))
        self.schedule: ScheduleScheme = schedule
        self.reward_kind: RewardKind = reward
        self._fixed: Optional[JobShopInstance]
        if instance is None:
            self._fixed = None
            n_jobs = DEFAULT_SIZE if n_jobs is None else n_jobs
            n_machines = DEFAULT_SIZE if n_machines is None else n_machines
            for field, value in (("n_jobs", n_jobs), ("n_machines", n_machines)):
                if not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(f"{field}={value!r} must be a positive integer")
        else:
            if isinstance(instance, str):
                try:
                    instance = load_instance(instance)
                except KeyError as err:
                    raise ValueError(f"instance: {err.args[0]}") from None
            elif not isinstance(instance, JobShopInstance):
                raise ValueError(f"instance={instance!r} must be a bundled instance name, a "
                                 "JobShopInstance or None (a generated instance)")
            _check_instance(instance)
            for field, value, actual in (("n_jobs", n_jobs, instance.n_jobs),
                                         ("n_machines", n_machines, instance.n_machines)):
                if value is not None and value != actual:
                    raise ValueError(f"{field}={value} does not match instance {instance.name!r}, which "
                                     f"has {actual}; omit {field} when giving an instance")
            self._fixed = instance
            n_jobs, n_machines = instance.n_jobs, instance.n_machines
        self.n_jobs: int = int(n_jobs)
        self.n_machines: int = int(n_machines)
        if max_candidates is None:
            max_candidates = self.n_jobs
        if not isinstance(max_candidates, (int, np.integer)) or max_candidates < self.n_jobs:
            raise ValueError(f"max_candidates={max_candidates!r} must be an integer >= n_jobs "
                             f"({self.n_jobs}): candidate row j is job j")
        self.max_candidates: int = int(max_candidates)
        self.observation_space = observation_space(self.max_candidates)
        self.action_space = action_space(self.max_candidates)

        self.instance: Optional[JobShopInstance] = self._fixed
        self.start_times = np.full((self.n_jobs, self.n_machines), -1, dtype=np.int64)
        self.makespan: int = 0
        self.time_scale: float = 1.0
        self._started = False
        self._done = False

    # ------------------------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: Optional[int] = None,
              options: Optional[dict[str, Any]] = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an empty schedule (a new random instance when none was given). Returns (obs, {})."""
        super().reset(seed=seed)
        inst = self._fixed
        if inst is None:
            inst = generate_instance(self.n_jobs, self.n_machines, self.np_random)
        self.instance = inst
        n, m = self.n_jobs, self.n_machines
        durations = inst.durations.astype(np.int64)
        total_work = int(durations.sum())
        self.time_scale = float(durations.mean()) or 1.0
        self._inv_scale = 1.0 / self.time_scale
        self._total_work = total_work

        # job routes padded with a sentinel machine m (never free, nothing queued) and duration 0
        machine_route = np.full((n, m + 2), m, dtype=np.int64)
        machine_route[:, :m] = inst.machines
        duration_route = np.zeros((n, m + 2), dtype=np.int64)
        duration_route[:, :m] = durations
        self._machine_route: list[list[int]] = machine_route.tolist()
        self._duration_route: list[list[int]] = duration_route.tolist()

        # per job: next operation index, its machine and duration, the machine after it, ready time
        self._next_op = [0] * n
        self._remaining_job_work: list[int] = durations.sum(axis=1).tolist()
        self._ready = np.zeros(n, dtype=np.int64)
        self._next_machine = machine_route[:, 0].copy()
        self._next_duration = duration_route[:, 0].copy()
        self._after_machine = machine_route[:, 1].copy()
        self._waiting_scale = np.full(n, self._inv_scale)  # 0 once the job is finished
        # per machine (+ the sentinel): free time, remaining work, work of the next operations queued on it
        self._free = np.zeros(m + 1, dtype=np.int64)
        self._free[m] = _NEVER
        remaining_machine_work = np.zeros(m, dtype=np.int64)
        np.add.at(remaining_machine_work, inst.machines, durations)
        self._remaining_machine_work: list[int] = remaining_machine_work.tolist()
        self._queue_work = np.zeros(m + 1, dtype=np.float64)
        np.add.at(self._queue_work, inst.machines[:, 0], durations[:, 0])
        self._queue_total = float(self._queue_work.sum())

        self.start_times.fill(-1)
        self.makespan = 0
        self._initial_bound = int(max(durations.sum(axis=1).max(), remaining_machine_work.max()))
        self._bound = 0  # the makespan bound paid out in rewards so far
        self._scheduled_work = 0
        self._steps = 0
        self._now = 0

        self._candidates = np.zeros((self.max_candidates, N_CANDIDATE_FEATURES), dtype=np.float64)
        self._candidates[:n, FEATURE["processing_time"]] = durations[:, 0] * self._inv_scale
        self._candidates[:n, FEATURE["remaining_work"]] = durations.sum(axis=1) * self._inv_scale
        self._candidates[:n, FEATURE["remaining_ops"]] = 1.0
        self._legal = np.zeros(self.max_candidates, dtype=bool)
        self.action_space.legal = self._legal  # sample() draws legal rows
        self._started, self._done = True, False
        self._next_decision()
        return self._observation(), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Schedule the next operation of job ``action`` (a legal candidate row). Raises ValueError for an
        illegal action and leaves the state unchanged."""
        if not self._started or self._done:
            raise RuntimeError("call reset() before step(): "
                               + ("the episode has ended" if self._done else "the environment was never reset"))
        job = self._legal_action(action)
        op = self._next_op[job]
        machine = self._machine_route[job][op]
        duration = self._duration_route[job][op]
        start = int(self._earliest_start[job])
        end = start + duration
        self.start_times[job, op] = start

        bound = max(self._bound, self._initial_bound, start + self._remaining_job_work[job],
                    start + self._remaining_machine_work[machine])
        reward = (self._bound - bound) * self._inv_scale
        self._bound = bound
        self._remaining_job_work[job] -= duration
        self._remaining_machine_work[machine] -= duration
        self._ready[job] = end
        self._free[machine] = end
        if end > self.makespan:
            self.makespan = end

        op += 1
        self._next_op[job] = op
        next_machine = self._machine_route[job][op]
        next_duration = self._duration_route[job][op]
        self._next_machine[job] = next_machine
        self._next_duration[job] = next_duration
        self._after_machine[job] = self._machine_route[job][op + 1]
        self._queue_work[machine] -= duration
        self._queue_work[next_machine] += next_duration
        self._queue_total += next_duration - duration
        self._scheduled_work += duration
        self._steps += 1

        row = self._candidates[job]
        row[FEATURE["processing_time"]] = next_duration * self._inv_scale
        row[FEATURE["remaining_work"]] = self._remaining_job_work[job] * self._inv_scale
        row[FEATURE["remaining_ops"]] = (self.n_machines - op) / self.n_machines
        if op == self.n_machines:
            self._waiting_scale[job] = 0.0

        self._done = self._steps == self.n_jobs * self.n_machines
        self._next_decision()
        info = {"makespan": self.makespan} if self._done else {}
        return self._observation(), float(reward), self._done, False, info

    def action_masks(self) -> np.ndarray:
        """Bool (max_candidates,): the legal candidate rows (sb3-contrib's MaskablePPO calls this)."""
        return self._legal.copy()

    # ------------------------------------------------------------------------------------ internals
    def _legal_action(self, action: Any) -> int:
        """The job of a legal action, or ValueError naming the action and the legal rows."""
        try:
            job = int(action)
            valid = job == action and 0 <= job < self.max_candidates and bool(self._legal[job])
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"action {action!r} is not a legal candidate row; legal rows now: "
                             f"{np.flatnonzero(self._legal).tolist()} (choose a row whose mask is 1)")
        return job

    def _next_decision(self) -> None:
        """Find the legal candidates and the decision time ``now`` of the next decision; refresh the
        features that depend on them."""
        n = self.n_jobs
        legal = self._legal[:n]
        if self._done:
            legal[:] = False
            self._now = self.makespan
        else:
            earliest = np.maximum(self._ready, self._free[self._next_machine])
            if self.schedule == "non_delay":
                self._now = int(earliest.min())
                np.equal(earliest, self._now, out=legal)
            else:
                completion = earliest + self._next_duration
                first = int(completion.argmin())
                conflict_machine = self._next_machine[first]
                np.less(earliest, completion[first], out=legal)
                legal &= self._next_machine == conflict_machine
                self._now = int(earliest[legal].min())
            self._earliest_start = earliest
        self._candidates[:n, FEATURE["next_queue_work"]] = self._queue_work[self._after_machine] * self._inv_scale
        self._candidates[:n, FEATURE["waiting"]] = (self._now - self._ready) * self._waiting_scale

    def _observation(self) -> dict[str, np.ndarray]:
        m = self.n_machines
        utilisation = self._scheduled_work / (m * self.makespan) if self.makespan > 0 else 0.0
        line = np.array([self._scheduled_work / self._total_work if self._total_work else 1.0,
                         np.count_nonzero(self._legal) / self.max_candidates,
                         utilisation,
                         self._queue_total * self._inv_scale / m], dtype=np.float32)
        return {"candidates": self._candidates.astype(np.float32),
                "mask": self._legal.astype(np.int8),
                "line": line}
