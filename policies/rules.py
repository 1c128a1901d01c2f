"""Dispatching rules as ``Policy`` objects (``policies.base``) that read only the observation of
``envs.spaces``, so they act on every YueTwin environment (the static job shop, a line, any size).

Each rule gives every candidate row a priority from its features and picks the legal row with the
highest priority; ties go to the lowest row (the lowest job index in ``envs.jobshop``). The features are
dimensionless (times divided by the environment's time_scale), which does not change any ranking.

=========  ====================================================================================
``fifo``   first in, first out: the largest ``waiting`` (the candidate ready the longest)
``spt``    shortest processing time of the next operation
``lpt``    longest processing time of the next operation
``edd``    earliest due date: the smallest ``slack + remaining_work`` (= (due - now) / time_scale)
``mwkr``   most work remaining (``remaining_work``, including the next operation)
``mor``    most operations remaining (``remaining_ops``)
``cr``     smallest critical ratio (due - now) / remaining work
``atc``    apparent tardiness cost (Vepsalainen & Morton 1987), look-ahead parameter ``k``
``random`` a uniformly random legal row, from a seeded Generator
=========  ====================================================================================

The due-date rules (``edd``, ``cr``, ``atc``) rank the rows that have a due date (``has_due`` = 1) first;
rows without one come after them, by lowest row. In the static job shop no job has a due date, so there
they pick the lowest legal row.

``predict`` takes one observation or a batch (every array with a leading batch dimension, as from a
vectorised environment) and returns the chosen rows as an int64 array: shape () for one observation,
(batch,) for a batch, as stable-baselines3's ``predict`` does.
"""

from __future__ import annotations

import difflib
from typing import Any, Optional

import numpy as np

from envs.spaces import FEATURE

RULE_NAMES: tuple[str, ...] = ("fifo", "spt", "lpt", "edd", "mwkr", "mor", "cr", "atc", "random")
"""Names accepted by :func:`make_rule`."""

_TINY = 1e-9
"""Floor of the divisors (processing time, remaining work), so a zero never yields inf or NaN."""


class PriorityRule:
    """A rule that picks the legal row of highest priority, ties to the lowest row. Subclasses set
    ``name`` and implement ``_priority``."""

    name: str = ""

    def reset(self, env: Any) -> None:
        """Nothing to prepare: a rule needs only the observation."""

    def predict(self, observation: dict[str, np.ndarray], state: Optional[tuple] = None,
                episode_start: Optional[np.ndarray] = None,
                deterministic: bool = True) -> tuple[np.ndarray, Optional[tuple]]:
        """The chosen candidate row(s) and None (no recurrent state). Raises ValueError when an
        observation has no legal row."""
        candidates = np.asarray(observation["candidates"], dtype=np.float64)
        legal = np.asarray(observation["mask"]) != 0
        single = legal.ndim == 1
        if single:
            candidates, legal = candidates[np.newaxis], legal[np.newaxis]
        if candidates.shape[:2] != legal.shape:
            raise ValueError(f"observation 'candidates' {candidates.shape} and 'mask' {legal.shape} do not "
                             "describe the same rows")
        empty = np.flatnonzero(~legal.any(axis=1))
        if empty.size:
            raise ValueError(f"rule {self.name!r}: observation {int(empty[0])} of the batch has no legal "
                             "candidate (every mask entry is 0); the episode should have ended")
        eligible = self._eligible(candidates, legal)
        priority = np.where(eligible, self._priority(candidates, eligible), -np.inf)
        actions = priority.argmax(axis=1).astype(np.int64)  # first maximum: the lowest row
        return (actions[0, ...] if single else actions), None

    def _eligible(self, candidates: np.ndarray, legal: np.ndarray) -> np.ndarray:
        """The rows the rule may pick (batch, rows): the legal ones."""
        return legal

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Priority (batch, rows) of every row, higher first; finite on the eligible rows."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FIFO(PriorityRule):
    """First in, first out: the candidate that has waited longest."""

    name = "fifo"

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return candidates[..., FEATURE["waiting"]]


class SPT(PriorityRule):
    """Shortest processing time of the next operation."""

    name = "spt"

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return -candidates[..., FEATURE["processing_time"]]


class LPT(PriorityRule):
    """Longest processing time of the next operation."""

    name = "lpt"

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return candidates[..., FEATURE["processing_time"]]


class MWKR(PriorityRule):
    """Most work remaining in the job, the next operation included."""

    name = "mwkr"

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return candidates[..., FEATURE["remaining_work"]]


class MOR(PriorityRule):
    """Most operations remaining in the job, the next one included."""

    name = "mor"

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return candidates[..., FEATURE["remaining_ops"]]


class DueDateRule(PriorityRule):
    """A rule on due dates: rows with a due date are ranked by ``_due_priority`` before the rows without
    one, which keep the lowest-row order among themselves."""

    def _eligible(self, candidates: np.ndarray, legal: np.ndarray) -> np.ndarray:
        dated = legal & (candidates[..., FEATURE["has_due"]] > 0.5)
        return np.where(dated.any(axis=1, keepdims=True), dated, legal)

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        has_due = candidates[..., FEATURE["has_due"]] > 0.5
        return np.where(has_due, self._due_priority(candidates, eligible), 0.0)

    def _due_priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _time_to_due(candidates: np.ndarray) -> np.ndarray:
        """(due - now) / time_scale = slack + remaining_work."""
        return candidates[..., FEATURE["slack"]] + candidates[..., FEATURE["remaining_work"]]


class EDD(DueDateRule):
    """Earliest due date."""

    name = "edd"

    def _due_priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return -self._time_to_due(candidates)


class CR(DueDateRule):
    """Smallest critical ratio (due - now) / remaining work (below 1: the job is already late)."""

    name = "cr"

    def _due_priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        remaining = np.maximum(candidates[..., FEATURE["remaining_work"]], _TINY)
        return -self._time_to_due(candidates) / remaining


class ATC(DueDateRule):
    """Apparent tardiness cost (Vepsalainen & Morton 1987), unit weights: priority
    (1 / p) * exp(-max(slack, 0) / (k * mean p)), where p is the next operation's processing time, slack
    the job's slack (due - now - remaining work) and mean p the mean processing time of the candidates
    being ranked. A small ``k`` favours urgent jobs, a large one approaches SPT."""

    name = "atc"

    def __init__(self, k: float = 2.0):
        if not k > 0:
            raise ValueError(f"ATC look-ahead k={k!r} must be > 0 (typical values 1 to 4)")
        self.k = float(k)

    def _due_priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        processing = np.maximum(candidates[..., FEATURE["processing_time"]], _TINY)
        mean_processing = np.maximum((processing * eligible).sum(axis=1, keepdims=True)
                                     / eligible.sum(axis=1, keepdims=True), _TINY)
        slack = np.maximum(candidates[..., FEATURE["slack"]], 0.0)
        return np.exp(-slack / (self.k * mean_processing)) / processing

    def __repr__(self) -> str:
        return f"ATC(k={self.k:g})"


class RandomRule(PriorityRule):
    """A uniformly random legal row. The Generator is seeded once, through ``SeedSequence(seed)``, and
    runs on across episodes: the same seed and the same episodes give the same choices."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))

    def _priority(self, candidates: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return self._rng.random(eligible.shape)

    def __repr__(self) -> str:
        return f"RandomRule(seed={self.seed})"


_RULES: dict[str, type[PriorityRule]] = {
    "fifo": FIFO, "spt": SPT, "lpt": LPT, "edd": EDD, "mwkr": MWKR, "mor": MOR, "cr": CR, "atc": ATC,
}


def make_rule(name: str, seed: int = 0) -> PriorityRule:
    """The rule called ``name`` (one of ``RULE_NAMES``, any case); ``seed`` feeds ``random`` only.
    Raises ValueError with the closest names for an unknown one."""
    key = name.strip().lower()
    if key == "random":
        return RandomRule(seed)
    if key in _RULES:
        return _RULES[key]()
    close = difflib.get_close_matches(key, RULE_NAMES, n=2)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"known rules: {', '.join(RULE_NAMES)}"
    raise ValueError(f"unknown dispatching rule {name!r}; {hint}")
