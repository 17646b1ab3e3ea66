"""Research-style demonstrations: a task's waypoint script played open loop, as ManiSkill-GS's collector does.

The research collector (ManiSkill-GS ``scripts/collect_data.py``, ``motionplan/``) steps 10 settle steps
(zero motion, gripper open) it does not record, then moves the TCP through waypoints with mplib screw
motions time-parametrised under joint velocity / acceleration limits of 0.9 rad/s and 0.9 rad/s^2, one
plan point per 0.1 s control step, each sent as the end-effector delta between consecutive planned
poses; it closes the gripper with -0.5 and holds each gripper command for a fixed number of steps.

Here a task gives the waypoints (``Task.demonstration_script``: :class:`Move` and :class:`Grip` items)
and :class:`ScriptedEpisodes` plays them for B envs at once: each move is a straight TCP line and a
rotation about one axis, timed by a trapezoidal speed profile (:class:`SpeedProfile`, fitted to the
research planner's step counts: README's "Demonstrations") and sampled like the planner's output
(``int(duration / dt)`` points from start to goal, the first a zero step). Actions are for
``pd_ee_target_delta_pose``: [dx, dy, dz, rotation vector (3), grip], all in the base frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from gsenv.sim import names

__all__ = ["OPEN", "RESEARCH_CLOSE", "SETTLE_STEPS", "Move", "Grip", "SpeedProfile", "RESEARCH_SPEED",
           "script_actions", "top_grasp", "ScriptedEpisodes"]

OPEN, RESEARCH_CLOSE = 1.0, -0.5
"""The research collector's gripper commands (-0.5 -> finger target 0.0025 m through GRIPPER_TARGET_RANGE)."""
SETTLE_STEPS = 10
"""Steps after each reset, zero motion and gripper open, that are not recorded."""


@dataclass(frozen=True)
class Move:
    """Move the TCP to ``position`` (m, base frame, [3]) with orientation ``quat`` (wxyz, [4])."""

    position: tuple[float, float, float]
    quat: tuple[float, float, float, float]


@dataclass(frozen=True)
class Grip:
    """Hold the TCP still and command the gripper ``value`` (+1 open, -1 closed) for ``steps`` steps."""

    value: float
    steps: int


@dataclass(frozen=True)
class SpeedProfile:
    """Trapezoidal TCP speed profile: translation up to ``speed`` (m/s) with ``accel`` (m/s^2), rotation up
    to ``angular_speed`` (rad/s) with ``angular_accel`` (rad/s^2); a move lasts the longer of the two.
    ``dt``: the control step (s)."""

    speed: float = 0.28
    accel: float = 0.30
    angular_speed: float = 0.9
    angular_accel: float = 0.9
    dt: float = 1.0 / names.CONTROL_FREQ


RESEARCH_SPEED = SpeedProfile()
"""Fitted to the research planner's per-move step counts on PutCubeOnPlate (scripts/research_collector_lengths.py)."""


def trapezoid_duration(distance: float, v_max: float, a_max: float) -> float:
    """Seconds to cover ``distance`` from rest to rest with speed <= v_max and acceleration <= a_max."""
    if distance <= 0:
        return 0.0
    if distance <= v_max * v_max / a_max:  # triangular: never reaches v_max
        return 2.0 * math.sqrt(distance / a_max)
    return distance / v_max + v_max / a_max


def _trapezoid_fraction(t: np.ndarray, duration: float, v_max: float, a_max: float, distance: float) -> np.ndarray:
    """Share of the distance covered at times t [N] (s) of a rest-to-rest trapezoid lasting ``duration``."""
    if distance <= 0 or duration <= 0:
        return np.ones_like(t)
    a = 4.0 * distance / duration**2 if distance <= v_max * v_max / a_max else a_max
    v = min(v_max, a * duration / 2)
    ta = v / a
    s = np.where(t < ta, 0.5 * a * t**2,
                 np.where(t <= duration - ta, 0.5 * a * ta**2 + v * (t - ta),
                          distance - 0.5 * a * (duration - t) ** 2))
    return np.clip(s / distance, 0.0, 1.0)


def move_points(start_p: np.ndarray, start_q: np.ndarray, move: Move, profile: SpeedProfile):
    """The planned TCP poses of one move: (positions [N, 3], rotations (scipy, N)), N >= 2 points from the start
    to the goal at the control step, N = int(duration / dt) as mplib's sampling of its time-parametrised path."""
    goal_p = np.asarray(move.position, dtype=np.float64)
    r0 = Rotation.from_quat(np.asarray(start_q)[[1, 2, 3, 0]])
    r1 = Rotation.from_quat(np.asarray(move.quat, dtype=np.float64)[[1, 2, 3, 0]])
    dist = float(np.linalg.norm(goal_p - start_p))
    turn = r1 * r0.inv()
    angle = float(turn.magnitude())
    duration = max(trapezoid_duration(dist, profile.speed, profile.accel),
                   trapezoid_duration(angle, profile.angular_speed, profile.angular_accel))
    n = max(2, int(duration / profile.dt))
    t = np.linspace(0.0, duration, n)
    u_p = _trapezoid_fraction(t, duration, profile.speed, profile.accel, dist) if dist > 0 else np.ones(n)
    u_r = _trapezoid_fraction(t, duration, profile.angular_speed, profile.angular_accel, angle) if angle > 0 \
        else np.ones(n)
    positions = start_p[None] + u_p[:, None] * (goal_p - start_p)[None]
    rotations = Rotation.from_rotvec(u_r[:, None] * turn.as_rotvec()[None]) * r0
    return positions, rotations


def script_actions(tcp_pose: np.ndarray, script: list, profile: SpeedProfile = RESEARCH_SPEED) -> np.ndarray:
    """float32 [T, 7] actions playing ``script`` (Move / Grip items) from the TCP pose [7] (position, wxyz):
    each move's planned poses as deltas from the previous planned pose, the gripper holding its last command."""
    p = np.asarray(tcp_pose[:3], dtype=np.float64)
    r = Rotation.from_quat(np.asarray(tcp_pose[3:7], dtype=np.float64)[[1, 2, 3, 0]])
    grip = OPEN
    out: list[np.ndarray] = []
    for item in script:
        if isinstance(item, Grip):
            if isinstance(item.steps, bool) or not isinstance(item.steps, int) or item.steps < 0:
                raise ValueError(f"Grip.steps must be a non-negative int, got {item.steps!r}")
            grip = float(item.value)
            out.extend(np.array([0, 0, 0, 0, 0, 0, grip]) for _ in range(item.steps))
        elif isinstance(item, Move):
            positions, rotations = move_points(p, r.as_quat()[[3, 0, 1, 2]], item, profile)
            for k in range(len(positions)):
                d_rot = (rotations[k] * r.inv()).as_rotvec()
                out.append(np.concatenate([positions[k] - p, d_rot, [grip]]))
                p, r = positions[k], rotations[k]
        else:
            raise TypeError(f"a demonstration script holds Move and Grip items, got {type(item).__name__}")
    return np.asarray(out, dtype=np.float32).reshape(-1, 7)


class ScriptedEpisodes:
    """Research-style demonstrations in B envs at once: per env, SETTLE_STEPS unrecorded settle steps after
    its (re)start, then the task's script (planned from the state after settling), then the episode ends.

    Per step: ``actions(expert_inputs)`` -> (float32 [B, 7], recorded bool [B]); after the env stepped,
    ``finished()`` -> bool [B], the envs whose script's last action was just applied."""

    def __init__(self, task, num_envs: int, profile: SpeedProfile = RESEARCH_SPEED, settle_steps: int = SETTLE_STEPS):
        self.task, self.profile, self.settle_steps = task, profile, settle_steps
        self._settle = np.full(num_envs, settle_steps, dtype=np.int64)  # settle steps left
        self._plans: list[np.ndarray | None] = [None] * num_envs  # [T, 7] once planned
        self._cursor = np.zeros(num_envs, dtype=np.int64)

    def restart(self, env_idx) -> None:
        """Envs ``env_idx`` were reset: settle, then plan again."""
        for i in np.atleast_1d(env_idx):
            self._settle[i], self._plans[i], self._cursor[i] = self.settle_steps, None, 0

    def actions(self, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """This step's actions float32 [B, 7] and which of them are recorded (bool [B]), from the task's expert
        inputs ({name: tensor [B, ...]}, with "tcp_pose" [B, 7]: GSEnv.get_expert_inputs())."""
        b = len(self._plans)
        act = np.zeros((b, 7), dtype=np.float32)
        act[:, 6] = OPEN
        recorded = np.zeros(b, dtype=bool)
        need = [i for i in range(b) if self._settle[i] == 0 and self._plans[i] is None]
        if need:
            scripts = self.task.demonstration_script(inputs)
            tcp = inputs["tcp_pose"].double().cpu().numpy()  # [B, 7]
            for i in need:
                self._plans[i] = script_actions(tcp[i], scripts[i], self.profile)
        for i in range(b):
            if self._settle[i] > 0:
                self._settle[i] -= 1
            elif self._cursor[i] < len(self._plans[i]):
                act[i] = self._plans[i][self._cursor[i]]
                recorded[i] = True
                self._cursor[i] += 1
        return act, recorded

    def finished(self) -> np.ndarray:
        """bool [B]: envs whose script has been played to its end."""
        return np.array([p is not None and self._cursor[i] >= len(p) for i, p in enumerate(self._plans)])


def top_grasp(tcp_pose, obj_pose, depth: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """The research collector's top-down grasp of a box-shaped object (its ``get_grasp_pose``: the OBB's
    centre, TCP z pointing down, fingers closing along the object's horizontal axis nearest the TCP's
    current closing axis, then ``depth`` m lower): (position [3], quaternion wxyz [4]) from the TCP pose
    [7] and the object's pose [7] (position + wxyz, base frame)."""
    r_tcp = Rotation.from_quat(np.asarray(tcp_pose[3:7], dtype=np.float64)[[1, 2, 3, 0]]).as_matrix()
    r_obj = Rotation.from_quat(np.asarray(obj_pose[3:7], dtype=np.float64)[[1, 2, 3, 0]]).as_matrix()
    closing_now = r_tcp[:, 1]
    z = np.array([0.0, 0.0, -1.0])
    candidates = [r_obj[:, k] - (r_obj[:, k] @ z) * z for k in (0, 1, 2)]
    candidates = [c / np.linalg.norm(c) for c in candidates if np.linalg.norm(c) > 0.5]  # the horizontal ones
    y = max(candidates, key=lambda c: abs(c @ closing_now))
    y = y if y @ closing_now >= 0 else -y
    x = np.cross(y, z)
    quat = Rotation.from_matrix(np.stack([x, y, z], axis=1)).as_quat()[[3, 0, 1, 2]]
    return np.asarray(obj_pose[:3], dtype=np.float64) + np.array([0.0, 0.0, -depth]), quat
