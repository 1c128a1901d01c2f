"""The DuckDB results store on a real file: round trips of engine KPIs, summaries, the `twin runs` commands,
exports, a run killed mid-write, unknown ids and a store locked by another process."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

import twin.store
from twin.config.scenario import Scenario
from twin.engine import simulate
from twin.kpi import ReplicationKpis, estimate, replication_kpis
from twin.store import ResultStore, RunNotFoundError, StoreError, StoreLockedError
from twin.store_cli import runs_app

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "store_line",
    "run": {"warmup": 0, "length": 1000, "replications": 3, "seed": 7},
    "products": [{"name": "a", "routing": [{"station": "m1", "time": 1.0}, {"station": "m2", "time": 1.5}]}],
    "stations": [{"name": "m1", "worker": {"skill": "op"}}, {"name": "m2"}],
    "workers": [{"name": "ops", "count": 1, "skills": ["op"]}],
    "orders": {"arrivals": {"type": "poisson", "mean_interarrival": 2.0}, "mix": {"a": 1}},
}
SEED = 7


def kpis(n: int) -> list[ReplicationKpis]:
    scenario = Scenario.model_validate(SPEC)
    return [replication_kpis(simulate(scenario, r, SEED), r) for r in range(n)]


@pytest.fixture(scope="module")
def reps() -> list[ReplicationKpis]:
    return kpis(3)


def start(store: ResultStore, levels=("base",), planned: int = 3, kind: str = "run") -> int:
    return store.start_run(kind, SPEC["name"], "ab" * 32, json.dumps(SPEC), SEED, "0.1.0", list(levels),
                           {"stations.m2.servers": [1, 2]} if len(levels) > 1 else {}, planned)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def assert_same(a: ReplicationKpis, b: ReplicationKpis) -> None:
    assert (a.replication, a.bottleneck) == (b.replication, b.bottleneck)
    for x, y in ((a.line, b.line), (a.workers, b.workers)):
        assert list(x) == list(y)  # same keys in the same order
        assert all(same(x[k], y[k]) for k in x)
    for x, y in ((a.stations, b.stations), (a.state_fractions, b.state_fractions)):
        assert list(x) == list(y)
        for st in x:
            assert list(x[st]) == list(y[st])
            assert all(same(x[st][k], y[st][k]) for k in x[st])


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(runs_app, name="runs")

    @app.callback()
    def main() -> None:
        """Wrapper so that `runs` is a sub-command, as in twin.cli."""

    return app


def invoke(*args: str):
    return CliRunner().invoke(cli(), ["runs", *args])


def raw(path: Path, sql: str, args=()) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(args)).fetchall()
    finally:
        con.close()


# ------------------------------------------------------------------------------------------ round trip
def test_round_trip_of_engine_kpis_with_nan_as_null(tmp_path, reps):
    path = tmp_path / "r.duckdb"
    assert any(math.isnan(v) for v in reps[0].line.values())
    assert any(math.isnan(v) for v in reps[0].stations["m1"].values())
    assert reps[0].workers
    with ResultStore(path) as store:
        run_id = start(store)
        assert run_id == 1
        for k in reps:
            store.add_replication(run_id, "base", k)
        store.finish_run(run_id)
        back = store.replications(run_id)
    assert len(back) == len(reps)
    for a, b in zip(reps, back):
        assert_same(a, b)
    # NaN went in as NULL: no NaN in the file, and NULLs where the KPIs were undefined
    nans = sum(math.isnan(v) for k in reps for v in k.line.values())
    assert raw(path, "SELECT count(*) FROM line_kpis WHERE value IS NULL") == [(nans,)]
    for table in ("line_kpis", "station_kpis", "state_fractions", "worker_utilization"):
        assert raw(path, f"SELECT count(*) FROM {table} WHERE isnan(value)") == [(0,)]
    station_rows = sum(len(v) for k in reps for v in k.stations.values())
    assert raw(path, "SELECT count(*) FROM station_kpis") == [(station_rows,)]
    assert raw(path, "SELECT status, finished_at IS NOT NULL FROM runs") == [("finished", True)]


def test_summary_confidence_intervals_equal_estimate(tmp_path, reps):
    with ResultStore(tmp_path / "s.duckdb") as store:
        run_id = start(store)
        for k in reps:
            store.add_replication(run_id, "base", k)
        run = store.run(run_id)
    summary = run["summary"]["base"]
    assert summary["replications"] == 3
    for key in reps[0].line:
        assert summary["line"][key] == estimate([k.line[key] for k in reps]).as_dict()
    for st in ("m1", "m2"):
        for key in reps[0].stations[st]:
            assert summary["stations"][st][key] == estimate([k.stations[st][key] for k in reps]).as_dict()
        for key in reps[0].state_fractions[st]:
            expected = estimate([k.state_fractions[st][key] for k in reps]).as_dict()
            assert summary["state_fractions"][st][key] == expected
    assert summary["workers"]["ops"] == estimate([k.workers["ops"] for k in reps]).as_dict()
    assert summary["line"]["on_time_rate"] == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    assert summary["bottleneck"]["counts"] == {"m2": 3}
    assert run["status"] == "running" and run["replications_done"] == 3
    assert json.loads(run["scenario_text"]) == SPEC
    json.dumps(run)  # plain JSON types only


def test_levels_ids_and_write_errors(tmp_path, reps, monkeypatch):
    path = tmp_path / "c.duckdb"
    store = ResultStore(path)
    assert start(store) == 1
    run_id = start(store, levels=("one", "two"), kind="compare")
    assert run_id == 2
    for level in ("two", "one"):
        for k in reps[:2]:
            store.add_replication(run_id, level, k)
    assert [k.replication for k in store.replications(run_id, "one")] == [0, 1]
    assert len(store.replications(run_id)) == 4
    with pytest.raises(StoreError, match="already has replication 1 of level 'one'"):
        store.add_replication(run_id, "one", reps[1])
    with pytest.raises(StoreError, match="no level 'three'; its levels are one, two"):
        store.add_replication(run_id, "three", reps[2])
    with pytest.raises(StoreError, match="no level 'three'"):
        store.replications(run_id, "three")

    # a failure halfway through a replication leaves nothing of it
    calls = []
    real = ResultStore._insert

    def failing(self, con, table, rows):
        real(self, con, table, rows)
        calls.append(table)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(ResultStore, "_insert", failing)
    with pytest.raises(RuntimeError):
        store.add_replication(run_id, "one", reps[2])
    monkeypatch.undo()
    assert raw(path, "SELECT count(*) FROM line_kpis WHERE replication = 2") == [(0,)]
    assert raw(path, "SELECT count(*) FROM station_kpis WHERE replication = 2") == [(0,)]

    store.finish_run(run_id, "interrupted")
    with pytest.raises(StoreError, match="run 2 is interrupted; start a new run"):
        store.add_replication(run_id, "one", reps[2])
    with pytest.raises(ValueError, match="status 'done'"):
        store.finish_run(run_id, "done")
    runs = store.list_runs()
    assert [(r["run_id"], r["kind"], r["status"], r["replications_done"]) for r in runs] == [
        (1, "run", "running", 0), (2, "compare", "interrupted", 4)]
    assert runs[1]["levels"] == ["one", "two"] and runs[1]["levers"] == {"stations.m2.servers": [1, 2]}
    assert store.events_path(2) == tmp_path / "c_events" / "run-2.parquet"
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()


def test_unknown_run_id_names_nearest_ids(tmp_path, reps):
    with ResultStore(tmp_path / "u.duckdb") as store:
        with pytest.raises(RunNotFoundError, match="no run 3 in results store .*u.duckdb: it has no runs yet"):
            store.run(3)
        for _ in range(8):
            start(store)
        with pytest.raises(RunNotFoundError) as info:
            store.run(42)
        assert "no run 42" in str(info.value) and "nearest ids: 4, 5, 6, 7, 8" in str(info.value)
        assert info.value.nearest == [4, 5, 6, 7, 8]
        for call in (lambda: store.replications(0), lambda: store.finish_run(0),
                     lambda: store.export(0, "csv", tmp_path), lambda: store.add_replication(0, "base", reps[0])):
            with pytest.raises(RunNotFoundError, match="no run 0 .* nearest ids: 1, 2, 3, 4, 5"):
                call()
    result = invoke("show", "42", "--store", str(tmp_path / "u.duckdb"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no run 42") and "nearest ids: 4, 5, 6, 7, 8" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_not_a_store(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n" * 500)
    with pytest.raises(StoreError, match="not a YueTwin results store .* --store PATH"):
        ResultStore(bad)
    result = invoke("list", "--store", str(bad))
    assert result.exit_code == 2 and "not a YueTwin results store" in result.stderr


# ------------------------------------------------------------------------------------------ CLI and export
@pytest.fixture
def filled(tmp_path, reps) -> Path:
    path = tmp_path / "store" / "results.duckdb"
    with ResultStore(path) as store:
        run_id = start(store)
        for k in reps:
            store.add_replication(run_id, "base", k)
        store.finish_run(run_id)
        compare = start(store, levels=("s1", "s2"), planned=2, kind="compare")
        for level in ("s1", "s2"):
            for k in reps[:2]:
                store.add_replication(compare, level, k)
        store.finish_run(compare, "interrupted")
    return path


def test_cli_list_and_show(filled):
    result = invoke("list", "--store", str(filled))
    assert result.exit_code == 0, result.output
    assert "store_line" in result.stdout and "finished" in result.stdout and "interrupted" in result.stdout
    assert "3/3" in result.stdout and "4/4" in result.stdout

    result = invoke("show", "1", "--store", str(filled))
    assert result.exit_code == 0, result.output
    tput = estimate([k.line["throughput_per_hour"] for k in kpis(3)])
    half = (tput.ci_high - tput.ci_low) / 2
    assert f"{tput.mean:.1f} ± {half:.1f}" in result.stdout
    assert "m2 (100%)" in result.stdout and "ab" * 32 in result.stdout

    result = invoke("show", "2", "--store", str(filled))
    assert result.exit_code == 0, result.output
    assert "s1 (n=2)" in result.stdout and "s2 (n=2)" in result.stdout and "level s2" in result.stdout


def test_cli_errors(tmp_path, filled):
    cases = [
        (("list", "--store", str(tmp_path / "missing.duckdb")), "no results store at"),
        (("show", "abc", "--store", str(filled)), "run id 'abc' is not a number"),
        (("export", "1", "--format", "xlsx", "--store", str(filled)), "--format xlsx: use csv or parquet"),
        (("export", "9", "--format", "csv", "--store", str(filled)), "no run 9"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing.duckdb").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_files_are_readable(tmp_path, filled, reps, fmt):
    out = tmp_path / "out"
    result = invoke("export", "2", "--format", fmt, "--out", str(out), "--store", str(filled))
    assert result.exit_code == 0, result.output
    read = (lambda p: pacsv.read_csv(p)) if fmt == "csv" else pq.read_table
    files = {name: out / f"run-2-{name}.{fmt}" for name in ("line", "stations", "states", "workers")}
    assert all(p.exists() for p in files.values()) and result.stdout.count("wrote ") == 4
    line = read(files["line"])
    assert line.num_rows == 4  # 2 levels x 2 replications
    assert line.column_names[:3] == ["level", "replication", "bottleneck"]
    assert line.column("level").to_pylist() == ["s1", "s1", "s2", "s2"]
    assert line.column("throughput_per_hour").to_pylist() == [k.line["throughput_per_hour"] for k in reps[:2]] * 2
    assert line.column("on_time_rate").null_count == 4  # NaN -> empty / null
    assert read(files["stations"]).num_rows == 4 * 2
    states = read(files["states"])
    assert states.num_rows == 4 * 2 and "busy" in states.column_names
    workers = read(files["workers"])
    assert workers.num_rows == 4 and workers.column("utilization").to_pylist()[0] == reps[0].workers["ops"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


# ------------------------------------------------------------------------------------------ crashes and locks
KILLED = textwrap.dedent("""
    import json, os, signal, sys
    from twin.config.scenario import Scenario
    from twin.engine import simulate
    from twin.kpi import replication_kpis
    from twin.store import ResultStore

    path, n, spec = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    scenario = Scenario.model_validate(spec)
    store = ResultStore(path)
    run_id = store.start_run("run", spec["name"], "ab" * 32, sys.argv[3], 7, "0.1.0", ["base"], {}, n + 2)
    for r in range(n):
        store.add_replication(run_id, "base", replication_kpis(simulate(scenario, r, 7), r))
    real, calls = ResultStore._insert, []

    def dying(self, con, table, rows):
        real(self, con, table, rows)  # line and station KPIs are in, the transaction is open
        calls.append(table)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    ResultStore._insert = dying
    store.add_replication(run_id, "base", replication_kpis(simulate(scenario, n, 7), n))
    print("not killed")
""")


def test_run_killed_mid_replication_keeps_finished_ones(tmp_path):
    path = tmp_path / "killed.duckdb"
    n = 3
    proc = subprocess.run([sys.executable, "-c", KILLED, str(path), str(n), json.dumps(SPEC)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "not killed" not in proc.stdout
    with ResultStore(path) as store:
        [run] = store.list_runs()
        assert (run["run_id"], run["status"], run["replications_done"]) == (1, "running", n)
        back = store.replications(1)
        assert [k.replication for k in back] == list(range(n))
        for a, b in zip(kpis(n), back):
            assert_same(a, b)
        assert store.run(1)["summary"]["base"]["replications"] == n
        # nothing of the half-written replication, and the store takes new runs
        for table in ("line_kpis", "station_kpis", "state_fractions", "worker_utilization"):
            assert raw(path, f"SELECT count(*) FROM {table} WHERE replication = {n}") == [(0,)]
        assert start(store) == 2
    result = invoke("show", "1", "--store", str(path))
    assert result.exit_code == 0 and "running" in result.stdout


def test_ctrl_c_while_storing_a_replication_waits_for_the_commit(tmp_path, reps, ctrl_c_raises):
    """A Ctrl-C that lands while a replication is written raises KeyboardInterrupt once it is stored,
    not DuckDB's "Query interrupted" halfway through the write."""
    with ResultStore(tmp_path / "c.duckdb") as store:
        run_id = start(store)
        store.add_replication(run_id, "base", reps[0])
        insert = store._insert

        def interrupted_insert(con, table, rows):
            signal.raise_signal(signal.SIGINT)  # what a terminal Ctrl-C delivers, in the middle of the write
            insert(con, table, rows)

        store._insert = interrupted_insert
        try:
            with pytest.raises(KeyboardInterrupt):
                store.add_replication(run_id, "base", reps[1])
        finally:
            del store._insert
        assert [k.replication for k in store.replications(run_id)] == [0, 1]
        assert_same(reps[1], store.replications(run_id)[1])


HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); sys.stdin.read()"


def test_locked_store_is_named_with_the_fix(tmp_path, monkeypatch):
    path = tmp_path / "locked.duckdb"
    ResultStore(path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreLockedError) as info:
            ResultStore(path, lock_timeout=0.2)
        message = str(info.value)
        assert str(path) in message and f"PID {holder.pid}" in message
        assert "--store PATH" in message and "close the program" in message
        monkeypatch.setattr(twin.store, "LOCK_TIMEOUT", 0.2)
        result = invoke("list", "--store", str(path))
        assert result.exit_code == 2
        assert result.stderr.startswith("error: results store") and "locked by another process" in result.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_briefly_held_store_is_waited_for(tmp_path):
    path = tmp_path / "busy.duckdb"
    ResultStore(path).close()
    brief = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); "
             "time.sleep(0.5); c.close(); time.sleep(5)")
    holder = subprocess.Popen([sys.executable, "-c", brief, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with ResultStore(path, lock_timeout=20) as store:
            assert start(store) == 1
    finally:
        holder.kill()
        holder.wait(timeout=30)


WRITER = textwrap.dedent("""
    import json, sys
    from twin.config.scenario import Scenario
    from twin.engine import simulate
    from twin.kpi import replication_kpis
    from twin.store import ResultStore

    spec = json.loads(sys.argv[2])
    k = replication_kpis(simulate(Scenario.model_validate(spec), 0, 7), 0)
    store = ResultStore(sys.argv[1])
    run_id = store.start_run("run", spec["name"], "ab" * 32, sys.argv[2], 7, "0.1.0", ["base"], {}, 5)
    for r in range(5):
        k.replication = r
        store.add_replication(run_id, "base", k)
    store.finish_run(run_id)
""")


def test_concurrent_writers_share_a_store(tmp_path):
    """The file is opened per operation, so runs in two processes take turns instead of failing."""
    path = tmp_path / "shared.duckdb"
    ResultStore(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), json.dumps(SPEC)], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in writers:
        _, stderr = w.communicate(timeout=120)
        assert w.returncode == 0, stderr
    with ResultStore(path) as store:
        runs = store.list_runs()
    done = [(r["run_id"], r["status"], r["replications_done"]) for r in runs]
    assert done == [(1, "finished", 5), (2, "finished", 5)]
