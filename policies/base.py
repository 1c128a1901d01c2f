"""The one protocol every policy follows, shaped like stable-baselines3's ``PolicyPredictor`` so SB3
models, rules and solvers are interchangeable.

``predict`` takes an observation of ``envs.spaces`` (a dict with ``candidates``, ``mask`` and ``line``;
or a batch of them, with a leading dimension) and returns ``(actions, state)``: the chosen candidate rows
and the recurrent state (always None here). It never picks a row whose mask is 0.

Policies that need more than the observation (a solver needs the whole instance) get it through
``reset(env)``, called by the evaluation routine at the start of every episode; for the others it does
nothing.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A dispatching policy."""

    name: str
    """Short name shown in tables (e.g. ``mwkr``, ``cpsat``, ``learned``)."""

    def reset(self, env: Any) -> None:
        """Start of an episode on ``env`` (the unwrapped environment, already reset)."""

    def predict(self, observation: dict[str, np.ndarray], state: Optional[tuple] = None,
                episode_start: Optional[np.ndarray] = None,
                deterministic: bool = True) -> tuple[np.ndarray, Optional[tuple]]:
        """The chosen candidate row(s) for ``observation``, and the (unused) recurrent state."""
