"""All the dashboard's data access, in one place: the results store, event logs (read and aggregated with
DuckDB and NumPy on the server, so only a few hundred points per series ever reach the browser), and the
simulations the dashboard starts (a what-if, one replication re-simulated with its event log), which are
kept in the store like any other run.

Nothing is held between requests: every function opens the store by path, does its work and lets go.
Times are minutes from the start of the simulation (0 = Monday 00:00) unless a name says otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import scipy.stats  # noqa: F401 -- the confidence intervals need it: imported as the server starts, not per page

import twin
from lines.station import IDLE, OFF, PLANNED_DOWN, STATE_NAMES
from twin.calendar import WEEK, WorkCalendar, available_calendar, planned_calendar
from twin.compare import ComparisonResult, level_scenario, load_comparison, record_replication
from twin.config import LoadedScenario, ScenarioError, load_scenario
from twin.config.loader import Problem
from twin.config.scenario import Scenario
from twin.config.tiers import AS_IS
from twin.store import ResultStore, StoreError

log = logging.getLogger(__name__)

WHAT_IF = "what_if"
"""The level name of a what-if's own replications beside its base level's in a paired comparison."""
BASE = "base"
SERIES_BINS = 500
"""At most this many points per time series."""
GANTT_BARS = 3000
"""Above this many state intervals in a Gantt window, each row is shown as the main state per time slot."""
GANTT_SLOTS = 400
"""Time slots per row of an aggregated Gantt chart."""
_BIN_MINUTES = (15, 30, 60, 120, 240, 480, 720, 1440, 2880, 10080)


class DashboardError(Exception):
    """What the dashboard cannot show, said so that a person can act on it."""


class NoStoreError(DashboardError):
    """The results store file does not exist."""


# ------------------------------------------------------------------------------------------ the store
def open_store(path: Path) -> ResultStore:
    """The results store at ``path``; reading never creates one (:class:`NoStoreError` if missing)."""
    if not Path(path).exists():
        raise NoStoreError(f"no results store at {path}")
    return ResultStore(path)


def list_runs(path: Path) -> list[dict[str, Any]]:
    """Every stored run, newest first (see :meth:`twin.store.ResultStore.list_runs`)."""
    with open_store(path) as db:
        return list(reversed(db.list_runs()))


def pick_run(runs: list[dict[str, Any]], requested: Any, prefer_kind: Optional[str] = None) -> int:
    """The run id asked for (e.g. in the URL) if it is one of ``runs``, else the first run of kind
    ``prefer_kind`` (if given and present), else the first run. ``runs`` is not empty."""
    ids = [r["run_id"] for r in runs]
    run_id = parse_int(requested)
    if run_id in ids:
        return run_id
    return next((r["run_id"] for r in runs if r["kind"] == prefer_kind), ids[0])


def run_meta(path: Path, run_id: int) -> dict[str, Any]:
    """A run's metadata and scenario text, without reading its replications."""
    with open_store(path) as db:
        return db.run(run_id, summary=False)


def run_summary(path: Path, run_id: int) -> dict[str, Any]:
    """A run's metadata with, per level, means and 95 % confidence intervals of every KPI."""
    with open_store(path) as db:
        return db.run(run_id)


def comparison(path: Path, run_id: int) -> ComparisonResult:
    """Any stored run as a comparison of its levels (paired deltas, economics, the kept attribution)."""
    with open_store(path) as db:
        return load_comparison(db, run_id)


@dataclass(frozen=True)
class LevelView:
    """One level of a stored run: the run's metadata, its levels that have replications, the level shown,
    its summary (means and 95 % CIs, as in :meth:`twin.store.ResultStore.run`) and replication numbers."""

    meta: dict[str, Any]
    levels: list[str]
    level: str
    summary: dict[str, Any]
    replications: list[int]


def level_view(path: Path, run_id: int, level: Optional[str]) -> LevelView:
    """``level`` of a run (the first level with replications when ``level`` has none), read in one go."""
    from twin.store import summarise

    with open_store(path) as db:
        meta = db.run(run_id, summary=False)
        by_level = db.replications_by_level(run_id)
    levels = [lv for lv in meta["levels"] if by_level[lv]]
    if not levels:
        raise DashboardError(f"run {run_id} has no finished replication yet")
    level = level if level in levels else levels[0]
    reps = by_level[level]
    return LevelView(meta, levels, level, summarise(reps), [k.replication for k in reps])


def kpi_csv_zip(path: Path, run_id: int) -> bytes:
    """A run's KPIs per replication as the CSV files of ``twin runs export`` (line, stations, states,
    workers), in one zip archive."""
    import io
    import zipfile

    with open_store(path) as db, tempfile.TemporaryDirectory(prefix="yuetwin-export-") as folder:
        files = db.export(run_id, "csv", Path(folder))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, file.name)
    return buffer.getvalue()


def attribution(path: Path, run_id: int) -> dict[str, Any]:
    """A comparison's kept lever attribution ({} when none was kept)."""
    with open_store(path) as db:
        return db.attribution(run_id)


def parse_int(value: Any) -> Optional[int]:
    """A run id or replication number from a URL query or an input (None when absent or not a number)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ the line
@dataclass(frozen=True)
class LineGraph:
    """The line as a directed graph. ``nodes``: station names in routing order, then sources and sinks.
    ``edges``: (from, to, kind) with kind one of ``conveyor``, ``agv``, ``cart``, ``direct``, ``rework``,
    ``scrap``."""

    stations: list[str]
    sources: list[str]
    edges: list[tuple[str, str, str]]
    buffers: dict[str, Optional[int]]
    servers: dict[str, int]


ORDERS, FINISHED, SCRAP = "@orders", "@finished", "@scrap"
"""Graph nodes that are not stations: where orders come in, where good units and scrap go."""


def line_graph(scenario: Scenario) -> LineGraph:
    """Stations, their buffers and the links between them, with the transport the engine actually uses
    on each link (built by the engine itself: conveyors, AGVs, or carts under the manual material-flow
    lever, else a direct hand-over), rework loops and scrap."""
    from twin.engine import Line
    from lines.transport import AgvLeg, Conveyor

    line = Line(scenario, 0, scenario.run.seed)  # builds stations and transport; nothing is simulated
    carts = scenario.levers.material_flow is not None and scenario.levers.material_flow.mode == "manual"

    def kind(route: Any) -> str:
        if isinstance(route, Conveyor):
            return "conveyor"
        if isinstance(route, AgvLeg):
            return "cart" if carts else "agv"
        return "direct"

    edges: dict[tuple[str, str], str] = {}
    sources: list[str] = []
    for product in line.products.values():
        ops = product.ops
        if not ops:
            continue
        source = product.source or ORDERS
        if source not in sources:
            sources.append(source)
        first = ops[0].station.name
        edges.setdefault((source, first), kind(line.source_routes.get(product.name)))
        for a, b in zip(ops, ops[1:]):
            edges.setdefault((a.station.name, b.station.name), kind(a.station.routes.get(b.station.name)))
        last = ops[-1].station
        if product.parent is not None:
            target = product.assembly_station.name
            edges.setdefault((last.name, target), kind(last.routes.get(target)))
        else:
            edges.setdefault((last.name, FINISHED), "direct")
        for op in ops:
            if op.rework_index is not None:
                edges[(op.station.name, ops[op.rework_index].station.name)] = "rework"
            if op.scrap > 0:
                edges.setdefault((op.station.name, SCRAP), "scrap")
    stations = [st.name for st in scenario.stations]
    return LineGraph(stations, sources, [(a, b, k) for (a, b), k in edges.items()],
                     {st.name: st.buffer for st in scenario.stations},
                     {st.name: st.servers for st in scenario.stations})


# ------------------------------------------------------------------------------------------ event logs
@dataclass(frozen=True)
class RobotCellPicture:
    """A robot station's cell: its picture (PNG data URI) and cycle time (seconds; None when the cell cannot
    do its tasks, with the reason in ``problem``)."""

    station: str
    image: str
    cycle_time_s: Optional[float]
    problem: Optional[str]


def robot_cells(path: Path, scenario: Scenario) -> list[RobotCellPicture]:
    """The robot cells of ``scenario``'s stations, each drawn by PyBullet once and kept beside the store
    (``STORE_cells/STATION-HASH.png``, the hash of the cell's configuration)."""
    cells = [st for st in scenario.stations if st.robot is not None]
    if not cells:
        return []
    from lines import robot_cell as rc  # PyBullet only for lines with robot cells

    folder = path.parent / f"{path.stem}_cells"
    pictures = []
    for st in cells:
        key = hashlib.sha256(st.robot.model_dump_json().encode()).hexdigest()[:16]
        png = folder / f"{st.name}-{key}.png"
        if not png.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = png.with_suffix(".tmp.png")
            rc.render(st.robot, tmp)
            os.replace(tmp, png)
        try:
            seconds, problem = rc.cycle_time(st.robot).cycle_time_s, None
        except rc.RobotCellError as exc:
            seconds, problem = None, str(exc)
        image = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        pictures.append(RobotCellPicture(st.name, image, seconds, problem))
    return pictures


def run_events(path: Path, run_id: int, level: str, replication: int,
               meta: Optional[dict[str, Any]] = None) -> Path:
    """The event log holding replication ``replication`` of ``level``: the run's own log (``twin run
    --keep-events``), else one re-simulated and kept beside the store (see :func:`record_replication`).
    ``meta`` (:func:`run_meta`'s) saves reading it again."""
    with open_store(path) as db:
        meta = meta or db.run(run_id, summary=False)
        kept = db.replication_events_path(run_id, level, replication)
    if meta["events"] is not None:
        return Path(meta["events"])
    if kept.exists():
        return kept
    return record_replication(path, run_id, level, replication)


def _query(sql: str, params: list[Any]) -> list[tuple]:
    import duckdb

    con = duckdb.connect()
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _arrays(sql: str, params: list[Any]) -> dict[str, np.ndarray]:
    import duckdb

    con = duckdb.connect()
    try:
        return {k: np.asarray(v) for k, v in con.execute(sql, params).fetchnumpy().items()}
    finally:
        con.close()


def event_rows(events: Path) -> int:
    """Rows in an event log (from the Parquet footer, nothing read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(events).metadata.num_rows


def _step_integral(times: np.ndarray, steps: np.ndarray, start_level: float, at: np.ndarray) -> np.ndarray:
    """Integral from 0 to each of ``at`` of the step function that starts at ``start_level`` and jumps by
    ``steps[i]`` at ``times[i]`` (sorted): unit x minutes."""
    levels = start_level + np.cumsum(steps)
    areas = np.concatenate([[0.0], np.cumsum(np.concatenate([[start_level], levels[:-1]]) * np.diff(
        np.concatenate([[0.0], times])))])
    idx = np.searchsorted(times, at, side="right")  # events at or before each point
    level_at = np.where(idx > 0, levels[np.maximum(idx - 1, 0)], start_level)
    last_time = np.where(idx > 0, times[np.maximum(idx - 1, 0)], 0.0)
    return areas[idx] + level_at * (at - last_time)


def _calendar_windows(cal: WorkCalendar, start: float, end: float) -> np.ndarray:
    """Working windows of ``cal`` intersecting [start, end], as an (n, 2) array clipped to it."""
    if cal.always:
        return np.array([[start, end]])
    first, last = int(start // WEEK), int(end // WEEK)
    out = [(max(a + w * WEEK, start), min(b + w * WEEK, end)) for w in range(first, last + 1)
           for a, b in cal.windows if a + w * WEEK < end and b + w * WEEK > start]
    return np.array(out, dtype=float).reshape(-1, 2)


def _inside(windows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each point lies in one of the sorted, disjoint half-open ``windows``."""
    if not len(windows):
        return np.zeros(points.shape, dtype=bool)
    i = np.searchsorted(windows[:, 0], points, side="right") - 1
    return (i >= 0) & (points < windows[np.maximum(i, 0), 1])


@dataclass(frozen=True)
class StateTrack:
    """One server's states over [start, end] with the calendar applied: off shift outside planned time,
    planned downtime inside it but outside the station's available time, else the logged state.
    Segment ``i`` runs from ``starts[i]`` to ``starts[i + 1]`` (the last to ``end``)."""

    station: str
    server: int
    starts: np.ndarray
    states: np.ndarray
    end: float

    def durations(self) -> np.ndarray:
        return np.diff(np.append(self.starts, self.end))


def state_tracks(events: Path, replication: int, scenario: Scenario, start: float, end: float) -> list[StateTrack]:
    """Every server's :class:`StateTrack` over [start, end] minutes in one replication's event log."""
    args = [list(STATE_NAMES), str(events), replication, end]
    source = ("FROM read_parquet(?, file_row_number = true) WHERE replication = ? AND event = 'state' "
              "AND time < ?")
    groups = _query(f"SELECT DISTINCT station, server {source} ORDER BY station, server", args[1:])
    cols = _arrays(f"SELECT dense_rank() OVER (ORDER BY station, server) - 1 AS track, time, "
                   f"list_position(?::VARCHAR[], state) - 1 AS state {source} "
                   "ORDER BY station, server, time, file_row_number", args)
    track = cols["track"].astype(int)
    bounds = np.searchsorted(track, np.arange(len(groups) + 1))
    found = {g: (bounds[i], bounds[i + 1]) for i, g in enumerate(groups)}
    planned = planned_calendar(scenario.calendar)
    plan_w = _calendar_windows(planned, start, end)
    tracks = []
    for st in scenario.stations:
        avail_w = _calendar_windows(available_calendar(scenario.calendar, st.name), start, end)
        for server in range(st.servers):
            lo, hi = found.get((st.name, server), (0, 0))
            times, logged = cols["time"][lo:hi], cols["state"][lo:hi].astype(int)
            # the state at `start` is the last one logged at or before it (a server starts idle)
            before = np.searchsorted(times, start, side="right")
            first = logged[before - 1] if before > 0 else IDLE
            times, logged = times[before:], logged[before:]
            points = np.unique(np.concatenate([[start], times, plan_w.ravel(), avail_w.ravel()]))
            points = points[(points >= start) & (points < end)]
            idx = np.searchsorted(times, points, side="right") - 1
            state = logged[np.maximum(idx, 0)] if len(logged) else np.full(len(points), first)
            state = np.where(idx >= 0, state, first)
            state = np.where(_inside(avail_w, points), state,
                             np.where(_inside(plan_w, points), PLANNED_DOWN, OFF))
            keep = np.concatenate([[True], state[1:] != state[:-1]])  # merge repeats
            tracks.append(StateTrack(st.name, server, points[keep], state[keep], end))
    return tracks


@dataclass(frozen=True)
class TimeSeries:
    """Series over the observation window in bins of ``bin_minutes``: ``hours`` (bin centres, hours from
    the window's start), ``wip`` (time-average parts), ``throughput`` (good units per hour) and ``power``
    (average kW of all stations)."""

    bin_minutes: int
    hours: np.ndarray
    wip: np.ndarray
    throughput: np.ndarray
    power: np.ndarray


def bin_minutes(length: float, bins: int = SERIES_BINS) -> int:
    """The shortest bin length (minutes) from a list of round ones giving at most ``bins`` bins."""
    return next((b for b in _BIN_MINUTES if length / b <= bins), _BIN_MINUTES[-1])


def time_series(events: Path, replication: int, scenario: Scenario) -> TimeSeries:
    """WIP, throughput and power of one replication over the observation window, aggregated in bins.

    WIP counts released end units not yet out (good or scrapped), as ``wip_mean`` does; throughput counts
    good end units leaving; power sums every server's draw in its state (blocked at idle power; standby,
    planned downtime and off shift at off power; maintenance at down power), as ``energy_kwh`` does."""
    from twin.kpi import _state_power  # the KPIs' own state -> kW mapping, so energy adds up the same

    start, end = scenario.run.warmup, scenario.run.warmup + scenario.run.length
    width = bin_minutes(scenario.run.length)
    edges = np.arange(start, end + width / 2, width, dtype=float)
    edges[-1] = min(edges[-1], end)
    if edges[-1] < end:
        edges = np.append(edges, end)
    components = [c for p in scenario.products for c in p.bom]
    part = _arrays(
        "SELECT time, CASE WHEN event = 'release' THEN 1 ELSE -1 END AS step, event = 'exit' AS good "
        "FROM read_parquet(?, file_row_number = true) WHERE replication = ? AND time <= ? AND "
        "(event IN ('release', 'exit') OR (event = 'scrap' AND NOT list_contains(?::VARCHAR[], product))) "
        "ORDER BY time, file_row_number", [str(events), replication, end, components])
    times = part.get("time", np.array([], float)).astype(float)
    steps = part.get("step", np.array([], float)).astype(float)
    wip_area = _step_integral(times, steps, 0.0, edges)
    good = times[part["good"].astype(bool)] if len(times) else times
    exits, _ = np.histogram(good, bins=edges)
    power_area = np.zeros_like(edges)
    for track in state_tracks(events, replication, scenario, start, end):
        kw = np.asarray(_state_power(scenario.station(track.station).power))[track.states]
        jumps = np.diff(np.concatenate([[0.0], kw]))
        power_area += _step_integral(track.starts, jumps, 0.0, edges)  # zero before the window
    widths = np.diff(edges)
    return TimeSeries(width, (edges[:-1] + widths / 2 - start) / 60.0, np.diff(wip_area) / widths,
                      exits / (widths / 60.0), np.diff(power_area) / widths)


@dataclass(frozen=True)
class Gantt:
    """Bars (station, server, start, end, state) over a window; ``slot_minutes`` is set when each bar is
    the state that took most of a time slot (too many intervals to draw them all), else None."""

    bars: list[tuple[str, int, float, float, str]]
    slot_minutes: Optional[float]


def gantt(events: Path, replication: int, scenario: Scenario, start: float, end: float,
          max_bars: int = GANTT_BARS, slots: int = GANTT_SLOTS) -> Gantt:
    """Station states of one replication in [start, end] minutes: every interval when there are at most
    ``max_bars``; else, per server, the state that took most of each of ``slots`` equal time slots, with
    neighbouring slots of the same state merged."""
    tracks = state_tracks(events, replication, scenario, start, end)
    if sum(len(t.starts) for t in tracks) <= max_bars:
        bars = [(t.station, t.server, float(a), float(b), STATE_NAMES[s])
                for t in tracks for a, b, s in zip(t.starts, np.append(t.starts[1:], end), t.states)]
        return Gantt(bars, None)
    width = (end - start) / slots
    edges = start + width * np.arange(slots + 1)
    bars = []
    for t in tracks:
        share = np.zeros((len(STATE_NAMES), slots))
        for code in np.unique(t.states):
            steps = np.diff(np.concatenate([[0.0], (t.states == code).astype(float)]))
            share[code] = np.diff(_step_integral(t.starts, steps, 0.0, edges))
        main = share.argmax(axis=0)
        change = np.flatnonzero(np.concatenate([[True], main[1:] != main[:-1]]))
        for i, j in zip(change, np.append(change[1:], slots)):
            bars.append((t.station, t.server, float(edges[i]), float(edges[j]), STATE_NAMES[main[i]]))
    return Gantt(bars, width)


@dataclass(frozen=True)
class Flow:
    """Parts moving from ``source`` to ``target`` (station names or :data:`ORDERS`, :data:`FINISHED`,
    :data:`SCRAP`) in the window; ``rework`` for parts sent back."""

    source: str
    target: str
    parts: int
    rework: bool


def material_flow(events: Path, replication: int, scenario: Scenario) -> list[Flow]:
    """Every move of a part in the observation window of one replication, counted per link: into the
    line (release or, for components, their first queue), station to station (a finished part's next
    queue, or the assembly that consumes a component), sent back for rework, scrapped, or out good."""
    start, end = scenario.run.warmup, scenario.run.warmup + scenario.run.length
    rows = _query(
        """
        WITH ev AS (
            SELECT part, event, station, time, file_row_number AS seq
            FROM read_parquet(?, file_row_number = true)
            WHERE replication = ? AND part >= 0 AND event <> 'reject' AND time <= ?
        ), pairs AS (
            SELECT event, station, time,
                   lag(event) OVER w AS prev_event, lag(station) OVER w AS prev_station
            FROM ev WINDOW w AS (PARTITION BY part ORDER BY seq)
        )
        SELECT CASE WHEN prev_event IS NULL OR prev_event = 'release' THEN ? ELSE prev_station END AS source,
               CASE event WHEN 'exit' THEN ? WHEN 'scrap' THEN ? ELSE station END AS target,
               coalesce(prev_event = 'rework', false) AS rework, count(*) AS parts
        FROM pairs
        WHERE time >= ? AND (
            (event IN ('queue', 'consume') AND (prev_event IS NULL OR prev_event IN ('release', 'finish', 'rework')))
            OR (event IN ('exit', 'scrap') AND prev_event = 'finish'))
        GROUP BY ALL ORDER BY parts DESC
        """, [str(events), replication, end, ORDERS, FINISHED, SCRAP, start])
    return [Flow(s, t, int(n), bool(r)) for s, t, r, n in rows]


# ------------------------------------------------------------------------------------------ what-if
@dataclass(frozen=True)
class Parameter:
    """A what-if parameter: its ``--set`` path and its current value written as YAML."""

    path: str
    current: str


def what_if_parameters(scenario: Scenario) -> list[Parameter]:
    """The parameters the what-if panel offers: per station its servers, buffer and dispatching rule; the
    order rate, lot size and WIP cap; the main option of every lever. (Any other path can be typed.)"""
    import yaml

    data = scenario.model_dump(mode="json", by_alias=True)

    def text(value: Any) -> str:
        return "null" if value is None else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix(
            "\n...").strip()

    out = []
    for st in data["stations"]:
        for key in ("servers", "buffer", "dispatch"):
            out.append(Parameter(f"stations.{st['name']}.{key}", text(st[key])))
    arrivals = data["orders"]["arrivals"]
    if arrivals["type"] == "poisson":
        out.append(Parameter("orders.arrivals.mean_interarrival", text(arrivals["mean_interarrival"])))
    out.append(Parameter("orders.lot_size", text(data["orders"]["lot_size"])))
    out.append(Parameter("release.wip_limit", text(data["release"]["wip_limit"])))
    options = {"scheduling": ("method", "rule"), "information": ("latency",), "maintenance": ("policy",),
               "quality": ("inspection",), "changeover": ("mode",), "energy": ("mode",), "material_flow": ("mode",)}
    for lever, keys in options.items():
        values = data["levers"].get(lever) or {}
        for key in keys:
            out.append(Parameter(f"levers.{lever}.{key}", text(values.get(key))))
    return out


def what_if_scenario(meta: dict[str, Any], level: str, overrides: list[str]) -> LoadedScenario:
    """Level ``level`` of a stored run with ``overrides`` (``PATH=VALUE``) applied, validated exactly as a
    scenario file with ``--set`` is. Raises :class:`ScenarioError` naming each bad field, value and fix."""
    from twin.robot_cli import robot_cell_problems

    base = level_scenario(meta, level)
    with tempfile.TemporaryDirectory(prefix="yuetwin-what-if-") as folder:
        file = Path(folder) / f"{base.name}.yaml"
        file.write_text(base.model_dump_json(by_alias=True), encoding="utf-8")  # JSON is YAML
        loaded = load_scenario(file, overrides)
        problems = robot_cell_problems(loaded)
    if problems:
        raise ScenarioError([Problem(str(file), "", None, p) for p in problems])
    return loaded


def problem_lines(exc: ScenarioError) -> list[str]:
    """A scenario error's problems as ``path: message`` (the temporary file name left out)."""
    return [f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems]


def start_what_if(path: Path, base_run_id: int, base_level: str, overrides: list[str], replications: int,
                  workers: int = 1) -> int:
    """Validate a what-if, record it in the store (kind ``what-if``, the base run's seed) and simulate its
    replications 0..``replications``-1 in a process of its own, each stored as it finishes; returns its
    run id at once. Progress is read back from the store (:func:`what_if_view`).

    A process, not a thread: the simulation then never holds this server's interpreter, and its writes
    to the store come from another process, which the store's file locking is made for.

    Raises :class:`ScenarioError` for bad changes and :class:`DashboardError` for a bad replication count."""
    with open_store(path) as db:
        meta = db.run(base_run_id, summary=False)
        if base_level not in meta["levels"]:
            raise DashboardError(f"run {base_run_id} has no level '{base_level}'; its levels are "
                                 f"{', '.join(meta['levels'])}")
        available = len(db.replications(base_run_id, base_level))
        if not 1 <= replications <= available:
            raise DashboardError(f"replications {replications}: give 1 to {available} (the base level has "
                                 f"{available} stored)")
        loaded = what_if_scenario(meta, base_level, overrides)
        scenario = loaded.scenario
        run_id = db.start_run("what-if", scenario.name, loaded.sha256, scenario.model_dump_json(), meta["seed"],
                              twin.__version__, [AS_IS], scenario.levers.model_dump(mode="json"), replications)
        db.save_what_if(run_id, base_run_id, base_level, overrides)
    from twin.executors import _mp_context  # the engine's chosen start method (forkserver, else spawn)

    process = _mp_context().Process(target=_simulate_what_if, name=f"what-if-{run_id}",
                                    args=(path, run_id, scenario, replications, meta["seed"], workers))
    process.start()
    threading.Thread(target=process.join, name=f"reap-what-if-{run_id}", daemon=True).start()
    return run_id


def _simulate_what_if(path: Path, run_id: int, scenario: Scenario, replications: int, seed: int,
                      workers: int) -> None:
    from twin.experiment import run_experiment

    db = ResultStore(path)
    try:
        result = run_experiment(scenario, replications, seed,
                                on_replication=lambda kpis: db.add_replication(run_id, AS_IS, kpis),
                                workers=workers)
        db.finish_run(run_id, "interrupted" if result.interrupted else "finished")
    except Exception:  # the process's end: record the failure, the page shows the status
        log.exception("what-if run %s failed", run_id)
        try:
            db.finish_run(run_id, "failed")
        except StoreError:
            log.exception("could not mark what-if run %s failed", run_id)


def earlier_what_ifs(path: Path, base_run_id: int) -> list[dict[str, Any]]:
    """The what-ifs made from a run, oldest first (run id, base level, changes)."""
    with open_store(path) as db:
        return db.what_ifs(base_run_id)


@dataclass(frozen=True)
class WhatIfView:
    """A what-if run as the panel shows it: its record, link to the base, progress and (once some
    replications are in) the paired comparison with levels :data:`BASE` and :data:`WHAT_IF`."""

    meta: dict[str, Any]
    link: dict[str, Any]
    done: int
    paired: Optional[ComparisonResult]


def what_if_view(path: Path, what_if_id: int) -> WhatIfView:
    """Progress and results of a what-if run, read from the store."""
    with open_store(path) as db:
        link = db.what_if(what_if_id)
        if link is None:
            raise DashboardError(f"run {what_if_id} is not a what-if run")
        meta = db.run(what_if_id, summary=False)
        done = meta["replications_done"]
        if not done:
            return WhatIfView(meta, link, 0, None)
        base_meta = db.run(link["base_run_id"], summary=False)
        new = db.replications(what_if_id, AS_IS)
        numbers = {k.replication for k in new}  # the base's over the same replications, for a fair pairing
        base = [k for k in db.replications(link["base_run_id"], link["base_level"]) if k.replication in numbers]
    scenario = Scenario.model_validate_json(meta["scenario_text"])
    paired = ComparisonResult(scenario, meta["seed"], [BASE, WHAT_IF],
                              {BASE: level_scenario(base_meta, link["base_level"]).levers, WHAT_IF: scenario.levers},
                              {BASE: base, WHAT_IF: new})
    return WhatIfView(meta, link, done, paired)
