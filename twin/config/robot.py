"""Robot cell description: the ``robot:`` block of a station in a scenario file.

Units: lengths in **metres**, angles in **radians** (poses as roll-pitch-yaw about the fixed world axes x,
y, z; joint speeds in rad/s, joint accelerations in rad/s^2), robot times in **seconds**, masses in kg.
The line engine works in minutes; :meth:`RobotCellConfig.processing_time` converts a cycle time in seconds
to the per-part processing time in minutes.

Pure pydantic: this module never imports pybullet or simpy. The physics lives in :mod:`lines.robot_cell`.

Example, under a station of a scenario::

    stations:
      - name: loader
        robot:
          model: panda
          base: {position: [0, 0, 0.8]}
          gripper: {type: parallel, grip_time_s: 0.4, release_time_s: 0.3}
          obstacles:
            - {name: table, center: [0.5, 0, 0.4], half_extents: [0.3, 0.6, 0.4]}
          poses:
            conveyor: {position: [0.45, -0.3, 0.85]}
            machine: {position: [0.45, 0.3, 0.85]}
          tasks:
            - {name: load_machine, pick: conveyor, place: machine}
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from twin.config.distributions import Constant, Lognormal, Normal

__all__ = ["GripperConfig", "JointLimits", "Obstacle", "PartConfig", "PickPlaceTask", "Pose", "RobotCellConfig",
           "TargetPose", "Variation", "WaypointTask", "ROBOT_MODELS", "ROBOT_DEFAULTS"]

ROBOT_MODELS = ("panda", "kuka_iiwa", "urdf")

# Same rule as scenario names. Not imported from twin.config.scenario, which will import this module.
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", min_length=1, max_length=64)]


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f" Did you mean '{close[0]}'?"
    return f" Known: {', '.join(sorted(known))}." if known else ""

Vec3 = tuple[float, float, float]
PositiveVec3 = tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
TOOL_DOWN: Vec3 = (math.pi, 0.0, 0.0)
"""Roll-pitch-yaw (radians) of a tool pointing straight down: the default orientation of a target pose."""

ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {
    "panda": {
        "urdf": "franka_panda/panda.urdf",
        "ee_link": "panda_grasptarget",
        "joints": 7,
        # Franka Emika datasheet / libfranka limits.
        "velocity_rad_s": (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61),
        "acceleration_rad_s2": (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
        "home": (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4),
        "tool_rpy": (0.0, 0.0, 0.0),
        "fingers": ("panda_finger_joint1", "panda_finger_joint2"),
    },
    "kuka_iiwa": {
        "urdf": "kuka_iiwa/model.urdf",
        "ee_link": "lbr_iiwa_link_7",
        "joints": 7,
        # LBR iiwa 14 R820 datasheet: 85, 85, 100, 75, 130, 135, 135 deg/s. KUKA publishes no axis
        # accelerations: the default lets every axis reach its rated speed in 0.25 s (an assumption;
        # measure your robot and override joint_limits.acceleration_rad_s2).
        "velocity_rad_s": tuple(round(math.radians(d), 4) for d in (85, 85, 100, 75, 130, 135, 135)),
        "acceleration_rad_s2": tuple(round(math.radians(d) / 0.25, 3) for d in (85, 85, 100, 75, 130, 135, 135)),
        "home": (0.0, 0.35, 0.0, -1.3, 0.0, 1.45, 0.0),
        # The flange frame points its x axis backwards when the tool points down with joint 7 at 0: turn
        # the TCP frame half a turn so that the default tool-down pose keeps joint 7 mid-range.
        "tool_rpy": (0.0, 0.0, math.pi),
        "fingers": (),
    },
}
"""Per-model defaults: URDF in pybullet_data, end-effector link, joint limits, home configuration."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pose(_Model):
    """A frame in the world: ``position`` in metres, ``rpy`` roll-pitch-yaw in radians."""

    position: Vec3 = Field(description="x, y, z in metres, world frame (z up).")
    rpy: Vec3 = Field((0.0, 0.0, 0.0), description="Roll, pitch, yaw in radians about the fixed x, y, z axes.")


class TargetPose(_Model):
    """Where the tool centre point (TCP) must go. Without ``rpy`` the tool points straight down."""

    position: Vec3 = Field(description="TCP x, y, z in metres, world frame (z up).")
    rpy: Vec3 = Field(TOOL_DOWN, description="Tool roll, pitch, yaw in radians; default (pi, 0, 0) points "
                                             "the tool straight down.")


PoseRef = Union[Name, TargetPose]
"""A pose: the name of an entry of ``poses``, or a pose written in place."""


class GripperConfig(_Model):
    """The gripper: a parallel-jaw gripper or a suction cup, and how long it takes to act."""

    type: Literal["parallel", "suction"] = "parallel"
    grip_time_s: float = Field(0.3, ge=0, le=60, description="Seconds to close / build vacuum, robot still.")
    release_time_s: float = Field(0.2, ge=0, le=60, description="Seconds to open / vent, robot still.")


class PartConfig(_Model):
    """The part carried: a box centred on the TCP while gripped (its mass loads the motors)."""

    half_extents: PositiveVec3 = Field((0.02, 0.02, 0.02), description="Half sizes x, y, z in metres.")
    mass_kg: float = Field(0.2, gt=0, le=100, description="Mass in kg.")


PerJoint = Union[Annotated[float, Field(gt=0)], list[Annotated[float, Field(gt=0)]]]


class JointLimits(_Model):
    """Joint speed and acceleration limits of the arm joints. A number applies to every joint, a list gives
    one value per joint (base to wrist). Omitted: the robot model's datasheet values (for a user URDF: the
    URDF's velocity limits; accelerations must be given). ``*_scale`` are the controller's override
    fractions, like the speed override on a teach pendant."""

    velocity_rad_s: Optional[PerJoint] = Field(None, description="Joint speed limits, rad/s.")
    acceleration_rad_s2: Optional[PerJoint] = Field(None, description="Joint acceleration limits, rad/s^2.")
    velocity_scale: float = Field(1.0, gt=0, le=1, description="Fraction of the speed limits used.")
    acceleration_scale: float = Field(1.0, gt=0, le=1, description="Fraction of the acceleration limits used.")


class Obstacle(_Model):
    """A box the robot and the carried part must not touch: table, fixture, machine housing, guard."""

    name: Name
    center: Vec3 = Field(description="Box centre x, y, z in metres, world frame.")
    half_extents: PositiveVec3 = Field(description="Half sizes along the box axes, metres.")
    rpy: Vec3 = Field((0.0, 0.0, 0.0), description="Box orientation, roll-pitch-yaw in radians.")


class PickPlaceTask(_Model):
    """Pick a part at ``pick`` and put it down at ``place``: approach, grip, retreat, transfer, approach,
    release, retreat. Approaches run ``approach_m`` along the tool axis."""

    name: Name
    pick: PoseRef
    place: PoseRef
    approach_m: Optional[float] = Field(
        None, ge=0, le=1, description="Approach / retreat distance along the tool axis, metres; default: the "
                                      "cell's approach_m.")


class WaypointTask(_Model):
    """Move through ``waypoints`` in order (no gripping), holding still ``dwell_s`` at each one."""

    name: Name
    waypoints: list[PoseRef] = Field(min_length=1)
    dwell_s: float = Field(0.0, ge=0, le=3600, description="Seconds held at each waypoint.")


def _task_kind(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        if "pick" in value or "place" in value:
            return "pick_place"
        return "waypoints" if "waypoints" in value else None
    if isinstance(value, WaypointTask):
        return "waypoints"
    if isinstance(value, PickPlaceTask):
        return "pick_place"
    return None


Task = Annotated[
    Union[Annotated[PickPlaceTask, Tag("pick_place")], Annotated[WaypointTask, Tag("waypoints")]],
    Discriminator(_task_kind, custom_error_type="task_kind",
                  custom_error_message="a task has pick and place, or waypoints"),
]


class Variation(_Model):
    """Random variation of the processing time around the physics cycle time (same mean)."""

    dist: Literal["normal", "lognormal"] = "lognormal"
    cv: float = Field(gt=0, le=1, description="Coefficient of variation: standard deviation / mean.")


class RobotCellConfig(_Model):
    """A robot cell: one robot serving a station. Its cycle time per part comes from the physics simulation
    of every task in order (:func:`lines.robot_cell.cycle_time`), starting and ending at ``home``."""

    model: Literal["panda", "kuka_iiwa", "urdf"] = Field(
        "panda", description="Franka Panda or KUKA LBR iiwa 14 from pybullet_data, or your own URDF.")
    urdf: Optional[str] = Field(None, description="URDF file of model 'urdf' (relative to the scenario file).")
    ee_link: Optional[str] = Field(None, description="Name of the link carrying the tool; default per model.")
    tool_offset_m: float = Field(0.0, ge=0, le=1, description="TCP distance beyond ee_link along its z axis, m.")
    tool_rpy: Optional[Vec3] = Field(
        None, description="TCP frame orientation relative to ee_link, radians; default per model (KUKA: "
                          "(0, 0, pi)), zeros for a URDF.")
    base: Pose = Field(default_factory=lambda: Pose(position=(0.0, 0.0, 0.0)), description="Robot base pose.")
    home: Optional[list[float]] = Field(
        None, description="Home joint angles, radians (base to wrist); default per model, zeros for a URDF.")
    gripper: GripperConfig = Field(default_factory=GripperConfig)
    part: PartConfig = Field(default_factory=PartConfig)
    joint_limits: JointLimits = Field(default_factory=JointLimits)
    obstacles: list[Obstacle] = Field(default_factory=list)
    poses: dict[Name, TargetPose] = Field(default_factory=dict, description="Named TCP poses used by tasks.")
    tasks: list[Task] = Field(min_length=1, description="What the robot does for each part, in order.")
    approach_m: float = Field(0.1, ge=0, le=1, description="Default approach / retreat distance, metres.")
    tolerance_m: float = Field(0.001, gt=0, le=0.1, description="TCP position tolerance, metres.")
    orientation_tolerance_rad: float = Field(0.01, gt=0, le=math.pi, description="Tool orientation tolerance, rad.")
    clearance_m: float = Field(0.0, ge=0, le=0.5, description="Distance robot links must keep from obstacles, m.")
    return_home: bool = Field(True, description="End each cycle at home; false: go straight back to the first "
                                                "task's first pose (the cycle then starts there).")
    variation: Optional[Variation] = None
    time_step_s: float = Field(1 / 240, gt=0, le=0.02, description="Physics time step, seconds.")

    # ------------------------------------------------------------------------------------- helpers
    def pose(self, ref: Union[str, TargetPose]) -> TargetPose:
        """The pose a task refers to (by name or in place)."""
        return self.poses[ref] if isinstance(ref, str) else ref

    def processing_time(self, cycle_time_s: float) -> Union[Constant, Normal, Lognormal]:
        """Per-part processing time in **minutes** for the line engine, as a scenario distribution: the
        physics cycle time (seconds) / 60, with ``variation`` around it if given (mean unchanged for the
        lognormal; the normal is truncated at 0, which shifts its mean by a negligible amount for cv < 0.3)."""
        if not (cycle_time_s >= 0 and math.isfinite(cycle_time_s)):
            raise ValueError(f"cycle time {cycle_time_s!r} s is not a finite non-negative number")
        minutes = cycle_time_s / 60.0
        v = self.variation
        if v is None or minutes == 0:
            return Constant(value=minutes)
        if v.dist == "normal":
            return Normal(dist="normal", mean=minutes, sd=v.cv * minutes)
        return Lognormal(dist="lognormal", mean=minutes, sd=v.cv * minutes)

    # ------------------------------------------------------------------------------------- checks
    @model_validator(mode="after")
    def _consistent(self) -> "RobotCellConfig":
        if self.model == "urdf":
            if not self.urdf:
                raise ValueError("model 'urdf' needs urdf: the path of the robot's URDF file")
            if not self.ee_link:
                raise ValueError("model 'urdf' needs ee_link: the name of the link that carries the tool")
            if self.joint_limits.acceleration_rad_s2 is None:
                raise ValueError("model 'urdf' needs joint_limits.acceleration_rad_s2 (URDF files carry no "
                                 "acceleration limits)")
        elif self.urdf is not None:
            raise ValueError(f"urdf is only read for model 'urdf', not '{self.model}'; remove it or set "
                             "model: urdf")
        if self.model in ROBOT_DEFAULTS:
            n = ROBOT_DEFAULTS[self.model]["joints"]
            for label, value in (("home", self.home), ("joint_limits.velocity_rad_s", self.joint_limits.velocity_rad_s),
                                 ("joint_limits.acceleration_rad_s2", self.joint_limits.acceleration_rad_s2)):
                if isinstance(value, list) and len(value) != n:
                    raise ValueError(f"{label} has {len(value)} values but {self.model} has {n} arm joints; "
                                     f"give {n} values (base to wrist)")
        for section, items in (("obstacles", self.obstacles), ("tasks", self.tasks)):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ValueError(f"'{item.name}' is used twice in {section}; rename one")
                seen.add(item.name)
        known = list(self.poses)
        for task in self.tasks:
            refs = [("pick", task.pick), ("place", task.place)] if isinstance(task, PickPlaceTask) else [
                (f"waypoints[{i}]", ref) for i, ref in enumerate(task.waypoints)]
            for where, ref in refs:
                if isinstance(ref, str) and ref not in self.poses:
                    raise ValueError(f"task '{task.name}' {where}: no pose named '{ref}' in poses."
                                     + (_suggest(ref, known) or " Define it under poses or write the pose in place."))
        return self
