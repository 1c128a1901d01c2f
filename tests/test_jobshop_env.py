"""The static job-shop environment against independent truths: schedule feasibility checked from the
start times alone, the defining properties of non-delay and active schedules, observations recomputed
from scratch, an optimal ft06 schedule from CP-SAT (optimum 55), Gymnasium's and SB3's checkers, and
vectorised runs in other processes."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers yuetwin/JobShop-v0)
from envs.instances import JobShopInstance, load_instance
from envs.jobshop import JobShopEnv
from envs.spaces import CANDIDATE_FEATURES, LINE_FEATURES

SCHEMES = ("non_delay", "active")


# ------------------------------------------------------------------------------------------ helpers
def machine_intervals(inst: JobShopInstance, start_times: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Scheduled (start, end) intervals per machine, sorted by start."""
    intervals: dict[int, list[tuple[int, int]]] = {m: [] for m in range(inst.n_machines)}
    for j in range(inst.n_jobs):
        for k in range(inst.n_machines):
            if start_times[j, k] >= 0:
                start = int(start_times[j, k])
                intervals[int(inst.machines[j, k])].append((start, start + int(inst.durations[j, k])))
    return {m: sorted(v) for m, v in intervals.items()}


def validate_schedule(inst: JobShopInstance, start_times: np.ndarray) -> int:
    """Check a complete schedule from its start times alone and return its makespan: every operation
    scheduled, routing order kept (an operation starts after the job's previous one ends), no two
    operations overlap on a machine."""
    assert start_times.shape == inst.durations.shape
    assert (start_times >= 0).all(), "unscheduled operations left"
    ends = start_times + inst.durations
    assert (start_times[:, 1:] >= ends[:, :-1]).all(), "routing order broken"
    for machine, intervals in machine_intervals(inst, start_times).items():
        assert len(intervals) == inst.n_jobs
        for (_, end), (next_start, _) in zip(intervals, intervals[1:]):
            assert next_start >= end, f"operations overlap on machine {machine}"
    return int(ends.max())


def ready_times(inst: JobShopInstance, start_times: np.ndarray) -> np.ndarray:
    """When each operation's job is ready for it: the end of the job's previous operation (0 first)."""
    ends = start_times + inst.durations
    return np.concatenate([np.zeros((inst.n_jobs, 1), dtype=np.int64), ends[:, :-1]], axis=1)


def idle_gaps(intervals: list[tuple[int, int]]) -> list[tuple[int, float]]:
    """Idle periods [a, b) of a machine, the last one open-ended."""
    gaps, previous_end = [], 0
    for start, end in intervals:
        if start > previous_end:
            gaps.append((previous_end, start))
        previous_end = max(previous_end, end)
    return gaps + [(previous_end, np.inf)]


def assert_non_delay(inst: JobShopInstance, start_times: np.ndarray) -> None:
    """No machine idles while an operation waits for it: each operation's machine is idle nowhere
    between the moment its job is ready and its start."""
    ready = ready_times(inst, start_times)
    gaps = {m: idle_gaps(v) for m, v in machine_intervals(inst, start_times).items()}
    for j, k in np.ndindex(inst.durations.shape):
        for a, b in gaps[int(inst.machines[j, k])]:
            assert not (max(a, ready[j, k]) < min(b, start_times[j, k])), \
                f"machine idle on [{a}, {b}) while job {j}'s operation {k} waited from {ready[j, k]}"


def assert_active(inst: JobShopInstance, start_times: np.ndarray) -> None:
    """No operation fits into an earlier idle period of its machine (no global left shift)."""
    ready = ready_times(inst, start_times)
    gaps = {m: idle_gaps(v) for m, v in machine_intervals(inst, start_times).items()}
    for j, k in np.ndindex(inst.durations.shape):
        for a, b in gaps[int(inst.machines[j, k])]:
            earliest = max(a, ready[j, k])
            assert not (earliest < start_times[j, k] and earliest + inst.durations[j, k] <= b), \
                f"job {j}'s operation {k} could start at {earliest} instead of {start_times[j, k]}"


def expected_observation(env: JobShopEnv) -> dict[str, np.ndarray]:
    """The observation recomputed from the instance and ``env.start_times`` alone, straight from the
    definitions (no incremental state)."""
    inst, starts = env.instance, env.start_times
    n, m, rows = inst.n_jobs, inst.n_machines, env.max_candidates
    d, mach = inst.durations, inst.machines
    scale = d.mean()
    next_op = (starts >= 0).sum(axis=1)
    ready = [0 if next_op[j] == 0 else starts[j, next_op[j] - 1] + d[j, next_op[j] - 1] for j in range(n)]
    free = [0] * m
    for j, k in zip(*np.nonzero(starts >= 0)):
        free[mach[j, k]] = max(free[mach[j, k]], starts[j, k] + d[j, k])
    unfinished = [j for j in range(n) if next_op[j] < m]
    earliest = {j: max(ready[j], free[mach[j, next_op[j]]]) for j in unfinished}
    legal: list[int] = []
    now = 0
    if unfinished and env.schedule == "non_delay":
        now = min(earliest.values())
        legal = [j for j in unfinished if earliest[j] == now]
    elif unfinished:
        completion = {j: earliest[j] + d[j, next_op[j]] for j in unfinished}
        first = min(unfinished, key=lambda j: (completion[j], j))
        conflict_machine = mach[first, next_op[first]]
        legal = [j for j in unfinished if mach[j, next_op[j]] == conflict_machine
                 and earliest[j] < completion[first]]
        now = min(earliest[j] for j in legal)
    queue = [sum(d[i, next_op[i]] for i in unfinished if mach[i, next_op[i]] == machine) for machine in range(m)]
    candidates = np.zeros((rows, len(CANDIDATE_FEATURES)))
    for j in unfinished:
        k = next_op[j]
        features = {"processing_time": d[j, k] / scale, "remaining_work": d[j, k:].sum() / scale,
                    "remaining_ops": (m - k) / m, "slack": 0.0, "has_due": 0.0, "setup": 0.0,
                    "next_queue_work": queue[mach[j, k + 1]] / scale if k + 1 < m else 0.0,
                    "waiting": (now - ready[j]) / scale}
        candidates[j] = [features[name] for name in CANDIDATE_FEATURES]
    mask = np.zeros(rows, dtype=np.int8)
    mask[legal] = 1
    scheduled = d[starts >= 0].sum()
    span = max(free)
    line = {"progress": scheduled / d.sum(), "candidates": len(legal) / rows,
            "utilisation": scheduled / (m * span) if span else 0.0, "queued_work": sum(queue) / (scale * m)}
    return {"candidates": candidates, "mask": mask, "line": np.array([line[name] for name in LINE_FEATURES])}


def random_legal_action(observation: dict[str, np.ndarray], rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(observation["mask"])))


def ft06_optimal_starts() -> np.ndarray:
    """An optimal ft06 schedule (makespan 55) from a plain CP-SAT disjunctive model."""
    from ortools.sat.python import cp_model

    inst = load_instance("ft06")
    horizon = int(inst.durations.sum())
    model = cp_model.CpModel()
    starts = [[model.new_int_var(0, horizon, f"s{j}_{k}") for k in range(6)] for j in range(6)]
    per_machine: dict[int, list] = {m: [] for m in range(6)}
    makespan = model.new_int_var(0, horizon, "makespan")
    for j in range(6):
        for k in range(6):
            d = int(inst.durations[j, k])
            per_machine[int(inst.machines[j, k])].append(
                model.new_fixed_size_interval_var(starts[j][k], d, f"o{j}_{k}"))
            if k:
                model.add(starts[j][k] >= starts[j][k - 1] + int(inst.durations[j, k - 1]))
        model.add(makespan >= starts[j][5] + int(inst.durations[j, 5]))
    for intervals in per_machine.values():
        model.add_no_overlap(intervals)
    model.minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 30
    assert solver.solve(model) == cp_model.OPTIMAL
    return np.array([[solver.value(s) for s in row] for row in starts], dtype=np.int64)


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("schedule", SCHEMES)
@pytest.mark.parametrize("instance,max_candidates", [("ft06", None), ("la01", 12), (None, 9)])
def test_observations_match_a_recomputation_from_the_schedule(instance, max_candidates, schedule):
    env = JobShopEnv(instance, n_jobs=None if instance else 7, n_machines=None if instance else 5,
                     schedule=schedule, max_candidates=max_candidates)
    rng = np.random.default_rng(3)
    for episode in range(2):
        observation, _ = env.reset(seed=episode)
        done = False
        while True:
            want = expected_observation(env)
            for key in ("candidates", "mask", "line"):
                assert observation[key].dtype == env.observation_space[key].dtype
                np.testing.assert_allclose(observation[key], want[key], rtol=1e-6, atol=1e-6, err_msg=key)
            np.testing.assert_array_equal(env.action_masks(), want["mask"] == 1)
            if done:
                break
            observation, _, done, truncated, _ = env.step(random_legal_action(observation, rng))
            assert not truncated


@pytest.mark.parametrize("schedule", SCHEMES)
def test_random_episodes_give_feasible_schedules_of_their_kind(schedule):
    rng = np.random.default_rng(11)
    for name in ("ft06", "ft10", "la21"):
        env = JobShopEnv(name, schedule=schedule)
        observation, _ = env.reset()
        done, steps, info = False, 0, {}
        while not done:
            observation, _, done, _, info = env.step(random_legal_action(observation, rng))
            steps += 1
        inst = env.instance
        assert steps == inst.n_jobs * inst.n_machines  # one step per operation
        makespan = validate_schedule(inst, env.start_times)
        assert info == {"makespan": makespan} and env.makespan == makespan
        assert makespan >= (inst.optimum or inst.lower_bound)
        assert_active(inst, env.start_times)  # non-delay schedules are active too
        if schedule == "non_delay":
            assert_non_delay(inst, env.start_times)


def makespan_lower_bound(inst: JobShopInstance, start_times: np.ndarray) -> int:
    """max(max over jobs of (ready time + remaining work), max over machines of (free time + remaining
    work on it)), from the start times alone."""
    scheduled = start_times >= 0
    ends = np.where(scheduled, start_times + inst.durations, 0)
    unscheduled_work = np.where(scheduled, 0, inst.durations)
    job_bound = ends.max(axis=1) + unscheduled_work.sum(axis=1)
    machine_bound = [ends[inst.machines == m].max() + unscheduled_work[inst.machines == m].sum()
                     for m in range(inst.n_machines)]
    return int(max(job_bound.max(), max(machine_bound)))


@pytest.mark.parametrize("schedule", SCHEMES)
def test_rewards_are_increases_of_a_makespan_lower_bound(schedule):
    env = JobShopEnv("la16", schedule=schedule)
    rng = np.random.default_rng(5)
    observation, _ = env.reset()
    assert env.time_scale == pytest.approx(env.instance.durations.mean())
    paid, done = 0.0, False
    while not done:
        observation, reward, done, _, _ = env.step(random_legal_action(observation, rng))
        assert reward <= 0
        paid -= reward * env.time_scale
        assert paid == pytest.approx(makespan_lower_bound(env.instance, env.start_times))
        assert env.makespan <= paid + 1e-9
    assert paid == pytest.approx(env.makespan)  # the rewards sum to -makespan / time_scale


def test_replaying_an_optimal_ft06_schedule_in_active_mode_reaches_55():
    optimal = ft06_optimal_starts()
    inst = load_instance("ft06")
    assert validate_schedule(inst, optimal) == 55 == inst.optimum
    env = JobShopEnv("ft06", schedule="active")
    observation, _ = env.reset()
    done = False
    while not done:
        legal = np.flatnonzero(observation["mask"])
        next_ops = (env.start_times >= 0).sum(axis=1)
        job = min(legal, key=lambda j: optimal[j, next_ops[j]])
        observation, _, done, _, info = env.step(job)
    assert validate_schedule(inst, env.start_times) == info["makespan"] == 55


def test_illegal_actions_raise_and_change_nothing():
    env = JobShopEnv("ft06", schedule="active", max_candidates=8)
    observation, _ = env.reset()
    illegal_row = int(np.flatnonzero(observation["mask"] == 0)[0])
    before = env.start_times.copy()
    for action in (illegal_row, 6, 8, -1, 2.5, "1"):
        with pytest.raises(ValueError, match="not a legal candidate row"):
            env.step(action)
    np.testing.assert_array_equal(env.start_times, before)
    legal_row = int(np.flatnonzero(observation["mask"])[0])
    stepped = env.step(np.int64(legal_row))[0]
    fresh = JobShopEnv("ft06", schedule="active", max_candidates=8)
    fresh.reset()
    for key, value in fresh.step(legal_row)[0].items():
        np.testing.assert_array_equal(stepped[key], value)


def test_stepping_outside_an_episode_is_an_error():
    env = JobShopEnv("ft06")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    observation, _ = env.reset()
    done = False
    while not done:
        observation, _, done, _, _ = env.step(int(np.flatnonzero(observation["mask"])[0]))
    assert not observation["mask"].any() and observation["line"][0] == 1.0  # progress
    with pytest.raises(RuntimeError, match="ended"):
        env.step(0)


@pytest.mark.parametrize("kwargs,message", [
    ({"instance": "ft6"}, r"unknown job-shop instance 'ft6'; did you mean ft06"),
    ({"instance": "ft06", "max_candidates": 5}, r"max_candidates=5 must be an integer >= n_jobs \(6\)"),
    ({"instance": "ft06", "schedule": "nondelay"}, r"schedule='nondelay'.*did you mean 'non_delay'"),
    ({"instance": "ft06", "reward": "tardiness"}, r"reward='tardiness' is not one of 'makespan'"),
    ({"instance": "ft06", "n_jobs": 10}, r"n_jobs=10 does not match instance 'ft06', which has 6"),
    ({"n_jobs": 0}, r"n_jobs=0 must be a positive integer"),
    ({"instance": JobShopInstance("bad", np.ones((2, 2), dtype=np.int64), np.array([[0, 0], [0, 1]]))},
     r"job 0 visits machines \[0, 0\]"),
    ({"instance": JobShopInstance("real", np.ones((2, 2)), np.array([[0, 1], [1, 0]]))},
     r"durations are float64; they must be integers"),
])
def test_bad_arguments_name_the_field_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JobShopEnv(**kwargs)


def test_generated_instances_are_reproducible_from_the_seed():
    first, second = JobShopEnv(n_jobs=8, n_machines=6), JobShopEnv(n_jobs=8, n_machines=6)
    observations = [first.reset(seed=42)[0], second.reset(seed=42)[0]]
    assert first.instance.durations.shape == (8, 6)
    assert first.instance.durations.min() >= 1 and first.instance.durations.max() <= 99
    rng = np.random.default_rng(0)
    done = False
    while not done:
        action = random_legal_action(observations[0], rng)
        results = [first.step(action), second.step(action)]
        for key in ("candidates", "mask", "line"):
            np.testing.assert_array_equal(results[0][0][key], results[1][0][key])
        assert results[0][1:] == results[1][1:]
        observations = [results[0][0], results[1][0]]
        done = results[0][2]
    np.testing.assert_array_equal(first.start_times, second.start_times)
    seeded = first.instance.durations.copy()
    first.reset()  # no seed: the stream runs on, a new instance
    assert not np.array_equal(first.instance.durations, seeded)
    first.reset(seed=42)
    np.testing.assert_array_equal(first.instance.durations, seeded)


def test_gymnasium_and_sb3_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    ta01 = load_instance("ta01")
    machines = ta01.machines.copy()  # every job starts on machine 0: all rows legal at the first decision
    for row in machines:
        first = int(np.flatnonzero(row == 0)[0])
        row[[0, first]] = row[[first, 0]]
    first_on_0 = JobShopInstance("ta01-first-on-machine-0", ta01.durations, machines)
    # Gymnasium's checker samples the action of a fresh episode before resetting; every row is legal at
    # the first decision of these (all jobs can start at 0 in non-delay; all conflict on machine 0)
    for kwargs in ({"instance": "ta01"}, {"n_jobs": 6, "n_machines": 4},
                   {"instance": first_on_0, "schedule": "active"}):
        check_env(gym.make("yuetwin/JobShop-v0", **kwargs).unwrapped)
        sb3_check_env(JobShopEnv(**kwargs))


def ft06_mwkr_batches(vector_step, observations, n_envs: int) -> list[float]:
    """Step a vector env of ft06 copies with the batched MWKR rule until every copy finished once;
    returns each copy's makespan."""
    from policies.rules import make_rule

    rule, makespans = make_rule("mwkr"), [None] * n_envs
    for _ in range(36):
        actions, _ = rule.predict(observations)
        assert actions.shape == (n_envs,)
        observations, finished = vector_step(actions)
        for i, value in finished.items():
            makespans[i] = makespans[i] or value
    return makespans


def single_env_makespans() -> list[int]:
    from policies.evaluate import run_episode
    from policies.rules import make_rule

    return [run_episode(JobShopEnv("ft06", schedule=s), make_rule("mwkr")).makespan for s in SCHEMES]


def test_runs_in_sb3_subprocvecenv():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = SubprocVecEnv([functools.partial(JobShopEnv, "ft06", schedule=s) for s in SCHEMES],
                        start_method="forkserver")
    try:
        def step(actions):
            observations, _, dones, infos = vec.step(actions)
            return observations, {i: info["makespan"] for i, info in enumerate(infos) if dones[i]}
        makespans = ft06_mwkr_batches(step, vec.reset(), 2)
        assert all(np.array(vec.env_method("action_masks")).sum(axis=1) > 0)  # auto-reset: new episodes
    finally:
        vec.close()
    assert makespans == single_env_makespans()


def test_runs_in_gymnasium_asyncvectorenv():
    vec = gym.vector.AsyncVectorEnv([functools.partial(JobShopEnv, "ft06", schedule=s) for s in SCHEMES],
                                    context="forkserver")
    try:
        def step(actions):
            observations, _, terminated, _, infos = vec.step(actions)
            return observations, {i: int(infos["makespan"][i]) for i in np.flatnonzero(terminated)}
        makespans = ft06_mwkr_batches(step, vec.reset(seed=0)[0], 2)
    finally:
        vec.close()
    assert makespans == single_env_makespans()
