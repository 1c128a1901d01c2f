"""Job-shop instances: the standard benchmark sets (bundled, see ``envs/data/README.md``) and a seeded
Taillard-style generator (durations uniform on 1..99, each job visits every machine once in a random
order).

Dev set (tune and select only here, plus generated instances): ft06, ft10, ft20, la01-la40, ta01-ta10.
Everything else is a test set.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Optional

import numpy as np


@dataclass(frozen=True, eq=False)
class JobShopInstance:
    """An n-jobs x m-machines job shop. Job ``j``'s ``k``-th operation runs on machine ``machines[j, k]``
    for ``durations[j, k]`` time units."""

    name: str
    durations: np.ndarray
    """int64 (n_jobs, n_machines)."""
    machines: np.ndarray
    """int64 (n_jobs, n_machines), each row a permutation of 0..n_machines-1."""
    optimum: Optional[int] = None
    upper_bound: Optional[int] = None
    """Best known makespan (the gap reference)."""
    lower_bound: Optional[int] = None

    @property
    def n_jobs(self) -> int:
        return int(self.durations.shape[0])

    @property
    def n_machines(self) -> int:
        return int(self.durations.shape[1])


@lru_cache(maxsize=1)
def _benchmarks() -> dict:
    text = resources.files("envs").joinpath("data/jobshop_benchmarks.json").read_text()
    return json.loads(text)


def instance_names() -> list[str]:
    """Names of the bundled benchmark instances."""
    return list(_benchmarks())


def _expand(token: str, names: list[str]) -> list[str]:
    match = re.fullmatch(r"([a-z]+)(\d+)-\1?(\d+)", token)
    if match is None:
        return [token]
    prefix, first, last = match.group(1), match.group(2), match.group(3)
    width = len(first)
    return [f"{prefix}{i:0{width}d}" for i in range(int(first), int(last) + 1)]


def parse_instance_list(text: str) -> list[str]:
    """Names from a comma-separated list with ranges, e.g. ``"ft06,la01,ta01-ta10"``. Raises KeyError
    naming the first unknown instance, with the closest known names."""
    names = instance_names()
    result: list[str] = []
    for token in (t.strip().lower() for t in text.split(",") if t.strip()):
        for name in _expand(token, names):
            if name not in names:
                raise KeyError(unknown_instance_message(name))
            result.append(name)
    return result


def unknown_instance_message(name: str) -> str:
    """An error text naming ``name`` and the closest bundled instances."""
    close = difflib.get_close_matches(name.lower(), instance_names(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see envs.instances.instance_names()"
    return f"unknown job-shop instance {name!r}{hint}"


def load_instance(name: str) -> JobShopInstance:
    """A bundled benchmark instance by name (e.g. ``"ta01"``, any case)."""
    name = name.lower()
    data = _benchmarks().get(name)
    if data is None:
        raise KeyError(unknown_instance_message(name))
    meta = data["metadata"]
    return JobShopInstance(name=name, durations=np.asarray(data["duration_matrix"], dtype=np.int64),
                           machines=np.asarray(data["machines_matrix"], dtype=np.int64),
                           optimum=meta.get("optimum"), upper_bound=meta.get("upper_bound"),
                           lower_bound=meta.get("lower_bound"))


def generate_instance(n_jobs: int, n_machines: int, rng: np.random.Generator,
                      low: int = 1, high: int = 99) -> JobShopInstance:
    """A Taillard-style random instance: durations uniform on ``low..high``, random machine orders."""
    durations = rng.integers(low, high + 1, size=(n_jobs, n_machines), dtype=np.int64)
    machines = np.argsort(rng.random((n_jobs, n_machines)), axis=1).astype(np.int64)
    return JobShopInstance(name=f"gen{n_jobs}x{n_machines}", durations=durations, machines=machines)
