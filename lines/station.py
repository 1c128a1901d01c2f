"""Stations (groups of identical parallel servers sharing one finite input buffer) and their servers.

Semantics, all times in minutes:

* **Blocking after service**: a server that finishes a part keeps it (state *blocked*) until the next
  buffer has a free slot; slots are handed out first come, first served.
* **Calendar**: work pauses outside the station's available time (shifts minus breaks minus planned
  downtime) and resumes in the next window.
* **Failures**: each server fails after ``tbf`` available minutes since its last repair; work in progress
  is interrupted and resumes after the repair. A failure while idle or blocked delays the next start.
* **States** for the KPIs: busy, setup, idle (starved, also while waiting for a worker), standby, blocked,
  down, maintenance, planned downtime, off shift. A stop (down, maintenance) overrides the activity
  state; the calendar overrides both.
* **Decisions**: a station with a ``decider`` (an environment or a policy, see ``envs.dispatch``) asks it
  which part starts whenever a server is free and more than one waiting part could start; the decider
  replaces the dispatching rule and any optimised plan there. Batch stations keep their rule.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import TYPE_CHECKING, Callable, Generator, Optional, Union

import simpy
from simpy.events import URGENT

from lines.parts import Part
from twin.calendar import WorkCalendar

if TYPE_CHECKING:
    from lines.maintenance import Upkeep
    from lines.transport import Route
    from twin.calendar import Tariff
    from lines.workers import Crew
    from twin.engine import Line
    from twin.eventlog import EventLog

BUSY, SETUP, IDLE, STANDBY, BLOCKED, DOWN, MAINTENANCE, PLANNED_DOWN, OFF = range(9)
STATE_NAMES = ("busy", "setup", "idle", "standby", "blocked", "down", "maintenance", "planned_down", "off_shift")
"""Server states. Setup includes the warm-up after a standby; standby is an idle machine switched off
(energy lever); maintenance is preventive or predictive work (planned, so outside planned busy time)."""


class Decision:
    """A dispatching decision due now: a server of ``station`` is free at ``time`` (minutes) and more than
    one waiting part could start. ``candidates`` are those parts in queue order, after the assembly-kit,
    information-latency and family-preference filters; ``family`` is the setup family the server is set
    up for (None before its first part)."""

    __slots__ = ("station", "candidates", "time", "family", "answered")

    def __init__(self, station: "Station", candidates: list[Part], time: float, family: Optional[str]):
        self.station = station
        self.candidates = candidates
        self.time = time
        self.family = family
        self.answered: Optional[simpy.Event] = None
        """What the server waits on when the decider answers later (None: answered at once)."""

    def choose(self, row: int) -> Part:
        """Answer a deferred decision: candidate ``row`` starts. Call it before the simulation advances
        (the candidates are then still waiting); the server resumes before anything else due at this time,
        as if the decider had answered at once. Returns the part."""
        if self.answered is None or self.answered.triggered:
            raise RuntimeError("this decision is not waiting for an answer (answered already, or at once)")
        if not 0 <= row < len(self.candidates):
            raise ValueError(f"row {row} is not a candidate: choose one of 0..{len(self.candidates) - 1}")
        part = self.station.select(self.time, self.family, row)
        answered = self.answered
        answered._ok = True  # Event.succeed, scheduled URGENT like SimPy's own process resumptions
        answered._value = part
        self.station.env.schedule(answered, URGENT)
        return part


Decider = Callable[[Decision], Optional[int]]
"""Called with each decision due at a station; returns the row of the candidate that starts, or None to
answer later with ``Decision.choose`` (the asking server waits for it)."""


class Server:
    """One machine of a station."""

    def __init__(self, station: "Station", index: int):
        self.station = station
        self.index = index
        self.env: simpy.Environment = station.env
        self.log: Optional[EventLog] = station.log
        self.state = IDLE
        self.stop: Optional[int] = None
        """DOWN or MAINTENANCE while the machine is stopped, else None."""
        self.cold = False
        """Switched off by idle shutdown: needs a warm-up before the next part."""
        self.since = self.env.now
        self.acc = [0.0] * 9
        """Minutes spent per state since the statistics were last reset."""
        self.price_minutes = [0.0] * 9
        """Minutes per state weighted by the electricity price (CNY/kWh), when a tariff is set."""
        self.active = False
        self.active_start = 0.0
        self.active_sum = 0.0
        self.active_n = 0
        self.failures = 0
        self.family: Optional[str] = None
        self.interruptible = False
        self.repaired = self.env.event()
        self.process: Optional[simpy.Process] = None

    # ------------------------------------------------------------------ state accounting
    def _accrue(self, now: float) -> None:
        st = self.station
        shown = self.state if self.stop is None else self.stop
        a = self.since
        if st.tariff is not None:
            self._accrue_price(shown, a, now)
        if st.always:
            self.acc[shown] += now - a
        else:
            avail = st.available.between(a, now)
            planned = st.planned.between(a, now)
            self.acc[shown] += avail
            self.acc[PLANNED_DOWN] += planned - avail
            self.acc[OFF] += now - a - planned
        self.since = now

    def _accrue_price(self, shown: int, a: float, now: float) -> None:
        """Price-weighted minutes; an interval split by the calendar shares its price pro rata."""
        st = self.station
        price = st.tariff.integral(a, now)
        if st.always or now == a:
            self.price_minutes[shown] += price
            return
        avail = st.available.between(a, now)
        planned = st.planned.between(a, now)
        per_minute = price / (now - a)
        self.price_minutes[shown] += avail * per_minute
        self.price_minutes[PLANNED_DOWN] += (planned - avail) * per_minute
        self.price_minutes[OFF] += (now - a - planned) * per_minute

    def _mark_active(self, now: float) -> None:
        active = self.stop is not None or self.state <= SETUP
        if active != self.active:
            self.active = active
            if active:
                self.active_start = now
            else:
                self.active_sum += self.station.available.between(self.active_start, now)
                self.active_n += 1

    def to(self, state: int) -> None:
        """Enter activity ``state`` now."""
        now = self.env._now
        if now != self.since:
            self._accrue(now)
        self.state = state
        self._mark_active(now)
        if self.log is not None:
            self.log.state(now, self.station.name, self.index, STATE_NAMES[state if self.stop is None else self.stop])

    def set_stop(self, stop: Optional[int]) -> None:
        """Stop the machine (DOWN, MAINTENANCE) or restart it (None); stopping interrupts work."""
        now = self.env._now
        if now != self.since:
            self._accrue(now)
        self.stop = stop
        if stop == DOWN:
            self.failures += 1
        if self.station.replan_on_stop:
            self.station.line.disturbed()
        self._mark_active(now)
        if self.log is not None:
            self.log.state(now, self.station.name, self.index,
                           STATE_NAMES[self.state if stop is None else stop])
        if stop is not None and self.interruptible:
            self.process.interrupt()
        if stop is None:
            restarted, self.repaired = self.repaired, self.env.event()
            restarted.succeed()

    def reset(self, now: float) -> None:
        """Start a new statistics window at ``now`` (end of warm-up)."""
        self._accrue(now)
        self.acc = [0.0] * 9
        self.price_minutes = [0.0] * 9
        self.active_sum = 0.0
        self.active_n = 0
        self.active_start = now
        self.failures = 0

    def finish(self, now: float) -> None:
        """Close the statistics window at ``now``."""
        self._accrue(now)
        if self.active:
            self.active_sum += self.station.available.between(self.active_start, now)
            self.active_n += 1
            self.active = False

    # ------------------------------------------------------------------ work
    def work(self, duration: float, state: int) -> Generator:
        """Spend ``duration`` available minutes in ``state``, pausing for failures and off-shift time."""
        env = self.env
        self.to(state)
        cal = self.station.available
        remaining = duration
        while True:
            if self.stop is not None:
                yield self.repaired
            start = env._now
            self.interruptible = True
            try:
                yield env.timeout(cal.advance(start, remaining) - start)
                self.interruptible = False
                return
            except simpy.Interrupt:
                self.interruptible = False
                remaining -= cal.between(start, env._now)

    def failure_loop(self, tbf: Callable[[], float], ttr: Callable[[], float], upkeep: "Upkeep") -> Generator:
        """Failures and maintenance. Each life starts as good as new: the machine fails after ``tbf``
        available minutes unless maintenance (preventive interval, predictive warning or false alarm)
        comes first and renews it. A failure waits ``response_time`` and a technician, then ``ttr``."""
        env = self.env
        cal = self.station.available
        while True:
            life = tbf()
            renew = upkeep.renewal_age(life)
            now = env._now
            if renew is None or renew >= life:
                yield env.timeout(cal.advance(now, life) - now)
                self.set_stop(DOWN)
                if upkeep.response_time:
                    yield env.timeout(upkeep.response_time)
                yield from upkeep.with_technician(env, ttr())
            else:
                yield env.timeout(cal.advance(now, renew) - now)
                self.set_stop(MAINTENANCE)
                yield from upkeep.with_technician(env, upkeep.duration())
            self.set_stop(None)

    def _wait_for_work(self) -> simpy.Event:
        if self.state != IDLE:
            self.to(IDLE)
        ev = self.env.event()
        st = self.station
        st.idle.append(ev)
        if st.space_waiters and st.has_space():  # an idle server is room for a blocked part
            st.slot_freed()
        return ev

    def _idle(self) -> Generator:
        """Wait for work; with idle shutdown, switch off after ``shutdown_after`` idle minutes."""
        ev = self._wait_for_work()
        shutdown = self.station.shutdown
        if shutdown is None:
            yield ev
            return
        yield ev | self.env.timeout(shutdown[0])
        if not ev.triggered:
            self.to(STANDBY)
            self.cold = True
            yield ev

    def _warm_up(self) -> Generator:
        """After a standby, ``warmup_time`` minutes (counted as setup) before the next part."""
        self.cold = False
        yield from self.work(self.station.shutdown[1], SETUP)
    def _send(self, part: Part, target: Optional["Station"]) -> Generator:
        """Hand ``part`` to ``target`` (blocking while it is full), through the transport if any."""
        if target is None:
            return
        if target is self.station:  # sent back to this station: it never left, so it re-enters even if full
            target.reserved += 1
            target.arrive(part)
            return
        route = self.station.routes.get(target.name)
        if route is not None:
            yield from route.carry(self, part, target)
            return
        if not target.has_space():
            self.to(BLOCKED)
        yield from target.claim_slot()
        target.arrive(part)

    def run(self) -> Generator:
        """Take parts one at a time: worker, setup, processing, quality outcome, hand-over."""
        st = self.station
        env = self.env
        line = st.line
        need = st.worker_need
        fast = st.always and st.failures is None and need is None
        decide = st.decider is not None
        while True:
            part = st.select(env._now, self.family)
            while part is None:
                if self.stop is not None:
                    yield self.repaired  # the queue may have filled meanwhile: look again first
                elif st.shutdown is None:
                    yield self._wait_for_work()
                else:
                    yield from self._idle()
                part = st.select(env._now, self.family)
            if decide and part.__class__ is not Part:  # the decider answers later: wait for its choice
                part = yield part
            if self.cold:
                yield from self._warm_up()
            op = part.product.ops[part.op]
            setup = 0.0
            if st.setup is not None and part.product.family != self.family:
                setup = st.setup_time(self.family, part.product.family)
                self.family = part.product.family
            worker = None
            if need is not None and (need[1] == "both" or (need[1] == "setup" and setup > 0)):
                worker = yield from self._get_worker(need[0])
            if setup > 0:
                yield from self.work(setup, SETUP)
            if need is not None:
                if need[1] == "setup" and worker is not None:
                    st.crew.release(worker)
                    worker = None
                elif need[1] == "run":
                    worker = yield from self._get_worker(need[0])
            if fast:
                self.to(BUSY)
                yield env.timeout(op.sample())
            else:
                yield from self.work(op.sample(), BUSY)
            if worker is not None:
                st.crew.release(worker)
            target = line.complete(part, op, st)
            if target is None:
                continue
            if target is st or target.name in st.routes or not target.has_space():
                yield from self._send(part, target)  # also a part sent back here, which re-enters even if full
            else:  # the common case, kept inline for speed
                target.reserved += 1
                target.arrive(part)

    def run_batch(self) -> Generator:
        """Wait for a full batch (or ``min_size`` after ``max_wait``), process it together, hand over."""
        st = self.station
        env = self.env
        cfg = st.batch
        while True:
            while True:
                if self.stop is not None:
                    yield self.repaired
                n = len(st.queue)
                if n >= cfg.size:
                    break
                if n >= cfg.min_size and cfg.max_wait is not None:
                    deadline = min(p.queued for p in st.queue) + cfg.max_wait
                    if st.hold_in_peak:  # time-of-use scheduling: no partial batch at peak prices
                        deadline = max(deadline, st.tariff.peak_end(env._now))
                    if env._now >= deadline:
                        break
                    ev = self._wait_for_work()
                    timer = env.timeout(deadline - env._now)
                    yield ev | timer
                    if not ev.triggered:
                        st.idle.remove(ev)
                else:
                    yield from self._idle()
            if self.cold:
                yield from self._warm_up()
                continue  # another server may have taken the parts meanwhile: look again
            batch = st.take_batch(env._now, cfg.size)
            yield from self.work(st.batch_time(), BUSY)
            for part in batch:
                op = part.product.ops[part.op]
                target = st.line.complete(part, op, st)
                yield from self._send(part, target)

    def _get_worker(self, skill: str) -> Generator:
        got = self.station.crew.acquire(skill)
        if isinstance(got, simpy.Event):
            if self.state != IDLE:
                self.to(IDLE)
            got = yield got
        return got


class Station:
    """A station group with ``servers`` parallel machines and an input buffer of ``capacity`` parts."""

    def __init__(self, line: "Line", name: str, index: int, servers: int, capacity: Optional[int],
                 rule: str, atc_k: float, planned: WorkCalendar, available: WorkCalendar):
        self.line = line
        self.env: simpy.Environment = line.env
        self.log = line.log
        self.name = name
        self.index = index
        self.capacity = capacity
        self.rule = rule
        self.atc_k = atc_k
        self.planned = planned
        self.available = available
        self.always = planned.always and available.always
        self.ordered_by = self._static_key(rule)
        """For rules whose priority never changes while a part waits (spt, lpt, edd), the queue is kept
        sorted by it (ties first come, first served), so a pick is O(1); otherwise None."""
        self.queue: deque[Part] | list[Part] = deque() if self.ordered_by is None else []
        self.reserved = 0
        self.space_waiters: deque[Union[simpy.Event, Part]] = deque()
        self.idle: deque[simpy.Event] = deque()
        self.stock: dict[str, deque[Part]] = {}
        """Components waiting to be assembled, by product name."""
        self.routes: dict[str, Route] = {}
        self.setup: Optional[dict] = None
        self.setup_default: Optional[Callable[[], float]] = None
        self.setup_first = False
        self.batch = None
        self.batch_time: Callable[[], float] = lambda: 0.0
        self.failures = None
        self.worker_need: Optional[tuple[str, str]] = None
        self.crew: Optional[Crew] = None
        self.assembly = False
        self.tariff: Optional[Tariff] = None
        self.shutdown: Optional[tuple[float, float]] = None
        """(idle minutes before switching off, warm-up minutes), with the idle-shutdown lever."""
        self.hold_in_peak = False
        self.prefer_family = False
        self.latency = 0.0
        self.plan: Optional[dict[tuple[int, int, int], float]] = None
        """Planned start per (order id, product index, operation index) of the optimised plan, if followed."""
        self.setup_factor = 1.0
        self.replan_on_stop = False
        self.decider: Optional[Decider] = None
        """Who chooses the next part when several could start (replacing the rule and plan), if anyone."""
        self.choosing = False
        """Whether a pick looks at the whole queue (assembly kits, family preference, latency, a plan or a
        decider), else it takes the queue's head; set by the line once the station is built."""
        self.servers = [Server(self, i) for i in range(servers)]
        self.reset_counters(0.0)

    # ------------------------------------------------------------------ statistics
    def reset_counters(self, now: float) -> None:
        self.processed = 0
        self.planned_work = 0.0
        self.scrapped = 0
        self.reworked = 0
        self.wait_sum = 0.0
        self.taken = 0
        self.queue_area = 0.0
        self.queue_since = now
        for server in self.servers:
            server.reset(now)

    def _queue_changed(self, now: float) -> None:
        self.queue_area += len(self.queue) * (now - self.queue_since)
        self.queue_since = now

    def finish(self, now: float) -> None:
        self._queue_changed(now)
        for server in self.servers:
            server.finish(now)

    # ------------------------------------------------------------------ buffer
    def has_space(self) -> bool:
        """Whether one more part may come: a free buffer slot, or an idle server to take it directly."""
        if self.capacity is None:
            return True
        idle = len(self.idle) if self.batch is None else 0
        return len(self.queue) + self.reserved < self.capacity + idle

    def arrive(self, part: Part) -> None:
        """A part enters the input buffer (its slot was reserved by the caller)."""
        now = self.env._now
        self.reserved -= 1
        self._queue_changed(now)
        part.queued = now
        if self.ordered_by is None:
            self.queue.append(part)
        else:
            bisect.insort_right(self.queue, part, key=self.ordered_by)
        if self.log is not None:
            self.log.part(now, "queue", part, self.name)
        if self.idle:
            self.idle.popleft().succeed()

    def claim_slot(self) -> Generator:
        """Reserve room for one part, waiting (first come, first served) while the station is full."""
        if self.has_space():
            self.reserved += 1
            return
        ev = self.env.event()
        self.space_waiters.append(ev)
        yield ev  # the slot was reserved for us by slot_freed

    def offer(self, part: Part) -> None:
        """A part released into the line waits at the door until the buffer has a slot."""
        if self.has_space():
            self.reserved += 1
            self.arrive(part)
        else:
            self.space_waiters.append(part)

    def receive_component(self, part: Part) -> None:
        self.stock.setdefault(part.product.name, deque()).append(part)
        if self.idle:
            self.idle.popleft().succeed()

    def slot_freed(self) -> None:
        if self.space_waiters:
            waiter = self.space_waiters.popleft()
            self.reserved += 1
            if isinstance(waiter, Part):
                self.arrive(waiter)
            else:
                waiter.succeed()

    # ------------------------------------------------------------------ dispatching
    @staticmethod
    def _static_key(rule: str) -> Optional[Callable[[Part], float]]:
        if rule == "spt":
            return lambda p: p.product.ops[p.op].planned
        if rule == "lpt":
            return lambda p: -p.product.ops[p.op].planned
        if rule == "edd":
            return lambda p: p.order.due
        return None

    def _key(self, now: float) -> Callable[[Part], float]:
        """Priority of a waiting part at time ``now`` for the time-dependent rules (smallest first)."""
        if self.rule == "cr":
            return lambda p: (p.order.due - now) / max(p.product.remaining[p.op], 1e-9)
        # atc: largest index first, so the key is its negative
        mean_p = sum(p.product.ops[p.op].planned for p in self.queue) / len(self.queue)
        scale = self.atc_k * max(mean_p, 1e-9)

        def atc(p: Part) -> float:
            planned = max(p.product.ops[p.op].planned, 1e-9)
            slack = max(p.order.due - planned - now, 0.0)
            return -math.exp(-slack / scale if math.isfinite(slack) else -math.inf) / planned
        return atc

    def _kit_ready(self, part: Part) -> bool:
        if part.assembled or not part.product.ops[part.op].assemble:
            return True
        return all(len(self.stock.get(c.name, ())) >= n for c, n in part.product.bom)

    def _eligible(self, candidates: list[Part], now: float, family: Optional[str]) -> list[Part]:
        """The parts among ``candidates`` (in queue order) a choice is made from, after the levers'
        refinements: the family already set up first, and only the parts the dispatcher knows of."""
        if self.prefer_family and family is not None:
            same = [p for p in candidates if p.product.family == family]
            candidates = same or candidates
        if self.latency:
            known = [p for p in candidates if p.queued <= now - self.latency]
            if not known:  # nothing the dispatcher knows of yet: first come, first served
                return [min(candidates, key=lambda p: p.queued)]
            candidates = known
        return candidates

    def _choose(self, candidates: list[Part], now: float) -> Part:
        """The next part among ``candidates`` (in queue order) by the plan or the dispatching rule."""
        if self.plan is not None:
            plan = self.plan
            return min(candidates, key=lambda p: (plan.get((p.order.id, p.product.index, p.op), math.inf), p.queued))
        if self.rule == "fifo" or self.ordered_by is not None:
            return candidates[0]
        return min(candidates, key=self._key(now))

    def select(self, now: float, family: Optional[str] = None,
               answer: Optional[int] = None) -> Union[Part, simpy.Event, None]:
        """Remove and return the next part by the dispatching rule, or None if none can start.
        ``family`` is the setup family of the asking server. With a ``decider``, a choice among several
        parts is its decision; if it answers later, the event the server waits on for the part is returned
        instead, and ``Decision.choose`` comes back here with the chosen row as ``answer``."""
        queue = self.queue
        if not queue:
            return None
        if self.choosing:
            candidates = [p for p in queue if self._kit_ready(p)] if self.assembly else list(queue)
            if not candidates:
                return None
            candidates = self._eligible(candidates, now, family)
            if self.decider is not None and len(candidates) > 1:
                if answer is None:
                    decision = Decision(self, candidates, now, family)
                    answer = self.decider(decision)
                    if answer is None:
                        decision.answered = self.env.event()
                        return decision.answered
                part = candidates[answer]
            else:
                part = self._choose(candidates, now)
            if part.product.ops[part.op].assemble and not part.assembled:
                part.assembled = True
                for comp, n in part.product.bom:
                    stock = self.stock[comp.name]
                    for _ in range(n):
                        self.line.consume_component(stock.popleft(), self)
            self._queue_changed(now)
            queue.remove(part)
        elif self.rule == "fifo":
            self._queue_changed(now)
            part = queue.popleft()
        elif self.ordered_by is not None:
            self._queue_changed(now)
            part = queue.pop(0)
        else:
            part = min(queue, key=self._key(now))
            self._queue_changed(now)
            queue.remove(part)
        self.wait_sum += now - part.queued
        self.taken += 1
        part.busy = True
        if self.log is not None:
            self.log.part(now, "start", part, self.name)
        self.slot_freed()
        return part

    def take_batch(self, now: float, size: int) -> list[Part]:
        ordered = (list(self.queue) if self.rule == "fifo" or self.ordered_by
                   else sorted(self.queue, key=self._key(now)))
        batch = ordered[:size]
        self._queue_changed(now)
        for part in batch:
            self.queue.remove(part)
            self.wait_sum += now - part.queued
            self.taken += 1
            part.busy = True
            if self.log is not None:
                self.log.part(now, "start", part, self.name)
        for _ in batch:
            self.slot_freed()
        return batch

    def setup_time(self, previous: Optional[str], family: str) -> float:
        """Setup minutes when switching from family ``previous`` (None: first part) to ``family``."""
        if previous is None and not self.setup_first:
            return 0.0
        row = self.setup.get(previous or "", {})
        if family in row:
            return row[family]() * self.setup_factor
        return self.setup_default() * self.setup_factor if self.setup_default is not None else 0.0
