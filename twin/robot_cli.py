"""``twin robot-cell``: the cycle time of a robot station, from physics, and a picture of the cell.

Register it on the main app with ``app.command("robot-cell")(robot_cell)``; ``python -m twin.robot_cli``
runs it alone. pybullet is imported only when the command runs (silently), never when the CLI starts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Union

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from twin.config import LoadedScenario, ScenarioError, load_scenario
from twin.config.loader import Problem
from twin.config.robot import RobotCellConfig
from twin.config.scenario import suggest
from twin.console import err, fail, out, write_json

__all__ = ["robot_cell", "robot_config_for"]


# ----------------------------------------------------------------------------------------- config
def _no_robot(file: str, station: str, known: list[str]) -> ScenarioError:
    return ScenarioError([Problem(file, f"stations[{station}]", None,
                                  "this station has no robot: block; add one (see docs/robot_cell.md)."
                                  + (f" Stations with a robot: {', '.join(known)}." if known else ""))])


def _unknown_station(file: str, station: str, names: list[str]) -> ScenarioError:
    return ScenarioError([Problem(file, "stations", None, f"no station named '{station}'." + suggest(station, names))])


def robot_config_for(source: Union[LoadedScenario, str, Path], station: str,
                     overrides: Optional[list[str]] = None) -> RobotCellConfig:
    """The validated ``robot:`` block of ``station`` in a scenario (a file, with ``--set`` overrides, or an
    already loaded scenario).
    Raises :class:`~twin.config.ScenarioError` with file, line and path for every problem."""
    if isinstance(source, LoadedScenario):
        file = str(source.path)
        names = [s.name for s in source.scenario.stations]
        if station not in names:
            raise _unknown_station(file, station, names)
        robot = getattr(source.scenario.station(station), "robot", None)
        if robot is None:
            raise _no_robot(file, station, [s.name for s in source.scenario.stations if getattr(s, "robot", None)])
        return robot
    return robot_config_for(load_scenario(Path(source), overrides), station)


def robot_cell_problems(loaded: LoadedScenario) -> list[str]:
    """Why the robot cells of a scenario cannot do their tasks (empty if they all can). Computing this
    fills the cycle-time cache, so the line simulation then never waits on physics."""
    from lines.robot_cell import RobotCellError, cycle_time

    problems = []
    for st in loaded.scenario.stations:
        if st.robot is not None:
            try:
                cycle_time(st.robot)
            except (RobotCellError, OSError) as exc:
                problems.append(f"{loaded.path}: stations[{st.name}].robot: {exc}")
    return problems


# ----------------------------------------------------------------------------------------- output
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
        fail([f"--render {render}: use a file name ending in .png"])
    try:
        cfg = robot_config_for(file, station, set_)
    except ScenarioError as exc:
        fail([str(p) for p in exc.problems])
    where = f"{file}: stations[{station}].robot"
    try:
        if render is not None:
            draw(cfg, render)
        started = time.perf_counter()
        result = cycle_time(cfg, cache=None) if no_cache else cycle_time(cfg)
        wall = time.perf_counter() - started
    except RobotCellError as exc:
        if render is not None and render.exists():
            err.print(f"(the cell is drawn in {render})", highlight=False)
        fail([f"{where}: {exc}"])
    except OSError as exc:
        fail([f"{where}: {exc}"])
    minutes = cfg.processing_time(result.cycle_time_s)
    _print(out(), station, cfg, result, wall)
    if render is not None:
        out().print(f"Cell drawn in {render}", highlight=False)
    if json_out is not None:
        data = result.to_json(station)
        data["robot"] = cfg.model
        data["processing_time_min"] = minutes.model_dump(mode="json", by_alias=True)
        write_json(json_out, data)

