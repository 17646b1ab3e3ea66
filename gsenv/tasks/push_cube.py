"""PushCube-v0: push the cube onto the target marker without grasping it.

Objects: the cube (4 cm, 0.3 kg) and the target, a flat 10 cm disc on the table that is seen but not
collided (gsenv.sim.objects.target_spec: a kinematic body without collision shapes). Initial state: arm
joints FR3 default + N(0, 0.02 rad); the cube in its region, the target PUSH_DISTANCE away from it in a
direction within PUSH_ANGLE of straight ahead (+x). Success: the cube's centre over the target (within
TARGET_RADIUS of its centre), the cube on the table (not lifted) and not grasped. Dense reward: reach (the
TCP to the point behind the cube), push (the cube towards the target), on target; 3 where it succeeds.
Expert (:func:`push_expert_action`): the closed gripper goes above the point behind the cube (seen from
the target), down to the table, and pushes the cube along the line to the target; it goes round again
when the cube slips off the line.

State (obs_mode "state": [B, 42]): agent qpos [9], qvel [9]; extra is_grasped, tcp_pose [7], cube_pose [7],
target_pose [7], tcp_to_cube_pos [3], cube_to_target_pos [3].
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gsenv.geometry import quat_to_rotmat
from gsenv.sim import names
from gsenv.sim.expert import CLOSE, ee_action
from gsenv.sim.record import POSE_SHAPE, ROBOT_STATE, Field, TaskRecord, info, pose, robot_bodies, state
from gsenv.tasks.base import Task
from gsenv.tasks.put_cube_on_plate import staged_progress

CUBE, TARGET = names.CUBE, names.TARGET

PUSH_DISTANCE = (0.10, 0.15)
"""The target's centre this far (m) from the cube's at the start (uniform)."""
PUSH_ANGLE = math.pi / 3
"""... in a direction within this angle (rad) of +x (uniform)."""
ON_TABLE_Z = names.CUBE_HALF_SIZE + 0.005
"""success: the cube's centre below this height (m): pushed along the table, not carried."""
PUSH_Z = names.CUBE_HALF_SIZE
"""The expert's TCP height (m) while pushing: the cube's centre."""
HOVER_Z = 0.07
"""The expert's TCP height (m) when it goes round the cube."""
BEHIND = 0.045
"""The expert comes down this far (m) behind the cube's centre, on the line from the target through it."""
CONTACT = 0.03
"""The TCP's distance (m) behind the cube's centre while the closed fingers push it."""
REACHED_M = 0.02
"""progress "reached": the TCP within this distance of the point behind the cube."""
DENSE_REWARD_MAX = 3.0


@dataclass(frozen=True)
class PushSpawnConfig:
    """Where episodes start: cube xy ~ cube_center + U(-half_range, +half_range); the target from the cube
    at a distance ~ U(push_distance) in a direction ~ U(-push_angle, push_angle) about +x; the cube's yaw ~
    U(-pi, pi) if randomize_yaw else 0; arm joints = FR3 default + N(0, qpos_noise)."""

    cube_center: tuple[float, float] = (0.40, 0.10)
    cube_half_range: tuple[float, float] = (0.06, 0.08)
    push_distance: tuple[float, float] = PUSH_DISTANCE
    push_angle: float = PUSH_ANGLE
    randomize_yaw: bool = False
    qpos_noise: float = 0.02


def _tcp_to_cube_pos(v: Mapping[str, Any]) -> Any:
    return v["state/extra/cube_pose"][..., :3] - v["state/extra/tcp_pose"][..., :3]


def _cube_to_target_pos(v: Mapping[str, Any]) -> Any:
    return v["state/extra/target_pose"][..., :3] - v["state/extra/cube_pose"][..., :3]


RECORD = TaskRecord(
    state=(
        *ROBOT_STATE,
        state("extra", "is_grasped", (), "bool"),
        state("extra", "tcp_pose", POSE_SHAPE),
        state("extra", "cube_pose", POSE_SHAPE),
        state("extra", "target_pose", POSE_SHAPE),
        state("extra", "tcp_to_cube_pos", (3,), derive=_tcp_to_cube_pos),
        state("extra", "cube_to_target_pos", (3,), derive=_cube_to_target_pos),
    ),
    info=(
        info("cube_on_target"),
        info("is_grasped", same_as="state/extra/is_grasped"),
        info("success"),
    ),
    bodies=(
        *robot_bodies(tcp_same_as="state/extra/tcp_pose"),
        pose(CUBE, same_as="state/extra/cube_pose"),
        pose(TARGET, same_as="state/extra/target_pose"),
    ),
    terminated=Field("terminated", (), "bool", same_as="info/success"),
)


def push_point(cube_p: torch.Tensor, target_p: torch.Tensor, behind: float) -> torch.Tensor:
    """[B, 3]: the point ``behind`` m behind the cube's centre on the line from the target through it, at PUSH_Z."""
    d = target_p[:, :2] - cube_p[:, :2]
    u = d / torch.linalg.norm(d, dim=1, keepdim=True).clamp(min=1e-6)
    xy = cube_p[:, :2] - behind * u
    return torch.cat([xy, torch.full_like(xy[:, :1], PUSH_Z)], dim=1)


class PushCube(Task):
    """Push the cube onto the target marker without grasping it."""

    name = "PushCube"
    objects = (CUBE, TARGET)
    record = RECORD
    instructions = ("push the cube onto the target", "push the cube to the green target",
                    "slide the cube onto the green disc without picking it up")
    progress_stages = ("reached", "near", "on_target")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import default_cube_spec, target_spec  # SAPIEN: only where physics runs

        return {CUBE: default_cube_spec(), TARGET: target_spec()}

    def spawn_config(self, specs):
        return PushSpawnConfig()

    def sample_initial_state(self, gen, spawn):
        f64 = torch.float64
        noise = torch.randn(names.NUM_ARM_JOINTS, generator=gen, dtype=f64) * spawn.qpos_noise
        u = torch.rand(5, generator=gen, dtype=f64)
        cube = torch.tensor(spawn.cube_center, dtype=f64) + (2 * u[0:2] - 1) * torch.tensor(spawn.cube_half_range,
                                                                                           dtype=f64)
        lo, hi = spawn.push_distance
        dist, angle = lo + (hi - lo) * u[2], (2 * u[3] - 1) * spawn.push_angle
        target = cube + dist * torch.stack([torch.cos(angle), torch.sin(angle)])
        yaw = (2 * u[4:5] - 1) * torch.pi if spawn.randomize_yaw else torch.zeros(1, dtype=f64)
        return {"qpos_noise": noise, CUBE: torch.cat([cube, yaw]),
                TARGET: torch.cat([target, torch.zeros(1, dtype=f64)])}

    def evaluate(self, env):
        cube, target = env.objects[CUBE], env.objects[TARGET]
        on_target = torch.linalg.norm(cube.pose.p[:, :2] - target.pose.p[:, :2], dim=1) < names.TARGET_RADIUS
        on_target = on_target & (cube.pose.p[:, 2] < ON_TABLE_Z)
        is_grasped = env.agent.is_grasping(cube)
        return dict(cube_on_target=on_target, is_grasped=is_grasped, success=on_target & ~is_grasped)

    def obs_extra(self, env, info):
        tcp, cube, target = env.agent.tcp.pose, env.objects[CUBE].pose, env.objects[TARGET].pose
        return dict(is_grasped=info["is_grasped"], tcp_pose=tcp.raw_pose, cube_pose=cube.raw_pose,
                    target_pose=target.raw_pose, tcp_to_cube_pos=cube.p - tcp.p, cube_to_target_pos=target.p - cube.p)

    def dense_reward(self, env, info):
        tcp_p, cube_p, target_p = env.agent.tcp.pose.p, env.objects[CUBE].pose.p, env.objects[TARGET].pose.p
        reach = 1 - torch.tanh(5 * torch.linalg.norm(tcp_p - push_point(cube_p, target_p, CONTACT), dim=1))
        push = 1 - torch.tanh(5 * torch.linalg.norm(target_p[:, :2] - cube_p[:, :2], dim=1))
        total = reach + push + info["cube_on_target"].float()
        return torch.where(info["success"], torch.full_like(total, DENSE_REWARD_MAX), total)

    def progress(self, state, info):
        extra = state["extra"]
        cube_p, target_p = extra["cube_pose"][:, :3], extra["target_pose"][:, :3]
        reached = torch.linalg.norm(extra["tcp_pose"][:, :3] - push_point(cube_p, target_p, CONTACT), dim=1) < 0.02
        near = torch.linalg.norm(target_p[:, :2] - cube_p[:, :2], dim=1) < 2 * names.TARGET_RADIUS
        return staged_progress([reached, near, info["success"].bool()])

    def expert_inputs(self, state):
        extra = state["extra"]
        return dict(tcp_pose=extra["tcp_pose"], cube_pose=extra["cube_pose"], target_pose=extra["target_pose"])

    def expert_action(self, **inputs):
        return push_expert_action(**inputs)


def push_expert_action(tcp_pose: torch.Tensor, cube_pose: torch.Tensor, target_pose: torch.Tensor,
                       max_step: float = 0.03, max_rot: float = 0.1) -> torch.Tensor:
    """float32 [B, 7] end-effector delta action that pushes the cube onto the target, from the TCP, cube and
    target poses [B, 7] (position + wxyz): above the point behind the cube, down, then along the line."""
    f = torch.float32
    tcp_p, cube_p, target_p = tcp_pose[:, :3].to(f), cube_pose[:, :3].to(f), target_pose[:, :3].to(f)
    tcp_rot, cube_rot = quat_to_rotmat(tcp_pose[:, 3:].to(f)), quat_to_rotmat(cube_pose[:, 3:].to(f))
    d = target_p[:, :2] - cube_p[:, :2]
    dist = torch.linalg.norm(d, dim=1)
    u = d / dist[:, None].clamp(min=1e-6)
    rel = tcp_p[:, :2] - cube_p[:, :2]
    back = -(rel * u).sum(dim=1)  # how far behind the cube's centre the TCP is, along the push line
    side = (rel[:, 0] * u[:, 1] - rel[:, 1] * u[:, 0]).abs()  # its distance off the line
    low = tcp_p[:, 2] < PUSH_Z + 0.02
    in_line = low & (side < 0.012) & (back > 0.015) & (back < 0.06)

    start = push_point(cube_p, target_p, BEHIND)
    above_start = torch.cat([start[:, :2], torch.full_like(start[:, :1], HOVER_Z)], dim=1)
    to_start = torch.linalg.norm(tcp_p[:, :2] - start[:, :2], dim=1)
    # round the cube: up (where low and off the start point), across above the start point, down onto it;
    # low and near it already: straight to it (the arm tracks less well low and close to its base)
    target = torch.where((to_start < 0.01)[:, None], start, above_start)
    up = torch.cat([tcp_p[:, :2], torch.full_like(tcp_p[:, :1], HOVER_Z)], dim=1)
    target = torch.where((low & (to_start >= 0.025))[:, None], up, target)
    target = torch.where((low & (to_start < 0.025))[:, None], start, target)
    # in line: towards the point behind the target from which the cube's centre sits on the target's
    goal_tcp = torch.cat([target_p[:, :2] - CONTACT * u, torch.full_like(u[:, :1], PUSH_Z)], dim=1)
    target = torch.where(in_line[:, None], goal_tcp, target)
    target = torch.where((dist < 0.008)[:, None], tcp_p, target)  # there: stay
    grip = torch.full_like(dist, CLOSE)
    return ee_action(tcp_p, tcp_rot, cube_rot, target, grip, torch.zeros_like(low), max_step, max_rot)
