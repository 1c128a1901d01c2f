"""The twin's look-ahead (``policies.lookahead``): its copies replay the episode exactly, and once every job
has arrived it never does worse than its base rule (the policy improvement theorem)."""

from __future__ import annotations

import numpy as np
import pytest

from envs.dispatch import DispatchEnv, DynamicJobShopEnv
from policies.lookahead import Lookahead
from policies.rules import make_rule
from policies.training import total_tardiness

ARRIVALS_END = 60.0
"""Minutes: jobs arrive only until then (about 6 jobs), so the copies of later decisions miss no job."""


def few_jobs() -> DynamicJobShopEnv:
    """Tightness 1 (due = arrival + work): every job that waits is late, so choices matter."""
    return DynamicJobShopEnv(tightness=1.0, overrides=[f"orders.arrivals.until={ARRIVALS_END}"])


def test_the_copy_of_the_base_rules_choice_is_the_base_rules_episode():
    """Once all jobs have arrived, the copy that starts the rule's own choice, the rule deciding after it, is
    the episode the rule runs by itself: the replay (same seed, same choices) is exact."""
    atc, lookahead = make_rule("atc"), Lookahead(make_rule("atc"))
    checked = 0
    for seed in range(6):
        env = few_jobs()
        observation, _ = env.reset(seed=seed)
        lookahead.reset(env)
        done = False
        while not done and env.line.env.now < ARRIVALS_END:
            observation, _, terminated, truncated, _ = env.step(atc.predict(observation)[0])
            done = terminated or truncated
        if done:
            continue
        choice = int(atc.predict(observation)[0])
        totals = lookahead.tardiness_of_choices(env, int(observation["mask"].sum()))
        assert totals[choice] == pytest.approx(total_tardiness(few_jobs(), atc, seed), rel=1e-9)
        checked += 1
    assert checked >= 3


def test_once_all_jobs_are_known_the_lookahead_only_improves_on_its_base_rule():
    """After the last arrival the problem is deterministic and the look-ahead is one step of policy
    iteration: the best copy's tardiness never rises from one decision to the next, the episode ends with
    the last best copy's tardiness, so no later than the rule would have ended from the first decision
    after the last arrival (the copy of the rule's choice there); on some seeds strictly earlier."""
    atc = make_rule("atc")
    improved = 0
    for seed in range(8):
        lookahead = Lookahead(atc)
        env = few_jobs()
        observation, _ = env.reset(seed=seed)
        lookahead.reset(env)
        best_copies, rule_from_there, rewards, done = [], None, 0.0, False
        while not done:
            totals = lookahead.tardiness_of_choices(env, int(observation["mask"].sum()))
            action = int(lookahead.predict(observation)[0])
            if env.line.env.now >= ARRIVALS_END:
                if rule_from_there is None:
                    rule_from_there = totals[int(atc.predict(observation)[0])]
                best_copies.append(min(totals))
                assert totals[action] == min(totals)
            observation, reward, terminated, truncated, _ = env.step(action)
            rewards += reward
            done = terminated or truncated
        total = -rewards * env.time_scale
        if rule_from_there is not None:
            assert np.all(np.diff(best_copies) <= 1e-9) and total == pytest.approx(best_copies[-1], rel=1e-9)
            assert total <= rule_from_there + 1e-9
            improved += total < rule_from_there - 1e-6
    assert improved >= 1


def test_the_lookahead_refuses_lines_whose_future_it_would_see():
    from pathlib import Path

    env = DispatchEnv(Path(__file__).resolve().parents[1] / "scenarios" / "dynamic_job_shop.yaml")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="only in a DynamicJobShopEnv"):
        Lookahead(make_rule("atc")).reset(env)
