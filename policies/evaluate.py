"""The one evaluation routine for every policy (rule, solver, learned) on every environment that follows
``envs.spaces``: rules and learned policies are scored by the same code on the same seeds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import gymnasium as gym

from policies.base import Policy


@dataclass(frozen=True)
class EpisodeResult:
    """One episode of a policy on an environment."""

    makespan: Optional[float]
    """The episode's final ``info["makespan"]`` (time units), None if the environment reports none."""
    total_reward: float
    """Sum of the rewards."""
    steps: int
    """Decisions taken."""
    wall_seconds: float
    """Wall-clock seconds of the whole episode: reset, the policy's ``reset`` (where a solver plans) and
    every decision."""
    info: dict[str, Any] = field(default_factory=dict)
    """The environment's ``info`` of the last step."""


def run_episode(env: gym.Env, policy: Policy, seed: Optional[int] = None,
                deterministic: bool = True) -> EpisodeResult:
    """Reset ``env`` with ``seed``, call ``policy.reset(env.unwrapped)``, then step with the policy's
    ``predict`` (greedy when ``deterministic``, else sampled, for policies that sample) until the episode
    terminates or is truncated."""
    started = time.perf_counter()
    observation, info = env.reset(seed=seed)
    policy.reset(env.unwrapped)
    total_reward, steps, state = 0.0, 0, None
    done = False
    while not done:
        action, state = policy.predict(observation, state=state, deterministic=deterministic)
        observation, reward, terminated, truncated, info = env.step(action)
        total_reward += float(reward)
        steps += 1
        done = terminated or truncated
    return EpisodeResult(makespan=info.get("makespan"), total_reward=total_reward, steps=steps,
                         wall_seconds=time.perf_counter() - started, info=dict(info))


def gap_pct(makespan: float, upper_bound: float) -> float:
    """Gap to the best known makespan in %: 100 x (makespan - upper_bound) / upper_bound."""
    if not upper_bound > 0:
        raise ValueError(f"upper_bound={upper_bound!r} must be > 0 (the best known makespan of the instance)")
    return 100.0 * (makespan - upper_bound) / upper_bound
