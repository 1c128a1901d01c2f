"""Workers as a shared resource: pools of people with skills; a station may need one to set up or run."""

from __future__ import annotations

from collections import deque
from typing import Union

import simpy

from twin.config.scenario import WorkerPool


class Crew:
    """All workers of the line. A request names a skill and gets the first free qualified worker;
    requests are served first come, first served among those a freed worker is qualified for."""

    def __init__(self, env: simpy.Environment, pools: list[WorkerPool]):
        self.env = env
        self.pool_of: list[str] = []
        self.skills: list[frozenset[str]] = []
        for pool in pools:
            for _ in range(pool.count):
                self.pool_of.append(pool.name)
                self.skills.append(frozenset(pool.skills))
        self.free = list(range(len(self.pool_of)))
        self.waiting: deque[tuple[str, simpy.Event]] = deque()
        self.busy_since = [0.0] * len(self.pool_of)
        self.busy_time = {pool.name: 0.0 for pool in pools}
        self.size = {pool.name: pool.count for pool in pools}

    def acquire(self, skill: str) -> Union[int, simpy.Event]:
        """A worker index now, or an event whose value is the worker once one is free."""
        for w in self.free:
            if skill in self.skills[w]:
                self.free.remove(w)
                self.busy_since[w] = self.env.now
                return w
        ev = self.env.event()
        self.waiting.append((skill, ev))
        return ev

    def release(self, worker: int) -> None:
        for i, (skill, ev) in enumerate(self.waiting):
            if skill in self.skills[worker]:
                del self.waiting[i]
                ev.succeed(worker)
                return
        self.busy_time[self.pool_of[worker]] += self.env.now - self.busy_since[worker]
        self.free.append(worker)

    def reset(self, now: float) -> None:
        for w in range(len(self.pool_of)):
            if w not in self.free:
                self.busy_since[w] = now
        self.busy_time = {name: 0.0 for name in self.busy_time}

    def utilization(self, now: float, length: float) -> dict[str, float]:
        """Fraction of each pool's time spent working in the window."""
        busy = dict(self.busy_time)
        for w in range(len(self.pool_of)):
            if w not in self.free:
                busy[self.pool_of[w]] += now - self.busy_since[w]
        return {name: busy[name] / (length * self.size[name]) for name in busy}
