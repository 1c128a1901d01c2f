"""Lab 6: move a fixture of a robot cell to cut its cycle time.

Checked: the student's ``cell.yaml`` moves only the pad magazine (the obstacle ``pad_magazine`` and the
pose ``pad_stack`` on it, together), the magazine overlaps no other box of the cell, the robot can still
do every task (the physics raises no reach, joint-limit or collision error) and the physics cycle time
(``lines.robot_cell.cycle_time``) is below the target.
"""

from __future__ import annotations

from pathlib import Path
from twin.config import ScenarioError
from twin.config.robot import Obstacle, RobotCellConfig
from twin.labs import Finding, as_number, changed_paths, not_checked, read_answer, text
from twin.robot_cli import robot_config_for

TITLE = text("Lay out a robot cell for a shorter cycle", "布置机器人单元以缩短节拍")
MINUTES = 40
"""Student time on a laptop (reading, moving the magazine, running the physics a few times)."""

STATION = "pad_loader"
"""The robot station of ``cell.yaml``."""
MAGAZINE = "pad_magazine"
"""The obstacle the student moves."""
STACK = "pad_stack"
"""The pick pose on top of the magazine, which moves with it."""
TARGET_CYCLE_S = 12.5
"""The cycle time (seconds per unit) the new layout must beat; the starter layout takes 14.6 s."""
MOVED_TOGETHER_M = 0.005
"""How far (metres) the pose may be from the magazine's starter offset (the pose sits on the magazine)."""
REPORT_TOLERANCE_S = 0.05
"""How far (seconds) the reported cycle time may be from the physics."""
MOVABLE = (f"obstacles.{MAGAZINE}.center.0", f"obstacles.{MAGAZINE}.center.1", f"poses.{STACK}.position.0",
           f"poses.{STACK}.position.1")
"""What the student may change in the cell (x and y of the magazine and of the pose on it)."""
STARTER = Path(__file__).parent / "cell.yaml"
"""The cell as shipped: the reference for what must not change."""


def _obstacle(cfg: RobotCellConfig, name: str) -> Obstacle:
    return next(o for o in cfg.obstacles if o.name == name)


def move_magazine(cell: RobotCellConfig, x: float, y: float) -> RobotCellConfig:
    """``cell`` with the pad magazine's centre at ``x``, ``y`` (metres) and the pad stack moved with it."""
    old = _obstacle(cell, MAGAZINE).center
    obstacles = [o.model_copy(update={"center": (x, y, o.center[2])}) if o.name == MAGAZINE else o
                 for o in cell.obstacles]
    stack = cell.poses[STACK]
    moved = stack.model_copy(update={"position": (stack.position[0] + x - old[0], stack.position[1] + y - old[1],
                                                  stack.position[2])})
    return cell.model_copy(update={"obstacles": obstacles, "poses": {**cell.poses, STACK: moved}})


def _overlaps(a: Obstacle, b: Obstacle) -> bool:
    """Whether two upright boxes overlap (touching faces do not)."""
    return all(abs(a.center[i] - b.center[i]) < a.half_extents[i] + b.half_extents[i] - 1e-9 for i in range(3))


def layout_problems(cell: RobotCellConfig, starter: RobotCellConfig) -> list[str]:
    """Why ``cell`` is not the starter cell with the pad magazine moved (empty if it is): something else
    changed, the pose left the magazine, or the magazine overlaps another box."""
    other = [path for path in changed_paths(cell.model_dump(mode="json"), starter.model_dump(mode="json"))
             if path not in MOVABLE]
    if other:
        return [f"only x and y of {MAGAZINE}.center and of poses.{STACK}.position may change, not "
                + ", ".join(other)]
    magazine = _obstacle(cell, MAGAZINE)
    offset = [p - c for p, c in zip(cell.poses[STACK].position, magazine.center)]
    wanted = [p - c for p, c in zip(starter.poses[STACK].position, _obstacle(starter, MAGAZINE).center)]
    problems = []
    if max(abs(o - w) for o, w in zip(offset, wanted)) > MOVED_TOGETHER_M:
        problems.append(f"poses.{STACK} must stay {wanted[0]:+.2f}, {wanted[1]:+.2f}, {wanted[2]:+.2f} m from the "
                        f"centre of {MAGAZINE} (it is {offset[0]:+.2f}, {offset[1]:+.2f}, {offset[2]:+.2f} m): "
                        "move both by the same amount")
    problems += [f"{MAGAZINE} overlaps {other.name}" for other in cell.obstacles
                 if other.name != MAGAZINE and _overlaps(magazine, other)]
    return problems


def check(folder: Path) -> list[Finding]:
    """Check lab 6 in ``folder``: ``cell.yaml`` (the moved magazine) and ``answer.yaml``."""
    from lines.robot_cell import RobotCellError, cycle_time

    layout_hint = text(f"Change only the x and y of {MAGAZINE}.center and of poses.{STACK}.position, by the same "
                       "amounts, to a free spot; `--render cell.png` shows the cell.",
                       f"只修改 {MAGAZINE}.center 与 poses.{STACK}.position 的 x、y，且改动量相同，放到空位上；"
                       "用 `--render cell.png` 查看单元布局。")
    try:
        cell = robot_config_for(folder / "cell.yaml", STATION)
    except (ScenarioError, OSError) as exc:
        why = "; ".join(map(str, exc.problems)) if isinstance(exc, ScenarioError) else str(exc)
        return [Finding("layout", False, text(f"cell.yaml does not load: {why}", f"cell.yaml 无法加载：{why}"),
                        layout_hint),
                *not_checked(("reach", "cycle_time", "reported"), text("cell.yaml does not load",
                                                                        "cell.yaml 无法加载"), layout_hint)]
    starter = robot_config_for(STARTER, STATION)
    problems = layout_problems(cell, starter)
    findings = [Finding("layout", not problems, text(
        f"The layout is allowed: the pad magazine at x {_obstacle(cell, MAGAZINE).center[0]:.2f}, "
        f"y {_obstacle(cell, MAGAZINE).center[1]:.2f} m, with the pad stack on it, clear of the other boxes.",
        f"布局合规：垫块料仓位于 x {_obstacle(cell, MAGAZINE).center[0]:.2f}、"
        f"y {_obstacle(cell, MAGAZINE).center[1]:.2f} 米，垫块堆在其上，不与其他物体重叠。") if not problems else text(
        "The layout is not allowed: " + "; ".join(problems), "布局不允许：" + "; ".join(problems)), layout_hint)]
    try:
        result = cycle_time(cell)
    except RobotCellError as exc:
        findings.append(Finding("reach", False, text(f"The robot cannot do its tasks: {exc}",
                                                     f"机器人无法完成任务：{exc}"), text(
            "The pose is out of reach or a joint would leave its limits: the iiwa reaches 0.82 m from its "
            "shoulder (0.36 m above the base); a pose right beside the pedestal needs the elbow folded too far.",
            "位姿超出可达范围或某关节超限：iiwa 的可达半径为肩部（基座上方 0.36 米）起 0.82 米；"
            "紧贴底座的位姿需要肘部过度折叠。")))
        return findings + not_checked(("cycle_time", "reported"), text("the robot cannot do its tasks",
                                                                      "机器人无法完成任务"), layout_hint)
    findings.append(Finding("reach", True, text("The robot reaches every pose without a collision.",
                                                "机器人可到达所有位姿且无碰撞。")))
    before = cycle_time(starter).cycle_time_s
    cycle = result.cycle_time_s
    fast = cycle < TARGET_CYCLE_S and not problems
    findings.append(Finding("cycle_time", fast, text(
        f"Cycle time {cycle:.2f} s per unit (starter layout {before:.2f} s, target below {TARGET_CYCLE_S:g} s)"
        + ("." if fast else "; the layout must also be allowed." if cycle < TARGET_CYCLE_S else ": too slow."),
        f"节拍时间每台 {cycle:.2f} 秒（初始布局 {before:.2f} 秒，目标低于 {TARGET_CYCLE_S:g} 秒）"
        + ("。" if fast else "；但布局必须合规。" if cycle < TARGET_CYCLE_S else "：太慢。")), text(
        "Two of the three picks are at the pad stack: put it where the arm turns least between the stack and "
        "the two pad poses on the unit (the joint that moves furthest sets each move's time).",
        "三次抓取中有两次在垫块堆：把它放在机器人在料堆与机组上两个放置位之间转动最少的地方"
        "（每次移动的时间由转动最多的关节决定）。")))
    answer, problem = read_answer(folder)
    reported = as_number(answer.get("cycle_time_s"))
    right = reported is not None and abs(reported - cycle) <= REPORT_TOLERANCE_S
    findings.append(Finding("reported", right, text(
        f"Right: you measured {reported:g} s." if right else
        f"cycle_time_s {answer.get('cycle_time_s')!r} is not the cycle time of your cell.yaml "
        f"(within {REPORT_TOLERANCE_S} s){'; ' + problem if problem else ''}.",
        f"正确：你测得 {reported:g} 秒。" if right else
        f"cycle_time_s {answer.get('cycle_time_s')!r} 不是你的 cell.yaml 的节拍时间（允许误差 {REPORT_TOLERANCE_S} 秒）"
        f"{'；' + problem if problem else ''}。"), text(
        f"Run `twin robot-cell cell.yaml --station {STATION}` and copy the total after 'cycle_time_s:'.",
        f"运行 `twin robot-cell cell.yaml --station {STATION}`，把 total 一行的数值写在 'cycle_time_s:' 后。")))
    return findings
