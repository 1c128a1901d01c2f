"""Results store: every run and comparison kept in an embedded DuckDB file, event logs as Parquet beside it.

Tables (KPI tables are long: one row per value; ``ord`` keeps the order the values had in the
:class:`~twin.kpi.ReplicationKpis` dicts, so stations and KPIs come back in model order; NaN is NULL):

``schema_version(version)``
    One row, the layout version of the file.
``runs(run_id, kind, scenario, scenario_sha256, scenario_text, seed, version, levels, levers,
replications_planned, status, started_at, finished_at)``
    One row per run. ``run_id`` counts 1, 2, 3 ... in the file; ``levels`` (JSON list of names) are the
    compared lever levels (one level for a plain run); ``levers`` is JSON; ``replications_planned`` is per
    level; ``status`` is ``running``, ``finished``, ``interrupted`` or ``failed`` (a run still ``running``
    whose process is gone was killed); times are UTC.
``replications(run_id, level, replication, bottleneck, recorded_at)``
    One row per replication stored whole. Written last in the replication's transaction.
``line_kpis(run_id, level, replication, ord, kpi, value)``
``station_kpis(run_id, level, replication, ord, station, kpi, value)``
``state_fractions(run_id, level, replication, ord, station, state, value)``
    Share of the window each station spent per state (busy, setup, idle, ...): its own table, not mixed
    into the station KPIs.
``worker_utilization(run_id, level, replication, ord, worker, value)``
``attributions(run_id, data)``
    A comparison's lever attribution (JSON: step ``a->b`` -> the :func:`twin.compare.run_comparison`
    attribution dict), written once the comparison has finished.
``what_ifs(run_id, base_run_id, base_level, overrides)``
    A what-if run (kind ``what-if``): the run and level it changes, and the ``PATH=VALUE`` changes
    (JSON list); it has the base's seed, so its replications pair with the base level's.

``enterprise_records(record_id, enterprise, kind, data, recorded_at)``
    Consultant diagnostics (``twin diagnose``): per enterprise (its profile name), its profiles (YAML text),
    assessments and roadmaps (JSON) and the reports written (JSON: path, language); listed, exported and
    deleted per enterprise.

Event logs live beside the file in ``<store stem>_events/``: ``run-<id>.parquet`` for a run's own log
(``twin run --keep-events``) and ``run-<id>-<level>-rep-<n>.parquet`` for one replication re-simulated
with its log (the dashboard's line page); each is written under a temporary name and renamed.

Every replication is written in one transaction, so it lands whole or not at all; a run killed halfway
keeps its finished replications and the file stays readable. The store opens the DuckDB file only for
the length of each operation (DuckDB lets one process at a time open a file), so ``twin runs list`` works
while a run is writing, and two runs can share a store; a briefly held file is waited for
(``lock_timeout``), a file held longer, e.g. by a DuckDB shell, gives :class:`StoreLockedError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

if TYPE_CHECKING:  # DuckDB, Arrow and SciPy are imported when used, so `twin` starts fast
    import duckdb
    import pyarrow as pa

    from twin.kpi import ReplicationKpis

DEFAULT_STORE = Path("yuetwin.duckdb")
SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "interrupted", "failed")
ENTERPRISE_RECORD_KINDS = ("profile", "assessment", "roadmap", "report")
EXPORT_FORMATS = ("csv", "parquet")
LOCK_TIMEOUT = 10.0
"""Seconds an operation waits, by default, for another process to let go of the store file."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    kind VARCHAR NOT NULL,
    scenario VARCHAR NOT NULL,
    scenario_sha256 VARCHAR NOT NULL,
    scenario_text VARCHAR,
    seed BIGINT NOT NULL,
    version VARCHAR NOT NULL,
    levels VARCHAR NOT NULL,
    levers VARCHAR NOT NULL,
    replications_planned INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS replications (
    run_id INTEGER NOT NULL,
    level VARCHAR NOT NULL,
    replication INTEGER NOT NULL,
    bottleneck VARCHAR,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, level, replication)
);
CREATE TABLE IF NOT EXISTS line_kpis (
    run_id INTEGER NOT NULL, level VARCHAR NOT NULL, replication INTEGER NOT NULL, ord INTEGER NOT NULL,
    kpi VARCHAR NOT NULL, value DOUBLE
);
CREATE TABLE IF NOT EXISTS station_kpis (
    run_id INTEGER NOT NULL, level VARCHAR NOT NULL, replication INTEGER NOT NULL, ord INTEGER NOT NULL,
    station VARCHAR NOT NULL, kpi VARCHAR NOT NULL, value DOUBLE
);
CREATE TABLE IF NOT EXISTS state_fractions (
    run_id INTEGER NOT NULL, level VARCHAR NOT NULL, replication INTEGER NOT NULL, ord INTEGER NOT NULL,
    station VARCHAR NOT NULL, state VARCHAR NOT NULL, value DOUBLE
);
CREATE TABLE IF NOT EXISTS worker_utilization (
    run_id INTEGER NOT NULL, level VARCHAR NOT NULL, replication INTEGER NOT NULL, ord INTEGER NOT NULL,
    worker VARCHAR NOT NULL, value DOUBLE
);
CREATE TABLE IF NOT EXISTS attributions (run_id INTEGER PRIMARY KEY, data VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS what_ifs (
    run_id INTEGER PRIMARY KEY, base_run_id INTEGER NOT NULL, base_level VARCHAR NOT NULL,
    overrides VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS enterprise_records (
    record_id INTEGER PRIMARY KEY, enterprise VARCHAR NOT NULL, kind VARCHAR NOT NULL, data VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
"""

_KEY = [("run_id", "int32"), ("level", "string"), ("replication", "int32"), ("ord", "int32")]
_COLUMNS: dict[str, list[tuple[str, str]]] = {  # column name, Arrow type name
    "line_kpis": _KEY + [("kpi", "string"), ("value", "float64")],
    "station_kpis": _KEY + [("station", "string"), ("kpi", "string"), ("value", "float64")],
    "state_fractions": _KEY + [("station", "string"), ("state", "string"), ("value", "float64")],
    "worker_utilization": _KEY + [("worker", "string"), ("value", "float64")],
}
_RUN_COLUMNS = ("run_id", "kind", "scenario", "scenario_sha256", "seed", "version", "levels", "levers",
                "replications_planned", "status", "started_at", "finished_at")


class StoreError(Exception):
    """The results store cannot do what was asked; the message says why and what to do."""


class StoreLockedError(StoreError):
    """Another process holds the store file open."""


class RunNotFoundError(StoreError):
    """No run with that id in the store."""

    def __init__(self, message: str, run_id: int, nearest: list[int]):
        super().__init__(message)
        self.run_id = run_id
        self.nearest = nearest


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _iso(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.isoformat() + "Z"


def _db_value(value: float) -> Optional[float]:
    """NaN (an undefined KPI) is stored as NULL."""
    value = float(value)
    return None if math.isnan(value) else value


def _py_value(value: Optional[float]) -> float:
    return float("nan") if value is None else float(value)


@contextmanager
def _ctrl_c_after_write() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside until the block has finished, then deliver it to the
    handler there was before (KeyboardInterrupt, as a rule). DuckDB would otherwise abort the statement
    it is running and turn the interrupt into an error ("Query interrupted"): the replication being
    stored would be lost and the run would end with a traceback. Only the main thread receives signals,
    so elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        signal.raise_signal(signal.SIGINT)


class ResultStore:
    """Runs, their per-replication KPIs and event logs, kept in the DuckDB file ``path``.

    ``lock_timeout`` is how long (seconds) an operation waits for another process to let go of the file
    (default :data:`LOCK_TIMEOUT`).
    Use as a context manager or call :meth:`close`; nothing is held open between operations.
    """

    def __init__(self, path: Path = DEFAULT_STORE, lock_timeout: Optional[float] = None):
        self.path = Path(path).expanduser().absolute()
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self._closed = False
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a directory; pass --store with a file name "
                             f"such as {self.path / DEFAULT_STORE.name}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of results store {self.path} ({exc.strerror}); "
                             "pass --store PATH to put it elsewhere") from exc
        with self._transaction() as con:
            con.execute(_SCHEMA)
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
            if row[0] is None:
                con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(f"results store {self.path} was written by a newer YueTwin (layout "
                                 f"{row[0]}, this one reads {SCHEMA_VERSION}); upgrade YueTwin or pass "
                                 "--store PATH to use another file")

    # ------------------------------------------------------------------ connection
    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Mark the store closed (connections are not kept between operations, so nothing else to do)."""
        self._closed = True

    def _connect(self) -> "duckdb.DuckDBPyConnection":
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                msg = str(exc)
                if "Could not set lock" in msg:
                    if time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    holder = re.search(r"held in (.+?) \(PID (\d+)\)", msg)
                    who = f" (PID {holder.group(2)}, {holder.group(1)})" if holder else ""
                    raise StoreLockedError(
                        f"results store {self.path} is locked by another process{who}; close the program "
                        "holding it open (a DuckDB shell, a notebook) or wait for it to finish, or pass "
                        "--store PATH to use another file") from exc
                if "not a valid DuckDB database" in msg:
                    raise StoreError(f"{self.path} exists but is not a YueTwin results store (not a DuckDB "
                                     "file); pass --store PATH to use another file") from exc
                raise StoreError(f"cannot open results store {self.path}: {msg}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"cannot open results store {self.path}: {exc}") from exc

    @contextmanager
    def _session(self) -> Iterator["duckdb.DuckDBPyConnection"]:
        import duckdb

        if self._closed:
            raise StoreError(f"results store {self.path} is closed; open a new ResultStore")
        con = self._connect()
        try:
            yield con
        except duckdb.Error as exc:
            raise StoreError(f"results store {self.path}: {exc}") from exc
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator["duckdb.DuckDBPyConnection"]:
        """All statements inside land together or not at all; a Ctrl-C meanwhile waits for the commit."""
        import duckdb

        with _ctrl_c_after_write(), self._session() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise
            con.execute("COMMIT")

    def _insert(self, con: "duckdb.DuckDBPyConnection", table: str, rows: dict[str, list]) -> None:
        """Append column lists to ``table`` in one statement (through Arrow, not row by row)."""
        import pyarrow as pa

        if not rows["run_id"]:
            return
        cols = _COLUMNS[table]
        data = pa.table({name: pa.array(rows[name], type=getattr(pa, t)()) for name, t in cols})
        con.register("_rows", data)
        try:
            names = ", ".join(name for name, _ in cols)
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _rows")
        finally:
            con.unregister("_rows")

    # ------------------------------------------------------------------ writing
    def add_enterprise_record(self, enterprise: str, kind: str, data: str) -> int:
        """Keep a diagnostics record (``kind``: profile, assessment, roadmap or report; ``data`` text) of
        ``enterprise``; return its id."""
        if kind not in ENTERPRISE_RECORD_KINDS:
            raise ValueError(f"kind '{kind}': use one of {', '.join(ENTERPRISE_RECORD_KINDS)}")
        with self._transaction() as con:
            record_id = con.execute("SELECT coalesce(max(record_id), 0) + 1 FROM enterprise_records").fetchone()[0]
            con.execute("INSERT INTO enterprise_records VALUES (?, ?, ?, ?, ?)",
                        [record_id, enterprise, kind, data, _utcnow()])
        return int(record_id)

    def enterprises(self) -> list[dict[str, Any]]:
        """Each enterprise with diagnostics records: its name, the count per kind and the latest time."""
        with self._session() as con:
            rows = con.execute("SELECT enterprise, kind, count(*), max(recorded_at) FROM enterprise_records "
                               "GROUP BY ALL ORDER BY enterprise, kind").fetchall()
        out: dict[str, dict[str, Any]] = {}
        for enterprise, kind, count, last in rows:
            entry = out.setdefault(enterprise, {"enterprise": enterprise, "last_recorded_at": None,
                                                **{k: 0 for k in ENTERPRISE_RECORD_KINDS}})
            entry[kind] = int(count)
            entry["last_recorded_at"] = max(filter(None, [entry["last_recorded_at"], _iso(last)]))
        return list(out.values())

    def enterprise_records(self, enterprise: str, kind: Optional[str] = None) -> list[dict[str, Any]]:
        """The records of ``enterprise`` (of ``kind`` if given), oldest first. Raises :class:`StoreError`
        naming the closest enterprise when there is none of that name."""
        with self._session() as con:
            rows = con.execute("SELECT record_id, kind, data, recorded_at FROM enterprise_records "
                               "WHERE enterprise = ? AND (? IS NULL OR kind = ?) ORDER BY record_id",
                               [enterprise, kind, kind]).fetchall()
            if not rows:
                names = [r[0] for r in con.execute("SELECT DISTINCT enterprise FROM enterprise_records").fetchall()]
                if enterprise not in names:
                    from twin.config.scenario import suggest

                    raise StoreError(f"no enterprise '{enterprise}' in {self.path}."
                                     + (suggest(enterprise, names) or " The store has none yet."))
        return [{"record_id": int(r[0]), "enterprise": enterprise, "kind": r[1], "data": r[2],
                 "recorded_at": _iso(r[3])} for r in rows]

    def delete_enterprise(self, enterprise: str) -> int:
        """Delete every record of ``enterprise``; return how many (raises :class:`StoreError` if none)."""
        count = len(self.enterprise_records(enterprise))
        with self._transaction() as con:
            con.execute("DELETE FROM enterprise_records WHERE enterprise = ?", [enterprise])
        return count

    def start_run(self, kind: str, scenario_name: str, scenario_sha256: str, scenario_yaml_or_json: str,
                  seed: int, version: str, levels: list[str], levers: dict, replications_planned: int) -> int:
        """Record a new run (status ``running``) and return its id: one more than the highest so far."""
        levels = [str(level) for level in levels]
        if not levels:
            raise ValueError("a run needs at least one level (e.g. ['base'] for a plain run)")
        if len(set(levels)) != len(levels):
            raise ValueError(f"levels must be distinct, got {levels}")
        with self._transaction() as con:
            run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()[0]
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, NULL)",
                [run_id, kind, scenario_name, scenario_sha256, scenario_yaml_or_json, int(seed), version,
                 json.dumps(levels), json.dumps(levers, default=str), int(replications_planned), _utcnow()])
        return int(run_id)

    def add_replication(self, run_id: int, level: str, kpis: "ReplicationKpis") -> None:
        """Store one replication's KPIs in one transaction: it lands whole or not at all."""
        n = kpis.replication
        tables: dict[str, dict[str, list]] = {t: {name: [] for name, _ in cols} for t, cols in _COLUMNS.items()}

        def add(table: str, *values: Any) -> None:
            rows = tables[table]
            names = [name for name, _ in _COLUMNS[table]]
            for name, value in zip(names, (run_id, level, n, len(rows["run_id"])) + values):
                rows[name].append(value)

        for kpi, value in kpis.line.items():
            add("line_kpis", kpi, _db_value(value))
        for station, values in kpis.stations.items():
            for kpi, value in values.items():
                add("station_kpis", station, kpi, _db_value(value))
        for station, values in kpis.state_fractions.items():
            for state, value in values.items():
                add("state_fractions", station, state, _db_value(value))
        for worker, value in kpis.workers.items():
            add("worker_utilization", worker, _db_value(value))

        with self._transaction() as con:
            meta = self._run_row(con, run_id)
            if level not in meta["levels"]:
                raise StoreError(f"run {run_id} has no level '{level}'; its levels are "
                                 f"{', '.join(meta['levels'])}")
            if meta["status"] != "running":
                raise StoreError(f"run {run_id} is {meta['status']}; start a new run to add replications")
            if con.execute("SELECT 1 FROM replications WHERE run_id = ? AND level = ? AND replication = ?",
                           [run_id, level, n]).fetchone():
                raise StoreError(f"run {run_id} already has replication {n} of level '{level}'")
            for table, rows in tables.items():
                self._insert(con, table, rows)
            con.execute("INSERT INTO replications VALUES (?, ?, ?, ?, ?)",
                        [run_id, level, n, kpis.bottleneck, _utcnow()])

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        """Mark the run ``finished``, ``interrupted`` (stopped early, finished replications kept) or ``failed``."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status '{status}': use one of {', '.join(STATUSES[1:])}")
        with self._transaction() as con:
            self._run_row(con, run_id)
            con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                        [status, _utcnow(), run_id])

    def save_attribution(self, run_id: int, attribution: dict[str, Any]) -> None:
        """Keep a comparison's lever attribution (step ``a->b`` -> attribution dict), replacing any earlier."""
        with self._transaction() as con:
            self._run_row(con, run_id)
            con.execute("DELETE FROM attributions WHERE run_id = ?", [run_id])
            con.execute("INSERT INTO attributions VALUES (?, ?)", [run_id, json.dumps(attribution)])

    def save_what_if(self, run_id: int, base_run_id: int, base_level: str, overrides: list[str]) -> None:
        """Record that run ``run_id`` is ``base_level`` of run ``base_run_id`` with ``overrides`` applied."""
        with self._transaction() as con:
            self._run_row(con, run_id)
            base = self._run_row(con, base_run_id)
            if base_level not in base["levels"]:
                raise StoreError(f"run {base_run_id} has no level '{base_level}'; its levels are "
                                 f"{', '.join(base['levels'])}")
            con.execute("INSERT INTO what_ifs VALUES (?, ?, ?, ?)",
                        [run_id, base_run_id, base_level, json.dumps(list(overrides))])

    def events_path(self, run_id: int) -> Path:
        """Where the run's event log goes: ``<store stem>_events/run-<id>.parquet`` beside the store."""
        return self.path.parent / f"{self.path.stem}_events" / f"run-{run_id}.parquet"

    def replication_events_path(self, run_id: int, level: str, replication: int) -> Path:
        """Where the event log of one re-simulated replication goes, beside :meth:`events_path`'s logs
        (characters of ``level`` other than letters, digits, ``.``, ``-`` and ``_`` become ``_``)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", level)
        return self.events_path(run_id).with_name(f"run-{run_id}-{safe}-rep-{int(replication)}.parquet")

    # ------------------------------------------------------------------ reading
    def _run_row(self, con: "duckdb.DuckDBPyConnection", run_id: int) -> dict[str, Any]:
        row = con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            ids = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
            nearest = sorted(sorted(ids, key=lambda i: (abs(i - run_id), i))[:5])
            where = f"results store {self.path}"
            if not ids:
                msg = f"no run {run_id} in {where}: it has no runs yet"
            else:
                msg = (f"no run {run_id} in {where}; nearest ids: {', '.join(map(str, nearest))} "
                       "(see `twin runs list`)")
            raise RunNotFoundError(msg, run_id, nearest)
        return self._run_dict(row)

    @staticmethod
    def _run_dict(row: tuple) -> dict[str, Any]:
        out = dict(zip(_RUN_COLUMNS, row))
        out["levels"] = json.loads(out["levels"])
        out["levers"] = json.loads(out["levers"])
        out["started_at"] = _iso(out["started_at"])
        out["finished_at"] = _iso(out["finished_at"])
        return out

    def list_runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first, each with ``replications_done`` (over all levels)."""
        with self._session() as con:
            rows = con.execute(
                f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)}, count(p.replication) "
                "FROM runs r LEFT JOIN replications p USING (run_id) "
                f"GROUP BY ALL ORDER BY r.run_id").fetchall()
        out = []
        for row in rows:
            run = self._run_dict(row[:-1])
            run["replications_done"] = int(row[-1])
            out.append(run)
        return out

    def run(self, run_id: int, summary: bool = True) -> dict[str, Any]:
        """Metadata (with the scenario text and event log path) and, per level, the KPI means with 95%
        confidence intervals (:func:`twin.kpi.estimate` dicts) and the bottleneck counts. With
        ``summary=False`` the replications are only counted (``replications_done``), not read."""
        with self._session() as con:
            meta = self._run_row(con, run_id)
            meta["scenario_text"] = con.execute("SELECT scenario_text FROM runs WHERE run_id = ?",
                                                [run_id]).fetchone()[0]
            if summary:
                reps = self._replications(con, run_id, None)
                done = sum(len(r) for r in reps.values())
            else:
                done = con.execute("SELECT count(*) FROM replications WHERE run_id = ?", [run_id]).fetchone()[0]
        events = self.events_path(run_id)
        meta["events"] = str(events) if events.exists() else None
        meta["replications_done"] = int(done)
        if summary:
            meta["summary"] = {level: summarise(reps.get(level, [])) for level in meta["levels"]}
        return meta

    def attribution(self, run_id: int) -> dict[str, Any]:
        """The comparison's lever attribution kept by :meth:`save_attribution` ({} when none was kept)."""
        with self._session() as con:
            self._run_row(con, run_id)
            row = con.execute("SELECT data FROM attributions WHERE run_id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row else {}

    def what_if(self, run_id: int) -> Optional[dict[str, Any]]:
        """``{"run_id", "base_run_id", "base_level", "overrides"}`` of a what-if run, None for other runs."""
        found = self._what_ifs("run_id = ?", run_id)
        return found[0] if found else None

    def what_ifs(self, base_run_id: int) -> list[dict[str, Any]]:
        """The what-if runs made from run ``base_run_id``, oldest first (as :meth:`what_if`)."""
        return self._what_ifs("base_run_id = ?", base_run_id)

    def _what_ifs(self, where: str, run_id: int) -> list[dict[str, Any]]:
        with self._session() as con:
            rows = con.execute(f"SELECT run_id, base_run_id, base_level, overrides FROM what_ifs WHERE {where} "
                               "ORDER BY run_id", [run_id]).fetchall()
        return [{"run_id": r, "base_run_id": b, "base_level": lvl, "overrides": json.loads(o)}
                for r, b, lvl, o in rows]

    def replications(self, run_id: int, level: Optional[str] = None) -> list["ReplicationKpis"]:
        """The stored replications of a run (of one level, or of all levels in level order)."""
        with self._session() as con:
            meta = self._run_row(con, run_id)
            if level is not None and level not in meta["levels"]:
                raise StoreError(f"run {run_id} has no level '{level}'; its levels are "
                                 f"{', '.join(meta['levels'])}")
            reps = self._replications(con, run_id, level)
        return [k for lvl in meta["levels"] for k in reps.get(lvl, [])]

    def replications_by_level(self, run_id: int) -> dict[str, list["ReplicationKpis"]]:
        """The stored replications of a run per level, in level order (a level without any: [])."""
        with self._session() as con:
            levels = self._run_row(con, run_id)["levels"]
            reps = self._replications(con, run_id, None)
        return {level: reps.get(level, []) for level in levels}

    def _replications(self, con: "duckdb.DuckDBPyConnection", run_id: int,
                      level: Optional[str]) -> dict[str, list["ReplicationKpis"]]:
        from twin.kpi import ReplicationKpis

        where = "run_id = ?" + (" AND level = ?" if level is not None else "")
        args: list[Any] = [run_id] + ([level] if level is not None else [])
        found: dict[tuple[str, int], ReplicationKpis] = {}
        by_level: dict[str, list[ReplicationKpis]] = {}
        for lvl, n, bottleneck in con.execute(
                f"SELECT level, replication, bottleneck FROM replications WHERE {where} "
                "ORDER BY replication", args).fetchall():
            k = ReplicationKpis(n, {}, {}, {}, bottleneck, {})
            found[(lvl, n)] = k
            by_level.setdefault(lvl, []).append(k)
        # A replication row is written last in its transaction, so KPI rows without one cannot exist;
        # the lookup below still only fills replications that are recorded.
        order = "ORDER BY level, replication, ord"
        for lvl, n, kpi, value in con.execute(
                f"SELECT level, replication, kpi, value FROM line_kpis WHERE {where} {order}", args).fetchall():
            if (lvl, n) in found:
                found[(lvl, n)].line[kpi] = _py_value(value)
        for table, attr in (("station_kpis", "stations"), ("state_fractions", "state_fractions")):
            name = "kpi" if table == "station_kpis" else "state"
            for lvl, n, station, key, value in con.execute(
                    f"SELECT level, replication, station, {name}, value FROM {table} WHERE {where} {order}",
                    args).fetchall():
                if (lvl, n) in found:
                    getattr(found[(lvl, n)], attr).setdefault(station, {})[key] = _py_value(value)
        for lvl, n, worker, value in con.execute(
                f"SELECT level, replication, worker, value FROM worker_utilization WHERE {where} {order}",
                args).fetchall():
            if (lvl, n) in found:
                found[(lvl, n)].workers[worker] = _py_value(value)
        return by_level

    # ------------------------------------------------------------------ export
    def export(self, run_id: int, fmt: str, out: Path) -> list[Path]:
        """Write the run's KPIs per replication as four wide tables in folder ``out``:
        ``run-<id>-line`` (level, replication, bottleneck, one column per line KPI),
        ``run-<id>-stations`` (level, replication, station, one column per station KPI),
        ``run-<id>-states`` (level, replication, station, one column per state fraction) and
        ``run-<id>-workers`` (level, replication, worker, utilization). Undefined values are empty/null.
        Each file is written to a temporary name and renamed, so no half-written file is left."""
        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"export format '{fmt}': use csv or parquet")
        with self._session() as con:
            levels = self._run_row(con, run_id)["levels"]
            by_level = self._replications(con, run_id, None)
        labelled = [(lvl, k) for lvl in levels for k in by_level.get(lvl, [])]
        reps = [k for _, k in labelled]

        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        def table(rows: list[dict[str, Any]], keys: list[str], values: list[str]) -> "pa.Table":
            cols: dict[str, pa.Array] = {}
            for key in keys:
                t = pa.int32() if key == "replication" else pa.string()
                cols[key] = pa.array([r[key] for r in rows], type=t)
            for v in values:
                cols[v] = pa.array([_db_value(r.get(v, math.nan)) for r in rows], type=pa.float64())
            return pa.table(cols)

        def names(dicts: list[dict[str, float]]) -> list[str]:
            return list(dict.fromkeys(k for d in dicts for k in d))

        line_rows, station_rows, state_rows, worker_rows = [], [], [], []
        for lvl, k in labelled:
            base = {"level": lvl, "replication": k.replication}
            line_rows.append({**base, "bottleneck": k.bottleneck, **k.line})
            station_rows += [{**base, "station": s, **v} for s, v in k.stations.items()]
            state_rows += [{**base, "station": s, **v} for s, v in k.state_fractions.items()]
            worker_rows += [{**base, "worker": w, "utilization": v} for w, v in k.workers.items()]
        tables = {
            "line": table(line_rows, ["level", "replication", "bottleneck"], names([k.line for k in reps])),
            "stations": table(station_rows, ["level", "replication", "station"],
                              names([v for k in reps for v in k.stations.values()])),
            "states": table(state_rows, ["level", "replication", "station"],
                            names([v for k in reps for v in k.state_fractions.values()])),
            "workers": table(worker_rows, ["level", "replication", "worker"], ["utilization"]),
        }
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create export folder {out} ({exc.strerror}); pass --out DIR") from exc
        written = []
        for name, data in tables.items():
            path = out / f"run-{run_id}-{name}.{fmt}"
            try:
                fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{path.name}.", suffix=".tmp")
                os.close(fd)
                try:
                    if fmt == "csv":
                        pacsv.write_csv(data, tmp)
                    else:
                        pq.write_table(data, tmp)
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            except OSError as exc:
                raise StoreError(f"cannot write {path} ({exc.strerror or exc}); pass --out DIR") from exc
            written.append(path)
        return written


def summarise(reps: list["ReplicationKpis"]) -> dict[str, Any]:
    """Means and 95% confidence intervals across replications, the shape of ``twin run --json`` (one level
    of :meth:`ResultStore.run`'s ``summary``)."""
    from twin.kpi import estimate

    def names(dicts: list[dict[str, float]]) -> list[str]:
        return list(dict.fromkeys(k for d in dicts for k in d))

    def per_station(attr: str) -> dict[str, dict[str, dict]]:
        stations = names([getattr(k, attr) for k in reps])
        out = {}
        for st in stations:
            rows = [getattr(k, attr).get(st, {}) for k in reps]
            out[st] = {key: estimate([r.get(key, math.nan) for r in rows]).as_dict() for key in names(rows)}
        return out

    counts = Counter(k.bottleneck for k in reps)
    if counts:
        station, n = counts.most_common(1)[0]
        bottleneck = {"station": station, "share": n / len(reps), "counts": dict(counts)}
    else:
        bottleneck = {"station": None, "share": None, "counts": {}}
    return {
        "replications": len(reps),
        "line": {key: estimate([k.line.get(key, math.nan) for k in reps]).as_dict()
                 for key in names([k.line for k in reps])},
        "bottleneck": bottleneck,
        "stations": per_station("stations"),
        "state_fractions": per_station("state_fractions"),
        "workers": {w: estimate([k.workers.get(w, math.nan) for k in reps]).as_dict()
                    for w in names([k.workers for k in reps])},
    }
