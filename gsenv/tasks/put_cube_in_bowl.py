"""PutCubeInBowl-v0: pick up the cube and put it in the bowl (PutCubeOnPlate's skill, another receptacle).

Objects: the 4 cm 0.3 kg cube and the 16 cm, 4 cm deep bowl (gsenv.sim.objects.bowl_spec: the plate's
build, taller). Initial state: PutCubeOnPlate's (gsenv.sim.initial_state) with the bowl in the plate's
place. Success: the cube in the bowl (its centre within IN_BOWL_XY of the bowl's axis and below the rim
top), released and at rest (``upstream_compat``: in the bowl alone). Dense reward: PutCubeOnPlate's terms
(reach, grasp, carry, place, release) with the bowl as receptacle, 5 where it succeeds. Expert:
PutCubeOnPlate's, lowering the cube onto the bowl's floor.

State (obs_mode "state": [B, 46]): agent qpos [9], qvel [9]; extra is_grasped, tcp_pose [7], cube_pose [7],
bowl_pose [7], tcp_to_cube_pos [3], cube_to_bowl_pos [3].
"""
from __future__ import annotations

import torch

from gsenv.sim import names
from gsenv.sim.expert import scripted_expert_action
from gsenv.sim.initial_state import SpawnConfig, sample_one
from gsenv.sim.rewards import DENSE_REWARD_MAX, dense_reward, dense_reward_terms
from gsenv.tasks.base import Task
from gsenv.tasks.put_cube_on_plate import (
    LIFTED_Z,
    REACHED_M,
    STATIC_ANG_VEL,
    STATIC_LIN_VEL,
    pick_and_place_record,
    staged_progress,
)

CUBE, BOWL = names.CUBE, names.BOWL

IN_BOWL_XY = names.BOWL_RADIUS - names.PLATE_RIM_THICKNESS - names.CUBE_HALF_SIZE
"""cube_in_bowl: |cube.xy - bowl.xy| below this (m): the whole cube inside the rim (5.2 cm)."""
IN_BOWL_DZ = (0.0, names.BOWL_HEIGHT / 2)
"""cube_in_bowl: IN_BOWL_DZ[0] <= cube.z - bowl.z <= IN_BOWL_DZ[1] (m): its centre below the rim top."""
PLACE_HEIGHT = names.PLATE_BASE_THICKNESS - names.BOWL_HEIGHT / 2 + names.CUBE_HALF_SIZE
"""The cube's centre above the bowl's origin when it rests on the bowl's floor (m)."""


RECORD = pick_and_place_record(BOWL, "cube_in_bowl")


class PutCubeInBowl(Task):
    """Pick up the cube and put it in the bowl."""

    name = "PutCubeInBowl"
    objects = (CUBE, BOWL)
    record = RECORD
    instructions = ("put the cube in the bowl", "pick up the cube and put it in the bowl",
                    "place the cube into the bowl")
    progress_stages = ("reached", "grasped", "lifted", "placed", "released")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import bowl_spec, default_cube_spec  # SAPIEN: only where physics runs

        return {CUBE: default_cube_spec(), BOWL: bowl_spec()}

    def spawn_config(self, specs):
        return SpawnConfig(cube_radius=specs[CUBE].footprint_radius, plate_radius=specs[BOWL].footprint_radius)

    def sample_initial_state(self, gen, spawn):
        s = sample_one(gen, spawn)  # joint noise [7], cube x, y, yaw, receptacle x, y, yaw
        return {"qpos_noise": s[0:7], CUBE: s[7:10], BOWL: s[10:13]}

    def evaluate(self, env):
        cube, bowl = env.objects[CUBE], env.objects[BOWL]
        xy = torch.linalg.norm(cube.pose.p[:, :2] - bowl.pose.p[:, :2], dim=1)
        dz = cube.pose.p[:, 2] - bowl.pose.p[:, 2]
        in_bowl = (xy < IN_BOWL_XY) & (dz >= IN_BOWL_DZ[0]) & (dz <= IN_BOWL_DZ[1])
        is_grasped = env.agent.is_grasping(cube)
        lin = torch.linalg.norm(cube.linear_velocity, dim=1)
        ang = torch.linalg.norm(cube.angular_velocity, dim=1)
        cube_static = (lin < STATIC_LIN_VEL) & (ang < STATIC_ANG_VEL)
        success = in_bowl.clone() if env.upstream_compat else in_bowl & ~is_grasped & cube_static
        return dict(cube_in_bowl=in_bowl, is_grasped=is_grasped, cube_static=cube_static, success=success)

    def obs_extra(self, env, info):
        tcp, cube, bowl = env.agent.tcp.pose, env.objects[CUBE].pose, env.objects[BOWL].pose
        return dict(is_grasped=info["is_grasped"], tcp_pose=tcp.raw_pose, cube_pose=cube.raw_pose,
                    bowl_pose=bowl.raw_pose, tcp_to_cube_pos=cube.p - tcp.p, cube_to_bowl_pos=bowl.p - cube.p)

    def dense_reward(self, env, info):
        cube = env.objects[CUBE]
        terms = dense_reward_terms(env.agent.tcp.pose.p, cube.pose.p, env.objects[BOWL].pose.p,
                                   cube.linear_velocity, info["is_grasped"], info["cube_in_bowl"])
        return dense_reward(terms, info["success"])

    def progress(self, state, info):
        extra = state["extra"]
        grasped = extra["is_grasped"].bool()
        reached = grasped | (torch.linalg.norm(extra["tcp_to_cube_pos"], dim=-1) < REACHED_M)
        lifted = grasped & (extra["cube_pose"][:, 2] >= LIFTED_Z)
        return staged_progress([reached, grasped, lifted, info["cube_in_bowl"].bool(), info["success"].bool()])

    def expert_inputs(self, state):
        extra = state["extra"]
        return dict(tcp_pose=extra["tcp_pose"], cube_pose=extra["cube_pose"], plate_pose=extra["bowl_pose"],
                    gripper_qpos=state["agent"]["qpos"][:, names.NUM_ARM_JOINTS:names.NUM_JOINTS])

    def expert_action(self, **inputs):
        return scripted_expert_action(**inputs, place_height=PLACE_HEIGHT)
