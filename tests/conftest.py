"""Shared helpers: build scenarios from small dicts and run them on the real engine."""

from __future__ import annotations

import contextlib
import copy
import signal
import subprocess
from typing import Any, Iterator

import pytest

from twin.config.scenario import Scenario

ENDLESS = {"arrivals": {"type": "backlog"}, "mix": {"a": 1}}
"""Unlimited demand: with a CONWIP cap the first station never starves."""


def make_scenario(**parts: Any) -> Scenario:
    """A one-station line with Poisson orders, with top-level sections replaced by ``parts``."""
    base: dict[str, Any] = {
        "name": "t",
        "run": {"warmup": 0, "length": 1000, "replications": 1, "seed": 7},
        "products": [{"name": "a", "routing": [{"station": "m1", "time": 1.0}]}],
        "stations": [{"name": "m1"}],
        "orders": {"arrivals": {"type": "poisson", "mean_interarrival": 2.0}, "mix": {"a": 1}},
    }
    base.update(copy.deepcopy(parts))
    return Scenario.model_validate(base)


def saturated(**parts: Any) -> Scenario:
    """Like :func:`make_scenario`, with unlimited demand and a CONWIP cap of 20 units."""
    parts.setdefault("orders", ENDLESS)
    parts.setdefault("release", {"policy": "conwip", "wip_limit": 20})
    return make_scenario(**parts)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt in this process during the test, as in a terminal, even
    when the test run was started with SIGINT ignored (a background job of a non-interactive shell)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def interruptible(args: list[str]) -> Iterator[subprocess.Popen]:
    """A child process (stdout and stderr piped, text) that takes Ctrl-C (SIGINT) as a terminal would
    deliver it, even when this test run was started with SIGINT ignored (a background job of a
    non-interactive shell, whose children inherit the ignore); killed on leaving if it is still running,
    so a failing test never leaves it behind."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
