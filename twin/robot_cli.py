"""``twin robot-cell``: the cycle time of a robot station, from physics, and a picture of the cell.

Register it on the main app with ``app.command("robot-cell")(robot_cell)``; ``python -m twin.robot_cli``
runs it alone. pybullet is imported only when the command runs (silently), never when the CLI starts.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
import typing
from pathlib import Path
from typing import Any, NoReturn, Optional, Union

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from twin.config import LoadedScenario, ScenarioError, load_scenario
from twin.config.loader import (Problem, _data_loc, _message, _problem, _problems_from_validation,
                                apply_override, read_yaml)
from twin.config.robot import RobotCellConfig
from twin.config.scenario import Scenario, ScenarioReferenceError, StationConfig, suggest

__all__ = ["robot_cell", "robot_config_for", "app"]


# ----------------------------------------------------------------------------------------- config
def _station_names(stations: Any) -> list[str]:
    return [s.get("name") if isinstance(s, dict) else getattr(s, "name", None) for s in stations or []]


def _with_urdf_path(cfg: RobotCellConfig, scenario_file: Path) -> RobotCellConfig:
    """A user URDF given relative to the scenario file, made absolute."""
    if cfg.model != "urdf" or not cfg.urdf or Path(cfg.urdf).expanduser().is_absolute():
        return cfg
    return cfg.model_copy(update={"urdf": str((scenario_file.parent / cfg.urdf).resolve())})


def _no_robot(file: str, station: str, known: list[str]) -> ScenarioError:
    return ScenarioError([Problem(file, f"stations[{station}]", None,
                                  "this station has no robot: block; add one (see docs/robot_cell.md)."
                                  + (f" Stations with a robot: {', '.join(known)}." if known else ""))])


def _unknown_station(file: str, station: str, names: list[str]) -> ScenarioError:
    return ScenarioError([Problem(file, "stations", None, f"no station named '{station}'." + suggest(station, names))])


def robot_config_for(source: Union[LoadedScenario, str, Path], station: str,
                     overrides: Optional[list[str]] = None) -> RobotCellConfig:
    """The validated ``robot:`` block of ``station`` in a scenario (a file, with ``--set`` overrides, or an
    already loaded scenario). A relative URDF path is made relative to the scenario file.
    Raises :class:`~twin.config.ScenarioError` with file, line and path for every problem."""
    if isinstance(source, LoadedScenario):
        file = str(source.path)
        names = [s.name for s in source.scenario.stations]
        if station not in names:
            raise _unknown_station(file, station, names)
        robot = getattr(source.scenario.station(station), "robot", None)
        if robot is None:
            raise _no_robot(file, station, [s.name for s in source.scenario.stations if getattr(s, "robot", None)])
        return _with_urdf_path(robot, source.path)
    path = Path(source)
    if "robot" in StationConfig.model_fields:  # the scenario schema knows robot cells: validate it all at once
        return robot_config_for(load_scenario(path, overrides), station)
    return _robot_config_from_raw(path, station, overrides)


def _robot_config_from_raw(path: Path, station: str, overrides: Optional[list[str]]) -> RobotCellConfig:
    """Until StationConfig has its ``robot`` field: validate the scenario without the robot blocks, and the
    requested station's robot block with RobotCellConfig, reporting problems like the loader does."""
    file = str(path)
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file, "", 1, "a scenario is a mapping with keys name, run, products, "
                                                  "stations, orders; see `twin schema`")])
    overridden = {apply_override(data, a, file) for a in overrides or []}
    stations = data.get("stations") if isinstance(data.get("stations"), list) else []
    names = _station_names(stations)
    rest = copy.deepcopy(data)
    for item in rest.get("stations") or []:
        if isinstance(item, dict):
            item.pop("robot", None)
    try:
        Scenario.model_validate(rest)
    except ValidationError as exc:
        raise ScenarioError(_problems_from_validation(exc, rest, lines, file, overridden)) from None
    except ScenarioReferenceError as exc:
        raise ScenarioError([_problem(file, rest, lines, loc, msg, overridden)
                             for loc, _, msg in exc.problems]) from None
    if station not in names:
        raise _unknown_station(file, station, [n for n in names if n])
    index = names.index(station)
    block = stations[index].get("robot")
    if block is None:
        raise _no_robot(file, station, [n for n, s in zip(names, stations) if isinstance(s, dict) and "robot" in s])
    try:
        cfg = RobotCellConfig.model_validate(block)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _data_loc(data, ("stations", index, "robot") + tuple(err["loc"]))
            message = _message(err, data, loc)
            if err["type"] == "extra_forbidden":
                known = _robot_fields_at(block, loc[3:-1])
                message = f"unknown field '{loc[-1]}'." + (suggest(str(loc[-1]), known) or " Remove it.")
            problems.append(_problem(file, data, lines, loc, message, overridden))
        raise ScenarioError(problems) from None
    return _with_urdf_path(cfg, path)


def _robot_fields_at(block: Any, loc: tuple) -> list[str]:
    """Field names allowed at ``loc`` inside a robot block (for "did you mean" on unknown keys)."""
    models: list[type] = [RobotCellConfig]
    for key in loc:
        if isinstance(key, int):
            continue
        found: list[type] = []
        for model in models:
            field = model.model_fields.get(key)
            if field is not None:
                found += _models_in(field.annotation)
        models = found
    return sorted({name for model in models for name in model.model_fields})


def _models_in(annotation: Any) -> list[type]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


# ----------------------------------------------------------------------------------------- output
_err = Console(stderr=True)


def _out() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        _err.print(Text("error: ", style="bold red") + Text(line), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)
    os.replace(tmp, path)


def _clearance(value: Optional[float], obstacle: Optional[str]) -> str:
    return "-" if value is None else f"{value * 1000:.0f} mm ({obstacle})"


def _print(console: Console, station: str, cfg: RobotCellConfig, result: Any, wall: float) -> None:
    table = Table(title=f"Robot cell '{station}' ({cfg.model}, {len(cfg.tasks)} tasks): cycle time from physics, "
                        "seconds", title_justify="left")
    for col in ("Task", "Moves", "Motion", "Grip", "Release", "Dwell", "Cycle", "Min clearance"):
        table.add_column(col, justify="left" if col in ("Task", "Min clearance") else "right")
    for t in result.tasks:
        table.add_row(t.name, str(len(t.moves)), f"{t.motion_s:.3f}", f"{t.grip_s:.3f}", f"{t.release_s:.3f}",
                      f"{t.dwell_s:.3f}", f"{t.cycle_time_s:.3f}", _clearance(t.min_clearance_m, t.closest_obstacle))
    back = "return home" if cfg.return_home else "return to start"
    table.add_row(back, "1", f"{result.return_s:.3f}", "", "", "", f"{result.return_s:.3f}", "")
    table.add_row(Text("total", style="bold"), "", "", "", "", "", Text(f"{result.cycle_time_s:.3f}", style="bold"), "")
    console.print(table)
    per_part = f"{result.cycle_time_s / 60:.4f} min per part"
    if cfg.variation is not None:
        per_part += f" ({cfg.variation.dist}, cv {cfg.variation.cv:g})"
    source = "from cache" if result.cached else f"simulated in {wall:.2f} s"
    console.print(f"Processing time for the line: {per_part}; {source} (key {result.key[:12]})", highlight=False)


# ----------------------------------------------------------------------------------------- command
def robot_cell(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    station: str = typer.Option(..., "--station", help="Name of the station with a robot: block."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write per-task and total cycle time as JSON."),
    render: Optional[Path] = typer.Option(None, "--render", help="Draw the cell (robot, obstacles, poses) as PNG."),
    set_: list[str] = typer.Option([], "--set", help="Override a parameter: PATH=VALUE, e.g. "
                                   "stations.loader.robot.obstacles.fixture.center=[0.5,0.2,0.9] (repeatable)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Simulate even if this layout is cached."),
) -> None:
    """Cycle time of a robot station from a physics simulation (PyBullet), per task and in total (seconds).

    Exit status 2 if the scenario is invalid or the robot cannot do its tasks (pose out of reach, IK off
    the pose, path through an obstacle): the message names the task and the pose."""
    from lines.robot_cell import RobotCellError, cycle_time
    from lines.robot_cell import render as draw

    if render is not None and render.suffix.lower() != ".png":
        _fail([f"--render {render}: use a file name ending in .png"])
    try:
        cfg = robot_config_for(file, station, set_)
    except ScenarioError as exc:
        _fail([str(p) for p in exc.problems])
    where = f"{file}: stations[{station}].robot"
    try:
        if render is not None:
            draw(cfg, render)
        started = time.perf_counter()
        result = cycle_time(cfg, cache=None) if no_cache else cycle_time(cfg)
        wall = time.perf_counter() - started
    except RobotCellError as exc:
        if render is not None and render.exists():
            _err.print(f"(the cell is drawn in {render})", highlight=False)
        _fail([f"{where}: {exc}"])
    except OSError as exc:
        _fail([f"{where}: {exc}"])
    minutes = cfg.processing_time(result.cycle_time_s)
    _print(_out(), station, cfg, result, wall)
    if render is not None:
        _out().print(f"Cell drawn in {render}", highlight=False)
    if json_out is not None:
        data = result.to_json(station)
        data["robot"] = cfg.model
        data["processing_time_min"] = minutes.model_dump(mode="json", by_alias=True)
        _write_json(json_out, data)


app = typer.Typer(add_completion=False, help="YueTwin robot cells: cycle time from physics.")
app.command("robot-cell")(robot_cell)

if __name__ == "__main__":
    app()
