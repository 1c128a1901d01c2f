"""The twin's look-ahead: a dispatching rule improved by trying every candidate on the twin.

At each decision :class:`Lookahead` simulates, for every candidate, the rest of the episode on a copy of
the line: the same episode replayed to now (same root seed, same choices), that candidate started, then
the base rule deciding until the shop is empty. The copy gets no further arrivals: the look-ahead knows
the jobs in the shop, not the ones still to come. It picks the candidate whose copy ends with the lowest
total tardiness of all orders, keeping the base rule's own choice unless another is strictly better.

This is one step of policy iteration, the "rollout" of Bertsekas, Tsitsiklis & Wu (1997, Journal of
Heuristics 3): the base rule's choices are improved where the simulation shows a better one. It costs one
simulation per candidate per decision (2 to 10 s per episode of the dynamic job shop on this 2-core machine,
measured on different days, against 10 ms for the rule), so it teaches the learned dispatcher (``twin train
--lookahead``, ``policies.training``) rather than dispatching lines itself.

Only on the dynamic job shop (``envs.dispatch.DynamicJobShopEnv``): its processing times are known and its
only randomness is the arrivals, which the copy leaves out. On a line with breakdowns or random times, the
replay with the episode's seed would see the real future.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from envs.dispatch import REWARDS, DynamicJobShopEnv, PolicyDecider, run_to_end
from lines.station import Decision
from policies.base import Policy
from twin.config import Scenario
from twin.engine import Line


DYNAMIC_JOB_SHOP_ONLY = ("it replays the episode with its seed, which on other lines would show it their future "
                         "breakdowns and random times")
"""Why the look-ahead decides only in the dynamic job shop (the reason its refusals give)."""


class _Replay:
    """Decider of a copy: the episode's ``rows`` first, then ``then``."""

    def __init__(self, rows: list[int], then: PolicyDecider):
        self.rows = rows
        self.then = then
        self.done = 0

    def __call__(self, decision: Decision) -> int:
        if self.done < len(self.rows):
            self.done += 1
            return self.rows[self.done - 1]
        return self.then(decision)


def without_arrivals_after(scenario: Scenario, time: float) -> Scenario:
    """``scenario`` with its Poisson arrivals stopped at ``time`` (minutes) if they run longer."""
    arrivals = scenario.orders.arrivals
    until = time if arrivals.until is None else min(arrivals.until, time)
    orders = scenario.orders.model_copy(update={"arrivals": arrivals.model_copy(update={"until": until})})
    return scenario.model_copy(update={"orders": orders})


class Lookahead:
    """``base`` (a policy, usually the best rule) improved by simulating every candidate on the twin (see the
    module docstring). ``reset(env)`` must be given the :class:`DynamicJobShopEnv` it decides in; ``predict``
    takes that env's current observation (no batches). Deterministic: it draws no random numbers."""

    def __init__(self, base: Policy):
        self.base = base
        self.name = f"lookahead({base.name})"
        self._env: Optional[DynamicJobShopEnv] = None

    def reset(self, env: Any) -> None:
        if not isinstance(env, DynamicJobShopEnv):
            raise ValueError(f"the look-ahead decides only in a DynamicJobShopEnv, not {type(env).__name__}: "
                             f"{DYNAMIC_JOB_SHOP_ONLY}")
        self._env = env
        self.base.reset(env)

    def predict(self, observation: dict[str, np.ndarray], state: Optional[tuple] = None,
                episode_start: Optional[np.ndarray] = None,
                deterministic: bool = True) -> tuple[np.ndarray, Optional[tuple]]:
        """The chosen candidate row of the env's pending decision, and None."""
        env = self._env
        if env is None or env.line is None:
            raise RuntimeError("call reset(env) with the DynamicJobShopEnv, after env.reset(), before predict()")
        mask = np.asarray(observation["mask"])
        if mask.ndim != 1:
            raise ValueError("the look-ahead decides one observation at a time (the env's current one), not a batch")
        choice = int(np.asarray(self.base.predict(observation)[0]).reshape(-1)[0])
        totals = self.tardiness_of_choices(env, int(mask.sum()))
        best = int(np.argmin(totals))
        return np.array(best if totals[best] < totals[choice] else choice), None

    def tardiness_of_choices(self, env: DynamicJobShopEnv, legal: int) -> list[float]:
        """Total tardiness (minutes) of all orders in the copy that starts each of the ``legal`` candidate
        rows of ``env``'s pending decision."""
        line = env.line
        copy = without_arrivals_after(env.scenario, line.env.now)
        tardiness = REWARDS["tardiness"].measure
        totals = []
        for row in range(legal):
            replay = Line(copy, 0, line.streams.seed,
                          decider=_Replay([*env.choices, row], PolicyDecider(self.base, env.max_candidates)))
            totals.append(tardiness(run_to_end(replay, env.horizon)))
        return totals
