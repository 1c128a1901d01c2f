"""CP-SAT schedules (twin.planning) and the CP-SAT policy, on the real solver, against known optima,
hand-computed plans and an independent schedule checker."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.instances import JobShopInstance, generate_instance, load_instance
from envs.jobshop import JobShopEnv
from policies.cpsat import CpsatPolicy, NoScheduleFound
from policies.evaluate import run_episode
from policies.rules import make_rule
from twin.planning import PlanJob, make_plan, solve_jobshop


def violations(instance: JobShopInstance, starts: np.ndarray) -> list[str]:
    """Why ``starts`` is not a schedule of ``instance``: negative starts, operations of a job out of order
    or overlapping, operations overlapping on a machine (empty when it is a valid schedule)."""
    durations, machines = instance.durations, instance.machines
    problems = [f"job {j} op {k} starts at {starts[j, k]} < 0" for j, k in zip(*np.nonzero(starts < 0))]
    n_jobs, n_ops = durations.shape
    on_machine: dict[int, list[tuple[int, int, int, int]]] = {}
    for j in range(n_jobs):
        for k in range(n_ops):
            if k and starts[j, k] < starts[j, k - 1] + durations[j, k - 1]:
                problems.append(f"job {j} op {k} starts at {starts[j, k]} before op {k - 1} ends")
            start = int(starts[j, k])
            on_machine.setdefault(int(machines[j, k]), []).append((start, start + int(durations[j, k]), j, k))
    for machine, ops in on_machine.items():
        ops.sort()
        for (_, end, j, k), (start, _, j2, k2) in zip(ops, ops[1:]):
            if start < end:
                problems.append(f"machine {machine}: job {j2} op {k2} starts at {start} before job {j} op {k} "
                                f"ends at {end}")
    return problems


def simple_lower_bound(instance: JobShopInstance) -> int:
    """max(the most work of one job, the most work on one machine): no schedule is shorter."""
    machine_load = np.bincount(instance.machines.ravel(), weights=instance.durations.ravel())
    return int(max(instance.durations.sum(axis=1).max(), machine_load.max()))


def serial_schedule(instance: JobShopInstance) -> np.ndarray:
    """Every job after the previous one, its operations back to back: feasible, makespan = all the work."""
    ends = np.cumsum(instance.durations.ravel()).reshape(instance.durations.shape)
    return ends - instance.durations


def test_ft06_is_proven_optimal_at_55_with_a_valid_schedule():
    ft06 = load_instance("ft06")
    solution = solve_jobshop(ft06, time_limit=30)
    assert (solution.status, solution.makespan, solution.lower_bound) == ("optimal", 55, 55)
    assert violations(ft06, solution.start_times) == []
    assert int((solution.start_times + ft06.durations).max()) == 55
    assert 0 < solution.seconds < 30


def test_generated_10x10_is_a_valid_schedule_above_the_simple_lower_bound():
    instance = generate_instance(10, 10, np.random.default_rng(np.random.SeedSequence(2024)))
    solution = solve_jobshop(instance, time_limit=20)
    assert violations(instance, solution.start_times) == []
    assert int((solution.start_times + instance.durations).max()) == solution.makespan
    assert solution.makespan >= simple_lower_bound(instance)
    # a random 10x10 shop is proven optimal in well under a second on one core
    assert solution.status == "optimal" and solution.lower_bound == solution.makespan


def test_a_feasible_hint_is_the_first_solution():
    ft06 = load_instance("ft06")
    optimal = solve_jobshop(ft06, time_limit=30)
    hinted = solve_jobshop(ft06, time_limit=30, hint=optimal.start_times)
    assert hinted.first_makespan == 55 and hinted.makespan == 55
    # a deliberately bad but feasible schedule: the solver starts from it, then improves it to the optimum
    serial = serial_schedule(ft06)
    assert violations(ft06, serial) == []
    from_serial = solve_jobshop(ft06, time_limit=30, hint=serial)
    assert from_serial.first_makespan == int(ft06.durations.sum())
    assert (from_serial.status, from_serial.makespan) == ("optimal", 55)


def test_lns_only_improves_a_feasible_hint_to_the_optimum():
    """Searching only by LNS starts from the hint and on ft06 still reaches the known optimum, 55."""
    ft06 = load_instance("ft06")
    solution = solve_jobshop(ft06, time_limit=10, hint=serial_schedule(ft06), lns_only=True)
    assert solution.first_makespan == int(ft06.durations.sum())
    assert solution.makespan == 55 and violations(ft06, solution.start_times) == []


def test_deterministic_time_gives_the_same_schedule():
    instance = generate_instance(15, 15, np.random.default_rng(np.random.SeedSequence(7)))
    first = solve_jobshop(instance, time_limit=0.2, deterministic=True)
    second = solve_jobshop(instance, time_limit=0.2, deterministic=True)
    assert first.makespan == second.makespan
    assert np.array_equal(first.start_times, second.start_times)


@pytest.mark.parametrize("kwargs, field", [
    ({"hint": np.zeros((6, 5), dtype=int)}, "hint has shape (6, 5)"),
    ({"hint": -np.ones((6, 6), dtype=int)}, "hint has negative starts"),
    ({"time_limit": 0}, "time_limit=0"),
    ({"workers": 0}, "workers=0"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    arguments = {"time_limit": 1.0, **kwargs}
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)")):
        solve_jobshop(load_instance("ft06"), **arguments)


@pytest.mark.parametrize("servers, expected", [(1, [0.0, 10.0, 20.0, 30.0]), (2, [0.0, 0.0, 10.0, 10.0])])
def test_line_plan_of_equal_lots_fills_every_server(servers, expected):
    """Four 10-minute lots without due dates: the least total completion time runs them back to back on
    each server."""
    jobs = [PlanJob(key=(order, 0), ops=(("m", 10.0, 0),), ready=100.0, due=math.inf) for order in range(4)]
    plan = make_plan(jobs, {"m": servers}, now=100.0, time_limit=1.0)
    assert sorted(plan.values()) == [100.0 + start for start in expected]


def test_cpsat_policy_replays_the_optimum_through_run_episode():
    policy = CpsatPolicy(time_limit=30)
    env = JobShopEnv("ft06", schedule="active")
    result = run_episode(env, policy)
    assert policy.solution.makespan == 55 and result.makespan == 55
    assert violations(env.instance, env.start_times) == []


def test_cpsat_policy_replay_never_loses_to_the_solver():
    """On a 15x15 shop stopped early (a schedule that is not proven optimal), the active-schedule replay
    reproduces the solver's makespan or beats it."""
    instance = generate_instance(15, 15, np.random.default_rng(np.random.SeedSequence(11)))
    policy = CpsatPolicy(time_limit=0.3, deterministic=True)  # the same early stop on any machine, any load
    env = JobShopEnv(instance, schedule="active")
    result = run_episode(env, policy)
    assert violations(instance, env.start_times) == []
    assert simple_lower_bound(instance) <= result.makespan <= policy.solution.makespan


def test_cpsat_policy_needs_a_job_shop_and_one_observation():
    with pytest.raises(ValueError, match="static job shop"):
        CpsatPolicy(time_limit=1).reset(object())
    policy = CpsatPolicy(time_limit=5)
    env = JobShopEnv("ft06", schedule="active")
    observation, _ = env.reset()
    policy.reset(env)
    batch = {key: value[np.newaxis] for key, value in observation.items()}
    with pytest.raises(ValueError, match="batch"):
        policy.predict(batch)


def test_the_hybrid_replays_its_hint_when_cp_sat_finds_nothing():
    """A 100x20 shop with almost no search time: CP-SAT has no schedule of its own, and the hybrid plays
    the warm start's schedule (same makespan) instead of failing; CP-SAT alone fails with the fix."""
    rule = make_rule("mwkr")
    rule_makespan = run_episode(JobShopEnv("ta71", schedule="active"), rule).makespan
    hybrid = CpsatPolicy(time_limit=1e-4, deterministic=True, warm_start=rule)
    assert hybrid.lns_only
    result = run_episode(JobShopEnv("ta71", schedule="active"), hybrid)
    assert hybrid.solution.status == "unknown" and result.makespan == rule_makespan
    with pytest.raises(NoScheduleFound, match="longer time limit"):
        run_episode(JobShopEnv("ta71", schedule="active"), CpsatPolicy(time_limit=1e-4, deterministic=True))
