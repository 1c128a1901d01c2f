"""The line engine: builds the SimPy runtime from a validated scenario (in this one place) and runs
one replication of it. Times in minutes.

Flow of a unit: an order arrives (Poisson, schedule or CSV) -> its units are released (push, or CONWIP
when the line holds fewer than ``wip_limit`` units) -> each unit, and the components its bill of
materials needs, follows its routing through the stations -> after its last operation a component
waits in its assembly station's stock and an end product leaves the line.

A ``decider`` (see ``lines.station.Decision``) makes the dispatching decisions of every station that is
not a batch station, in place of its rule: in-process (``envs.dispatch.PolicyDecider``) or paused and
answered from outside (``envs.dispatch.DispatchEnv``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from typing import Generator, Optional

import simpy

from lines.parts import Operation, Order, Part, Product
from lines.maintenance import Upkeep
from lines.station import Decider, Station
from lines.transport import AgvFleet, AgvLeg, Conveyor, Route
from lines.workers import Crew
from twin.calendar import Tariff, available_calendar, planned_calendar
from twin.config.distributions import Exponential
from twin.config.loader import read_orders_csv
from twin.config.scenario import Scenario, clock_minutes
from twin.eventlog import EventLog
from twin.rng import Streams
from twin.planning import PlanJob, make_plan
from twin.sampling import make_sampler, make_uniform


class Line:
    """The runtime of one replication: stations, transport, workers, order source and statistics."""

    def __init__(self, scenario: Scenario, replication: int, seed: int, log: Optional[EventLog] = None,
                 decider: Optional[Decider] = None):
        self.scenario = scenario
        scheduling = scenario.levers.scheduling
        if decider is None and scheduling is not None and scheduling.method == "learned_dispatch":
            from envs.dispatch import learned_decider  # torch only where the lever asks for it

            decider = learned_decider(scheduling.model)
        self.decider = decider
        self.env = simpy.Environment()
        self.log = log
        self.streams = Streams(seed, replication)
        self.warmup = scenario.run.warmup
        self.length = scenario.run.length
        self.crew = Crew(self.env, scenario.workers) if scenario.workers else None
        self.fleet: Optional[AgvFleet] = None
        self.stations: dict[str, Station] = {}
        self.products: dict[str, Product] = {}
        self.source_routes: dict[str, Route] = {}
        self._next_part = 0
        self._next_order = 0
        self.backlog: deque[Part] = deque()
        self.endless_demand = scenario.orders.arrivals.type == "backlog"
        self.daily_plan = (clock_minutes(scheduling.plan_time)
                           if scheduling is not None and scheduling.method == "daily_plan" else None)
        self.held: list[Part] = []
        self.in_line: dict[int, Part] = {}
        """Units and components released and not yet finished, scrapped or consumed, by id."""
        self.plan: dict[tuple[int, int, int], float] = {}
        self._last_plan = -math.inf
        quality = scenario.levers.quality
        self.inspection = ((quality.inspection, quality.recall if quality.inspection != "inline" else 1.0,
                            quality.false_alarm if quality.inspection != "inline" else 0.0, quality.sample_rate)
                           if quality is not None else ("inline", 1.0, 0.0, 1.0))
        self.wip = 0
        self._build_stations()
        self._build_products()
        self._build_transport()
        mix = scenario.orders.mix
        self._mix = (list(mix), list(itertools.accumulate(w / sum(mix.values()) for w in mix.values())))
        self._mix_draw = make_uniform(self.streams.generator("orders", "mix"))
        due = scenario.orders.due_date
        if due is not None and due.allowance is not None:
            self._allowance = make_sampler(due.allowance, self.streams.generator("orders", "due"))
        self.reset_counters(0.0)
        self.source = self.env.process(self._order_source())
        """The order source; it ends once finite demand (a schedule, a CSV, Poisson ``until``) has arrived."""
        if self.daily_plan is not None:
            self.env.process(self._daily_releases())
        if scheduling is not None and scheduling.method in ("optimised_plan", "closed_loop"):
            for st in self.stations.values():
                if st.batch is None:
                    st.plan = self.plan
                st.replan_on_stop = scheduling.method == "closed_loop"
            self.env.process(self._replanning())
        if self.warmup > 0:
            self.env.process(self._end_warmup())
        for st in self.stations.values():
            st.choosing = (st.assembly or st.prefer_family or bool(st.latency) or st.plan is not None
                           or st.decider is not None)

    # ------------------------------------------------------------------ construction
    def _build_stations(self) -> None:
        sc = self.scenario
        planned = planned_calendar(sc.calendar)
        levers = sc.levers
        tariff = (Tariff([(clock_minutes(p.start), clock_minutes(p.end), p.price) for p in levers.energy.tariff])
                  if levers.energy is not None else None)
        self.tariff = tariff
        technicians = None
        if levers.maintenance is not None and levers.maintenance.technicians is not None:
            technicians = simpy.Resource(self.env, levers.maintenance.technicians)
        scheduling = levers.scheduling
        for index, cfg in enumerate(sc.stations):
            rule = cfg.dispatch
            if scheduling is not None:
                rule = "fifo" if scheduling.method == "daily_plan" else scheduling.rule
            st = Station(self, cfg.name, index, cfg.servers, cfg.buffer, rule, cfg.atc_k,
                         planned, available_calendar(sc.calendar, cfg.name))
            st.power = cfg.power
            st.tariff = tariff
            if levers.energy is not None and levers.energy.mode in ("idle_shutdown", "tou_scheduling"):
                st.shutdown = (levers.energy.shutdown_after, levers.energy.warmup_time)
                st.hold_in_peak = levers.energy.mode == "tou_scheduling" and cfg.batch is not None
            if levers.changeover is not None and levers.changeover.mode != "manual":
                st.setup_factor = levers.changeover.smed_factor
                st.prefer_family = levers.changeover.mode == "sequence_optimised"
            if levers.information is not None:
                st.latency = levers.information.latency
            gen = self.streams.generator
            if cfg.setup is not None:
                st.setup = {a: {b: make_sampler(dist, gen(cfg.name, "setup", a, b)) for b, dist in row.items()}
                            for a, row in cfg.setup.matrix.items()}
                if cfg.setup.default is not None:
                    st.setup_default = make_sampler(cfg.setup.default, gen(cfg.name, "setup"))
                st.setup_first = cfg.setup.first
            if cfg.batch is not None:
                st.batch = cfg.batch
                st.batch_time = make_sampler(cfg.batch.time, gen(cfg.name, "batch"))
            if cfg.worker is not None:
                st.worker_need = (cfg.worker.skill, cfg.worker.during)
                st.crew = self.crew
            st.failures = cfg.failures
            if cfg.batch is None:
                st.decider = self.decider
            for server in st.servers:
                server.process = self.env.process(server.run_batch() if cfg.batch else server.run())
                if cfg.failures is not None:
                    tag = str(server.index)
                    self.env.process(server.failure_loop(
                        make_sampler(cfg.failures.tbf, gen(cfg.name, "failure", tag)),
                        make_sampler(cfg.failures.ttr, gen(cfg.name, "repair", tag)),
                        self._upkeep(cfg.name, tag, technicians)))
            self.stations[cfg.name] = st

    def _upkeep(self, station: str, tag: str, technicians: Optional[simpy.Resource]) -> Upkeep:
        lever = self.scenario.levers.maintenance
        gen = self.streams.generator
        gap = None
        if lever is not None and lever.policy == "predictive" and lever.false_alarms_per_1000h > 0:
            mean = 1000 * 60 / lever.false_alarms_per_1000h
            gap = make_sampler(Exponential(dist="exponential", mean=mean), gen(station, "false_alarm", tag))
        duration = make_sampler(lever.duration, gen(station, "maintenance", tag)) if lever else (lambda: 0.0)
        return Upkeep(lever, duration, make_uniform(gen(station, "warning", tag)), gap, technicians)

    def _build_products(self) -> None:
        sc = self.scenario
        gen = self.streams.generator
        quality = sc.levers.quality
        for index, cfg in enumerate(sc.products):
            product = Product(cfg.name, index, cfg.setup_family, source=cfg.source)
            labels = [op.label for op in cfg.routing]
            for op in cfg.routing:
                station = self.stations[op.station]
                scfg = sc.station(op.station)
                if scfg.batch is not None:
                    planned, sample = scfg.batch.time.mean / scfg.batch.size, None
                elif scfg.robot is not None:  # physics cycle time, cached per cell layout
                    from lines.robot_cell import processing_time

                    dist = processing_time(scfg.robot)
                    planned = dist.mean
                    sample = make_sampler(dist, gen(op.station, "process", cfg.name, op.label))
                else:
                    planned = op.time.mean
                    sample = make_sampler(op.time, gen(op.station, "process", cfg.name, op.label))
                operation = Operation(op.label, station, planned, sample, op.scrap, op.rework,
                                      labels.index(op.rework_to) if op.rework_to else None, op.assemble)
                if op.scrap or op.rework:
                    operation.quality = make_uniform(gen(op.station, "quality", cfg.name, op.label))
                defect = op.defect * (quality.defect_factor if quality and quality.inspection == "closed_loop" else 1)
                if defect > 0 or (quality is not None and quality.inspection == "end_of_line"
                                  and op is cfg.routing[-1]):
                    operation.defect = defect
                    operation.inspect = make_uniform(gen(op.station, "inspection", cfg.name, op.label))
                if op.assemble:
                    station.assembly = True
                product.ops.append(operation)
            product.remaining = [sum(o.planned for o in product.ops[i:]) for i in range(len(product.ops))]
            self.products[cfg.name] = product
        for cfg in sc.products:
            parent = self.products[cfg.name]
            for comp_name, qty in cfg.bom.items():
                comp = self.products[comp_name]
                comp.parent = parent
                comp.assembly_station = next(o.station for o in parent.ops if o.assemble)
                parent.bom.append((comp, qty))

    def _build_transport(self) -> None:
        tc = self.scenario.transport
        if tc.agv is not None:
            agv = tc.agv
            flow = self.scenario.levers.material_flow
            if flow is not None and flow.mode == "manual":  # carts pushed by material handlers
                self.fleet = AgvFleet(self.env, flow.carts, flow.walk_speed, flow.handling_time, 0.0, agv.home,
                                      agv.distance, nearest=False)
            else:
                self.fleet = AgvFleet(self.env, agv.count, agv.speed, agv.load_time, agv.unload_time, agv.home,
                                      agv.distance, nearest=flow is None or flow.mode == "agv_dispatch")
            pairs = ([(a, b) for a in self.stations for b in self.stations if a != b]
                     if agv.moves == "all" else agv.moves)
            for a, b in pairs:
                if a in self.stations and agv.distance(a, b) is not None:
                    self.stations[a].routes[b] = AgvLeg(self.fleet, a)
            for product in self.products.values():
                if product.source is not None:
                    self.source_routes[product.name] = AgvLeg(self.fleet, product.source)
        for cfg in tc.conveyors:
            transfer = make_sampler(cfg.transfer_time, self.streams.generator(cfg.name, "transfer"))
            self.stations[cfg.from_].routes[cfg.to] = Conveyor(self.env, cfg.name, cfg.capacity, transfer)

    # ------------------------------------------------------------------ statistics
    def reset_counters(self, now: float) -> None:
        """Start the statistics window at ``now``: everything before it is warm-up and is discarded."""
        self.wip_area = 0.0
        self.wip_since = now
        self.good = 0
        self.good_first_pass = 0
        self.scrapped = 0
        self.reworked_units = 0
        self.rejected = 0
        self.escaped = 0
        self.units_arrived = 0
        self.lead_times: list[float] = []
        self.flow_time_sum = 0.0
        self.orders_completed = 0
        self.orders_on_time = 0
        self.tardiness_sum = 0.0
        self.orders_with_due = 0
        for st in self.stations.values():
            st.reset_counters(now)
        if self.fleet is not None:
            self.fleet.reset(now)
        if self.crew is not None:
            self.crew.reset(now)

    def _end_warmup(self) -> Generator:
        yield self.env.timeout(self.warmup)
        self._wip_change(0)
        self.reset_counters(self.env.now)

    def _wip_change(self, delta: int) -> None:
        now = self.env._now
        self.wip_area += self.wip * (now - self.wip_since)
        self.wip_since = now
        self.wip += delta

    # ------------------------------------------------------------------ orders and release
    def _order_source(self) -> Generator:
        env = self.env
        sc = self.scenario
        arrivals = sc.orders.arrivals
        if arrivals.type == "backlog":
            self._release_next()
            return
        if arrivals.type == "poisson":
            gap = make_sampler(Exponential(dist="exponential", mean=arrivals.mean_interarrival),
                               self.streams.generator("orders", "arrivals"))
            until = math.inf if arrivals.until is None else arrivals.until
            while True:
                yield env.timeout(gap())
                if env.now > until:
                    return
                self._new_order(self._pick_product(), sc.orders.lot_size, None)
        orders = (arrivals.orders if arrivals.type == "schedule"
                  else read_orders_csv(arrivals.file, list(self.products)))
        repeat = getattr(arrivals, "repeat_every", None)
        cycle = 0
        while True:
            for order in sorted(orders, key=lambda o: o.time):
                offset = cycle * repeat if repeat else 0.0
                if order.time + offset > env.now:  # orders due at the same time arrive together
                    yield env.timeout(order.time + offset - env.now)
                self._new_order(self.products[order.product], order.quantity,
                                order.due + offset if order.due is not None else None)
            if not repeat:
                return
            cycle += 1

    def _pick_product(self) -> Product:
        """A product drawn from the order mix."""
        names, cumulative = self._mix
        return self.products[names[min(bisect.bisect_right(cumulative, self._mix_draw()), len(names) - 1)]]

    def _due_date(self, product: Product, quantity: int) -> float:
        cfg = self.scenario.orders.due_date
        if cfg is None:
            return math.inf
        if cfg.factor is not None:
            return self.env.now + cfg.factor * quantity * product.remaining[0]
        return self.env.now + self._allowance()

    def _new_order(self, product: Product, quantity: int, due: Optional[float]) -> None:
        self._next_order += 1
        order = Order(self._next_order, product, quantity, self.env.now,
                      due if due is not None else self._due_date(product, quantity))
        for _ in range(quantity):
            part = self._new_part(product, order)
            self.units_arrived += 1
            if self.daily_plan is not None and not self.endless_demand:  # a backlog is already planned
                self.held.append(part)
            else:
                self._admit(part)

    def _admit(self, part: Part) -> None:
        """Release ``part`` now, or queue it while CONWIP is at its limit."""
        policy = self.scenario.release
        if policy.policy == "conwip" and self.wip >= policy.wip_limit:
            self.backlog.append(part)
        else:
            self._release(part)

    def _daily_releases(self) -> Generator:
        """The basic tier's daily plan: orders that came in are released together once a day."""
        env = self.env
        while True:
            day = math.floor((env.now - self.daily_plan) / 1440) + 1
            yield env.timeout(day * 1440 + self.daily_plan - env.now)
            held, self.held = self.held, []
            for part in held:
                self._admit(part)

    def _new_part(self, product: Product, order: Order) -> Part:
        self._next_part += 1
        return Part(self._next_part, product, order, self.env.now)

    def _release(self, part: Part) -> None:
        first = part.product.ops[0].station if part.product.ops else None
        route = self.source_routes.get(part.product.name)
        if (self.scenario.release.when_full == "reject" and first is not None and route is None
                and not first.has_space()):
            self.rejected += 1
            if self.log is not None:
                self.log.part(self.env.now, "reject", part, first.name)
            self._unit_done(part.order)
            return
        part.released = self.env.now
        self.in_line[part.id] = part
        self._wip_change(+1)
        if self.log is not None:
            self.log.part(self.env.now, "release", part, first.name if first else "")
        for comp, qty in part.product.bom:
            for _ in range(qty):
                self._enter_component(self._new_part(comp, part.order))
        self._enter(part)

    def _enter_component(self, part: Part) -> None:
        self.in_line[part.id] = part
        self._enter(part)

    def _enter(self, part: Part) -> None:
        """Send a released part (or a component) to its first station, or a bought-in component
        straight to its assembly station's stock."""
        product = part.product
        route = self.source_routes.get(product.name)
        if product.ops:
            target, stock = product.ops[0].station, False
        else:
            target, stock = product.assembly_station, True
        if route is not None:
            self.env.process(route.carry(None, part, target, stock))
        elif stock:
            target.receive_component(part)
        else:
            target.offer(part)

    # ------------------------------------------------------------------ optimised plans
    def _replanning(self) -> Generator:
        every = self.scenario.levers.scheduling.replan_every
        while True:
            self._replan()
            yield self.env.timeout(every)

    def disturbed(self) -> None:
        """A failure or a repair: the closed loop re-plans (at most every ``min_replan_gap`` minutes)."""
        if self.env.now - self._last_plan >= self.scenario.levers.scheduling.min_replan_gap:
            self._replan()

    def _replan(self) -> None:
        """Make a CP-SAT plan of the work in the line on its current state and let the stations follow it."""
        lever = self.scenario.levers.scheduling
        now = self.env.now
        self._last_plan = now
        lots: dict[tuple[int, int, int, bool], list[Part]] = {}
        for part in self.in_line.values():
            lots.setdefault((part.order.id, part.product.index, part.op, part.busy), []).append(part)
        jobs = []
        for (order_id, product_index, op, busy), parts in sorted(
                lots.items(), key=lambda item: (item[1][0].order.due, item[0]))[: lever.plan_units]:
            ops = parts[0].product.ops
            n = len(parts)
            first = op + 1 if busy else op
            ready = now + (ops[op].planned if busy and op < len(ops) else 0.0)
            remaining = tuple((ops[i].station.name, n * ops[i].planned, i) for i in range(first, len(ops))
                              if ops[i].station.batch is None)
            jobs.append(PlanJob((order_id, product_index), remaining, ready, parts[0].order.due))
        capacity = {name: len(st.servers) for name, st in self.stations.items()}
        plan = make_plan(jobs, capacity, now, lever.solver_time_limit)
        if plan is not None:
            self.plan.clear()
            self.plan.update(plan)

    # ------------------------------------------------------------------ completion
    def complete(self, part: Part, op: Operation, station: Station) -> Optional[Station]:
        """Book operation ``op`` as done on ``part``; return the station it goes to next (None: it left
        the line, was scrapped, or went to a component stock)."""
        part.busy = False
        station.processed += 1
        station.planned_work += op.planned
        if self.log is not None:
            self.log.part(self.env._now, "finish", part, station.name)
        if op.inspect is not None:
            redo = self._inspect(part, op, station)
            if redo is not None:
                return redo
        if op.scrap or op.rework:
            u = op.quality()
            if u < op.scrap:
                station.scrapped += 1
                self._scrap(part, station)
                return None
            if u < op.scrap + op.rework:
                station.reworked += 1
                part.reworked = True
                part.op = op.rework_index
                if self.log is not None:
                    self.log.part(self.env._now, "rework", part, station.name)
                return part.product.ops[part.op].station
        part.op += 1
        ops = part.product.ops
        if part.op < len(ops):
            return ops[part.op].station
        if part.product.parent is not None:
            self._to_assembly(part, station)
        else:
            self._exit(part)
        return None

    def _inspect(self, part: Part, op: Operation, station: Station) -> Optional[Station]:
        """Defects this operation may make, and whether inspection sends the part back (the quality lever).
        Returns the station the part must go back to, or None to carry on."""
        mode, recall, false_alarm, sample_rate = self.inspection
        made = op.defect > 0 and op.inspect() < op.defect
        if made and part.defect_op is None:
            part.defect_op = part.op
        back: Optional[int] = None
        if mode != "end_of_line" and op.defect > 0:
            if made:
                back = part.op if op.inspect() < recall else None
            elif op.inspect() < false_alarm:
                back = part.op
        elif mode == "end_of_line" and part.op == len(part.product.ops) - 1 and part.defect_op is not None:
            back = part.defect_op if op.inspect() < sample_rate else None
        if back is None:
            return None
        part.defect_op = None
        part.reworked = True
        part.op = back
        station.reworked += 1
        if self.log is not None:
            self.log.part(self.env._now, "rework", part, station.name)
        return part.product.ops[back].station

    def _to_assembly(self, part: Part, station: Station) -> None:
        target = part.product.assembly_station
        route = station.routes.get(target.name)
        if route is not None:
            self.env.process(route.carry(None, part, target, True))
        else:
            target.receive_component(part)

    def consume_component(self, part: Part, station: Station) -> None:
        del self.in_line[part.id]
        if self.log is not None:
            self.log.part(self.env._now, "consume", part, station.name)

    def _exit(self, part: Part) -> None:
        now = self.env._now
        del self.in_line[part.id]
        self._wip_change(-1)
        self.good += 1
        if not part.reworked:
            self.good_first_pass += 1
        else:
            self.reworked_units += 1
        if part.defect_op is not None:
            self.escaped += 1
        self.lead_times.append(now - part.order.arrival)
        self.flow_time_sum += now - part.released
        if self.log is not None:
            self.log.part(now, "exit", part, "")
        self._unit_done(part.order)
        self._release_next()

    def _scrap(self, part: Part, station: Station) -> None:
        now = self.env._now
        if self.log is not None:
            self.log.part(now, "scrap", part, station.name)
        if part.product.parent is not None:
            # a scrapped component is replaced so that its kit can still be completed
            del self.in_line[part.id]
            self._enter_component(self._new_part(part.product, part.order))
            return
        del self.in_line[part.id]
        self._wip_change(-1)
        self.scrapped += 1
        if part.reworked:
            self.reworked_units += 1
        self.flow_time_sum += now - part.released
        self._unit_done(part.order)
        self._release_next()

    def _unit_done(self, order: Order) -> None:
        order.open_units -= 1
        if order.open_units == 0:
            now = self.env.now
            self.orders_completed += 1
            if math.isfinite(order.due):
                self.orders_with_due += 1
                self.orders_on_time += now <= order.due
                self.tardiness_sum += max(0.0, now - order.due)

    def _release_next(self) -> None:
        """Release waiting units while CONWIP allows; with backlog demand, create orders to fill up."""
        limit = self.scenario.release.wip_limit
        while limit is None or self.wip < limit:
            if self.backlog:
                self._release(self.backlog.popleft())
            elif self.endless_demand:
                self._new_order(self._pick_product(), self.scenario.orders.lot_size, None)
            else:
                return

    # ------------------------------------------------------------------ run
    def run(self) -> "Line":
        """Simulate warm-up plus observation window; statistics cover the window only."""
        end = self.warmup + self.length
        self.env.run(until=end)
        return self.finish(end)

    def finish(self, end: float) -> "Line":
        """Close the statistics at time ``end`` (minutes), the end of the observation window."""
        self._wip_change(0)
        for st in self.stations.values():
            st.finish(end)
        return self


def simulate(scenario: Scenario, replication: int, seed: Optional[int] = None,
             log: Optional[EventLog] = None, decider: Optional[Decider] = None) -> Line:
    """Build and run replication ``replication`` of ``scenario`` (seed defaults to ``run.seed``);
    ``decider`` makes the dispatching decisions instead of the stations' rules."""
    if log is not None:
        log.replication = replication
    return Line(scenario, replication, scenario.run.seed if seed is None else seed, log, decider).run()

