"""Parts, orders and the runtime form of products and operations (minutes throughout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from lines.station import Station


@dataclass(eq=False)
class Operation:
    """One routing step on a station, with the planned (mean) time used by dispatching rules and KPIs."""

    label: str
    station: "Station"
    planned: float
    """Planned run time per item (PRI), minutes."""
    sample: Optional[Callable[[], float]]
    scrap: float
    rework: float
    rework_index: Optional[int]
    assemble: bool
    quality: Optional[Callable[[], float]] = None
    """Uniform(0, 1) draws deciding scrap / rework (only where either is possible)."""
    defect: float = 0.0
    """Probability of making a defect here (after the quality lever's process control)."""
    inspect: Optional[Callable[[], float]] = None
    """Uniform(0, 1) draws for defects and their inspection (where defects can be made or found)."""


@dataclass(eq=False)
class Product:
    name: str
    index: int
    family: str
    ops: list[Operation] = field(default_factory=list)
    remaining: list[float] = field(default_factory=list)
    """Planned work from operation i to the end, minutes."""
    bom: list[tuple["Product", int]] = field(default_factory=list)
    parent: Optional["Product"] = None
    assembly_station: Optional["Station"] = None
    """Where this component is consumed (for components only)."""
    source: Optional[str] = None


class Order:
    """A customer order of ``quantity`` units of one product."""

    __slots__ = ("id", "product", "quantity", "arrival", "due", "open_units")

    def __init__(self, id: int, product: Product, quantity: int, arrival: float, due: float):
        self.id = id
        self.product = product
        self.quantity = quantity
        self.arrival = arrival
        self.due = due
        self.open_units = quantity


class Part:
    """One unit moving through its routing. ``op`` is the index of its current (or next) operation."""

    __slots__ = ("id", "product", "order", "op", "released", "queued", "reworked", "assembled", "defect_op", "busy")

    def __init__(self, id: int, product: Product, order: Order, released: float):
        self.id = id
        self.product = product
        self.order = order
        self.op = 0
        self.released = released
        self.queued = released
        self.reworked = False
        self.assembled = False
        """Whether its components are already in it (a reworked unit does not consume them again)."""
        self.defect_op: Optional[int] = None
        """Operation index where an undetected defect was made, if any."""
        self.busy = False
        """Whether its current operation is under way (taken by a server)."""
