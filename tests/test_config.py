"""The scenario schema and loader: located, actionable errors; overrides; JSON Schema."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from twin.config import ScenarioError, load_scenario
from twin.config.scenario import Scenario

GOOD = """\
name: good
run: {length: 100, replications: 1}
products:
  - name: widget
    routing:
      - {station: lathe, time: {dist: exponential, mean: 1.0}}
      - {station: mill, time: 2, rework: 0.1, rework_to: lathe}
stations:
  - {name: lathe, buffer: 3, power: {off: 0.1, idle: 1, busy: 4}}
  - {name: mill}
orders:
  arrivals: {type: poisson, mean_interarrival: 4}
  mix: {widget: 1}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    return [str(p) for p in info.value.problems]


def test_good_file_loads_and_keeps_yaml_1_2_booleans(tmp_path):
    loaded = load_scenario(write(tmp_path, GOOD))
    assert loaded.scenario.station("lathe").power.off == 0.1  # 'off' is a key, not False
    assert len(loaded.sha256) == 64


def test_unknown_field_names_line_path_and_suggestion(tmp_path):
    path = write(tmp_path, GOOD.replace("buffer: 3", "bufer: 3"))
    [msg] = problems(path)
    assert msg.startswith(f"{path}:9: stations[lathe].bufer")
    assert "Did you mean 'buffer'?" in msg


def test_unknown_station_reference_is_found_after_parsing(tmp_path):
    path = write(tmp_path, GOOD.replace("{station: mill,", "{station: mil,"))
    [msg] = problems(path)
    assert f"{path}:7: products[widget].routing[1].station" in msg
    assert "unknown station 'mil'" in msg and "Did you mean 'mill'?" in msg


def test_bad_values_are_all_reported_with_the_value(tmp_path):
    text = GOOD.replace("buffer: 3", "buffer: -3").replace("dist: exponential", "dist: exponental")
    msgs = problems(write(tmp_path, text))
    assert any("stations[lathe].buffer: got -3" in m for m in msgs)
    assert any("'exponental' is not a known dist. Did you mean 'exponential'?" in m for m in msgs)


def test_rework_target_must_exist(tmp_path):
    [msg] = problems(write(tmp_path, GOOD.replace("rework_to: lathe", "rework_to: lath")))
    assert "rework_to" in msg and "Did you mean 'lathe'?" in msg


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  - {name: mill}", "  - {name: mill"))
    [msg] = problems(path)
    assert "YAML syntax error" in msg and msg.startswith(f"{path}:")


def test_missing_file(tmp_path):
    [msg] = problems(tmp_path / "nope.yaml")
    assert "file not found" in msg


def test_set_overrides_by_name_and_reports_unknown_items(tmp_path):
    path = write(tmp_path, GOOD)
    loaded = load_scenario(path, ["stations.mill.servers=3", "products.widget.routing.1.time={dist: uniform, low: 1, high: 3}"])
    assert loaded.scenario.station("mill").servers == 3
    assert loaded.scenario.product("widget").routing[1].time.mean == 2.0
    assert loaded.sha256 != load_scenario(path).sha256
    [msg] = problems(path, ["stations.mil.servers=3"])
    assert "(--set)" in msg and "Did you mean 'mill'?" in msg
    [msg] = problems(path, ["run.lenght=5"])
    assert "Did you mean 'length'?" in msg
    [msg] = problems(path, ["stations.mill.servers=0"])
    assert "(--set): stations[mill].servers: got 0" in msg


def test_cross_checks(tmp_path):
    text = GOOD.replace("mix: {widget: 1}", "mix: {widgit: 1}")
    [msg] = problems(write(tmp_path, text))
    assert "unknown product 'widgit'" in msg and "Did you mean 'widget'?" in msg


def test_csv_orders_are_checked(tmp_path):
    (tmp_path / "orders.csv").write_text("time,product,quantity,due\n0,widget,2,100\n5,gadget,1,\n")
    text = GOOD.replace("arrivals: {type: poisson, mean_interarrival: 4}", "arrivals: {type: csv, file: orders.csv}")
    [msg] = problems(write(tmp_path, text))
    assert "orders.csv:3" in msg and "unknown product 'gadget'" in msg


def test_json_schema_describes_the_scenario():
    schema = Scenario.model_json_schema(by_alias=True)
    assert {"name", "run", "products", "stations", "orders"} <= set(schema["properties"])
    assert "StationConfig" in schema["$defs"]


def test_config_never_imports_the_engine():
    code = "import sys, twin.config; assert 'simpy' not in sys.modules, 'config imported simpy'"
    subprocess.run([sys.executable, "-c", code], check=True)
