"""The dashboard on a real results store holding a real (short) comparison of the SMT example line.

Data layer: event-log aggregates (WIP, throughput, power, states, material flow) must add up to the KPIs
the engine stored for the same replication; a Gantt aggregation against hand-computed states; a what-if
that changes nothing pairs to a zero difference (common random numbers); bad what-if input names the field,
the value and the fix. Serving: the CLI refuses a public address without --auth, basic auth guards every
request, downloads hold the store's numbers. In headless Chromium (selenium with Debian's chromium-driver):
every page loads and becomes interactive (the time is printed), the KPI table shows the store's values,
中文 changes headers, names and axes, a what-if runs in the page and shows its new KPIs, bad what-if input
shows an error. Screenshots go to ``test-artefacts/dashboard/`` (``YUETWIN_TEST_ARTEFACTS`` moves it).
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dashboards import data, harness
from twin.compare import ReplayMismatchError
from dashboards.app import create_app
from dashboards.figures import normalised
from dashboards.i18n import KPI_NAMES, KPI_UNITS, LEVER_NAMES, STATE_NAMES, TEXT, fmt_delta, fmt_kpi, level_name
from lines.station import STATE_NAMES as ENGINE_STATES
from twin.compare import keep_comparison, load_comparison
from twin.config import ScenarioError, load_scenario
from twin.config.levers import LEVER_NAMES as ENGINE_LEVERS
from twin.config.scenario import Scenario
from twin.config.tiers import AS_IS, TIERS
from twin.dashboard_cli import is_loopback, parse_auth
from twin.eventlog import EventLog
from twin.kpi import LINE_KPIS, STATION_KPIS
from twin.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
TWIN = str(Path(sys.executable).with_name("twin"))
SHORT = ["run.warmup=1440", "run.length=2880"]
"""The SMT example, one day of warm-up and two observed days: the comparison takes seconds."""
REPS = 2


@pytest.fixture(scope="module")
def comparison_store(tmp_path_factory) -> tuple[Path, int, object]:
    """A store with the four tiers of the short SMT line, 2 replications each, attribution on 1."""
    path = tmp_path_factory.mktemp("dashboard") / "store.duckdb"
    loaded = load_scenario(ROOT / "scenarios" / "smt_line.yaml", SHORT)
    with ResultStore(path) as db:
        run_id, result = keep_comparison(db, loaded, list(TIERS), REPS, 1, attribution_reps=1)
    return path, run_id, result


def stored(path: Path, run_id: int, level: str, replication: int):
    with ResultStore(path) as db:
        return next(k for k in db.replications(run_id, level) if k.replication == replication)


# ------------------------------------------------------------------------------------------ words
def test_every_label_kpi_state_and_lever_has_both_languages():
    for key, (en, zh) in TEXT.items():
        assert en.strip() and zh.strip(), key
    assert set(LINE_KPIS) | set(STATION_KPIS) <= set(KPI_NAMES) <= set(KPI_UNITS)
    assert set(ENGINE_STATES) == set(STATE_NAMES)
    assert set(ENGINE_LEVERS) == set(LEVER_NAMES)
    for names in (KPI_NAMES, STATE_NAMES, LEVER_NAMES):
        for key, (en, zh) in names.items():
            assert en and zh and any("\u4e00" <= ch <= "\u9fff" for ch in zh), (key, zh)
    assert KPI_NAMES["oee"][1].startswith("设备综合效率")
    assert [level_name(tier, "zh") for tier in TIERS] == ["基础级", "先进级", "卓越级", "领航级"]
    assert level_name(AS_IS, "zh") == "现状" and level_name("my_plan.yaml", "zh") == "my_plan.yaml"


def test_values_carry_their_display_units():
    ci = {"mean": 0.8612, "ci_low": 0.8492, "ci_high": 0.8732}
    assert fmt_kpi("oee", ci) == "86.1 ± 1.2"  # fractions in %
    assert fmt_kpi("lead_time_mean", {"mean": 480.04, "ci_low": 470.0, "ci_high": 490.08}) == "480.0 ± 10.0"
    assert fmt_delta("oee", {"mean": 0.012, "ci_low": 0.002, "ci_high": 0.022}) == "+1.200 ± 1.000"
    assert fmt_delta("wip_mean", {"mean": -3.0, "ci_low": None, "ci_high": None}) == "-3.000"
    assert fmt_kpi("oee", None) == "-"


def test_radar_scores_are_shares_of_the_best_level():
    more = normalised({"a": 10.0, "b": 20.0, "c": None}, lower_is_better=False)
    assert more == {"a": 0.5, "b": 1.0, "c": None}
    less = normalised({"a": 400.0, "b": 500.0}, lower_is_better=True)
    assert less == {"a": 1.0, "b": 0.8}
    assert normalised({"a": 0.0, "b": 2.0}, lower_is_better=True) == {"a": 1.0, "b": 0.0}
    assert normalised({"a": 0.0, "b": 0.0}, lower_is_better=False) == {"a": None, "b": None}


# ------------------------------------------------------------------------------------------ store round trip
def test_a_stored_comparison_reads_back_as_it_was_computed(comparison_store):
    path, run_id, result = comparison_store
    with ResultStore(path) as db:
        back = load_comparison(db, run_id)
    assert back.levels == result.levels and back.attribution == json.loads(json.dumps(result.attribution))
    for level in result.levels:
        assert back.line(level) == result.line(level)
        assert back.economics(level) == result.economics(level)
    for level in result.levels[1:]:
        assert back.deltas(level) == result.deltas(level)


# ------------------------------------------------------------------------------------------ event logs
def test_event_log_aggregates_add_up_to_the_stored_kpis(comparison_store):
    """One replication simulated again with its event log: binned WIP, throughput and power, the state
    time per station and the Sankey's finished and scrapped parts equal the KPIs stored for it."""
    path, run_id, _ = comparison_store
    level, rep = "excellent", 1
    events = data.run_events(path, run_id, level, rep)
    assert events == ResultStore(path).replication_events_path(run_id, level, rep) and events.exists()
    assert data.run_events(path, run_id, level, rep) == events  # kept: not simulated again
    scenario = data.level_scenario(data.run_meta(path, run_id), level)
    kpis = stored(path, run_id, level, rep)
    length, hours = scenario.run.length, scenario.run.length / 60
    series = data.time_series(events, rep, scenario)
    widths = np.diff(np.append(np.arange(len(series.hours)) * series.bin_minutes, length))
    assert len(series.hours) <= data.SERIES_BINS
    assert math.isclose(np.sum(series.wip * widths) / length, kpis.line["wip_mean"], rel_tol=1e-9)
    assert math.isclose(np.sum(series.throughput * widths / 60), kpis.line["throughput_per_hour"] * hours,
                        abs_tol=1)  # a unit leaving exactly at the window's edge
    assert math.isclose(np.sum(series.power * widths) / 60, kpis.line["energy_kwh"], rel_tol=1e-9)
    start = scenario.run.warmup
    tracks = data.state_tracks(events, rep, scenario, start, start + length)
    for st in scenario.stations:
        totals = np.zeros(len(ENGINE_STATES))
        for track in (tr for tr in tracks if tr.station == st.name):
            np.add.at(totals, track.states, track.durations())
        fractions = totals / (length * st.servers)
        expected = [kpis.state_fractions[st.name][s] for s in ENGINE_STATES]
        assert np.allclose(fractions, expected, atol=1e-9), st.name
    flows = data.material_flow(events, rep, scenario)
    good = kpis.line["throughput_per_hour"] * hours
    assert abs(sum(f.parts for f in flows if f.target == data.FINISHED) - good) <= 1
    scrapped = kpis.line["scrap_ratio"] * kpis.line["exit_rate_per_hour"] * hours
    assert abs(sum(f.parts for f in flows if f.target == data.SCRAP) - scrapped) <= 1
    assert any(f.rework for f in flows)  # the SPI reprints and AOI touch-ups are on the line


GANTT_LINE = {
    "name": "gantt", "run": {"warmup": 0, "length": 60, "replications": 1, "seed": 1},
    "products": [{"name": "a", "routing": [{"station": "m1", "time": 1.0}]}],
    "stations": [{"name": "m1"}],
    "orders": {"arrivals": {"type": "poisson", "mean_interarrival": 2.0}, "mix": {"a": 1}},
}


def test_gantt_shows_each_interval_or_the_main_state_per_slot(tmp_path):
    """m1 is idle 0-12, busy 12-30, blocked 30-33, busy 33-46, down 46-60 (hand-made log)."""
    log = EventLog(tmp_path / "g.parquet")
    for time_, state in ((0, "idle"), (12, "busy"), (30, "blocked"), (33, "busy"), (46, "down")):
        log.state(time_, "m1", 0, state)
    log.close()
    scenario = Scenario.model_validate(GANTT_LINE)
    exact = data.gantt(tmp_path / "g.parquet", 0, scenario, 0, 60)
    assert exact.slot_minutes is None
    assert [(a, b, s) for _, _, a, b, s in exact.bars] == [(0, 12, "idle"), (12, 30, "busy"), (30, 33, "blocked"),
                                                            (33, 46, "busy"), (46, 60, "down")]
    # 3 slots of 20 min: idle 12 / busy 8; busy 10, blocked 3, busy 7 (17 busy); busy 6 / down 14
    slots = data.gantt(tmp_path / "g.parquet", 0, scenario, 0, 60, max_bars=3, slots=3)
    assert slots.slot_minutes == 20
    assert [(a, b, s) for _, _, a, b, s in slots.bars] == [(0, 20, "idle"), (20, 40, "busy"), (40, 60, "down")]


def test_a_replication_that_does_not_come_out_as_stored_is_not_kept(tmp_path, comparison_store):
    """A run whose stored KPIs are not what its scenario gives (here: another seed's) gets no event log."""
    path, run_id, _ = comparison_store
    loaded = load_scenario(ROOT / "scenarios" / "tiny.yaml", ["run.length=600", "run.warmup=0"])
    other = tmp_path / "other.duckdb"
    with ResultStore(other) as db:
        bad = db.start_run("run", loaded.scenario.name, loaded.sha256, loaded.scenario.model_dump_json(), 99, "0.0.1",
                           [AS_IS], {}, 1)
        db.add_replication(bad, AS_IS, stored(path, run_id, "basic", 0))  # not this scenario's numbers
        db.finish_run(bad)
    with pytest.raises(ReplayMismatchError, match="does not come out as stored"):
        data.run_events(other, bad, AS_IS, 0)
    assert not list(ResultStore(other).events_path(bad).parent.glob("*.parquet*"))


def test_line_graph_uses_the_transport_the_engine_builds():
    loaded = load_scenario(ROOT / "scenarios" / "aircon_assembly.yaml")
    graph = data.line_graph(loaded.scenario)
    kinds = {(a, b): k for a, b, k in graph.edges}
    assert kinds[("compressor_prep", "base_assembly")] == "conveyor"
    assert kinds[("hx_leak_test", "base_assembly")] == "agv"
    assert kinds[("warehouse", "base_assembly")] == "agv"
    assert kinds[("helium_leak_test", "piping_brazing")] == "rework"
    carts = loaded.scenario.model_dump(mode="json")
    carts["levers"]["material_flow"] = {"mode": "manual"}
    basic = Scenario.model_validate(carts)
    assert {(a, b): k for a, b, k in data.line_graph(basic).edges}[("hx_leak_test", "base_assembly")] == "cart"


# ------------------------------------------------------------------------------------------ what-if
def test_line_page_shows_the_robot_cells_picture_and_physics_cycle_time(tmp_path, monkeypatch):
    """The aircon line's KUKA cell: a PNG drawn once and kept beside the store, captioned with the cycle
    time the physics gives (the same number `twin robot-cell` prints)."""
    import base64

    from lines import robot_cell as rc
    from twin.config import load_scenario

    monkeypatch.setenv("YUETWIN_CACHE", str(tmp_path / "cache"))
    scenario = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "aircon_assembly.yaml").scenario
    store = tmp_path / "s.duckdb"
    cells = data.robot_cells(store, scenario)
    assert [c.station for c in cells] == ["pad_loader"] and cells[0].problem is None
    assert cells[0].cycle_time_s == rc.cycle_time(scenario.station("pad_loader").robot).cycle_time_s
    png = base64.b64decode(cells[0].image.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    kept = list((tmp_path / "s_cells").glob("pad_loader-*.png"))
    assert len(kept) == 1 and kept[0].read_bytes() == png
    assert data.robot_cells(store, scenario)[0].image == cells[0].image  # drawn once, then read back


def wait_finished(path: Path, run_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = data.run_meta(path, run_id)
        if meta["status"] != "running":
            return meta
        time.sleep(0.1)
    raise AssertionError(f"what-if {run_id} still running after {timeout} s")


def test_a_what_if_that_changes_nothing_differs_by_exactly_zero(comparison_store):
    """Same scenario, same seed, same replication numbers: common random numbers make every paired
    difference exactly 0, and the run is kept in the store, linked to its base."""
    path, run_id, _ = comparison_store
    current = next(p.current for p in data.what_if_parameters(
        data.level_scenario(data.run_meta(path, run_id), "advanced")) if p.path == "stations.fine_pitch.buffer")
    assert current == "10"
    what_if = data.start_what_if(path, run_id, "advanced", [f"stations.fine_pitch.buffer={current}"], REPS)
    assert wait_finished(path, what_if)["status"] == "finished"
    view = data.what_if_view(path, what_if)
    assert view.link == {"run_id": what_if, "base_run_id": run_id, "base_level": "advanced",
                         "overrides": ["stations.fine_pitch.buffer=10"]}
    assert view.meta["kind"] == "what-if" and view.done == REPS
    deltas = view.paired.deltas(data.WHAT_IF)
    defined = {k: d for k, d in deltas.items() if d["mean"] is not None}
    assert "throughput_per_hour" in defined
    assert all(d["mean"] == 0 and d["ci_low"] == 0 and d["ci_high"] == 0 for d in defined.values()), defined
    assert what_if in [w["run_id"] for w in data.earlier_what_ifs(path, run_id)]


def test_bad_what_if_input_names_the_field_the_value_and_the_fix(comparison_store):
    path, run_id, _ = comparison_store
    meta = data.run_meta(path, run_id)
    with pytest.raises(ScenarioError) as typo:
        data.what_if_scenario(meta, "basic", ["stations.fine_pich.buffer=3"])
    assert data.problem_lines(typo.value) == ["stations.fine_pich: no item 'fine_pich' here. Did you mean 'fine_pitch'?"]
    with pytest.raises(ScenarioError) as negative:
        data.what_if_scenario(meta, "basic", ["stations.fine_pitch.buffer=-1"])
    (line,) = data.problem_lines(negative.value)
    assert line.startswith("stations[fine_pitch].buffer: got -1") and "change the value" in line
    with pytest.raises(ScenarioError) as rule:
        data.what_if_scenario(meta, "basic", ["levers.scheduling.rule=sptt"])
    assert "Did you mean 'spt'?" in data.problem_lines(rule.value)[0]
    with pytest.raises(data.DashboardError, match="replications 9: give 1 to 2"):
        data.start_what_if(path, run_id, "basic", ["stations.spi.buffer=4"], 9)


# ------------------------------------------------------------------------------------------ serving
def test_basic_auth_guards_every_request(comparison_store):
    path, _, _ = comparison_store
    client = create_app(path, auth=("trainer", "s3:cret")).server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/_dash-layout").status_code == 401
    assert "Basic" in client.get("/runs").headers["WWW-Authenticate"]
    assert client.get("/", auth=("trainer", "wrong")).status_code == 401
    assert client.get("/", auth=("trainer", "s3:cret")).status_code == 200
    assert create_app(path).server.test_client().get("/").status_code == 200


def test_addresses_and_credentials():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    assert parse_auth("u:p:q") == ("u", "p:q")
    for bad in ("u", "u:", ":p"):
        with pytest.raises(ValueError, match="give USER:PASS"):
            parse_auth(bad)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_refuses_what_it_cannot_serve_safely_and_serves_the_store(comparison_store, tmp_path):
    path, _, _ = comparison_store
    for args, message in ((["--host", "0.0.0.0"], "--host 0.0.0.0: serving beyond this machine needs --auth"),
                          (["--host", "10.1.2.3", "--auth", "nopass"], "--auth 'nopass': give USER:PASS"),
                          (["--store", str(tmp_path / "none.duckdb")], "no results store at")):
        res = subprocess.run([TWIN, "dashboard", "--store", str(path), *args], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    port = free_port()
    server = subprocess.Popen([TWIN, "dashboard", "--store", str(path), "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs", timeout=5) as page:
                    assert page.status == 200 and b"YueTwin" in page.read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.poll() else ""
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_downloads_hold_the_stores_numbers(comparison_store, tmp_path):
    """The CSV archive is ``twin runs export``; the PNG archive holds real PNGs rendered by kaleido."""
    from dashboards.pages.runs import run_figures
    from dashboards import figures

    path, run_id, _ = comparison_store
    archive = zipfile.ZipFile(io.BytesIO(data.kpi_csv_zip(path, run_id)))
    exported = ResultStore(path).export(run_id, "csv", tmp_path)
    assert sorted(archive.namelist()) == sorted(p.name for p in exported)
    for file in exported:
        assert archive.read(file.name) == file.read_bytes()
    app = create_app(path)
    with app.server.test_request_context("/runs"):
        named = run_figures(run_id, "zh")
    assert {"radar", "flow-basic", "states-leading"} <= set(named)
    pngs = zipfile.ZipFile(io.BytesIO(figures.png_zip({k: named[k] for k in ("radar", "flow-basic")})))
    assert sorted(pngs.namelist()) == ["flow-basic.png", "radar.png"]
    for name in pngs.namelist():
        png = pngs.read(name)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1200  # IHDR width


# ------------------------------------------------------------------------------------------ in the browser
ARTEFACTS = Path(os.environ.get("YUETWIN_TEST_ARTEFACTS", ROOT / "test-artefacts")) / "dashboard"


@pytest.fixture(scope="module")
def served(comparison_store):
    """The app on a free loopback port, in this process (so it shares the store fixture)."""
    path, run_id, _ = comparison_store
    with harness.serve(create_app(path)) as url:
        yield url, path, run_id


@pytest.fixture(scope="module")
def browser(served):
    if harness.browser_missing():
        pytest.skip(f"headless browser tests: {harness.browser_missing()}")
    with harness.chromium() as driver:
        yield driver


open_page, wait_for = harness.open_page, harness.wait_for


def screenshot(driver, name: str) -> None:
    harness.screenshot(driver, ARTEFACTS / f"{name}.png")


def table_rows(driver, table_id: str) -> tuple[list[str], dict[str, list[str]]]:
    from selenium.webdriver.common.by import By

    table = driver.find_element(By.ID, table_id)
    header = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    rows = {tr.get_attribute("data-key"): [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    return header, rows


def shown_equals(cell: str, key: str, estimate: dict) -> bool:
    """A ``mean ± half-width`` cell equals the stored estimate to the digits it shows."""
    scale = 100.0 if KPI_UNITS[key] == "fraction" else 1.0
    mean_text, _, half_text = cell.partition(" ± ")
    digits = len(mean_text.partition(".")[2])
    tolerance = 0.5 * 10 ** -digits + 1e-12
    half = (estimate["ci_high"] - estimate["ci_low"]) / 2 * scale
    return (abs(float(mean_text) - estimate["mean"] * scale) <= tolerance
            and abs(float(half_text) - half) <= tolerance)


def set_language(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//header//label[normalize-space()='{label}']").click()


def test_pages_are_interactive_and_the_kpi_table_is_the_stores(browser, served, capsys):
    url, path, run_id = served
    times = {}
    times["maturity"] = open_page(browser, f"{url}/?run={run_id}", "#kpi-table")
    header, rows = table_rows(browser, "kpi-table")
    assert header == ["KPI", "Unit", "Basic", "Advanced", "Excellent", "Leading"]
    summary = data.run_summary(path, run_id)["summary"]
    assert {"throughput_per_hour", "oee", "lead_time_mean", "energy_kwh_per_good_unit"} <= set(rows)
    for key, cells in rows.items():
        assert cells[0] == KPI_NAMES[key][0]
        for level, cell in zip(TIERS, cells[2:]):
            assert shown_equals(cell, key, summary[level]["line"][key]), (key, level, cell)
    screenshot(browser, "maturity-en")
    times["line"] = open_page(browser, f"{url}/line?run={run_id}&level=leading&rep=0", "#line-gantt-graph")
    for graph_id in ("line-flow", "line-states", "line-sankey", "line-series", "line-gantt-graph"):
        assert browser.find_element("id", graph_id).find_elements("css selector", ".main-svg"), graph_id
    screenshot(browser, "line-en")
    times["line (log kept)"] = open_page(browser, f"{url}/line?run={run_id}&level=leading&rep=0", "#line-gantt-graph")
    times["what-if"] = open_page(browser, f"{url}/what-if?run={run_id}", "#whatif-go")
    times["runs"] = open_page(browser, f"{url}/runs", "#runs-table")
    _, runs = table_rows(browser, "runs-table")
    assert str(run_id) in runs and runs[str(run_id)][1] == "comparison"
    screenshot(browser, "runs-en")
    with capsys.disabled():
        print("\ntime to interactive (s, 2-day SMT comparison, 4 tiers x 2 replications; target 2 s): "
              + ", ".join(f"{page} {seconds:.2f}" for page, seconds in times.items()))


def test_chinese_switch_changes_headers_and_names(browser, served):
    from selenium.webdriver.common.by import By

    url, path, run_id = served
    open_page(browser, f"{url}/?run={run_id}", "#kpi-table")
    set_language(browser, "中文")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#kpi-table th").text == "指标")
    open_page(browser, browser.current_url, "#kpi-table")
    header, rows = table_rows(browser, "kpi-table")
    assert header == ["指标", "单位", "基础级", "先进级", "卓越级", "领航级"]
    assert rows["oee"][0] == "设备综合效率（OEE）" and rows["throughput_per_hour"][1] == "件/小时"
    assert rows["energy_kwh_per_good_unit"][0] == "单位产品能耗" and rows["on_time_rate"][0] == "准时交付率"
    assert browser.find_element(By.ID, "nav-maturity").text == "成熟度对比"
    assert "delta-table" in browser.page_source and "相对 基础级 的配对差值" in browser.page_source
    titles = browser.execute_script(
        "return [...document.querySelectorAll('.gtitle')].map(e => e.textContent).join(' | ')")
    assert "归一化指标" in titles and "变化按杠杆归因" not in titles  # the waterfall titles name the step
    screenshot(browser, "maturity-zh")
    open_page(browser, f"{url}/line?run={run_id}&level=basic&rep=0", "#line-gantt-graph")
    axes = browser.execute_script(
        "return [...document.querySelectorAll('.xtitle, .ytitle, .gtitle')].map(e => e.textContent).join(' | ')")
    assert "物流图" in axes and "观察期开始后的时间（小时）" in axes and "工位状态甘特图" in axes
    screenshot(browser, "line-zh")
    set_language(browser, "English")
    wait_for(browser, lambda d: d.find_element(By.ID, "nav-maturity").text == "Maturity comparison")


def run_what_if(driver, url: str, run_id: int, text: str = "", parameter: str = "", value: str = "") -> None:
    """On the what-if page of ``run_id`` (level basic): pick ``parameter`` in the dropdown and type
    ``value`` (checking the current value is filled in first), type ``text`` in the text box, run."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(driver, f"{url}/what-if?run={run_id}&level=basic", "#whatif-go")
    if parameter:
        driver.find_element(By.ID, "whatif-parameter").click()
        option = wait_for(driver, lambda d: d.find_element(
            By.XPATH, f"//*[@role='option'][starts-with(normalize-space(), '{parameter} (')]"))
        current = option.text.strip().rsplit("(", 1)[1].rstrip(")")
        option.click()
        wait_for(driver, lambda d: d.find_element(By.ID, "whatif-value").get_attribute("value") == current)
        field = driver.find_element(By.ID, "whatif-value")
        field.send_keys(Keys.CONTROL, "a")  # select what is there: clear() bypasses React's change events
        field.send_keys(value)
    box = driver.find_element(By.ID, "whatif-text")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "whatif-go").click()


def test_a_what_if_runs_in_the_page_and_shows_its_new_kpis(browser, served):
    from selenium.webdriver.common.by import By

    url, path, run_id = served
    before = {r["run_id"] for r in data.list_runs(path)}
    run_what_if(browser, url, run_id, parameter="stations.fine_pitch.servers", value="2")
    wait_for(browser, lambda d: d.find_elements(By.ID, "whatif-progress") or d.find_elements(By.ID, "whatif-table"))
    wait_for(browser, lambda d: d.find_elements(By.ID, "whatif-table") and not d.find_elements(By.ID, "whatif-progress"))
    (what_if,) = {r["run_id"] for r in data.list_runs(path)} - before
    header, rows = table_rows(browser, "whatif-table")
    assert header == ["KPI", "Unit", "Base: Basic", "What-if", "Difference (95 % CI)"]
    new = data.run_summary(path, what_if)
    assert new["kind"] == "what-if" and new["status"] == "finished"
    assert data.what_if_view(path, what_if).link["overrides"] == ["stations.fine_pitch.servers=2"]
    assert shown_equals(rows["throughput_per_hour"][3], "throughput_per_hour",
                        new["summary"][AS_IS]["line"]["throughput_per_hour"])
    paired = data.what_if_view(path, what_if).paired.deltas(data.WHAT_IF)["lead_time_mean"]
    assert rows["lead_time_mean"][4].split(" ")[0] == fmt_delta("lead_time_mean", paired).split(" ")[0]
    assert "stations.fine_pitch.servers=2" in browser.find_element(By.ID, "whatif-result").text
    screenshot(browser, "what-if-en")


def test_bad_what_if_input_shows_an_error_in_the_page(browser, served):
    from selenium.webdriver.common.by import By

    url, path, run_id = served
    before = len(data.list_runs(path))
    run_what_if(browser, url, run_id, text="stations.fine_pich.servers=2")
    error = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#whatif-status .error"))[0]
    assert "The changes are not valid" in error.text and "Did you mean 'fine_pitch'?" in error.text
    assert "Traceback" not in browser.page_source
    run_what_if(browser, url, run_id, text="stations.fine_pitch.buffer=-3")
    wait_for(browser, lambda d: "got -3" in d.find_element(By.ID, "whatif-status").text)
    assert len(data.list_runs(path)) == before  # nothing was run or kept
    screenshot(browser, "what-if-error")
