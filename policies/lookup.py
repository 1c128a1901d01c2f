"""Turn a policy named on the command line (``--policy``) into a ``policies.base.Policy``: a dispatching
rule (``policies.rules.RULE_NAMES``), ``cpsat`` (``policies.cpsat.CpsatPolicy``), ``learned`` (the model
shipped in the package) or the path of a model file the user names (``policies.learned``), and
``learned+cpsat`` (CP-SAT warm-started from the learned schedule). Each kind is one branch of
:func:`load_policy`. Model files hold weights only: loading one never runs pickle.
"""

from __future__ import annotations

import difflib
import math
from typing import Optional

from pathlib import Path

from policies.base import Policy
from policies.cpsat import DEFAULT_TIME_LIMIT, BestOfSamples, CpsatPolicy
from policies.rules import RULE_NAMES, make_rule

CPSAT = "cpsat"
LEARNED = "learned"
HYBRID = "learned+cpsat"
POLICY_NAMES: tuple[str, ...] = (*RULE_NAMES, CPSAT, LEARNED, HYBRID)
"""Names :func:`load_policy` accepts."""

DEFAULT_SCHEDULE = "non_delay"
"""Schedule generation scheme of the policies that name none: the rules, whose published gaps are
measured in non-delay schedules."""


def load_policy(spec: str, *, seed: int = 0, time_limit: Optional[float] = None, samples: int = 1,
                workers: int = 1) -> Policy:
    """The policy named ``spec`` (any case), or the learned model in the file ``spec``.

    Args:
        spec: a rule name, ``cpsat``, ``learned``, ``learned+cpsat`` or a model file path.
        seed: seed of the ``random`` rule and of the learned policy's sampling.
        time_limit: CP-SAT wall-clock seconds per instance (``cpsat``, ``learned+cpsat``; default
            ``DEFAULT_TIME_LIMIT``).
        samples: schedules per instance, the best kept (learned policies: greedy plus samples - 1 sampled;
            ``learned+cpsat``: the best is CP-SAT's hint).
        workers: CP-SAT search threads.

    Raises ValueError naming the bad value and the fix: an unknown name (with the closest names and the
    list of valid ones), an option given to a policy that takes none, or an unreadable model file.
    """
    key = spec.strip().lower()
    if time_limit is not None and not (math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time limit {time_limit!r} must be a positive number of seconds")
    if not (isinstance(samples, int) and samples >= 1):
        raise ValueError(f"samples={samples!r} must be a positive integer")
    if key in (CPSAT, HYBRID, LEARNED) or Path(spec).suffix == ".pt":
        from policies.learned import LearnedPolicy  # torch only when a learned policy is asked for
    if key in (CPSAT, HYBRID):
        if key == CPSAT:
            _check_unused(key, samples=samples)
        learned = LearnedPolicy.load(seed=seed) if key == HYBRID else None
        warm_start = BestOfSamples(learned, samples) if learned is not None and samples > 1 else learned
        return CpsatPolicy(DEFAULT_TIME_LIMIT if time_limit is None else time_limit, workers=workers,
                           warm_start=warm_start)
    if key == LEARNED or Path(spec).suffix == ".pt":
        _check_unused(key, time_limit=time_limit)
        learned = LearnedPolicy.load(None if key == LEARNED else spec, seed=seed)
        return learned if samples == 1 else BestOfSamples(learned, samples)
    if key in RULE_NAMES:
        _check_unused(key, time_limit=time_limit, samples=samples)
        return make_rule(key, seed=seed)
    raise ValueError(unknown_policy_message(spec))


def _check_unused(key: str, *, time_limit: Optional[float] = None, samples: int = 1) -> None:
    """Raise ValueError for an option given to a policy that does not take it."""
    if time_limit is not None:
        raise ValueError(f"a time limit (--time-limit) applies to cpsat and learned+cpsat only; {key!r} takes none, "
                         "leave it out")
    if samples != 1:
        raise ValueError(f"samples={samples} (--samples): {key!r} builds one schedule per instance; leave "
                         "samples at 1")


def unknown_policy_message(spec: str) -> str:
    """An error text naming ``spec``, the closest policy names and every valid one."""
    close = difflib.get_close_matches(spec.strip().lower(), POLICY_NAMES, n=2)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    return (f"unknown policy {spec!r}; {hint}valid policies: {', '.join(POLICY_NAMES)}, or the path of a model "
            "file (.pt) written by `twin train`")


def default_schedule(policy: Policy) -> str:
    """The schedule generation scheme to evaluate ``policy`` in: the one it names in a ``schedule``
    attribute (``cpsat``: active, where its replay reproduces the solver's schedule), else
    ``DEFAULT_SCHEDULE``."""
    return getattr(policy, "schedule", DEFAULT_SCHEDULE)
