"""Maturity levers: each capability a smart-factory tier adds is an explicit, documented lever with its own
parameters (see ../shared/reference/maturity.md). A scenario's ``levers`` section sets them; tier
presets (``scenarios/tiers/*.yaml``) are named sets of lever values.

Units: minutes, kW, CNY (yuan) for money. Every lever may carry ``investment`` (one-off, CNY) and
``running_cost_per_year`` (CNY/year), so a comparison can report cost per unit and payback.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.config.distributions import Constant, Distribution


class _Lever(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    investment: float = Field(0, ge=0, description="One-off investment, CNY.")
    running_cost_per_year: float = Field(0, ge=0, description="Running cost, CNY per year.")


class SchedulingLever(_Lever):
    """How work is sequenced.

    * ``daily_plan``: orders are released once a day (at ``plan_time``) and every station runs FIFO —
      a plan made from yesterday's information (basic). With ``backlog`` demand (always enough planned
      work) only the FIFO part applies.
    * ``realtime_rule``: orders released on arrival; every station dispatches by ``rule`` from live MES
      state (advanced).
    * ``optimised_plan``: as realtime, plus an optimised sequence (CP-SAT, OR-Tools) re-made every
      ``replan_every`` minutes on the live line state; stations follow the plan (excellent).
    * ``closed_loop``: as optimised_plan, also re-planned at every disturbance (a failure or a repair).
    * ``learned_dispatch``: orders released on arrival; at every dispatching decision a learned policy
      (the model shipped with YueTwin, or the model file ``model``) picks the next part from the live
      state of the line: the line re-optimises itself (leading).
    """

    method: Literal["daily_plan", "realtime_rule", "optimised_plan", "closed_loop", "learned_dispatch"] = "realtime_rule"
    rule: Literal["fifo", "spt", "edd", "cr", "atc"] = Field("atc", description="Rule for realtime dispatching.")
    plan_time: str = Field("06:00", description="Clock time of the daily release (daily_plan).")
    replan_every: float = Field(480, gt=0, description="Minutes between re-plans (optimised_plan, closed_loop).")
    solver_time_limit: float = Field(
        0.05, gt=0, le=600, description="CP-SAT deterministic time limit per plan (about seconds of one core).")
    plan_units: int = Field(100, ge=1, description="Most lots in one plan (earliest due first); the rest "
                                                   "follow after the planned ones, first come first served.")
    min_replan_gap: float = Field(30, ge=0, description="Minutes between disturbance re-plans (closed_loop).")
    model: Optional[str] = Field(None, description="The learned dispatcher (learned_dispatch): the name of a "
                                                   "model shipped with YueTwin (policies/models/: line, "
                                                   "smt_line, ...) or the path of a model file (.pt) written "
                                                   "by `twin train`; None: the generic line model.")


class InformationLever(_Lever):
    """How old the state is that decisions use: parts that reached a queue less than ``latency`` minutes
    ago are not yet known to the dispatcher and are served after the known ones, first come first served."""

    latency: float = Field(0, ge=0, description="Minutes.")


class MaintenanceLever(_Lever):
    """Maintenance of stations with ``failures``.

    * ``reactive``: a failed machine waits ``response_time`` and for one of ``technicians`` before repair.
    * ``preventive``: as reactive, plus maintenance every ``interval`` working minutes of age, taking
      ``duration``; it renews the machine (age 0).
    * ``predictive``: a condition signal warns ``lead_time`` minutes before a failure with probability
      ``recall``, and maintenance (``duration``) is done then, renewing the machine; false alarms come at
      ``false_alarms_per_1000h`` per machine and cost a maintenance each.
    Maintenance only helps where failures age (Weibull shape > 1).
    """

    policy: Literal["reactive", "preventive", "predictive"] = "reactive"
    technicians: Optional[int] = Field(None, ge=1, description="Shared repair crew; None = unlimited.")
    response_time: float = Field(0, ge=0, description="Minutes from failure until repair can start.")
    interval: Optional[float] = Field(None, gt=0, description="Working minutes of age between preventive jobs.")
    duration: Distribution = Field(default_factory=lambda: Constant(value=30),
                                   description="Minutes per preventive or predictive maintenance job.")
    lead_time: float = Field(120, ge=0, description="Minutes of warning before a failure (predictive).")
    recall: float = Field(0.9, ge=0, le=1, description="Share of failures the signal predicts.")
    false_alarms_per_1000h: float = Field(0, ge=0, description="Per machine, per 1000 working hours.")

    @model_validator(mode="after")
    def _needs(self) -> "MaintenanceLever":
        if self.policy == "preventive" and self.interval is None:
            raise ValueError("preventive maintenance needs interval: working minutes between jobs")
        return self


class QualityLever(_Lever):
    """Where defects are found. Operations generate defects with their ``defect`` probability.

    * ``end_of_line``: a final inspection samples ``sample_rate`` of units; a defect found there travels
      back to the operation that made it (rework), an unsampled one escapes to the customer.
    * ``inline``: each defect is found right after the operation that made it.
    * ``ai_vision``: inline, finding a defect with probability ``recall`` and flagging a good part with
      probability ``false_alarm``; missed defects escape.
    * ``closed_loop``: ai_vision, plus process control multiplying every defect probability by
      ``defect_factor``.
    """

    inspection: Literal["end_of_line", "inline", "ai_vision", "closed_loop"] = "inline"
    sample_rate: float = Field(1.0, ge=0, le=1)
    recall: float = Field(0.98, ge=0, le=1)
    false_alarm: float = Field(0.01, ge=0, le=1)
    defect_factor: float = Field(0.5, ge=0, le=1)


class ChangeoverLever(_Lever):
    """Setups: ``manual`` as modelled; ``smed`` multiplies every setup time by ``smed_factor``;
    ``sequence_optimised`` also prefers, among waiting parts, one of the family already set up."""

    mode: Literal["manual", "smed", "sequence_optimised"] = "manual"
    smed_factor: float = Field(0.5, gt=0, le=1)


class TariffPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(description="Clock time HH:MM.")
    end: str = Field(description="Clock time HH:MM (end of day: 24:00).")
    price: float = Field(ge=0, description="CNY per kWh.")


GUANGDONG_TOU = [
    TariffPeriod(start="00:00", end="08:00", price=0.26),
    TariffPeriod(start="08:00", end="10:00", price=0.68),
    TariffPeriod(start="10:00", end="12:00", price=1.16),
    TariffPeriod(start="12:00", end="14:00", price=0.68),
    TariffPeriod(start="14:00", end="19:00", price=1.16),
    TariffPeriod(start="19:00", end="24:00", price=0.68),
]
"""Default example tariff: Guangdong industrial time-of-use periods (valley 0-8, peak 10-12 and 14-19,
flat otherwise) with the peak : flat : valley ratio 1.7 : 1 : 0.38 of the province's 2021 TOU policy
around a flat price of 0.68 CNY/kWh. An assumption to replace with the enterprise's own bill."""


class EnergyLever(_Lever):
    """Energy management.

    * ``none``: no metering; energy is still computed, but the line cannot act on it.
    * ``metered``: the same physics; metering is a cost and makes the energy KPIs trustworthy.
    * ``idle_shutdown``: a server idle for ``shutdown_after`` minutes switches off (off power) and needs
      ``warmup_time`` minutes (at idle power) before its next part.
    * ``tou_scheduling``: idle shutdown, plus batch stations hold partial batches during peak-price
      periods of the tariff (they start only full batches then).
    Energy cost uses ``tariff`` (CNY/kWh by time of day).
    """

    mode: Literal["none", "metered", "idle_shutdown", "tou_scheduling"] = "none"
    shutdown_after: float = Field(15, ge=0, description="Minutes idle before switching off.")
    warmup_time: float = Field(5, ge=0, description="Minutes to restart after a shutdown.")
    tariff: list[TariffPeriod] = Field(default_factory=lambda: list(GUANGDONG_TOU))


class MaterialFlowLever(_Lever):
    """How parts move between stations that have no conveyor.

    * ``manual``: ``carts`` material handlers walking at ``walk_speed`` m/min, each trip waiting
      ``handling_time``, the first free handler takes the job.
    * ``agv``: the scenario's AGV fleet on fixed routes; the first free vehicle takes the job.
    * ``agv_dispatch``: the AGV fleet with dispatching: the nearest free vehicle takes the job.
    Needs ``transport.agv`` (its distance table and fleet). With no AGV section the lever has no effect.
    """

    mode: Literal["manual", "agv", "agv_dispatch"] = "agv_dispatch"
    carts: int = Field(2, ge=1)
    walk_speed: float = Field(60, gt=0, description="Metres per minute.")
    handling_time: float = Field(1.0, ge=0, description="Minutes per trip for loading and paperwork.")


class Levers(BaseModel):
    """All levers; each defaults to the behaviour of a plain scenario without a levers section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduling: Optional[SchedulingLever] = None
    information: Optional[InformationLever] = None
    maintenance: Optional[MaintenanceLever] = None
    quality: Optional[QualityLever] = None
    changeover: Optional[ChangeoverLever] = None
    energy: Optional[EnergyLever] = None
    material_flow: Optional[MaterialFlowLever] = None

    def investment(self) -> float:
        """Total one-off investment, CNY."""
        return sum(lever.investment for lever in self._set())

    def running_cost_per_year(self) -> float:
        """Total running cost, CNY per year."""
        return sum(lever.running_cost_per_year for lever in self._set())

    def _set(self) -> list[_Lever]:
        return [getattr(self, name) for name in LEVER_NAMES if getattr(self, name) is not None]


LEVER_NAMES = ("scheduling", "information", "maintenance", "quality", "changeover", "energy", "material_flow")
