"""A task defined outside gsenv, the README's "Write your own task" example: touch the cube.

Used as `gsenv.register_task(TouchCube())`, `GSEnv(task=TouchCube())` or `gsenv collect|eval --task
touch_cube:TouchCube` with this folder on PYTHONPATH. Nothing in gsenv knows it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gsenv.sim.record import POSE_SHAPE, ROBOT_STATE, Field, TaskRecord, info, pose, robot_bodies, state
from gsenv.tasks import Task

TOUCH_M = 0.03  # success: the TCP (between the fingertips) within 3 cm of the cube's centre


@dataclass(frozen=True)
class Spawn:  # a task's spawn configuration: any frozen dataclass with these two fields at least
    randomize_yaw: bool = False
    qpos_noise: float = 0.02


class TouchCube(Task):
    name = "TouchCube"  # -> gym ids GSEnv/TouchCube-v0 and GSEnv-TouchCube-v0
    objects = ("cube",)  # the scene must draw it; the embedded scene does
    instructions = ("touch the cube", "put your fingertips on the cube")
    progress_stages = ("above", "touching")
    dense_reward_max = 1.0
    record = TaskRecord(  # what each reset and step reports, in ManiSkill's state-dict order
        state=(*ROBOT_STATE, state("extra", "tcp_pose", POSE_SHAPE), state("extra", "cube_pose", POSE_SHAPE)),
        info=(info("success"),),
        bodies=(*robot_bodies(tcp_same_as="state/extra/tcp_pose"), pose("cube", same_as="state/extra/cube_pose")),
        terminated=Field("terminated", (), "bool", same_as="info/success"),
    )

    def object_specs(self):
        from gsenv.sim.objects import default_cube_spec

        return {"cube": default_cube_spec()}

    def spawn_config(self, specs):
        return Spawn()

    def sample_initial_state(self, gen, spawn):  # from gen only: the same gen, the same episode
        noise = torch.randn(7, generator=gen, dtype=torch.float64) * spawn.qpos_noise
        xy = torch.tensor([0.40, 0.20], dtype=torch.float64) + (torch.rand(2, generator=gen, dtype=torch.float64)
                                                                * 2 - 1) * 0.05
        return {"qpos_noise": noise, "cube": torch.cat([xy, torch.zeros(1, dtype=torch.float64)])}  # x, y, yaw

    def evaluate(self, env):
        d = torch.linalg.norm(env.objects["cube"].pose.p - env.agent.tcp.pose.p, dim=1)
        return {"success": d < TOUCH_M}

    def obs_extra(self, env, info):
        return {"tcp_pose": env.agent.tcp.pose.raw_pose, "cube_pose": env.objects["cube"].pose.raw_pose}

    def dense_reward(self, env, info):
        d = torch.linalg.norm(env.objects["cube"].pose.p - env.agent.tcp.pose.p, dim=1)
        return torch.where(info["success"], torch.ones_like(d), 1 - torch.tanh(5 * d))

    def progress(self, state, info):
        tcp, cube = state["extra"]["tcp_pose"][:, :3], state["extra"]["cube_pose"][:, :3]
        above = torch.linalg.norm(tcp[:, :2] - cube[:, :2], dim=1) < 0.01
        return torch.where(info["success"], 1.0, torch.where(above, 0.5, 0.0)).float()

    def expert_inputs(self, state):
        return {"tcp_pose": state["extra"]["tcp_pose"], "cube_pose": state["extra"]["cube_pose"]}

    def expert_action(self, tcp_pose, cube_pose):  # [B, 7]: over the cube, then down onto its top
        tcp, cube = tcp_pose[:, :3].float(), cube_pose[:, :3].float()
        above = torch.linalg.norm(tcp[:, :2] - cube[:, :2], dim=1) < 0.01
        lift = torch.tensor([0.0, 0.0, 1.0])
        target = torch.where(above[:, None], cube + 0.015 * lift, cube + 0.06 * lift)
        delta = (target - tcp).clamp(-0.05, 0.05)
        return torch.cat([delta, torch.zeros_like(delta), torch.ones_like(delta[:, :1])], dim=1)  # no turn, open
