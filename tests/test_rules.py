"""Dispatching rules and the evaluation routine: schedules against a separate time-stepping reference
implementation of non-delay dispatching, mean gaps on ta01-ta10 against the published values
(scheduling-anchors.md), and each rule's choice on hand-built observations."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers yuetwin/JobShop-v0)
from envs.instances import JobShopInstance, load_instance
from envs.jobshop import JobShopEnv
from envs.spaces import CANDIDATE_FEATURES, N_LINE_FEATURES
from policies.base import Policy
from policies.evaluate import gap_pct, run_episode
from policies.rules import ATC, MWKR, RULE_NAMES, make_rule
from tests.test_jobshop_env import validate_schedule

# ------------------------------------------------------------------ reference non-delay dispatching
RuleKey = Callable[[JobShopInstance, int, int, int], float]
"""(instance, job, next operation index, job ready time) -> sort key, smallest first."""

REFERENCE_KEYS: dict[str, RuleKey] = {
    "fifo": lambda inst, j, k, ready: ready,
    "spt": lambda inst, j, k, ready: inst.durations[j, k],
    "lpt": lambda inst, j, k, ready: -inst.durations[j, k],
    "mwkr": lambda inst, j, k, ready: -inst.durations[j, k:].sum(),
    "mor": lambda inst, j, k, ready: -(inst.n_machines - k),
}


def reference_non_delay(inst: JobShopInstance, key: RuleKey) -> np.ndarray:
    """Start times of the non-delay schedule of a rule, by stepping a clock one time unit at a time:
    at every tick each idle machine starts the best of the operations waiting for it (ties to the lowest
    job). Assumes integer durations >= 1."""
    n, m = inst.durations.shape
    starts = np.full((n, m), -1, dtype=np.int64)
    next_op, ready, free = [0] * n, [0] * n, [0] * m
    clock = 0
    while min(next_op) < m:
        for machine in range(m):
            if free[machine] > clock:
                continue
            waiting = [j for j in range(n) if next_op[j] < m and inst.machines[j, next_op[j]] == machine
                       and ready[j] <= clock]
            if waiting:
                job = min(waiting, key=lambda j: (key(inst, j, next_op[j], ready[j]), j))
                starts[job, next_op[job]] = clock
                free[machine] = ready[job] = clock + int(inst.durations[job, next_op[job]])
                next_op[job] += 1
        clock += 1
    return starts


@pytest.mark.parametrize("rule", sorted(REFERENCE_KEYS))
@pytest.mark.parametrize("name", ["ft06", "la01", "ft10"])
def test_rules_build_the_reference_non_delay_schedule(rule, name):
    inst = load_instance(name)
    want = reference_non_delay(inst, REFERENCE_KEYS[rule])
    env = JobShopEnv(name)
    result = run_episode(env, make_rule(rule))
    np.testing.assert_array_equal(env.start_times, want)
    assert result.makespan == validate_schedule(inst, want) >= inst.optimum


def test_rules_on_a_hand_worked_instance():
    """Job 0: M0 3, M1 2; job 1: M0 2, M1 4; job 2: M1 1, M0 4. Worked by hand:
    SPT: t=0 M1 takes job 2 (alone), M0 job 1 (2 < 3); t=2 M0 job 0 (3 < 4), M1 job 1; M0 frees at 5 for
    job 2, M1 at 6 for job 0 -> makespan 9.
    LPT: t=0 M0 job 0 (3 > 2), M1 job 2; t=3 M0 job 2 (4 > 2), M1 job 0; job 1 on M0 at 7, M1 at 9 -> 13.
    """
    inst = JobShopInstance("hand", np.array([[3, 2], [2, 4], [1, 4]]), np.array([[0, 1], [0, 1], [1, 0]]))
    expected = {"spt": ([[2, 6], [0, 2], [0, 5]], 9), "lpt": ([[0, 3], [7, 9], [0, 3]], 13)}
    for rule, (starts, makespan) in expected.items():
        env = JobShopEnv(inst)
        assert run_episode(env, make_rule(rule)).makespan == makespan
        np.testing.assert_array_equal(env.start_times, starts)
        np.testing.assert_array_equal(reference_non_delay(inst, REFERENCE_KEYS[rule]), starts)


@pytest.mark.parametrize("rule,published", [("spt", 25.9), ("mwkr", 19.2), ("mor", 20.5)])
def test_mean_gap_on_ta01_ta10_matches_the_published_non_delay_rules(rule, published):
    gaps = []
    for i in range(1, 11):
        env = JobShopEnv(f"ta{i:02d}")
        result = run_episode(env, make_rule(rule))
        gaps.append(gap_pct(result.makespan, env.instance.upper_bound))
    assert np.mean(gaps) == pytest.approx(published, abs=2.0)


# ------------------------------------------------------------------ rules on hand-built observations
def observation(rows: list[dict[str, float]], mask: list[int]) -> dict[str, np.ndarray]:
    """An observation of ``envs.spaces`` whose candidate rows set the named features (others 0)."""
    candidates = np.zeros((len(rows), len(CANDIDATE_FEATURES)), dtype=np.float32)
    for i, row in enumerate(rows):
        for feature, value in row.items():
            candidates[i, CANDIDATE_FEATURES.index(feature)] = value
    return {"candidates": candidates, "mask": np.array(mask, dtype=np.int8),
            "line": np.zeros(N_LINE_FEATURES, dtype=np.float32)}


def choice(rule, obs) -> int:
    action, state = rule.predict(obs)
    assert action.shape == () and action.dtype == np.int64 and state is None
    return int(action)


def test_each_rule_picks_by_its_feature_and_never_an_illegal_row():
    rows = [  # row 0 is illegal and would win every rule
        {"processing_time": 0.1, "remaining_work": 9, "remaining_ops": 1.0, "waiting": 9},
        {"processing_time": 2.0, "remaining_work": 5, "remaining_ops": 0.4, "waiting": 1},
        {"processing_time": 1.0, "remaining_work": 3, "remaining_ops": 0.8, "waiting": 2},
        {"processing_time": 3.0, "remaining_work": 4, "remaining_ops": 0.6, "waiting": 0},
    ]
    obs = observation(rows, [0, 1, 1, 1])
    expected = {"fifo": 2, "spt": 2, "lpt": 3, "mwkr": 1, "mor": 2,
                # no row has a due date: the due-date rules take the lowest legal row
                "edd": 1, "cr": 1, "atc": 1}
    for name, row in expected.items():
        assert choice(make_rule(name), obs) == row, name


def test_ties_go_to_the_lowest_row():
    rows = [{"processing_time": 1.0, "remaining_work": 2}] * 4
    for name in RULE_NAMES[:-1]:
        assert choice(make_rule(name), observation(rows, [0, 0, 1, 1])) == 2, name


def test_due_date_rules_rank_by_due_date_and_put_undated_rows_last():
    # time to due (slack + remaining work): row 1 -> 5, row 2 -> 12; critical ratio 5/4 = 1.25 vs 12/10 = 1.2
    rows = [
        {"processing_time": 0.5, "remaining_work": 1},  # no due date: last, whatever its features
        {"processing_time": 1.0, "remaining_work": 4, "slack": 1, "has_due": 1},
        {"processing_time": 1.0, "remaining_work": 10, "slack": 2, "has_due": 1},
    ]
    obs = observation(rows, [1, 1, 1])
    assert choice(make_rule("edd"), obs) == 1
    assert choice(make_rule("cr"), obs) == 2
    # ATC, k = 2: row 1 p = 1, slack 10 -> exp(-10 / (2 x 1.5)) / 1 = 0.036; row 2 p = 2, slack 0 -> 1/2
    rows = [{"processing_time": 1.0, "remaining_work": 11, "slack": 10, "has_due": 1},
            {"processing_time": 2.0, "remaining_work": 2, "slack": 0, "has_due": 1}]
    obs = observation(rows, [1, 1])
    assert choice(ATC(k=2.0), obs) == 1
    assert choice(ATC(k=100.0), obs) == 0  # exp(-10 / 150) = 0.94 > 0.5: a large k approaches SPT
    with pytest.raises(ValueError, match="k=0"):
        ATC(k=0)


def test_batched_observations_give_the_per_observation_choices():
    env = JobShopEnv("la01", schedule="active")
    obs, _ = env.reset()
    singles = []
    for _ in range(12):
        singles.append(obs)
        obs, *_ = env.step(int(np.flatnonzero(obs["mask"])[-1]))
    batch = {key: np.stack([o[key] for o in singles]) for key in singles[0]}
    for name in RULE_NAMES[:-1]:
        rule = make_rule(name)
        actions, _ = rule.predict(batch)
        assert actions.shape == (12,)
        assert actions.tolist() == [choice(rule, o) for o in singles], name
        assert all(batch["mask"][i, a] for i, a in enumerate(actions))


def test_random_rule_is_uniform_over_legal_rows_and_reproducible():
    obs = observation([{}] * 5, [1, 0, 1, 1, 0])
    draws = [choice(make_rule("random", seed=7), obs) for _ in range(3)]
    assert len(set(draws)) == 1  # a fresh rule with the same seed makes the same first choice
    rule = make_rule("random", seed=7)
    picks = np.array([choice(rule, obs) for _ in range(3000)])
    counts = np.bincount(picks, minlength=5)
    assert counts[1] == counts[4] == 0
    assert np.all(np.abs(counts[[0, 2, 3]] - 1000) < 100)  # binomial sd 26
    assert picks[0] == draws[0]


def test_no_legal_row_is_an_error():
    with pytest.raises(ValueError, match="no legal candidate"):
        make_rule("spt").predict(observation([{}] * 3, [0, 0, 0]))


def test_make_rule_knows_every_name_and_suggests_close_ones():
    for name in RULE_NAMES:
        rule = make_rule(name.upper())
        assert rule.name == name and isinstance(rule, Policy)
    with pytest.raises(ValueError, match=r"unknown dispatching rule 'mwrk'; did you mean 'mwkr'"):
        make_rule("mwrk")


# ------------------------------------------------------------------ evaluation routine
class RecordingMWKR(MWKR):
    """MWKR that remembers the environment handed to ``reset``."""

    def reset(self, env):
        self.env = env


def test_run_episode_reports_the_episode():
    env = gym.make("yuetwin/JobShop-v0", instance="ft06")
    policy = RecordingMWKR()
    result = run_episode(env, policy, seed=3)
    unwrapped = env.unwrapped
    assert policy.env is unwrapped
    assert result.steps == 36
    assert result.makespan == result.info["makespan"] == validate_schedule(unwrapped.instance,
                                                                            unwrapped.start_times)
    assert result.total_reward == pytest.approx(-result.makespan / unwrapped.time_scale)
    assert result.wall_seconds > 0
    again = run_episode(env, RecordingMWKR(), seed=3)
    assert (again.makespan, again.total_reward) == (result.makespan, result.total_reward)


def test_gap_pct():
    assert gap_pct(60, 55) == pytest.approx(100 * 5 / 55)
    assert gap_pct(1231, 1231) == 0.0
    with pytest.raises(ValueError, match="upper_bound=0"):
        gap_pct(10, 0)
