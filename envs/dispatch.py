"""Dispatching on any scenario's line, as a Gymnasium environment or in-process, through the engine's
decision hook (``lines.station.Decision``).

A decision is due whenever a server of a station (not a batch station) is free and more than one waiting
part could start there, after the engine's own filters (assembly kits complete, parts the dispatcher
knows of under information latency, the family already set up under sequence-optimised changeover). The
decider replaces the station's dispatching rule and any optimised plan. Two deciders:

* :class:`DispatchEnv` pauses the simulation at each decision: ``step(action)`` starts the chosen part and
  runs the line to the next decision. :class:`DynamicJobShopEnv` is the same on the dynamic flexible job
  shop of Liu, Piplani & Toro (2022), ``scenarios/dynamic_job_shop.yaml``.
* :class:`PolicyDecider` answers each decision in-process from a policy's ``predict`` on the same
  observation (``simulate(scenario, r, decider=PolicyDecider(policy))``): no pause, no extra event.

Observations follow ``envs.spaces``. The candidates are the parts that could start, in queue order (the
order of the station's rule for ``spt``, ``lpt`` and ``edd``, else arrival order); when more than
``max_candidates`` could start, the first ``max_candidates`` of them are offered. Per candidate, with
times divided by ``time_scale``:

* ``processing_time``: planned (mean) time of its operation here; ``remaining_work``: planned work from
  that operation to the end of its routing; ``remaining_ops``: operations left including this one /
  number of stations;
* ``slack``: (due - now - remaining work), not clipped, and ``has_due``: 0 and 0 without a due
  date;
* ``setup``: the expected (mean) setup this server needs before it, no random number drawn;
* ``next_queue_work``: planned work waiting in the queue of the station of its next operation (0 after
  the last); ``waiting``: time since it entered this queue.

Line features: ``progress`` = planned work of the finished operations / (that + planned work left on the
units in the line and waiting for release); ``candidates`` = legal rows / max_candidates;
``utilisation`` = planned work of the finished operations / (machines x minutes elapsed), 0 at time 0;
``queued_work`` = planned work waiting in all queues / (time_scale x machines). "Finished" and "elapsed"
count from the start of the statistics window: time 0 in an environment (no warm-up), the end of the
warm-up in ``simulate()``.

``time_scale`` is the mean planned time of the operations of all products' routings (minutes; a batch
operation counts its batch time / batch size), or 1 minute if that is 0.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import gymnasium as gym
import numpy as np

from envs.spaces import N_CANDIDATE_FEATURES, action_space, observation_space
from lines.station import Decision, Station
from policies.base import Policy
from twin.config import Scenario, load_scenario
from twin.config.scenario import SetupConfig, suggest
from twin.engine import Line
from twin.kpi import replication_kpis, station_kpis

__all__ = ["DYNAMIC_JOB_SHOP", "REWARDS", "DispatchEnv", "DynamicJobShopEnv", "Observer", "PolicyDecider",
           "all_orders_done", "run_to_end", "time_scale"]

DYNAMIC_JOB_SHOP = Path(__file__).resolve().parents[1] / "scenarios" / "dynamic_job_shop.yaml"
"""The scenario of :class:`DynamicJobShopEnv`."""

# ----------------------------------------------------------------------------------------- rewards
def _tardiness_so_far(line: Line) -> float:
    """Minutes of tardiness so far: of the finished orders, plus now - due of every open order past due."""
    now = line.env.now
    open_orders = {p.order for p in line.in_line.values()}
    open_orders.update(p.order for p in line.backlog)
    open_orders.update(p.order for p in line.held)
    return line.tardiness_sum + sum(max(0.0, now - order.due) for order in open_orders)


def _unit_minutes_so_far(line: Line) -> float:
    """Unit-minutes spent in the line by released end units so far (the integral of WIP)."""
    return line.wip_area + line.wip * (line.env.now - line.wip_since)


def _energy_cost_so_far(line: Line) -> float:
    """Electricity cost of all stations so far (CNY) at the energy lever's tariff."""
    now = line.env.now
    for st in line.stations.values():
        for server in st.servers:
            if server.since != now:
                server._accrue(now)  # bring the state clocks up to now (accrual is additive)
    return sum(station_kpis(st, 1.0)[0]["energy_cost"] for st in line.stations.values())


@dataclass(frozen=True)
class RewardKind:
    """A reward: ``sign`` x (the increase of ``measure`` since the last step), divided by ``time_scale``
    when ``per_time_scale``. The meaning of each is in :class:`DispatchEnv`'s docstring."""

    measure: Callable[[Line], float]
    sign: float
    per_time_scale: bool


REWARDS: dict[str, RewardKind] = {
    "tardiness": RewardKind(_tardiness_so_far, -1.0, True),
    "throughput": RewardKind(lambda line: float(line.good), 1.0, False),
    "lead_time": RewardKind(_unit_minutes_so_far, -1.0, True),
    "makespan": RewardKind(lambda line: line.env.now, -1.0, True),
    "energy_cost": RewardKind(_energy_cost_so_far, -1.0, False),
}
"""The rewards a :class:`DispatchEnv` can give, by name."""


# ----------------------------------------------------------------------------------------- observations
def time_scale(line: Line) -> float:
    """Mean planned operation time of all products' routings (minutes), or 1 if that is 0."""
    planned = [op.planned for product in line.products.values() for op in product.ops]
    return sum(planned) / len(planned) or 1.0


def _expected_setups(cfg: Optional[SetupConfig], factor: float, families: set[str]
                     ) -> Optional[dict[tuple[Optional[str], str], float]]:
    """Mean setup minutes from the family a server is set up for (None: none yet) to each family, by the
    rules of ``Station.setup_time``; None for a station without setups."""
    if cfg is None:
        return None
    table: dict[tuple[Optional[str], str], float] = {}
    for previous in [None, *families]:
        for family in families:
            if family == previous or (previous is None and not cfg.first):
                continue
            row = cfg.matrix.get(previous or "", {})
            dist = row.get(family, cfg.default)
            if dist is not None:
                table[(previous, family)] = dist.mean * factor
    return table


class Observer:
    """Builds the ``envs.spaces`` observation of the decisions of one line (see the module docstring)."""

    def __init__(self, line: Line, max_candidates: int):
        self.line = line
        self.max_candidates = max_candidates
        self.time_scale = time_scale(line)
        self.stations: list[Station] = list(line.stations.values())
        self.machines = sum(len(st.servers) for st in self.stations)
        families = {product.family for product in line.products.values()}
        self.setups = {st.name: _expected_setups(line.scenario.station(st.name).setup, st.setup_factor, families)
                       for st in self.stations}

    def observe(self, decision: Optional[Decision]) -> dict[str, np.ndarray]:
        """The observation of ``decision``; with None (no decision pending), no candidate rows."""
        line = self.line
        scale = self.time_scale
        n_rows = self.max_candidates
        queued = {st: sum([p.product.ops[p.op].planned for p in st.queue]) for st in self.stations}
        candidates = np.zeros((n_rows, N_CANDIDATE_FEATURES), dtype=np.float32)
        mask = np.zeros(n_rows, dtype=np.int8)
        legal = 0
        if decision is not None:
            now = decision.time
            setups = self.setups[decision.station.name] or {}
            n_stations = len(self.stations)
            rows = []
            for part in decision.candidates[:n_rows]:
                product = part.product
                ops = product.ops
                k = part.op
                remaining = product.remaining[k]
                due = part.order.due
                has_due = math.isfinite(due)
                slack = (due - now - remaining) / scale if has_due else 0.0
                after = queued[ops[k + 1].station] if k + 1 < len(ops) else 0.0
                rows.append((ops[k].planned / scale, remaining / scale, (len(ops) - k) / n_stations, slack,
                             float(has_due), setups.get((decision.family, product.family), 0.0) / scale,
                             after / scale, (now - part.queued) / scale))
            legal = len(rows)
            candidates[:legal] = rows
            mask[:legal] = 1
        now = line.env.now
        elapsed = now - line.warmup if now >= line.warmup else now  # the statistics restart after a warm-up
        done = sum(st.planned_work for st in self.stations)
        left = sum([p.product.remaining[p.op] for p in line.in_line.values() if p.op < len(p.product.remaining)])
        left += sum(p.product.remaining[0] for waiting in (line.backlog, line.held) for p in waiting
                    if p.product.remaining)
        features = np.array([done / (done + left) if done + left > 0 else 0.0,
                             legal / n_rows,
                             min(done / (self.machines * elapsed), 1.0) if elapsed > 0 else 0.0,
                             sum(queued.values()) / (scale * self.machines)], dtype=np.float32)
        return {"candidates": candidates, "mask": mask, "line": features}


def _candidate_row(action: Any, legal: int, chooser: str = "action") -> int:
    """The candidate row ``action`` names (an integer, or an integer array of one element), or ValueError
    naming the ``chooser``, the action and the legal rows."""
    row = np.asarray(action)
    if row.size != 1 or not np.issubdtype(row.dtype, np.integer) or not 0 <= int(row.reshape(-1)[0]) < legal:
        shown = action.tolist() if isinstance(action, (np.ndarray, np.generic)) else action
        raise ValueError(f"{chooser} {shown!r} is not a legal candidate row; legal rows now: 0..{legal - 1} "
                         "(the rows whose mask is 1, see action_masks())")
    return int(row.reshape(-1)[0])


# ----------------------------------------------------------------------------------------- in-process
def all_orders_done(line: Line) -> bool:
    """True when no order is left: none in the line, waiting for release or still to arrive."""
    return not line.in_line and not line.source.is_alive and not line.backlog and not line.held


def run_to_end(line: Line, horizon: float) -> Line:
    """Run ``line`` (built with an in-process decider) until all its orders are done or ``horizon``
    (minutes); returns it, its statistics open (as a :class:`DispatchEnv` before ``_end``)."""
    env = line.env
    while env.peek() < horizon and not all_orders_done(line):
        env.step()
    return line


class PolicyDecider:
    """Makes the decisions of ``simulate()`` / ``Line`` in-process: each is answered by
    ``policy.predict(observation, deterministic=True)`` on the observation a :class:`DispatchEnv` with the
    same ``max_candidates`` would show. Pass it as ``simulate(scenario, r, decider=PolicyDecider(policy))``;
    one decider may serve many replications. A policy choosing a row whose mask is 0 raises ValueError."""

    def __init__(self, policy: Policy, max_candidates: int = 32):
        _check_max_candidates(max_candidates)
        self.policy = policy
        self.max_candidates = int(max_candidates)
        self._observer: Optional[Observer] = None

    def __call__(self, decision: Decision) -> int:
        line = decision.station.line
        if self._observer is None or self._observer.line is not line:
            self._observer = Observer(line, self.max_candidates)
        observation = self._observer.observe(decision)
        action, _ = self.policy.predict(observation, deterministic=True)
        return _candidate_row(action, int(observation["mask"].sum()),
                              f"the action of policy {getattr(self.policy, 'name', self.policy)!r},")

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (to run replications in other processes): the observer of a line is rebuilt there."""
        return {**self.__dict__, "_observer": None}


@functools.lru_cache(maxsize=4)
def learned_decider(model: Optional[str] = None) -> PolicyDecider:
    """The in-process decider of the ``learned_dispatch`` scheduling lever, loaded once per process: the
    shipped model named ``model`` (a key of ``policies.learned.SHIPPED_MODELS``), else the model file
    ``model``; None: the generic line model shipped with YueTwin, trained on due dates."""
    from policies.learned import SHIPPED_MODELS, LearnedPolicy

    if model is None or model in SHIPPED_MODELS:
        return PolicyDecider(LearnedPolicy.load(kind=model or "line"))
    return PolicyDecider(LearnedPolicy.load(model))


def _check_max_candidates(max_candidates: Any) -> None:
    if not isinstance(max_candidates, (int, np.integer)) or isinstance(max_candidates, bool) or max_candidates < 2:
        raise ValueError(f"max_candidates={max_candidates!r} must be an integer >= 2 (a decision is due when at "
                         "least two parts could start)")


# ----------------------------------------------------------------------------------------- the environment
class DispatchEnv(gym.Env):
    """Dispatching decisions on a scenario's line (see the module docstring for what a decision is and what
    the observation holds).

    An episode starts from the empty line at time 0 and runs ``horizon`` minutes; the scenario's warm-up
    is not used, so every minute of the episode is rewarded (the first step's reward includes what
    accrued before the first decision) and counted in the final KPIs. ``reset``
    builds the line through the engine (``twin.engine.Line``) with the episode's seed as root seed (its
    named random streams: ``SeedSequence(seed, spawn_key=...)``, replication 0) and runs it to the first
    decision; ``reset(seed=s)`` simulates exactly what ``simulate(env.scenario, 0, seed=s)`` would with
    the same decisions, and ``reset()`` without a seed draws the root seed from ``self.np_random``.
    ``step(action)`` starts candidate ``action`` and runs to the next decision. The episode is
    ``terminated`` when all orders are done (finite demand: a schedule, a CSV, Poisson arrivals with
    ``until``) and ``truncated`` at the horizon.

    Args:
        scenario: a scenario file (loaded with ``twin.config.load_scenario``; problems raise its
            ``ScenarioError``) or a ``Scenario``.
        overrides: ``PATH=VALUE`` changes, as the CLI's ``--set`` (only with a file).
        max_candidates: observation rows and actions (default 32, at least 2).
        reward: one of :data:`REWARDS`:

            * ``"tardiness"`` (default): minus the minutes of tardiness accrued since the last step /
              time_scale; each open order past its due date accrues one minute per minute, so the
              episode's rewards sum to minus its orders' total tardiness / time_scale;
            * ``"throughput"``: + the good end units that left the line since the last step;
            * ``"lead_time"``: minus the unit-minutes spent in the line by released end units since the
              last step / time_scale (the episode sums to minus the total flow time / time_scale);
            * ``"makespan"``: minus the minutes elapsed since the last step / time_scale;
            * ``"energy_cost"``: minus the electricity cost since the last step, CNY (needs the energy
              lever, whose tariff prices the kWh).
        horizon: episode length, minutes (default the scenario's ``run.length``).

    Attributes: ``scenario`` (as simulated: no warm-up, ``run.length`` = horizon), ``horizon``,
    ``time_scale`` (minutes), ``line`` (the running ``twin.engine.Line``, after ``reset``; its root seed is
    ``line.streams.seed``), ``choices`` (the rows chosen so far in the episode).

    ``info`` holds ``time`` (minutes) and, while a decision is pending, its ``station``; at the end of the
    episode, ``kpis``: the line KPIs of ``twin.kpi`` over the episode.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, scenario: Union[str, Path, Scenario], overrides: Optional[list[str]] = None,
                 max_candidates: int = 32, reward: str = "tardiness", horizon: Optional[float] = None,
                 render_mode: Optional[str] = None):
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}: this environment does not render; leave it None")
        if isinstance(scenario, Scenario):
            if overrides:
                raise ValueError("overrides apply to a scenario file: pass its path, or change the Scenario "
                                 "itself (scenario.model_copy(update=...))")
            base = scenario
        elif isinstance(scenario, (str, Path)):
            base = load_scenario(scenario, overrides).scenario
        else:
            raise ValueError(f"scenario={scenario!r} must be a scenario file path or a Scenario")
        _check_max_candidates(max_candidates)
        if reward not in REWARDS:
            raise ValueError(f"reward={reward!r} is not known.{suggest(str(reward), list(REWARDS))} "
                             f"Choose one of {', '.join(REWARDS)}")
        _check_reward_applies(base, reward)
        horizon = base.run.length if horizon is None else horizon
        if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) or not 0 < horizon < math.inf:
            raise ValueError(f"horizon={horizon!r} must be a positive number of minutes (the episode length)")
        self.scenario = base.model_copy(update={"run": base.run.model_copy(
            update={"warmup": 0.0, "length": float(horizon), "replications": 1})})
        self.horizon = float(horizon)
        self.max_candidates = int(max_candidates)
        self.reward_kind = REWARDS[reward]
        self.observation_space = observation_space(self.max_candidates)
        self.action_space = action_space(self.max_candidates)
        self.render_mode = None
        self.line: Optional[Line] = None
        self._observer = Observer(Line(self.scenario, 0, 0), self.max_candidates)
        self.time_scale = self._observer.time_scale
        self._finite_demand = self.scenario.orders.arrivals.type != "backlog"
        self._pending: Optional[Decision] = None
        self.choices: list[int] = []
        """The candidate rows chosen so far in this episode, in order (with the root seed, they replay it)."""
        self._terminated = False
        self._legal = np.zeros(self.max_candidates, dtype=bool)
        self.action_space.legal = self._legal  # shared: sample() draws legal rows
        self._measured = 0.0

    # ------------------------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: Optional[int] = None,
              options: Optional[dict[str, Any]] = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Build a new line and run it to the first decision. Returns (observation, info)."""
        super().reset(seed=seed)
        root = seed if seed is not None else int(self.np_random.integers(2 ** 63))
        self.line = Line(self.scenario, 0, root, decider=self._defer)
        self._observer = Observer(self.line, self.max_candidates)
        self._pending = None
        self.choices = []
        self._measured = 0.0  # every reward's running total is 0 on the empty line at time 0
        info = self._advance()
        return self._observe(), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Start candidate ``action`` (a row whose mask is 1) and run to the next decision. An illegal action
        raises ValueError and changes nothing."""
        decision = self._pending
        if decision is None:
            raise RuntimeError("no decision is pending: call reset() "
                               + ("to start a new episode, this one has ended" if self.line is not None
                                  else "before step()"))
        row = _candidate_row(action, int(self._legal.sum()))
        self._pending = None
        decision.choose(row)
        self.choices.append(row)
        info = self._advance()
        kind = self.reward_kind
        measured = kind.measure(self.line)
        reward = kind.sign * (measured - self._measured) / (self.time_scale if kind.per_time_scale else 1.0)
        self._measured = measured
        truncated = self._pending is None and not self._terminated
        return self._observe(), float(reward), self._terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Bool (max_candidates,): the legal candidate rows (sb3-contrib's MaskablePPO calls this)."""
        return self._legal.copy()

    # ------------------------------------------------------------------------------------ internals
    def _defer(self, decision: Decision) -> None:
        """The line's decider: keep the decision for the agent (the server waits for ``step``). At most one
        comes per simulation step, as every event resumes one process, and ``_advance`` stops after it."""
        self._pending = decision

    def _advance(self) -> dict[str, Any]:
        """Run the line until a decision is pending, all orders are done or the horizon is reached; return
        the step's info (with the KPIs when the episode ended)."""
        line = self.line
        env = line.env
        horizon = self.horizon
        check_done = self._finite_demand
        self._terminated = False
        while self._pending is None:
            if env.peek() >= horizon:
                if env.now < horizon:
                    env.run(until=horizon)
                return self._end(horizon)
            env.step()
            if check_done and all_orders_done(line):
                self._terminated = True
                return self._end(env.now)
        return {"time": env.now, "station": self._pending.station.name}

    def _end(self, end: float) -> dict[str, Any]:
        """Close the episode's statistics at ``end`` (minutes), which is the observation window's length
        (no warm-up); the info with the line KPIs."""
        line = self.line
        line.length = end
        line.finish(end)
        return {"time": end, "kpis": replication_kpis(line, 0).line if end > 0 else {}}

    def _observe(self) -> dict[str, np.ndarray]:
        observation = self._observer.observe(self._pending)
        self._legal[:] = observation["mask"]
        return observation


def _check_reward_applies(scenario: Scenario, reward: str) -> None:
    """ValueError when the scenario cannot give ``reward`` (no due dates, no tariff)."""
    orders = scenario.orders
    if reward == "tardiness" and orders.due_date is None and not (
            orders.arrivals.type == "csv"
            or (orders.arrivals.type == "schedule" and any(o.due is not None for o in orders.arrivals.orders))):
        raise ValueError(f"reward='tardiness' needs due dates, and scenario {scenario.name!r} has none: add "
                         "orders.due_date (e.g. --set 'orders.due_date={factor: 3}') or choose reward='lead_time'")
    if reward == "energy_cost" and scenario.levers.energy is None:
        raise ValueError(f"reward='energy_cost' needs an electricity tariff, and scenario {scenario.name!r} has "
                         "no energy lever: add levers.energy (e.g. --set 'levers.energy={mode: metered}', "
                         "Guangdong time-of-use prices) or choose another reward")


class DynamicJobShopEnv(DispatchEnv):
    """:class:`DispatchEnv` on the dynamic flexible job shop of Liu, Piplani & Toro (2022, IJPR),
    ``scenarios/dynamic_job_shop.yaml``: 3 work centres of 2 identical machines; jobs arrive for 1000
    minutes (Poisson, 90% utilisation), each visiting the work centres in a random order; due date =
    arrival + ``tightness`` x the job's total processing time. An episode ends (``terminated``) when the
    last job is done; the reward defaults to tardiness, whose episode sum is minus the cumulative
    tardiness / time_scale. Other arguments as :class:`DispatchEnv`; ``overrides`` apply after the
    tightness."""

    def __init__(self, tightness: float = 2.0, overrides: Optional[list[str]] = None, max_candidates: int = 32,
                 reward: str = "tardiness", horizon: Optional[float] = None, render_mode: Optional[str] = None):
        if isinstance(tightness, bool) or not isinstance(tightness, numbers.Real) or not 0 < tightness < math.inf:
            raise ValueError(f"tightness={tightness!r} must be a positive number (due = arrival + tightness x "
                             "processing time; the paper uses 2 and 3)")
        super().__init__(DYNAMIC_JOB_SHOP, [f"orders.due_date.factor={tightness}", *(overrides or [])],
                         max_candidates, reward, horizon, render_mode)
        self.tightness = float(tightness)
