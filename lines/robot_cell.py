"""Robot cells: a station whose processing time is the cycle time of a simulated robot (PyBullet).

:func:`cycle_time` builds the cell described by a :class:`~twin.config.robot.RobotCellConfig` in its own
PyBullet client (DIRECT mode, no window), then for every task, in order:

1. **Inverse kinematics** to every pose (approach, pick, place, waypoints), each seeded with the previous
   solution so consecutive configurations stay close. A pose beyond the arm's reach, a solution missing the
   pose by more than ``tolerance_m`` / ``orientation_tolerance_rad``, or one outside the joint limits
   raises :class:`RobotCellError` naming the task and the pose.
2. **Trajectory**: between consecutive configurations every joint follows a trapezoidal velocity profile
   under its speed and acceleration limits, all joints stretched to the time of the slowest one. That time
   is the lower bound ``max_j T_j(|dq_j|, v_j, a_j)`` itself (:func:`lower_bound`): no rest-to-rest motion
   under those limits is faster.
3. **Execution** in the simulator: the arm's position motors (with the URDF's torque limits, gravity and
   the payload) track the profile one physics step at a time; the move ends when the profile is over *and*
   the tool centre point is within tolerance of the pose. Every step, every moving link (and on transfer
   moves the carried part) is checked against every obstacle with ``getClosestPoints``; coming closer than
   ``clearance_m`` raises :class:`RobotCellError`. Obstacles never push the robot: collisions are reported,
   not simulated.
4. **Grasp and release** by constraint: after ``grip_time_s`` holding still, a part body is fixed to the
   tool with a ``JOINT_FIXED`` constraint; after ``release_time_s`` the constraint and the part are removed.

Times are seconds here. A cycle starts at ``home``, runs every task and returns home (or straight to the
first pose, ``return_home: false``). Results are cached by a SHA-256 of the cell's geometry and
parameters (the configuration without ``variation``, the URDF files, the pybullet version and
:data:`ALGORITHM_VERSION`), in memory and on disk, so the line engine never waits twice for the same
layout. The simulation is deterministic: the same cell gives the same cycle time every time.

pybullet is imported on first use, with its import banner silenced.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import re
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np

from twin.config.distributions import Constant, Lognormal, Normal
from twin.config.robot import ROBOT_DEFAULTS, PickPlaceTask, RobotCellConfig, TargetPose, WaypointTask
from twin.config.scenario import suggest

__all__ = ["ALGORITHM_VERSION", "CellResult", "CycleTimeCache", "MoveResult", "RobotCellError", "TaskResult",
           "cell_key", "cycle_time", "default_cache", "lower_bound", "min_joint_times", "plan_move",
           "processing_time", "render", "Trajectory"]

ALGORITHM_VERSION = 1
"""Part of the cache key: bump it whenever a change here can change a cycle time."""

MAX_SETTLE_S = 2.0
"""Seconds the arm may take after a profile ends to come within tolerance before the cell is rejected."""

_PROBE_M = 0.1
"""Obstacle distances are measured up to clearance_m + this (for the reported minimum clearance)."""

_BASE_CONTACT_M = 0.005
"""A base may sink this far into an obstacle (the mount it stands on; meshes are approximate)."""

_FINGER_OPEN_M = 0.04
_KP, _KD = 0.1, 1.0
"""Position and velocity gains of pybullet's joint motors: stiff enough to track the profiles within a few
steps under load, soft enough that joint speeds overshoot their limits by only a few per cent."""


# ----------------------------------------------------------------------------------------- errors
class RobotCellError(Exception):
    """A cell that cannot do its job: a pose out of reach, an IK solution off the pose by more than the
    tolerance, a path through an obstacle, a bad URDF. ``task`` and ``pose`` name where (None if the
    problem is the cell itself)."""

    def __init__(self, task: Optional[str], pose: Optional[str], message: str):
        self.task = task
        self.pose = pose
        self.message = message
        super().__init__(str(self))

    def __reduce__(self):  # picklable across worker processes despite the three-argument constructor
        return (type(self), (self.task, self.pose, self.message))

    def __str__(self) -> str:
        where = []
        if self.task is not None:
            where.append(f"task '{self.task}'")
        if self.pose is not None:
            where.append(f"pose '{self.pose}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


# ----------------------------------------------------------------------------------------- trajectories
def min_joint_times(dq: np.ndarray, vmax: np.ndarray, amax: np.ndarray) -> np.ndarray:
    """Per joint, the shortest rest-to-rest time to cover ``|dq|`` with speed <= vmax and |acc| <= amax:
    ``|dq|/v + v/a`` when the joint reaches full speed (``|dq| >= v^2/a``), else ``2 sqrt(|dq|/a)``."""
    d = np.abs(np.asarray(dq, dtype=float))
    vmax = np.asarray(vmax, dtype=float)
    amax = np.asarray(amax, dtype=float)
    return np.where(d >= vmax * vmax / amax, d / vmax + vmax / amax, 2.0 * np.sqrt(d / amax))


def lower_bound(q0: np.ndarray, q1: np.ndarray, vmax: np.ndarray, amax: np.ndarray) -> float:
    """No rest-to-rest joint motion from q0 to q1 under the limits takes less than this (seconds)."""
    dq = np.asarray(q1, dtype=float) - np.asarray(q0, dtype=float)
    return float(np.max(min_joint_times(dq, vmax, amax), initial=0.0))


@dataclass(frozen=True)
class Trajectory:
    """Trapezoidal profiles, one per joint, all lasting ``duration`` seconds. Joint j accelerates at
    ``accel[j]`` for ``t_acc[j]``, cruises at ``v_peak[j]``, decelerates at ``accel[j]``."""

    q0: np.ndarray
    q1: np.ndarray
    duration: float
    v_peak: np.ndarray
    t_acc: np.ndarray
    accel: np.ndarray

    def sample(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at times ``t`` (shape (n,)) -> two arrays of shape (n, joints)."""
        t = np.clip(np.asarray(t, dtype=float), 0.0, self.duration)[:, None]
        T, ta, v, a = self.duration, self.t_acc[None, :], self.v_peak[None, :], self.accel[None, :]
        sign = np.sign(self.q1 - self.q0)[None, :]
        rise = t < ta
        fall = t > T - ta
        dist = np.where(rise, 0.5 * a * t * t,
                        np.where(fall, v * (T - ta) - 0.5 * a * (T - t) ** 2, 0.5 * a * ta * ta + v * (t - ta)))
        vel = np.where(rise, a * t, np.where(fall, a * (T - t), v))
        pos = self.q0[None, :] + sign * dist
        at_end = t >= T
        pos = np.where(at_end, self.q1[None, :], pos)
        return pos, np.where(at_end, 0.0, sign * vel)


def plan_move(q0: np.ndarray, q1: np.ndarray, vmax: np.ndarray, amax: np.ndarray) -> Trajectory:
    """The time-optimal rest-to-rest trapezoidal trajectory from q0 to q1 under per-joint limits.

    Its duration is :func:`lower_bound` exactly: the slowest joint runs its own fastest profile, every other
    joint keeps its full acceleration and lowers its cruise speed to ``v = (aT - sqrt(a^2 T^2 - 4 a d)) / 2``
    so that all joints start and stop together. No joint exceeds its limits.
    """
    q0 = np.asarray(q0, dtype=float)
    q1 = np.asarray(q1, dtype=float)
    vmax = np.asarray(vmax, dtype=float)
    amax = np.asarray(amax, dtype=float)
    d = np.abs(q1 - q0)
    T = float(np.max(min_joint_times(d, vmax, amax), initial=0.0))
    if T <= 0.0:
        zeros = np.zeros_like(q0)
        return Trajectory(q0, q1, 0.0, zeros, zeros, amax)
    disc = np.maximum(amax * amax * T * T - 4.0 * amax * d, 0.0)
    v_peak = np.minimum((amax * T - np.sqrt(disc)) / 2.0, vmax)
    t_acc = np.minimum(v_peak / amax, T / 2.0)
    return Trajectory(q0, q1, T, v_peak, t_acc, amax)


# ----------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class MoveResult:
    """One point-to-point move: ``time_s`` simulated (profile plus settling), ``planned_s`` the profile's
    duration, ``lower_bound_s`` the limit-based bound (equal to planned_s for these profiles)."""

    start: str
    end: str
    time_s: float
    planned_s: float
    lower_bound_s: float
    max_joint_delta_rad: float
    settle_steps: int
    q_end: tuple[float, ...]
    """Joint angles at the end of the move, radians (the IK solution of ``end``)."""


@dataclass(frozen=True)
class TaskResult:
    """One task of the cycle: its time and where it went."""

    name: str
    cycle_time_s: float
    motion_s: float
    grip_s: float
    release_s: float
    dwell_s: float
    min_clearance_m: Optional[float]
    """Smallest distance from a moving link (or the part) to an obstacle; None if none came within 0.1 m."""
    closest_obstacle: Optional[str]
    moves: tuple[MoveResult, ...]


@dataclass(frozen=True)
class CellResult:
    """Cycle time of a robot cell, in seconds: per task, the closing move (``return_s``) and in total."""

    tasks: tuple[TaskResult, ...]
    return_s: float
    cycle_time_s: float
    key: str
    diagnostics: dict[str, Any] = field(default_factory=dict)
    cached: bool = False

    def to_json(self, station: Optional[str] = None) -> dict[str, Any]:
        """The JSON shape printed by ``twin robot-cell --json``."""
        tasks = []
        for t in self.tasks:
            item = asdict(t)
            item["moves"] = [asdict(m) for m in t.moves]
            tasks.append(item)
        return {"station": station, "tasks": tasks, "return_s": self.return_s, "cycle_time_s": self.cycle_time_s,
                "cache": {"key": self.key, "hit": self.cached}, "diagnostics": dict(self.diagnostics)}

    @classmethod
    def from_json(cls, data: dict[str, Any], cached: bool = False) -> "CellResult":
        def move(m: dict[str, Any]) -> MoveResult:
            return MoveResult(**{**m, "q_end": tuple(m["q_end"])})

        tasks = tuple(TaskResult(**{**t, "moves": tuple(move(m) for m in t["moves"])}) for t in data["tasks"])
        return cls(tasks, data["return_s"], data["cycle_time_s"], data["cache"]["key"], data["diagnostics"], cached)


# ----------------------------------------------------------------------------------------- cache
class CycleTimeCache:
    """Cycle times by cell key: in memory, and as one JSON file per key in ``directory`` (None = memory
    only). Keys name everything a result depends on, so entries never go stale and never need resetting.
    Files are written atomically; an unwritable directory only costs the disk copy."""

    def __init__(self, directory: Optional[Union[str, Path]] = None):
        self.directory = Path(directory).expanduser() if directory is not None else None
        self._memory: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[dict[str, Any]]:
        with self._lock:
            hit = self._memory.get(key)
        if hit is not None or self.directory is None:
            return hit
        try:
            data = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("cache", {}).get("key") != key:
            return None
        with self._lock:
            self._memory[key] = data
        return data

    def put(self, key: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._memory[key] = data
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.directory / f"{key}.json")
        except OSError:
            pass


_DEFAULT_CACHES: dict[Path, CycleTimeCache] = {}


def default_cache() -> CycleTimeCache:
    """The cache in ``$YUETWIN_CACHE/robot`` if that variable is set, else ``~/.cache/yuetwin/robot``."""
    root = os.environ.get("YUETWIN_CACHE")
    directory = (Path(root) if root else Path.home() / ".cache" / "yuetwin").expanduser() / "robot"
    cache = _DEFAULT_CACHES.get(directory)
    if cache is None:
        cache = _DEFAULT_CACHES.setdefault(directory, CycleTimeCache(directory))
    return cache


@functools.lru_cache(maxsize=None)
def _pybullet_version() -> str:
    try:
        return importlib.metadata.version("pybullet")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - pybullet is a dependency
        return "unknown"


def _urdf_path(cfg: RobotCellConfig) -> Path:
    if cfg.model == "urdf":
        return Path(cfg.urdf or "").expanduser()
    import pybullet_data  # pure data package: no banner, no C extension

    return Path(pybullet_data.getDataPath()) / ROBOT_DEFAULTS[cfg.model]["urdf"]


def _urdf_digest(cfg: RobotCellConfig) -> Optional[str]:
    """Hash of a user URDF and the mesh files it names (they are the cell's geometry too)."""
    if cfg.model != "urdf":
        return None
    path = _urdf_path(cfg)
    h = hashlib.sha256()
    try:
        text = path.read_bytes()
    except OSError:
        return "missing"
    h.update(text)
    for name in sorted(set(re.findall(rb'filename\s*=\s*"([^"]+)"', text))):
        mesh = path.parent / name.decode("utf-8", "replace")
        with contextlib.suppress(OSError):
            h.update(name + b"\0" + mesh.read_bytes())
    return h.hexdigest()


def cell_key(cfg: RobotCellConfig) -> str:
    """SHA-256 naming everything the cycle time depends on: the cell (without ``variation``, which only
    shapes the line's random draws), user URDF files, the pybullet version and :data:`ALGORITHM_VERSION`."""
    payload = {
        "algorithm": ALGORITHM_VERSION,
        "pybullet": _pybullet_version(),
        "cell": cfg.model_dump(mode="json", exclude={"variation"}),
        "urdf": _urdf_digest(cfg),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ----------------------------------------------------------------------------------------- pybullet
_IO_LOCK = threading.RLock()
_PB: Any = None


@contextlib.contextmanager
def _quiet(log: Optional[list[str]] = None) -> Iterator[None]:
    """Send whatever C code writes to file descriptors 1 and 2 (pybullet's banner and warnings) to a
    temporary file instead of the terminal; its text is appended to ``log``. Not for use while other
    threads print."""
    import sys

    with _IO_LOCK:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            libc = ctypes.CDLL(None)
        except OSError:  # pragma: no cover - no C library handle (not on Linux/macOS)
            libc = None
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:  # pragma: no cover - no standard descriptors at all
            yield
            return
        sink = tempfile.TemporaryFile()
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            if libc is not None:
                libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if log is not None:
                sink.seek(0)
                log.append(sink.read().decode("utf-8", "replace"))
            sink.close()


def _pybullet() -> Any:
    """Import pybullet once, without letting its build banner reach the terminal."""
    global _PB
    if _PB is None:
        with _quiet():
            import pybullet
        _PB = pybullet
    return _PB


def _mm(metres: float) -> str:
    return f"{metres * 1000:.3g} mm"


def _rotation(rpy: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix of roll-pitch-yaw about the fixed axes (pybullet's convention: Rz @ Ry @ Rx)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _quaternion(rot: np.ndarray) -> list[float]:
    """(x, y, z, w) of a rotation matrix."""
    m = rot
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    return [float(v) for v in q]


@dataclass(frozen=True)
class _Target:
    """A pose the TCP must reach, with the name errors use."""

    label: str
    position: np.ndarray
    rotation: np.ndarray


class _Cell:
    """One robot cell in its own PyBullet client. Always ``close()`` it."""

    def __init__(self, cfg: RobotCellConfig, p: Any):
        self.cfg = cfg
        self.p = p
        self.cid = p.connect(p.DIRECT)
        self.dt = cfg.time_step_s
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.cid is not None:
            with contextlib.suppress(Exception):
                self.p.disconnect(physicsClientId=self.cid)
            self.cid = None

    # ------------------------------------------------------------------------------ building
    def _build(self) -> None:
        p, cfg, cid = self.p, self.cfg, self.cid
        p.setTimeStep(self.dt, physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        path = _urdf_path(cfg)
        if not path.is_file():
            raise RobotCellError(None, None, f"URDF file {path} not found; check robot.urdf")
        base_rot = _rotation(cfg.base.rpy)
        try:
            self.robot = p.loadURDF(str(path), basePosition=list(cfg.base.position),
                                    baseOrientation=_quaternion(base_rot), useFixedBase=True,
                                    flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=cid)
        except p.error as exc:
            raise RobotCellError(None, None, f"pybullet cannot load the URDF {path} ({exc}); check the file") from None
        n = p.getNumJoints(self.robot, physicsClientId=cid)
        self.info = [p.getJointInfo(self.robot, j, physicsClientId=cid) for j in range(n)]
        links = {i[12].decode(): i[0] for i in self.info}
        ee_name = cfg.ee_link or ROBOT_DEFAULTS[cfg.model]["ee_link"]
        if ee_name not in links:
            raise RobotCellError(None, None, f"the URDF has no link '{ee_name}'; set ee_link."
                                 + suggest(ee_name, sorted(links)))
        self.ee = links[ee_name]
        chain = []
        j = self.ee
        while j >= 0:
            if self.info[j][2] != p.JOINT_FIXED:
                chain.append(j)
            j = self.info[j][16]
        self.arm = list(reversed(chain))
        if not self.arm:
            raise RobotCellError(None, None, f"no movable joint between the base and link '{ee_name}'")
        movable = [i[0] for i in self.info if i[2] != p.JOINT_FIXED]
        self.movable = movable
        self.dof_index = [movable.index(j) for j in self.arm]
        self.lower = np.array([self.info[j][8] for j in self.arm])
        self.upper = np.array([self.info[j][9] for j in self.arm])
        unlimited = self.lower > self.upper
        self.lower[unlimited], self.upper[unlimited] = -np.inf, np.inf
        self.vmax, self.amax = self._limits()
        efforts = np.array([self.info[j][10] for j in self.arm])
        self.forces = np.where(efforts > 0, efforts, 500.0).tolist()
        defaults = ROBOT_DEFAULTS.get(cfg.model, {})
        home = cfg.home if cfg.home is not None else defaults.get("home", [0.0] * len(self.arm))
        if len(home) != len(self.arm):
            raise RobotCellError(None, "home", f"home has {len(home)} angles but the arm has {len(self.arm)} "
                                               "joints; give one angle per joint, base to wrist")
        self.home = np.asarray(home, dtype=float)
        self._check_in_limits(self.home, None, "home")
        self.fingers = [links[f] for f in defaults.get("fingers", ()) if f in links] \
            if cfg.gripper.type == "parallel" else []
        for link in range(-1, n):
            p.setCollisionFilterGroupMask(self.robot, link, 0, 0, physicsClientId=cid)
        # obstacles: measured, never simulated (no physics contact with the robot or the part)
        self.obstacles: list[tuple[int, str]] = []
        for obs in cfg.obstacles:
            shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(obs.half_extents), physicsClientId=cid)
            visual = p.createVisualShape(p.GEOM_BOX, halfExtents=list(obs.half_extents),
                                         rgbaColor=[0.55, 0.55, 0.6, 1], physicsClientId=cid)
            body = p.createMultiBody(0, shape, visual, list(obs.center), _quaternion(_rotation(obs.rpy)),
                                     physicsClientId=cid)
            p.setCollisionFilterGroupMask(body, -1, 0, 0, physicsClientId=cid)
            self.obstacles.append((body, obs.name))
        self.link_names = {i[0]: i[12].decode() for i in self.info}
        self.link_names[-1] = "base"
        self._set_q(self.home)
        self.tcp_offset = np.array([0.0, 0.0, cfg.tool_offset_m])
        self.tool_rot = _rotation(cfg.tool_rpy if cfg.tool_rpy is not None else defaults.get("tool_rpy", (0, 0, 0)))
        # reach: joint origins are fixed on the links, so the sum of their distances bounds the reach
        origins = [np.array(p.getLinkState(self.robot, j, computeForwardKinematics=True,
                                           physicsClientId=cid)[4]) for j in self.arm]
        ee_origin = np.array(p.getLinkState(self.robot, self.ee, computeForwardKinematics=True,
                                            physicsClientId=cid)[4])
        points = origins + [ee_origin]
        self.shoulder = origins[0]
        self.reach = float(sum(np.linalg.norm(b - a) for a, b in zip(points, points[1:]))) + cfg.tool_offset_m
        for body, name in self.obstacles:
            pts = p.getClosestPoints(self.robot, body, 0.0, linkIndexA=-1, physicsClientId=cid)
            depth = min((pt[8] for pt in pts), default=0.0)
            if depth < -_BASE_CONTACT_M:
                raise RobotCellError(None, "base", f"the robot base overlaps obstacle '{name}' by "
                                                   f"{-depth * 1000:.0f} mm; move the base or the obstacle")

    def _limits(self) -> tuple[np.ndarray, np.ndarray]:
        cfg, n = self.cfg, len(self.arm)
        defaults = ROBOT_DEFAULTS.get(cfg.model, {})
        out = []
        for field_name, label in (("velocity_rad_s", "velocity"), ("acceleration_rad_s2", "acceleration")):
            value = getattr(cfg.joint_limits, field_name)
            if value is None:
                value = defaults.get(field_name)
            if value is None and label == "velocity":
                value = [self.info[j][11] for j in self.arm]
                if any(v <= 0 for v in value):
                    raise RobotCellError(None, None, "the URDF gives no velocity limit for some arm joints; set "
                                                     "joint_limits.velocity_rad_s")
            if value is None:  # pragma: no cover - the config requires it for URDF robots
                raise RobotCellError(None, None, f"no {label} limits; set joint_limits.{field_name}")
            arr = np.full(n, float(value)) if isinstance(value, (int, float)) else np.asarray(value, dtype=float)
            if arr.shape != (n,):
                raise RobotCellError(None, None, f"joint_limits.{field_name} has {arr.size} values but the arm "
                                                 f"has {n} joints; give {n} values or one number")
            out.append(arr)
        return (out[0] * cfg.joint_limits.velocity_scale, out[1] * cfg.joint_limits.acceleration_scale)

    # ------------------------------------------------------------------------------ kinematics
    def _set_q(self, q: np.ndarray) -> None:
        for j, value in zip(self.arm, q):
            self.p.resetJointState(self.robot, j, float(value), 0.0, physicsClientId=self.cid)

    def _q(self) -> tuple[np.ndarray, np.ndarray]:
        states = self.p.getJointStates(self.robot, self.arm, physicsClientId=self.cid)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def _tcp(self) -> tuple[np.ndarray, np.ndarray]:
        """Position and rotation matrix of the tool centre point."""
        state = self.p.getLinkState(self.robot, self.ee, computeForwardKinematics=True, physicsClientId=self.cid)
        rot = np.array(self.p.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        return np.array(state[4]) + rot @ self.tcp_offset, rot @ self.tool_rot

    def _error(self, target: _Target) -> tuple[float, float]:
        pos, rot = self._tcp()
        cos = (np.trace(rot.T @ target.rotation) - 1.0) / 2.0
        return float(np.linalg.norm(pos - target.position)), math.acos(min(1.0, max(-1.0, cos)))

    def _check_in_limits(self, q: np.ndarray, task: Optional[str], pose: str) -> None:
        bad = np.flatnonzero((q < self.lower - 1e-6) | (q > self.upper + 1e-6))
        if bad.size:
            j = int(bad[0])
            raise RobotCellError(task, pose, f"joint {self.link_names[self.arm[j]]} ({j + 1}) would need "
                                             f"{q[j]:.3f} rad, outside its limits [{self.lower[j]:.3f}, "
                                             f"{self.upper[j]:.3f}]")

    def ik(self, target: _Target, seed: np.ndarray, task: Optional[str]) -> tuple[np.ndarray, float, float]:
        """Joint angles putting the TCP on ``target``, near ``seed``; raises RobotCellError if none is
        within tolerance. Returns (q, position error m, orientation error rad)."""
        cfg, p = self.cfg, self.p
        distance = float(np.linalg.norm(target.position - self.shoulder))
        if distance > self.reach + cfg.tolerance_m:
            raise RobotCellError(task, target.label, f"out of reach: the TCP would be {distance:.3f} m from the "
                                                     f"robot's first joint, beyond its reach of {self.reach:.3f} m; "
                                                     "move the pose closer or the robot base")
        self._set_q(seed)
        perr, oerr = self._error(target)
        if perr <= 1e-6 and oerr <= 1e-5:  # already there (the same pose twice in a row): do not move
            return seed.copy(), perr, oerr
        flange_rot = target.rotation @ self.tool_rot.T
        flange = (target.position - flange_rot @ self.tcp_offset).tolist()
        quat = _quaternion(flange_rot)
        lower_all = [self.info[j][8] for j in self.movable]
        upper_all = [self.info[j][9] for j in self.movable]
        ranges = [max(u - lo, 0.0) if u >= lo else 2 * math.pi for lo, u in zip(lower_all, upper_all)]
        best: Optional[tuple[float, np.ndarray, float, float]] = None
        limit_problem: Optional[np.ndarray] = None
        for nullspace in (False, True):
            self._set_q(seed)
            q = seed.copy()
            kwargs: dict[str, Any] = {}
            if nullspace:
                rest = [self.p.getJointState(self.robot, j, physicsClientId=self.cid)[0] for j in self.movable]
                kwargs = {"lowerLimits": lower_all, "upperLimits": upper_all, "jointRanges": ranges,
                          "restPoses": rest}
            for _ in range(30):
                sol = p.calculateInverseKinematics(self.robot, self.ee, flange, quat, maxNumIterations=100,
                                                   residualThreshold=1e-7, physicsClientId=self.cid, **kwargs)
                q = np.array([sol[i] for i in self.dof_index])
                self._set_q(q)
                perr, oerr = self._error(target)
                if perr < 1e-6 and oerr < 1e-5:
                    break
            if np.any((q < self.lower - 1e-6) | (q > self.upper + 1e-6)):
                limit_problem = q
                continue
            score = perr / cfg.tolerance_m + oerr / cfg.orientation_tolerance_rad
            if best is None or score < best[0]:
                best = (score, q, perr, oerr)
            if perr <= cfg.tolerance_m and oerr <= cfg.orientation_tolerance_rad:
                break
        if best is None:  # every attempt left the joint limits
            self._check_in_limits(limit_problem if limit_problem is not None else q, task, target.label)
            raise RobotCellError(task, target.label, "no IK solution within the joint limits")
        _, q, perr, oerr = best
        if perr > cfg.tolerance_m:
            raise RobotCellError(task, target.label, f"the best IK solution misses the position by {_mm(perr)} "
                                                     f"(tolerance {_mm(cfg.tolerance_m)}): the pose is at the edge "
                                                     "of the workspace or not reachable with this tool orientation")
        if oerr > cfg.orientation_tolerance_rad:
            raise RobotCellError(task, target.label, f"the best IK solution misses the tool orientation by "
                                                     f"{oerr:.3g} rad (tolerance {cfg.orientation_tolerance_rad:.3g}"
                                                     " rad): the robot cannot hold the tool this way there")
        return q, perr, oerr

    # ------------------------------------------------------------------------------ simulation
    def _command(self, q: np.ndarray, qd: np.ndarray) -> None:
        self.p.setJointMotorControlArray(self.robot, self.arm, self.p.POSITION_CONTROL, targetPositions=q.tolist(),
                                         targetVelocities=qd.tolist(), forces=self.forces,
                                         positionGains=[_KP] * len(self.arm), velocityGains=[_KD] * len(self.arm),
                                         physicsClientId=self.cid)

    def _fingers(self, opening: float) -> None:
        for j in self.fingers:
            self.p.setJointMotorControl2(self.robot, j, self.p.POSITION_CONTROL, targetPosition=opening, force=20,
                                         physicsClientId=self.cid)

    def _clearance(self, part: Optional[int]) -> list[tuple[float, str, str]]:
        """(distance, obstacle, link) of every moving link (and the part) within the probe distance."""
        probe = self.cfg.clearance_m + _PROBE_M
        found = []
        for body, name in self.obstacles:
            for pt in self.p.getClosestPoints(self.robot, body, probe, physicsClientId=self.cid):
                if pt[3] != -1:
                    found.append((pt[8], name, self.link_names[pt[3]]))
            if part is not None:
                for pt in self.p.getClosestPoints(part, body, probe, physicsClientId=self.cid):
                    found.append((pt[8], name, "the carried part"))
        return found


@dataclass
class _Run:
    """Bookkeeping of one simulated cycle."""

    q: np.ndarray
    steps: int = 0
    peak_speed_ratio: float = 0.0
    min_clearance: Optional[float] = None
    closest: Optional[str] = None
    move_clearance: Optional[float] = None
    move_closest: Optional[str] = None
    part: Optional[int] = None
    constraint: Optional[int] = None
    part_offset: float = 0.0


def _targets(cfg: RobotCellConfig) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Per task, its steps: ("move", (target, check the part)), ("grip", None), ("release", None),
    ("dwell", seconds). The carried part is checked against obstacles on the transfer move only (between
    the approach poses): near the pick and place poses it rests on, or next to, its support."""
    out = []
    for task in cfg.tasks:
        steps: list[tuple[str, Any]] = []

        def target(ref: Any, label: str, back_off: float = 0.0) -> _Target:
            pose: TargetPose = cfg.pose(ref)
            rot = _rotation(pose.rpy)
            pos = np.asarray(pose.position, dtype=float) - back_off * rot[:, 2]
            return _Target(label + (" (approach)" if back_off > 0 else ""), pos, rot)

        if isinstance(task, PickPlaceTask):
            d = cfg.approach_m if task.approach_m is None else task.approach_m
            pick = task.pick if isinstance(task.pick, str) else "pick"
            place = task.place if isinstance(task.place, str) else "place"
            if d > 0:
                steps.append(("move", (target(task.pick, pick, d), False)))
            steps += [("move", (target(task.pick, pick), False)), ("grip", None)]
            if d > 0:
                steps += [("move", (target(task.pick, pick, d), False)),
                          ("move", (target(task.place, place, d), True))]
            steps += [("move", (target(task.place, place), False)), ("release", None)]
            if d > 0:
                steps.append(("move", (target(task.place, place, d), False)))
        else:
            assert isinstance(task, WaypointTask)
            for i, ref in enumerate(task.waypoints):
                steps.append(("move", (target(ref, ref if isinstance(ref, str) else f"waypoints[{i}]"), False)))
                if task.dwell_s > 0:
                    steps.append(("dwell", task.dwell_s))
        out.append((task.name, steps))
    return out


def _simulate(cfg: RobotCellConfig, p: Any) -> dict[str, Any]:
    started = time.perf_counter()
    cell = _Cell(cfg, p)
    try:
        plan = _targets(cfg)
        # 1. inverse kinematics for every pose, seeded by the previous solution
        q = cell.home
        solutions: list[list[Optional[np.ndarray]]] = []
        ik_pos_err = ik_orn_err = 0.0
        for name, steps in plan:
            row: list[Optional[np.ndarray]] = []
            for kind, arg in steps:
                if kind == "move":
                    q, perr, oerr = cell.ik(arg[0], q, name)
                    ik_pos_err, ik_orn_err = max(ik_pos_err, perr), max(ik_orn_err, oerr)
                    row.append(q)
                else:
                    row.append(None)
            solutions.append(row)
        first = next(s for s in solutions[0] if s is not None)
        start = cell.home if cfg.return_home else first
        start_label = "home" if cfg.return_home else next(a[0].label for k, a in plan[0][1] if k == "move")
        # 2.-4. execute from the start configuration
        cell._set_q(start)
        cell._command(start, np.zeros_like(start))
        cell._fingers(_FINGER_OPEN_M)
        for j in cell.fingers:
            p.resetJointState(cell.robot, j, _FINGER_OPEN_M, physicsClientId=cell.cid)
        run = _Run(q=start.copy())
        tasks = []
        label = start_label
        for (name, steps), row in zip(plan, solutions):
            moves: list[MoveResult] = []
            grip = release = dwell = 0.0
            task_min: Optional[float] = None
            task_closest: Optional[str] = None
            for (kind, arg), q_to in zip(steps, row):
                if kind == "move":
                    target, carry = arg
                    move, clearance = _move(cell, run, q_to, label, target, name, carry)
                    moves.append(move)
                    label = target.label
                    if clearance is not None and (task_min is None or clearance[0] < task_min):
                        task_min, task_closest = clearance
                elif kind == "grip":
                    _grip(cell, run)
                    grip += cfg.gripper.grip_time_s
                elif kind == "release":
                    _release(cell, run)
                    release += cfg.gripper.release_time_s
                else:
                    _hold(cell, run, arg)
                    dwell += arg
            motion = sum(m.time_s for m in moves)
            tasks.append(TaskResult(name, motion + grip + release + dwell, motion, grip, release, dwell,
                                    task_min, task_closest, tuple(moves)))
        back = _Target(start_label, *_pose_of(cell, start))
        closing, _ = _move(cell, run, start, label, back, None, False)
        total = sum(t.cycle_time_s for t in tasks) + closing.time_s
        diagnostics = {
            "robot": cfg.model, "joints": len(cell.arm), "reach_m": round(cell.reach, 4),
            "velocity_limits_rad_s": [round(float(v), 4) for v in cell.vmax],
            "acceleration_limits_rad_s2": [round(float(a), 4) for a in cell.amax],
            "time_step_s": cfg.time_step_s, "physics_steps": run.steps,
            "peak_joint_speed_ratio": round(run.peak_speed_ratio, 4),
            "ik_max_position_error_m": ik_pos_err, "ik_max_orientation_error_rad": ik_orn_err,
            "min_clearance_m": run.min_clearance, "closest_obstacle": run.closest,
            "max_part_offset_at_release_m": run.part_offset,
            "return_move": asdict(closing), "pybullet": _pybullet_version(),
            "compute_wall_s": round(time.perf_counter() - started, 4),
        }
        return {"tasks": tasks, "return_s": closing.time_s, "cycle_time_s": total, "diagnostics": diagnostics}
    finally:
        cell.close()


def _pose_of(cell: _Cell, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TCP position and rotation at configuration q (restores nothing: use before the run continues)."""
    saved, _ = cell._q()
    cell._set_q(q)
    pos, rot = cell._tcp()
    cell._set_q(saved)
    return pos, rot


def _step(cell: _Cell, run: _Run, check: bool, task: Optional[str], frm: str, target: _Target,
          carry: bool) -> None:
    cell.p.stepSimulation(physicsClientId=cell.cid)
    run.steps += 1
    _, qd = cell._q()
    run.peak_speed_ratio = max(run.peak_speed_ratio, float(np.max(np.abs(qd) / cell.vmax)))
    if not check or not cell.obstacles:
        return
    for distance, obstacle, link in cell._clearance(run.part if carry else None):
        if run.move_clearance is None or distance < run.move_clearance:
            run.move_clearance, run.move_closest = distance, obstacle
        if distance < cell.cfg.clearance_m:
            what = (f"penetrates it by {-distance * 1000:.1f} mm" if distance < 0 else
                    f"comes within {distance * 1000:.1f} mm (clearance {cell.cfg.clearance_m * 1000:.1f} mm)")
            raise RobotCellError(task, target.label, f"the path from '{frm}' collides with obstacle "
                                                     f"'{obstacle}': {link} {what}; move the obstacle or the "
                                                     "pose, or add a waypoint around it")


def _move(cell: _Cell, run: _Run, q_to: np.ndarray, frm: str, target: _Target, task: Optional[str],
          carry: bool) -> tuple[MoveResult, Optional[tuple[float, str]]]:
    cfg = cell.cfg
    run.move_clearance, run.move_closest = None, None
    traj = plan_move(run.q, q_to, cell.vmax, cell.amax)
    n = int(math.ceil(traj.duration / cell.dt - 1e-9))
    if n:
        qs, qds = traj.sample(np.arange(1, n + 1) * cell.dt)
        for k in range(n):
            cell._command(qs[k], qds[k])
            _step(cell, run, True, task, frm, target, carry)
    cell._command(q_to, np.zeros_like(q_to))
    settle = 0
    while True:
        perr, oerr = cell._error(target)
        if perr <= cfg.tolerance_m and oerr <= cfg.orientation_tolerance_rad:
            break
        if settle * cell.dt >= MAX_SETTLE_S:
            raise RobotCellError(task, target.label, f"the arm did not settle within tolerance {MAX_SETTLE_S} s "
                                                     f"after the move from '{frm}' (still {perr * 1000:.2f} mm, "
                                                     f"{oerr:.4f} rad off): the motors cannot hold the pose with "
                                                     "this payload")
        _step(cell, run, True, task, frm, target, carry)
        settle += 1
    run.q = q_to
    clearance = None
    if run.move_clearance is not None:
        clearance = (run.move_clearance, run.move_closest)
        if run.min_clearance is None or run.move_clearance < run.min_clearance:
            run.min_clearance, run.closest = run.move_clearance, run.move_closest
    move = MoveResult(frm, target.label, (n + settle) * cell.dt, traj.duration,
                      lower_bound(traj.q0, q_to, cell.vmax, cell.amax),
                      float(np.max(np.abs(q_to - traj.q0), initial=0.0)), settle,
                      tuple(round(float(v), 12) for v in q_to))
    return move, clearance


def _hold(cell: _Cell, run: _Run, seconds: float) -> None:
    cell._command(run.q, np.zeros_like(run.q))
    for _ in range(int(math.ceil(seconds / cell.dt - 1e-9))):
        cell.p.stepSimulation(physicsClientId=cell.cid)
        run.steps += 1


def _grip(cell: _Cell, run: _Run) -> None:
    p, cfg, cid = cell.p, cell.cfg, cell.cid
    width = cfg.part.half_extents[1]
    cell._fingers(min(width, _FINGER_OPEN_M))
    _hold(cell, run, cfg.gripper.grip_time_s)
    pos, rot = cell._tcp()
    shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(cfg.part.half_extents), physicsClientId=cid)
    visual = p.createVisualShape(p.GEOM_BOX, halfExtents=list(cfg.part.half_extents), rgbaColor=[0.9, 0.5, 0.1, 1],
                                 physicsClientId=cid)
    run.part = p.createMultiBody(cfg.part.mass_kg, shape, visual, pos.tolist(), _quaternion(rot),
                                 physicsClientId=cid)
    p.setCollisionFilterGroupMask(run.part, -1, 0, 0, physicsClientId=cid)
    # constraint frames are relative to the link's centre of mass, not to its URDF frame
    state = p.getLinkState(cell.robot, cell.ee, computeForwardKinematics=True, physicsClientId=cid)
    com_rot = np.array(p.getMatrixFromQuaternion(state[1])).reshape(3, 3)
    in_com = (com_rot.T @ (pos - np.array(state[0]))).tolist()
    run.constraint = p.createConstraint(cell.robot, cell.ee, run.part, -1, p.JOINT_FIXED, [0, 0, 0], in_com,
                                        [0, 0, 0], _quaternion(com_rot.T @ rot), physicsClientId=cid)
    p.changeConstraint(run.constraint, maxForce=1e4, physicsClientId=cid)


def _release(cell: _Cell, run: _Run) -> None:
    p, cid = cell.p, cell.cid
    if run.part is not None:  # how far the constraint let the part slip from the TCP on the way
        where = np.array(p.getBasePositionAndOrientation(run.part, physicsClientId=cid)[0])
        run.part_offset = max(run.part_offset, float(np.linalg.norm(where - cell._tcp()[0])))
    if run.constraint is not None:
        p.removeConstraint(run.constraint, physicsClientId=cid)
    cell._fingers(_FINGER_OPEN_M)
    _hold(cell, run, cell.cfg.gripper.release_time_s)
    if run.part is not None:
        p.removeBody(run.part, physicsClientId=cid)
    run.part = run.constraint = None


# ----------------------------------------------------------------------------------------- public API
_DEFAULT = object()


def cycle_time(cfg: RobotCellConfig, cache: Any = _DEFAULT) -> CellResult:
    """Cycle time of one part through the cell, in seconds, from the physics simulation.

    ``cache``: a :class:`CycleTimeCache`, None to always simulate, or omitted for :func:`default_cache`.
    Raises :class:`RobotCellError` if the cell cannot do its tasks (naming the task and pose).
    """
    store: Optional[CycleTimeCache] = default_cache() if cache is _DEFAULT else cache
    key = cell_key(cfg)
    if store is not None:
        hit = store.get(key)
        if hit is not None:
            return CellResult.from_json(hit, cached=True)
    p = _pybullet()
    log: list[str] = []
    try:
        with _quiet(log):
            raw = _simulate(cfg, p)
    except p.error as exc:
        detail = " ".join(log).strip().splitlines()
        hint = f" (pybullet said: {detail[-1].strip()})" if detail else ""
        raise RobotCellError(None, None, f"pybullet failed: {exc}{hint}") from None
    result = CellResult(tuple(raw["tasks"]), raw["return_s"], raw["cycle_time_s"], key, raw["diagnostics"])
    if store is not None:
        store.put(key, result.to_json())
    return result


def processing_time(cfg: RobotCellConfig, cache: Any = _DEFAULT) -> Union[Constant, Normal, Lognormal]:
    """Per-part processing time of the robot station in **minutes**, as a scenario distribution (constant,
    or normal / lognormal around the physics cycle time if ``variation`` is set). Cached like
    :func:`cycle_time`: after the first call for a layout this costs a hash and a dictionary look-up."""
    return cfg.processing_time(cycle_time(cfg, cache).cycle_time_s)


# ----------------------------------------------------------------------------------------- rendering
def _png(path: Path, rgb: np.ndarray) -> None:
    """Write an 8-bit RGB image (height, width, 3) as PNG with the standard library only."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


_COLORS = {"pick": [0.1, 0.75, 0.2, 1], "place": [0.15, 0.35, 0.95, 1], "waypoint": [0.95, 0.55, 0.05, 1],
           "approach": [0.85, 0.85, 0.2, 1]}


def render(cfg: RobotCellConfig, out_png: Union[str, Path], width: int = 640, height: int = 480) -> Path:
    """Draw the cell with PyBullet's ER_TINY_RENDERER: the robot at home, obstacles in grey, and the poses
    as spheres (pick green, place blue, waypoints orange, approach points yellow). Works for cells that
    fail :func:`cycle_time` too, so you can see why. Returns the PNG path."""
    out = Path(out_png)
    p = _pybullet()
    with _quiet():
        cell = _Cell(cfg, p)
        try:
            cid = cell.cid
            points = [np.asarray(cfg.base.position, dtype=float)]
            for obs in cfg.obstacles:
                c, h = np.asarray(obs.center), np.asarray(obs.half_extents)
                points += [c - h, c + h]
            for name, steps in _targets(cfg):
                kinds = [k for k, _ in steps]
                for kind, arg in steps:
                    if kind != "move":
                        continue
                    target = arg[0]
                    if target.label.endswith("(approach)"):
                        color, radius = _COLORS["approach"], 0.012
                    elif "grip" in kinds and not arg[1] and _is_pick(steps, target):
                        color, radius = _COLORS["pick"], 0.02
                    elif "grip" in kinds:
                        color, radius = _COLORS["place"], 0.02
                    else:
                        color, radius = _COLORS["waypoint"], 0.02
                    visual = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=color, physicsClientId=cid)
                    p.createMultiBody(0, -1, visual, target.position.tolist(), physicsClientId=cid)
                    points.append(target.position)
            floor = p.createVisualShape(p.GEOM_BOX, halfExtents=[3, 3, 0.001], rgbaColor=[0.92, 0.92, 0.9, 1],
                                        physicsClientId=cid)
            p.createMultiBody(0, -1, floor, [0, 0, -0.001], physicsClientId=cid)
            pts = np.array(points)
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            lo[2] = min(lo[2], 0.0)
            hi[2] = max(hi[2], cfg.base.position[2] + 1.0)
            centre = (lo + hi) / 2
            extent = float(np.linalg.norm(hi - lo))
            fov = 50.0
            distance = max(extent, 0.8) / (2 * math.tan(math.radians(fov / 2))) * 0.95
            view = p.computeViewMatrixFromYawPitchRoll(centre.tolist(), distance, 60, -25, 0, 2, physicsClientId=cid)
            proj = p.computeProjectionMatrixFOV(fov, width / height, 0.05, 50, physicsClientId=cid)
            _, _, rgba, _, _ = p.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER,
                                                physicsClientId=cid)
        finally:
            cell.close()
    image = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
    _png(out, np.ascontiguousarray(image))
    return out


def _is_pick(steps: list[tuple[str, Any]], target: _Target) -> bool:
    """True if ``target`` is the pose at which the task grips (the move right before 'grip')."""
    for (kind, arg), (nxt, _) in zip(steps, steps[1:]):
        if kind == "move" and nxt == "grip" and arg[0] is target:
            return True
    return False
