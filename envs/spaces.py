"""Observation and action conventions shared by every YueTwin environment, so one policy (rule, solver or
learned) acts on any line or instance size.

At each decision the agent chooses one of up to ``max_candidates`` candidates (jobs or parts waiting for
the machine that is free). The observation is a dict:

* ``candidates``: float32 array (max_candidates, len(CANDIDATE_FEATURES)); rows past the real candidates
  are zeros;
* ``mask``: int8 array (max_candidates,), 1 where the row is a legal choice (the same as
  ``env.action_masks()``, as sb3-contrib's MaskablePPO expects);
* ``line``: float32 array (len(LINE_FEATURES),), the global state.

The action is the row index of the chosen candidate (``CandidateSpace``, a ``Discrete(max_candidates)``
whose ``sample()`` draws a legal row of the current decision, so random agents and the environment
checkers never pick an illegal one; an illegal action raises ValueError).

Times are divided by the environment's ``time_scale`` (minutes; for the job shop, the mean operation
duration of the instance), so features are dimensionless and comparable across instances.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

CANDIDATE_FEATURES: tuple[str, ...] = (
    "processing_time",   # duration of the candidate's next operation / time_scale
    "remaining_work",    # work left on the job including that operation / time_scale
    "remaining_ops",     # operations left including that one / number of machines (job shop) or stations
    "slack",             # (due - now - remaining_work) / time_scale, not clipped (rules rebuild due dates
                         # from it); 0 without due date
    "has_due",           # 1 if the job has a due date, else 0
    "setup",             # setup time the machine needs before the operation / time_scale
    "next_queue_work",   # work queued at the machine of the job's following operation / time_scale (0 if last)
    "waiting",           # (now - time the candidate became ready) / time_scale
)
"""Per-candidate features, in column order."""

LINE_FEATURES: tuple[str, ...] = (
    "progress",          # share of all known work finished, 0..1
    "candidates",        # number of legal candidates / max_candidates
    "utilisation",       # work done / (machines x elapsed time) so far, 0..1 (0 at time 0); work done is
                         # the planned time of finished operations
    "queued_work",       # work waiting in all queues / (time_scale x number of machines)
)
"""Global features, in order."""

N_CANDIDATE_FEATURES = len(CANDIDATE_FEATURES)
N_LINE_FEATURES = len(LINE_FEATURES)
FEATURE = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
"""Column index of each candidate feature."""


def observation_space(max_candidates: int) -> gym.spaces.Dict:
    """The observation space for ``max_candidates`` rows."""
    return gym.spaces.Dict({
        "candidates": gym.spaces.Box(-np.inf, np.inf, (max_candidates, N_CANDIDATE_FEATURES), np.float32),
        "mask": gym.spaces.Box(0, 1, (max_candidates,), np.int8),
        "line": gym.spaces.Box(-np.inf, np.inf, (N_LINE_FEATURES,), np.float32),
    })


class CandidateSpace(gym.spaces.Discrete):
    """One action per candidate row. ``legal`` is the environment's current mask (the env keeps it up to
    date, sharing the array); ``sample()`` without a mask draws among the legal rows."""

    def __init__(self, max_candidates: int):
        super().__init__(max_candidates)
        self.legal: np.ndarray = np.ones(max_candidates, dtype=bool)

    def sample(self, mask: np.ndarray | None = None, probability: np.ndarray | None = None) -> np.int64:
        if mask is None and probability is None and self.legal.any():
            mask = self.legal.astype(np.int8)
        return super().sample(mask=mask, probability=probability)


def action_space(max_candidates: int) -> CandidateSpace:
    """One action per candidate row, sampling legal rows."""
    return CandidateSpace(max_candidates)
