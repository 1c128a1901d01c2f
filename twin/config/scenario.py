"""The scenario schema: everything a production line model is made of.

Units: time in **minutes** (simulation time 0 is Monday 00:00), power in **kW**, distances in **metres**,
speeds in **metres per minute**. Probabilities are fractions in [0, 1].

The schema is pure pydantic; it never imports the simulation engine. Cross-references (a routing naming a
station, a rework target naming an operation, ...) are checked after the whole file is parsed, and every
problem is reported with its path in the file and a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.config.distributions import Distribution
from twin.config.levers import Levers
from twin.config.robot import RobotCellConfig

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DISPATCH_RULES = ("fifo", "spt", "lpt", "edd", "cr", "atc")
"""Dispatching rules: first in first out, shortest / longest processing time, earliest due date,
critical ratio (slack over remaining work), apparent tardiness cost."""

_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
Name = Annotated[str, Field(pattern=_NAME, min_length=1, max_length=64)]
Probability = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------- calendar
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def clock_minutes(text: str) -> int:
    """Minutes after midnight of a ``"HH:MM"`` clock time (``"24:00"`` is the end of the day)."""
    match = _CLOCK.match(text)
    if not match or (int(match.group(1)) == 24 and match.group(2) != "00"):
        raise ValueError(f"'{text}' is not a clock time; write it as HH:MM, e.g. '06:30'")
    return int(match.group(1)) * 60 + int(match.group(2))


class Period(_Model):
    """A daily time window, ``start`` to ``end`` as HH:MM; an ``end`` before ``start`` runs past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        clock_minutes(value)
        return value


class PlannedDowntime(_Model):
    """Planned downtime (PDOT): inside planned operation time but not available for production."""

    day: Literal["daily", "mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "daily"
    start: str = Field(description="Clock time HH:MM.")
    duration: float = Field(gt=0, le=1440, description="Minutes.")
    stations: Optional[list[Name]] = Field(None, description="Stations concerned; all when omitted.")

    @field_validator("start")
    @classmethod
    def _clock(cls, value: str) -> str:
        clock_minutes(value)
        return value


class CalendarConfig(_Model):
    """The factory calendar. Without shifts the line works around the clock."""

    shifts: list[Period] = Field(default_factory=list, description="Working shifts; empty = 24 h.")
    workdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(DAYS), description="Days on which the shifts are worked."
    )
    breaks: list[Period] = Field(default_factory=list, description="Daily breaks, outside planned time.")
    planned_downtime: list[PlannedDowntime] = Field(default_factory=list)


class RunConfig(_Model):
    """How long to simulate and how often."""

    warmup: float = Field(0, ge=0, description="Minutes simulated before statistics are collected.")
    length: float = Field(gt=0, description="Minutes observed after the warm-up, per replication.")
    replications: int = Field(10, ge=1, le=100_000)
    seed: int = Field(0, ge=0, description="Root seed; every random stream is derived from it.")


# ----------------------------------------------------------------------------------------- stations
class PowerDraw(_Model):
    """Electrical power per station state, kW per server. A blocked server draws ``idle`` power."""

    off: float = Field(0, ge=0, description="Off shift or planned downtime, kW.")
    idle: float = Field(0, ge=0, description="Idle (starved) or blocked, kW.")
    setup: float = Field(0, ge=0, description="Setting up, kW.")
    busy: float = Field(0, ge=0, description="Processing, kW.")
    down: float = Field(0, ge=0, description="Failed / under repair, kW.")


class SetupConfig(_Model):
    """Sequence-dependent setup by product family: ``matrix[from_family][to_family]`` if given, else
    ``default`` whenever the family changes. No setup between parts of the same family."""

    default: Optional[Distribution] = None
    matrix: dict[str, dict[str, Distribution]] = Field(default_factory=dict)
    first: bool = Field(False, description="Whether the very first part also needs a setup.")


class BatchConfig(_Model):
    """Batch processing (ovens, furnaces): up to ``size`` parts processed together for ``time``."""

    size: int = Field(ge=1, description="Maximum parts per batch.")
    time: Distribution = Field(description="Batch processing time, minutes.")
    min_size: int = Field(1, ge=1, description="Smallest batch started once max_wait has passed.")
    max_wait: Optional[float] = Field(
        None, ge=0, description="Minutes to wait for a full batch; None = always wait for a full one."
    )

    @model_validator(mode="after")
    def _sizes(self) -> "BatchConfig":
        if self.min_size > self.size:
            raise ValueError(f"min_size ({self.min_size}) exceeds size ({self.size}); lower min_size")
        return self


class FailureConfig(_Model):
    """Time-based failures of each server: ``tbf`` counts planned working time since the last repair
    (so a Weibull shape > 1 expresses ageing); ``ttr`` is the repair time. Interrupted work resumes."""

    tbf: Distribution = Field(description="Time between failures, working minutes.")
    ttr: Distribution = Field(description="Time to repair, minutes.")


class WorkerNeed(_Model):
    """A station that needs a qualified worker for setup, for running, or both."""

    skill: Name
    during: Literal["setup", "run", "both"] = "both"


class StationConfig(_Model):
    """A station group: ``servers`` identical parallel machines sharing one input buffer."""

    name: Name
    servers: int = Field(1, ge=1, le=1000)
    buffer: Optional[int] = Field(
        None, ge=0, description="Input buffer capacity in parts; None = unlimited. Blocking after service."
    )
    dispatch: Literal["fifo", "spt", "lpt", "edd", "cr", "atc"] = "fifo"
    atc_k: float = Field(2.0, gt=0, description="Look-ahead parameter k of the ATC rule.")
    setup: Optional[SetupConfig] = None
    batch: Optional[BatchConfig] = None
    failures: Optional[FailureConfig] = None
    power: PowerDraw = Field(default_factory=PowerDraw)
    worker: Optional[WorkerNeed] = None
    robot: Optional[RobotCellConfig] = Field(
        None, description="A robot cell: its processing time comes from a physics simulation of its tasks.")


# ----------------------------------------------------------------------------------------- products
class Operation(_Model):
    """One step of a routing: processing on a station group, then a quality outcome."""

    station: Name
    name: Optional[Name] = Field(None, description="Operation name; defaults to the station name.")
    time: Optional[Distribution] = Field(
        None, description="Processing time per part, minutes (not used on batch stations)."
    )
    defect: Probability = Field(0, description="Probability this operation makes a defect; where it is "
                                "found depends on the quality lever (default: right after, redone here).")
    scrap: Probability = Field(0, description="Probability the part is scrapped here.")
    rework: Probability = Field(0, description="Probability the part must be reworked.")
    rework_to: Optional[Name] = Field(None, description="Operation the reworked part returns to.")
    assemble: bool = Field(False, description="Consume the product's bill of materials here.")

    @property
    def label(self) -> str:
        return self.name or self.station

    @model_validator(mode="after")
    def _quality(self) -> "Operation":
        if self.scrap + self.rework > 1:
            raise ValueError(f"scrap + rework = {self.scrap + self.rework} exceeds 1; lower one of them")
        if self.rework > 0 and self.rework_to is None:
            raise ValueError("rework > 0 needs rework_to: the operation the part goes back to")
        return self


class ProductConfig(_Model):
    """A product (or a component) and its routing."""

    name: Name
    family: Optional[str] = Field(None, description="Setup family; defaults to the product name.")
    routing: list[Operation] = Field(default_factory=list)
    bom: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Components consumed at the operation marked assemble."
    )
    source: Optional[Name] = Field(
        None, description="Location parts enter from (for AGV transport to the first station)."
    )

    @property
    def setup_family(self) -> str:
        return self.family or self.name


# ----------------------------------------------------------------------------------------- transport
class ConveyorConfig(_Model):
    """A conveyor carrying parts from one station to the next with a transfer time."""

    name: Name
    from_: Name = Field(alias="from")
    to: Name
    transfer_time: Distribution = Field(description="Minutes on the conveyor.")
    capacity: Optional[int] = Field(None, ge=1, description="Parts on the conveyor; None = unlimited.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AgvConfig(_Model):
    """An AGV fleet moving parts between locations (stations and named places such as a warehouse)."""

    count: int = Field(ge=1)
    speed: float = Field(gt=0, description="Metres per minute.")
    load_time: float = Field(0, ge=0, description="Minutes.")
    unload_time: float = Field(0, ge=0, description="Minutes.")
    home: Name = Field(description="Location where the vehicles start.")
    distances: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = Field(
        description="Metres between locations; symmetric if only one direction is given."
    )
    moves: Literal["all"] | list[tuple[Name, Name]] = Field(
        "all", description="Which moves between stations the AGVs make; 'all' = every listed pair."
    )

    def distance(self, a: str, b: str) -> Optional[float]:
        if a == b:
            return 0.0
        if b in self.distances.get(a, {}):
            return self.distances[a][b]
        return self.distances.get(b, {}).get(a)

    def locations(self) -> set[str]:
        names = set(self.distances)
        for row in self.distances.values():
            names.update(row)
        return names


class TransportConfig(_Model):
    conveyors: list[ConveyorConfig] = Field(default_factory=list)
    agv: Optional[AgvConfig] = None


class WorkerPool(_Model):
    """Workers as a shared resource: ``count`` people, each qualified for ``skills``."""

    name: Name
    count: int = Field(ge=1)
    skills: list[Name] = Field(min_length=1)


# ----------------------------------------------------------------------------------------- orders
class PoissonArrivals(_Model):
    """Orders arrive one at a time with exponential inter-arrival times."""

    type: Literal["poisson"]
    mean_interarrival: float = Field(gt=0, description="Minutes between orders on average.")
    until: Optional[float] = Field(
        None, gt=0, description="Minutes after which no more orders arrive, so the work is finite and a run "
                                "can end when it is all done (dynamic job shop episodes); None = for ever.")


class BacklogArrivals(_Model):
    """Unlimited demand: a new order is created whenever CONWIP lets a unit in, so the line is never
    short of work (capacity studies). Needs ``release: {policy: conwip, wip_limit: N}``."""

    type: Literal["backlog"]


class ScheduledOrder(_Model):
    time: float = Field(ge=0, description="Arrival, minutes.")
    product: Name
    quantity: int = Field(1, ge=1)
    due: Optional[float] = Field(None, ge=0, description="Absolute due time, minutes.")


class ScheduleArrivals(_Model):
    """A fixed list of orders, optionally repeated every ``repeat_every`` minutes."""

    type: Literal["schedule"]
    orders: list[ScheduledOrder] = Field(min_length=1)
    repeat_every: Optional[float] = Field(None, gt=0, description="Minutes.")


class CsvArrivals(_Model):
    """Orders read from a CSV file with columns time, product, quantity and optionally due (minutes).
    A relative path is relative to the scenario file."""

    type: Literal["csv"]
    file: str


class DueDateConfig(_Model):
    """Due date = arrival + ``allowance`` (minutes) or arrival + ``factor`` x total planned work."""

    allowance: Optional[Distribution] = None
    factor: Optional[float] = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> "DueDateConfig":
        if (self.allowance is None) == (self.factor is None):
            raise ValueError("give exactly one of allowance and factor")
        return self


class OrdersConfig(_Model):
    """Where the work comes from."""

    arrivals: Annotated[
        Union[PoissonArrivals, BacklogArrivals, ScheduleArrivals, CsvArrivals], Field(discriminator="type")
    ]
    mix: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="Product shares for generated orders (normalised)."
    )
    lot_size: int = Field(1, ge=1, description="Units per generated order.")
    due_date: Optional[DueDateConfig] = None


class ReleaseConfig(_Model):
    """Order release: ``push`` releases at arrival; ``conwip`` caps the units in the line."""

    policy: Literal["push", "conwip"] = "push"
    wip_limit: Optional[int] = Field(None, ge=1)
    when_full: Literal["wait", "reject"] = Field(
        "wait", description="A unit arriving when the first buffer is full waits at the door, or is "
                            "turned away and counted as rejected (a loss system, as in M/M/1/K).")

    @model_validator(mode="after")
    def _limit(self) -> "ReleaseConfig":
        if self.policy == "conwip" and self.wip_limit is None:
            raise ValueError("conwip needs wip_limit (the most units allowed in the line)")
        return self


# ----------------------------------------------------------------------------------------- scenario
class EconomicsConfig(_Model):
    """Money, for cost per unit and payback of upgrades (CNY)."""

    margin_per_unit: float = Field(0, ge=0, description="Contribution margin per good unit, CNY.")
    weeks_per_year: float = Field(50, gt=0, le=53, description="Operating weeks per year.")
    depreciation_years: float = Field(5, gt=0, description="Years over which an investment is written off.")


class ScenarioReferenceError(Exception):
    """Cross-reference problems found after parsing: a list of (path, value, message)."""

    def __init__(self, problems: list[tuple[tuple[Union[str, int], ...], object, str]]):
        super().__init__("; ".join(m for _, _, m in problems))
        self.problems = problems


def suggest(name: str, known: list[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest known name, or a list of choices."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f" Did you mean '{close[0]}'?"
    return f" Known: {', '.join(sorted(known))}." if known else ""


class Scenario(_Model):
    """A production line: calendar, products, stations, transport, workers, orders and release."""

    name: Name
    description: str = ""
    run: RunConfig
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    products: list[ProductConfig] = Field(min_length=1)
    stations: list[StationConfig] = Field(min_length=1)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    workers: list[WorkerPool] = Field(default_factory=list)
    orders: OrdersConfig
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    levers: Levers = Field(default_factory=Levers)
    tiers: dict[Literal["basic", "advanced", "excellent", "leading"], dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="Per-tier lever overrides for this line, e.g. "
                                          "{leading: {maintenance: {lead_time: 600}}}.")
    economics: EconomicsConfig = Field(default_factory=EconomicsConfig)

    def station(self, name: str) -> StationConfig:
        return next(s for s in self.stations if s.name == name)

    def product(self, name: str) -> ProductConfig:
        return next(p for p in self.products if p.name == name)

    @model_validator(mode="after")
    def _references(self) -> "Scenario":
        problems = list(_reference_problems(self))
        if problems:
            raise ScenarioReferenceError(problems)
        return self


def _unique(items: list, section: str):
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name in seen:
            yield (section, i, "name"), item.name, f"'{item.name}' is used twice in {section}; rename one"
        seen.add(item.name)


def _reference_problems(sc: Scenario):
    yield from _unique(sc.stations, "stations")
    yield from _unique(sc.products, "products")
    yield from _unique(sc.workers, "workers")
    stations = [s.name for s in sc.stations]
    products = [p.name for p in sc.products]
    skills = sorted({k for w in sc.workers for k in w.skills})
    parents: dict[str, str] = {}
    for pi, product in enumerate(sc.products):
        ops = [op.label for op in product.routing]
        for oi, op in enumerate(product.routing):
            where = ("products", pi, "routing", oi)
            if op.station not in stations:
                yield where + ("station",), op.station, (
                    f"unknown station '{op.station}'." + suggest(op.station, stations))
                continue
            st = sc.station(op.station)
            if st.robot is not None and op.time is not None:
                yield where + ("time",), op.time, (
                    f"'{op.station}' is a robot cell, its time comes from physics; remove time here")
            if st.batch is None and st.robot is None and op.time is None:
                yield where + ("time",), None, (
                    f"operation '{op.label}' on '{op.station}' needs a processing time: add time: MINUTES")
            if op.rework_to is not None and op.rework_to not in ops:
                yield where + ("rework_to",), op.rework_to, (
                    f"unknown operation '{op.rework_to}' in this routing." + suggest(op.rework_to, ops))
        if len(set(ops)) != len(ops):
            yield ("products", pi, "routing"), ops, (
                "two operations share a name; give them distinct 'name' fields")
        assembly_ops = [oi for oi, op in enumerate(product.routing) if op.assemble]
        if product.bom and len(assembly_ops) != 1:
            yield ("products", pi, "bom"), product.name, (
                "a bill of materials needs exactly one routing operation with assemble: true")
        if assembly_ops and not product.bom:
            yield ("products", pi, "routing", assembly_ops[0], "assemble"), True, (
                "assemble: true needs a bom on the product")
        for comp in product.bom:
            if comp not in products:
                yield ("products", pi, "bom", comp), comp, (
                    f"unknown component '{comp}'." + suggest(comp, products))
            elif comp == product.name:
                yield ("products", pi, "bom", comp), comp, "a product cannot contain itself"
            elif comp in parents:
                yield ("products", pi, "bom", comp), comp, (
                    f"'{comp}' is already a component of '{parents[comp]}'; make a separate product")
            else:
                parents[comp] = product.name
        if not product.routing and not any(product.name in p.bom for p in sc.products):
            yield ("products", pi, "routing"), [], "a product that is not a component needs a routing"
    for si, st in enumerate(sc.stations):
        if st.batch is not None and (st.setup is not None or st.worker is not None):
            yield ("stations", si, "batch"), st.name, (
                "batch stations do not support setup or worker needs yet; remove those fields")
        if st.worker is not None and st.worker.skill not in skills:
            yield ("stations", si, "worker", "skill"), st.worker.skill, (
                f"no worker pool has skill '{st.worker.skill}'." + suggest(st.worker.skill, skills))
    for di, dt in enumerate(sc.calendar.planned_downtime):
        for name in dt.stations or []:
            if name not in stations:
                yield ("calendar", "planned_downtime", di, "stations"), name, (
                    f"unknown station '{name}'." + suggest(name, stations))
    for ci, conv in enumerate(sc.transport.conveyors):
        for key, name in (("from", conv.from_), ("to", conv.to)):
            if name not in stations:
                yield ("transport", "conveyors", ci, key), name, (
                    f"unknown station '{name}'." + suggest(name, stations))
    agv = sc.transport.agv
    locations = sorted(agv.locations()) if agv else []
    if agv is not None:
        if agv.home not in locations:
            yield ("transport", "agv", "home"), agv.home, (
                f"home '{agv.home}' is not in the distance table." + suggest(agv.home, locations))
        if agv.moves != "all":
            for mi, pair in enumerate(agv.moves):
                if agv.distance(*pair) is None:
                    yield ("transport", "agv", "moves", mi), list(pair), (
                        f"no distance between '{pair[0]}' and '{pair[1]}'; add it under distances")
    for pi, product in enumerate(sc.products):
        if product.source is not None and product.source not in locations:
            yield ("products", pi, "source"), product.source, (
                f"source '{product.source}' is not an AGV location." + suggest(product.source, locations))
    orders = sc.orders
    for name in orders.mix:
        if name not in products:
            yield ("orders", "mix", name), name, f"unknown product '{name}'." + suggest(name, products)
        elif name in parents:
            yield ("orders", "mix", name), name, (
                f"'{name}' is a component of '{parents[name]}' and is released with it; order the parent")
    if orders.arrivals.type == "backlog" and sc.release.policy != "conwip":
        yield ("orders", "arrivals", "type"), "backlog", (
            "backlog arrivals need release: {policy: conwip, wip_limit: N} to bound the line")
    if orders.arrivals.type in ("poisson", "backlog") and not orders.mix:
        yield ("orders", "mix"), {}, "generated orders need a product mix, e.g. mix: {product_a: 1}"
    if orders.arrivals.type == "schedule":
        for oi, order in enumerate(orders.arrivals.orders):
            if order.product not in products:
                yield ("orders", "arrivals", "orders", oi, "product"), order.product, (
                    f"unknown product '{order.product}'." + suggest(order.product, products))
    if sc.release.policy == "push" and sc.release.wip_limit is not None:
        yield ("release", "wip_limit"), sc.release.wip_limit, "wip_limit only applies to policy: conwip"
