"""PickCube-v0: lift the cube and hold it 10 cm above the table.

Objects: the cube only (the 4 cm 0.3 kg cube of PutCubeOnPlate). The plate is absent, not simulated and
not drawn (GSEnv renders only the task's objects): an unused plate would be an obstacle the success rule
never mentions, and the picture and the physics would have to agree about a body the task ignores.
Initial state: arm joints FR3 default + N(0, 0.02 rad); the cube on the table in PutCubeOnPlate's cube
spawn region (yaw 0 unless randomize_yaw). Success: the cube's centre at least LIFT_Z = 10 cm above the
table, grasped, and held still (linear speed below HOLD_LIN_VEL). Dense reward: reach, grasp, lift, hold,
4 where it succeeds. Expert: the pick expert's approach and grasp (gsenv.sim.expert.grasp_phase), then up
to LIFT_GOAL_Z and hold.

State (obs_mode "state": [B, 35]): agent qpos [9], qvel [9]; extra is_grasped, tcp_pose [7], cube_pose [7],
tcp_to_cube_pos [3].
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gsenv.geometry import quat_to_rotmat
from gsenv.sim import names
from gsenv.sim.expert import CLOSE, ee_action, grasp_phase
from gsenv.sim.record import POSE_SHAPE, ROBOT_STATE, Field, TaskRecord, info, pose, robot_bodies, state
from gsenv.tasks.base import Task
from gsenv.tasks.put_cube_on_plate import staged_progress

CUBE = names.CUBE

LIFT_Z = 0.10
"""success: the cube's centre at least this high above the table (m)."""
LIFT_GOAL_Z = 0.13
"""The expert lifts the cube's centre to this height (m): above LIFT_Z with a margin."""
HOLD_LIN_VEL = 0.05
"""success: the cube's linear speed below this (m/s): held, not swung through the height."""
REACHED_M = 0.03
"""progress "reached": the TCP within this distance of the cube's centre (or the cube grasped)."""
DENSE_REWARD_MAX = 4.0


@dataclass(frozen=True)
class PickSpawnConfig:
    """Where episodes start: cube xy ~ centre + U(-half_range, +half_range) per axis; yaw ~ U(-pi, pi) if
    randomize_yaw else 0; arm joints = FR3 default + N(0, qpos_noise)."""

    cube_center: tuple[float, float] = names.CUBE_SPAWN_CENTER
    cube_half_range: tuple[float, float] = names.CUBE_SPAWN_HALF_RANGE
    randomize_yaw: bool = False
    qpos_noise: float = 0.02


def _tcp_to_cube_pos(v: Mapping[str, Any]) -> Any:
    """cube position - TCP position (m) [B, 3], as obs_extra computes it."""
    return v["state/extra/cube_pose"][..., :3] - v["state/extra/tcp_pose"][..., :3]


RECORD = TaskRecord(
    state=(
        *ROBOT_STATE,
        state("extra", "is_grasped", (), "bool"),
        state("extra", "tcp_pose", POSE_SHAPE),
        state("extra", "cube_pose", POSE_SHAPE),
        state("extra", "tcp_to_cube_pos", (3,), derive=_tcp_to_cube_pos),
    ),
    info=(
        info("cube_lifted"),
        info("cube_held_still"),
        info("is_grasped", same_as="state/extra/is_grasped"),
        info("success"),
    ),
    bodies=(*robot_bodies(tcp_same_as="state/extra/tcp_pose"), pose(CUBE, same_as="state/extra/cube_pose")),
    terminated=Field("terminated", (), "bool", same_as="info/success"),
)


class PickCube(Task):
    """Lift the cube and hold it 10 cm above the table."""

    name = "PickCube"
    objects = (CUBE,)
    record = RECORD
    instructions = ("pick up the cube and hold it above the table", "lift the cube",
                    "pick up the cube and lift it 10 cm")
    progress_stages = ("reached", "grasped", "lifted", "held")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import default_cube_spec  # SAPIEN: only where physics runs

        return {CUBE: default_cube_spec()}

    def spawn_config(self, specs):
        return PickSpawnConfig()

    def sample_initial_state(self, gen, spawn):
        noise = torch.randn(names.NUM_ARM_JOINTS, generator=gen, dtype=torch.float64) * spawn.qpos_noise
        u = torch.rand(3, generator=gen, dtype=torch.float64)
        xy = (torch.tensor(spawn.cube_center, dtype=torch.float64)
              + (2 * u[0:2] - 1) * torch.tensor(spawn.cube_half_range, dtype=torch.float64))
        yaw = (2 * u[2:3] - 1) * torch.pi if spawn.randomize_yaw else torch.zeros(1, dtype=torch.float64)
        return {"qpos_noise": noise, CUBE: torch.cat([xy, yaw])}

    def evaluate(self, env):
        cube = env.objects[CUBE]
        lifted = cube.pose.p[:, 2] >= LIFT_Z
        is_grasped = env.agent.is_grasping(cube)
        still = torch.linalg.norm(cube.linear_velocity, dim=1) < HOLD_LIN_VEL
        return dict(cube_lifted=lifted, cube_held_still=still, is_grasped=is_grasped,
                    success=lifted & is_grasped & still)

    def obs_extra(self, env, info):
        tcp, cube = env.agent.tcp.pose, env.objects[CUBE].pose
        return dict(is_grasped=info["is_grasped"], tcp_pose=tcp.raw_pose, cube_pose=cube.raw_pose,
                    tcp_to_cube_pos=cube.p - tcp.p)

    def dense_reward(self, env, info):
        cube = env.objects[CUBE]
        grasp = info["is_grasped"].float()
        reach = 1 - torch.tanh(5 * torch.linalg.norm(cube.pose.p - env.agent.tcp.pose.p, dim=-1))
        reach = torch.where(grasp > 0, torch.ones_like(reach), reach)
        lift = (1 - torch.tanh(10 * (LIFT_Z - cube.pose.p[:, 2]).clamp(min=0))) * grasp
        hold = (1 - torch.tanh(10 * torch.linalg.norm(cube.linear_velocity, dim=-1))) * (
            info["cube_lifted"] & info["is_grasped"]).float()
        total = reach + grasp + lift + hold
        return torch.where(info["success"], torch.full_like(total, DENSE_REWARD_MAX), total)

    def progress(self, state, info):
        extra = state["extra"]
        grasped = extra["is_grasped"].bool()
        reached = grasped | (torch.linalg.norm(extra["tcp_to_cube_pos"], dim=-1) < REACHED_M)
        lifted = grasped & info["cube_lifted"].bool()
        return staged_progress([reached, grasped, lifted, info["success"].bool()])

    def expert_inputs(self, state):
        extra = state["extra"]
        return dict(tcp_pose=extra["tcp_pose"], cube_pose=extra["cube_pose"],
                    gripper_qpos=state["agent"]["qpos"][:, names.NUM_ARM_JOINTS:names.NUM_JOINTS])

    def expert_action(self, tcp_pose, cube_pose, gripper_qpos, max_step: float = 0.05, max_rot: float = 0.1):
        f = torch.float32
        tcp_p, cube_p = tcp_pose[:, :3].to(f), cube_pose[:, :3].to(f)
        tcp_rot, cube_rot = quat_to_rotmat(tcp_pose[:, 3:].to(f)), quat_to_rotmat(cube_pose[:, 3:].to(f))
        target, grip, holding, _ = grasp_phase(tcp_p, cube_p, gripper_qpos.to(f).sum(dim=1))
        # holding: straight up until the cube's centre is at LIFT_GOAL_Z, then hold there (closed)
        lift_t = tcp_p + torch.stack([torch.zeros_like(cube_p[:, 0]), torch.zeros_like(cube_p[:, 0]),
                                      LIFT_GOAL_Z - cube_p[:, 2]], dim=1)
        target = torch.where(holding[:, None], lift_t, target)
        grip = torch.where(holding, torch.full_like(grip, CLOSE), grip)
        return ee_action(tcp_p, tcp_rot, cube_rot, target, grip, holding, max_step, max_rot)
