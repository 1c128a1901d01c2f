"""Transport between stations: conveyors with a transfer time, and an AGV fleet (minutes, metres)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Generator, Optional, Protocol

import simpy

from lines.parts import Part
from lines.station import BLOCKED

if TYPE_CHECKING:
    from lines.station import Server, Station


class Route(Protocol):
    """How parts travel from one location to a station."""

    def carry(self, server: Optional["Server"], part: Part, target: "Station", stock: bool = False) -> Generator:
        """Run in the sending process; returns once the sender is free again."""


def _enter(part: Part, target: "Station", stock: bool) -> Generator:
    """Put ``part`` into ``target``: its component stock (unbounded) or its buffer (wait for a slot)."""
    if stock:
        target.receive_component(part)
        return
    yield from target.claim_slot()
    target.arrive(part)


class Conveyor:
    """An accumulating conveyor: ``capacity`` parts at most, each on it for ``transfer`` minutes; parts
    wait at its end while the next buffer is full."""

    def __init__(self, env: simpy.Environment, name: str, capacity: Optional[int], transfer: Callable[[], float]):
        self.env = env
        self.name = name
        self.capacity = capacity
        self.transfer = transfer
        self.load = 0
        self.waiters: deque[simpy.Event] = deque()

    def carry(self, server: Optional["Server"], part: Part, target: "Station", stock: bool = False) -> Generator:
        if self.capacity is not None and self.load >= self.capacity:
            if server is not None:
                server.to(BLOCKED)
            ev = self.env.event()
            self.waiters.append(ev)
            yield ev  # the slot was taken for us
        else:
            self.load += 1
        self.env.process(self._move(part, target, stock))

    def _move(self, part: Part, target: "Station", stock: bool) -> Generator:
        yield self.env.timeout(self.transfer())
        yield from _enter(part, target, stock)
        if self.waiters:
            self.waiters.popleft().succeed()
        else:
            self.load -= 1


class AgvLeg:
    """The AGV fleet seen from one origin location (a station or a place such as a warehouse)."""

    def __init__(self, fleet: "AgvFleet", origin: str):
        self.fleet = fleet
        self.origin = origin

    def carry(self, server: Optional["Server"], part: Part, target: "Station", stock: bool = False) -> Generator:
        return self.fleet.carry(server, part, self.origin, target, stock)


class AgvFleet:
    """``count`` vehicles at ``speed`` m/min. A move first secures a slot at the destination, then calls
    the nearest (or first) idle vehicle, which drives empty to the pick-up, loads, drives loaded and unloads.
    The sender is blocked until the part is loaded."""

    def __init__(self, env: simpy.Environment, count: int, speed: float, load_time: float,
                 unload_time: float, home: str, distance: Callable[[str, str], Optional[float]],
                 nearest: bool = True):
        self.env = env
        self.speed = speed
        self.load_time = load_time
        self.unload_time = unload_time
        self.distance = distance
        self.nearest = nearest
        """Dispatch the nearest free vehicle (True) or the first free one (False)."""
        self.position = [home] * count
        self.free = list(range(count))
        self.waiting: deque[tuple[str, simpy.Event]] = deque()
        self.busy_since = [0.0] * count
        self.busy_time = 0.0
        self.moves = 0

    def _travel(self, a: str, b: str) -> float:
        return (self.distance(a, b) or 0.0) / self.speed

    def _call(self, origin: str) -> simpy.Event:
        ev = self.env.event()
        if self.free:
            vehicle = (min(self.free, key=lambda v: (self._travel(self.position[v], origin), v))
                       if self.nearest else self.free[0])
            self.free.remove(vehicle)
            self.busy_since[vehicle] = self.env.now
            ev.succeed(vehicle)
        else:
            self.waiting.append((origin, ev))
        return ev

    def _release(self, vehicle: int) -> None:
        if self.waiting:
            _, ev = self.waiting.popleft()
            ev.succeed(vehicle)
        else:
            self.busy_time += self.env.now - self.busy_since[vehicle]
            self.free.append(vehicle)

    def carry(self, server: Optional["Server"], part: Part, origin: str, target: "Station",
              stock: bool) -> Generator:
        env = self.env
        if server is not None:
            server.to(BLOCKED)
        if not stock:
            yield from target.claim_slot()
        vehicle = yield self._call(origin)
        yield env.timeout(self._travel(self.position[vehicle], origin) + self.load_time)
        self.position[vehicle] = origin
        env.process(self._deliver(vehicle, part, target, stock))

    def _deliver(self, vehicle: int, part: Part, target: "Station", stock: bool) -> Generator:
        yield self.env.timeout(self._travel(self.position[vehicle], target.name) + self.unload_time)
        self.position[vehicle] = target.name
        self.moves += 1
        if stock:
            target.receive_component(part)
        else:
            target.arrive(part)
        self._release(vehicle)

    def reset(self, now: float) -> None:
        busy = [v for v in range(len(self.position)) if v not in self.free]
        for v in busy:
            self.busy_since[v] = now
        self.busy_time = 0.0
        self.moves = 0

    def utilization(self, now: float, length: float) -> float:
        """Fraction of vehicle time spent on moves (including empty travel) in the window."""
        busy = self.busy_time + sum(now - self.busy_since[v] for v in range(len(self.position)) if v not in self.free)
        return busy / (length * len(self.position))
