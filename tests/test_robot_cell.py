"""Robot cells on real PyBullet: cycle times obey the joint limits, grow with the work, fail loudly when the
robot cannot do the job, and are the same every time (and from the cache)."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from lines import robot_cell as rc
from twin.config.robot import ROBOT_DEFAULTS, RobotCellConfig

ROOT = Path(__file__).resolve().parents[1]

CELL = {
    "model": "panda",
    "obstacles": [{"name": "table", "center": [0.5, 0.0, -0.1], "half_extents": [0.3, 0.6, 0.1]}],
    "poses": {"conveyor": {"position": [0.45, -0.3, 0.05]}, "machine": {"position": [0.45, 0.3, 0.05]}},
    "tasks": [{"name": "load", "pick": "conveyor", "place": "machine"},
              {"name": "unload", "pick": "machine", "place": "conveyor"}],
}


def cell(**changes) -> RobotCellConfig:
    data = copy.deepcopy(CELL)
    data.update(copy.deepcopy(changes))
    return RobotCellConfig.model_validate(data)


def with_pose(cfg_data: dict, name: str, position: list[float]) -> dict:
    data = copy.deepcopy(cfg_data)
    data["poses"][name]["position"] = position
    return data


def compute(cfg: RobotCellConfig) -> rc.CellResult:
    return rc.cycle_time(cfg, cache=None)


# ----------------------------------------------------------------------------------------- config
def test_config_never_imports_pybullet_or_simpy():
    code = ("import sys, twin.config.robot as r; r.RobotCellConfig; "
            "print('pybullet' in sys.modules, 'simpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("change, message", [
    ({"tasks": [{"name": "t", "pick": "conveyer", "place": "machine"}]}, "Did you mean 'conveyor'?"),
    ({"tasks": [{"name": "t"}]}, "a task has pick and place, or waypoints"),
    ({"model": "urdf"}, "needs urdf"),
    ({"home": [0.0, 0.0]}, "home has 2 values but panda has 7 arm joints"),
    ({"joint_limits": {"velocity_rad_s": [1.0, 1.0]}}, "velocity_rad_s has 2 values"),
    ({"obstacles": [{"name": "a", "center": [0, 0, 0], "half_extents": [1, 1, 1]}] * 2}, "'a' is used twice"),
    ({"obstacles": [{"name": "a", "center": [0, 0, 0], "half_extents": [1, 0, 1]}]}, "greater than 0"),
    ({"tolerance": 0.01}, "Extra inputs are not permitted"),
])
def test_config_rejects_mistakes_with_a_fix(change, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        cell(**change)


def test_processing_time_is_minutes_with_the_same_mean():
    cfg = cell()
    assert cfg.processing_time(90.0).mean == pytest.approx(1.5)
    varied = cell(variation={"dist": "lognormal", "cv": 0.1}).processing_time(90.0)
    assert varied.dist == "lognormal" and varied.mean == pytest.approx(1.5) and varied.sd == pytest.approx(0.15)
    normal = cell(variation={"dist": "normal", "cv": 0.05}).processing_time(60.0)
    assert normal.dist == "normal" and normal.mean == pytest.approx(1.0, rel=1e-9)
    with pytest.raises(ValueError, match="finite"):
        cfg.processing_time(float("nan"))


# ----------------------------------------------------------------------------------------- trajectories
def test_min_joint_time_known_values():
    # full speed reached: |dq|/v + v/a; not reached: 2 sqrt(|dq|/a)
    times = rc.min_joint_times(np.array([1.0, 0.25, -3.0, 0.0]), np.array([1.0, 1.0, 2.0, 1.0]),
                               np.array([1.0, 1.0, 4.0, 1.0]))
    assert times.tolist() == pytest.approx([2.0, 1.0, 2.0, 0.0])


def test_planned_moves_respect_every_limit_and_take_exactly_the_lower_bound():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = 7
        q0, q1 = rng.uniform(-2.5, 2.5, n), rng.uniform(-2.5, 2.5, n)
        q1[rng.integers(0, n)] = q0[0] if rng.random() < 0.2 else q1[0]  # sometimes a joint does not move
        vmax, amax = rng.uniform(0.5, 3.0, n), rng.uniform(1.0, 20.0, n)
        traj = rc.plan_move(q0, q1, vmax, amax)
        bound = rc.lower_bound(q0, q1, vmax, amax)
        assert traj.duration == pytest.approx(bound, rel=1e-12)
        t = np.linspace(0.0, traj.duration, 4001)
        pos, vel = traj.sample(t)
        assert np.allclose(pos[0], q0) and np.allclose(pos[-1], q1)
        assert np.all(np.abs(vel) <= vmax * (1 + 1e-9))
        acc = np.diff(vel, axis=0) / np.diff(t)[:, None]
        assert np.all(np.abs(acc) <= amax * (1 + 1e-6))
        dt = t[1] - t[0]  # positions integrate the velocities (exact but at the profile's corners)
        assert np.allclose(np.diff(pos, axis=0), (vel[1:] + vel[:-1]) / 2 * dt, atol=amax.max() * dt * dt)


# ----------------------------------------------------------------------------------------- physics truth
def _limits(model: str) -> tuple[np.ndarray, np.ndarray]:
    d = ROBOT_DEFAULTS[model]
    return np.array(d["velocity_rad_s"]), np.array(d["acceleration_rad_s2"])


@pytest.mark.parametrize("model", ["panda", "kuka_iiwa"])
def test_moves_never_beat_the_limits_and_stay_within_5_percent_of_the_bound(model):
    result = compute(cell(model=model))
    vmax, amax = _limits(model)
    q = np.array(ROBOT_DEFAULTS[model]["home"])
    moves = [m for t in result.tasks for m in t.moves] + [rc.MoveResult(**result.diagnostics["return_move"])]
    bounds = 0.0
    for m in moves:
        q_end = np.array(m.q_end)
        bound = float(np.max(rc.min_joint_times(q_end - q, vmax, amax)))  # recomputed here, independently
        assert m.time_s >= bound, (m.start, m.end)
        assert m.time_s <= 1.05 * bound + 0.02, (m.start, m.end, m.time_s, bound)
        bounds += bound
        q = q_end
    assert np.allclose(q, ROBOT_DEFAULTS[model]["home"], atol=1e-9)  # the cycle closes at home
    handling = sum(t.grip_s + t.release_s for t in result.tasks)
    assert result.cycle_time_s >= bounds + handling
    assert result.cycle_time_s == pytest.approx(sum(t.cycle_time_s for t in result.tasks) + result.return_s)
    assert result.diagnostics["peak_joint_speed_ratio"] <= 1.05  # the motors track the profile


@pytest.mark.parametrize("model", ["panda", "kuka_iiwa"])
def test_moving_the_place_pose_farther_never_shortens_the_cycle(model):
    # away from the base and from the pick (conveyor at y = -0.3)
    base = {**copy.deepcopy(CELL), "model": model, "tasks": [CELL["tasks"][0]]}
    times = [compute(RobotCellConfig.model_validate(with_pose(base, "machine", [0.45, y, 0.05]))).cycle_time_s
             for y in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    assert times == sorted(times), times
    assert times[-1] > times[0]


def test_slower_joints_and_heavier_parts_never_shorten_the_cycle():
    fast = compute(cell()).cycle_time_s
    assert compute(cell(joint_limits={"velocity_scale": 0.5})).cycle_time_s > fast
    assert compute(cell(joint_limits={"acceleration_scale": 0.5})).cycle_time_s > fast
    assert compute(cell(part={"mass_kg": 3.0})).cycle_time_s >= fast


def test_an_unreachable_pose_fails_naming_task_and_pose():
    with pytest.raises(rc.RobotCellError) as err:
        compute(RobotCellConfig.model_validate(with_pose(CELL, "machine", [1.5, 0.3, 0.05])))
    assert err.value.task == "load" and err.value.pose == "machine (approach)"
    assert "out of reach" in str(err.value) and "task 'load', pose 'machine (approach)'" in str(err.value)


def test_an_ik_solution_off_the_pose_fails_instead_of_giving_a_wrong_time():
    with pytest.raises(rc.RobotCellError, match=r"misses the position by [\d.]+ mm \(tolerance 1 mm\)") as err:
        compute(RobotCellConfig.model_validate(with_pose(CELL, "machine", [0.95, 0.3, 0.05])))
    assert err.value.task == "load"
    with pytest.raises(rc.RobotCellError, match="misses the position"):
        compute(cell(tolerance_m=1e-9))


def test_a_path_through_an_obstacle_fails_naming_it():
    wall = {"name": "wall", "center": [0.45, 0.0, 0.3], "half_extents": [0.3, 0.02, 0.3]}
    with pytest.raises(rc.RobotCellError, match="collides with obstacle 'wall'") as err:
        compute(cell(obstacles=CELL["obstacles"] + [wall]))
    assert err.value.task == "load" and err.value.pose
    with pytest.raises(rc.RobotCellError, match=r"table'.*comes within .* \(clearance 60.0 mm\)"):
        compute(cell(clearance_m=0.06))  # the fingers pass about 42 mm above the table


def test_the_base_inside_an_obstacle_is_reported():
    with pytest.raises(rc.RobotCellError, match="base overlaps obstacle 'block'"):
        compute(cell(obstacles=[{"name": "block", "center": [0, 0, 0.05], "half_extents": [0.2, 0.2, 0.1]}]))


def test_grasp_by_constraint_carries_the_part_to_the_place_pose():
    result = compute(cell())
    assert result.diagnostics["max_part_offset_at_release_m"] < 1e-3
    assert all(t.grip_s == 0.3 and t.release_s == 0.2 for t in result.tasks)


def test_waypoints_and_dwell_count():
    look = {"name": "inspect", "waypoints": [{"position": [0.3, 0.0, 0.4]}, "conveyor"], "dwell_s": 0.75}
    result = compute(cell(tasks=CELL["tasks"] + [look]))
    task = result.tasks[-1]
    assert task.dwell_s == 1.5 and task.cycle_time_s == pytest.approx(task.motion_s + 1.5)


def test_the_same_cell_gives_the_same_cycle_time_every_time():
    a, b = compute(cell()), compute(cell())
    strip = lambda r: {k: v for k, v in r.to_json().items() if k != "diagnostics"}  # noqa: E731
    assert strip(a) == strip(b)
    assert a.cycle_time_s == b.cycle_time_s


def test_a_user_urdf_behaves_like_the_builtin_model():
    import pybullet_data

    v, a = _limits("kuka_iiwa")
    user = cell(model="urdf", urdf=str(Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"),
                ee_link="lbr_iiwa_link_7", tool_rpy=[0, 0, math.pi], home=list(ROBOT_DEFAULTS["kuka_iiwa"]["home"]),
                joint_limits={"velocity_rad_s": list(v), "acceleration_rad_s2": list(a)})
    assert compute(user).cycle_time_s == compute(cell(model="kuka_iiwa")).cycle_time_s
    with pytest.raises(rc.RobotCellError, match="no link 'lbr_iiwa_link7'.*Did you mean 'lbr_iiwa_link_7'"):
        compute(user.model_copy(update={"ee_link": "lbr_iiwa_link7"}))


# ----------------------------------------------------------------------------------------- cache
def test_cache_memory_and_disk(tmp_path):
    store = rc.CycleTimeCache(tmp_path / "c")
    cfg = cell()
    first = rc.cycle_time(cfg, cache=store)
    again = rc.cycle_time(cfg, cache=store)
    from_disk = rc.cycle_time(cfg, cache=rc.CycleTimeCache(tmp_path / "c"))
    assert not first.cached and again.cached and from_disk.cached
    assert first.cycle_time_s == again.cycle_time_s == from_disk.cycle_time_s
    assert from_disk.tasks == first.tasks
    assert (tmp_path / "c" / f"{first.key}.json").is_file()
    # the key follows the geometry, not the random variation around it
    assert rc.cell_key(cell(variation={"cv": 0.1})) == first.key
    moved = copy.deepcopy(CELL["obstacles"])
    moved[0]["center"] = [0.5, 0.0, -0.11]
    assert rc.cell_key(cell(obstacles=moved)) != first.key


def test_default_cache_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("YUETWIN_CACHE", str(tmp_path))
    assert rc.default_cache().directory == tmp_path / "robot"
    minutes = rc.processing_time(cell(variation={"cv": 0.05}))
    assert minutes.dist == "lognormal" and minutes.mean == pytest.approx(rc.cycle_time(cell()).cycle_time_s / 60)
    assert len(list((tmp_path / "robot").glob("*.json"))) == 1


# ----------------------------------------------------------------------------------------- render
def test_render_writes_a_png_of_the_cell(tmp_path):
    out = rc.render(cell(), tmp_path / "cell.png", width=320, height=240)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (320, 240)


# ----------------------------------------------------------------------------------------- CLI
SCENARIO = """\
name: robot_line
run: {warmup: 0, length: 480, replications: 1, seed: 1}
products:
  - name: housing
    routing:
      - {station: loader}
stations:
  - name: loader
    robot:
      model: panda
      obstacles:
        - {name: table, center: [0.5, 0, -0.1], half_extents: [0.3, 0.6, 0.1]}
        - {name: fixture, center: [0.0, -0.6, 0.1], half_extents: [0.05, 0.05, 0.05]}
      poses:
        conveyor: {position: [0.45, -0.3, 0.05]}
        machine: {position: [0.45, 0.3, 0.05]}
      tasks:
        - {name: load, pick: conveyor, place: machine}
        - {name: unload, pick: machine, place: conveyor}
orders:
  arrivals: {type: poisson, mean_interarrival: 1.0}
  mix: {housing: 1}
"""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "YUETWIN_CACHE": str(tmp_path / "cache")}
    return subprocess.run([str(Path(sys.executable).with_name("twin")), "robot-cell", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "line.yaml"
    path.write_text(SCENARIO)
    return path


def test_cli_prints_tasks_writes_json_and_keeps_pybullet_quiet(scenario, tmp_path):
    out = tmp_path / "r.json"
    res = cli(tmp_path, str(scenario), "--station", "loader", "--json", str(out), "--render", str(tmp_path / "c.png"))
    assert res.returncode == 0, res.stderr
    assert "pybullet" not in (res.stdout + res.stderr).lower()
    assert "load" in res.stdout and "unload" in res.stdout and "total" in res.stdout
    data = json.loads(out.read_text())
    assert data["station"] == "loader" and [t["name"] for t in data["tasks"]] == ["load", "unload"]
    assert all(t["cycle_time_s"] > 0 for t in data["tasks"])
    # the same cell, simulated in this process, gives the same number
    cfg = RobotCellConfig.model_validate(__import__("yaml").safe_load(SCENARIO)["stations"][0]["robot"])
    assert data["cycle_time_s"] == compute(cfg).cycle_time_s
    assert data["processing_time_min"] == {"dist": "constant", "value": data["cycle_time_s"] / 60}
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    cached = cli(tmp_path, str(scenario), "--station", "loader")
    assert cached.returncode == 0 and "from cache" in cached.stdout


def test_cli_set_moves_a_fixture_into_the_path(scenario, tmp_path):
    res = cli(tmp_path, str(scenario), "--station", "loader",
              "--set", "stations.loader.robot.obstacles.fixture.center=[0.45,0.0,0.2]")
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert "collides with obstacle 'fixture'" in res.stderr and "task 'load'" in res.stderr


def test_cli_reports_an_unreachable_pose_and_bad_names_with_exit_2(scenario, tmp_path):
    res = cli(tmp_path, str(scenario), "--station", "loader",
              "--set", "stations.loader.robot.poses.machine.position=[2.0,0.3,0.05]")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "task 'load', pose 'machine (approach)': out of reach" in res.stderr
    res = cli(tmp_path, str(scenario), "--station", "loadr")
    assert res.returncode == 2 and "Did you mean 'loader'?" in res.stderr
    res = cli(tmp_path, str(scenario), "--station", "loader", "--set", "stations.loader.robot.tolerance=0.1")
    assert res.returncode == 2 and "Did you mean 'tolerance_m'?" in res.stderr


def test_a_relative_urdf_is_relative_to_the_scenario_file(tmp_path):
    from twin.robot_cli import robot_config_for

    text = SCENARIO.replace("      model: panda", "      model: urdf\n      urdf: robots/arm.urdf\n      ee_link: tool\n"
                                                   "      joint_limits: {acceleration_rad_s2: 5.0}")
    (tmp_path / "line.yaml").write_text(text)
    got = robot_config_for(tmp_path / "line.yaml", "loader")
    assert got.urdf == str((tmp_path / "robots" / "arm.urdf").resolve())


def test_line_runs_at_the_physics_cycle_time(scenario, tmp_path, monkeypatch):
    """A saturated robot station makes one part per simulated cycle: 3600 / cycle seconds per hour."""
    monkeypatch.setenv("YUETWIN_CACHE", str(tmp_path / "cache"))
    from twin.config import load_scenario
    from twin.experiment import run_experiment

    loaded = load_scenario(scenario, ["orders.arrivals={type: backlog}", "release={policy: conwip, wip_limit: 3}"])
    seconds = rc.cycle_time(loaded.scenario.station("loader").robot).cycle_time_s
    result = run_experiment(loaded.scenario, 1, 1)
    rate = result.stations()["loader"]["throughput_per_hour"].mean
    assert rate == pytest.approx(3600 / seconds, rel=0.01)
    res = subprocess.run([str(Path(sys.executable).with_name("twin")), "run", str(scenario), "--reps", "1"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "YUETWIN_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert "pybullet" not in (res.stdout + res.stderr).lower()


def test_aircon_fixture_what_if_changes_the_cell_and_run_shows_the_bottleneck(tmp_path):
    """Moving the pad stack closer to the unit shortens the KUKA cell's physics cycle; on the line the
    cell's busy share follows utilisation = arrival rate x service time (the same units pass it, common
    random numbers), and `twin run` names the bottleneck, which stays off the lightly loaded robot."""
    aircon = ROOT / "scenarios" / "aircon_assembly.yaml"
    move = "stations.pad_loader.robot.poses.pad_stack.position=[0.3,-0.45,0.91]"
    cycles = []
    for extra in ([], ["--set", move]):
        out = tmp_path / f"cell{len(cycles)}.json"
        res = cli(tmp_path, str(aircon), "--station", "pad_loader", "--json", str(out), *extra)
        assert res.returncode == 0, res.stderr
        cycles.append(json.loads(out.read_text())["cycle_time_s"])
    assert cycles[1] < cycles[0] * 0.97  # a shorter reach, a shorter cycle

    runs = []
    for extra in ([], ["--set", move]):
        out = tmp_path / f"run{len(runs)}.json"
        res = subprocess.run([str(Path(sys.executable).with_name("twin")), "run", str(aircon), "--reps", "1",
                              "--set", "run.warmup=2880", "--set", "run.length=10080", "--json", str(out),
                              "--store", str(tmp_path / "s.duckdb"), *extra],
                             capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "YUETWIN_CACHE": str(tmp_path / "cache")}, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "Bottleneck (active period)" in res.stdout
        runs.append(json.loads(out.read_text()))
    cell = [r["stations"]["pad_loader"] for r in runs]
    busy_ratio = cell[1]["state_fractions"]["busy"]["mean"] / cell[0]["state_fractions"]["busy"]["mean"]
    rate_ratio = cell[1]["throughput_per_hour"]["mean"] / cell[0]["throughput_per_hour"]["mean"]
    assert busy_ratio == pytest.approx(rate_ratio * cycles[1] / cycles[0], rel=0.02)
    assert runs[0]["bottleneck"]["station"] == runs[1]["bottleneck"]["station"] != "pad_loader"
