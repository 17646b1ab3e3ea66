"""PutCubeOnPlate-v0: pick up the cube and put it on the plate (the RLinf SFT checkpoint's task).

Objects: the 4 cm 0.3 kg cube and the 18 cm 0.3 kg dish (gsenv.sim.objects). Initial state: arm joints
FR3 default + N(0, 0.02 rad); cube and plate on the table in their spawn regions, never overlapping
(gsenv.sim.initial_state). Success: the cube on the plate (within 7 cm of its centre, 0-7 cm above it),
released and at rest (``upstream_compat``: on the plate alone). Dense reward: reach, grasp, carry, place,
release (gsenv.sim.rewards), 5 where it succeeds. Expert: gsenv.sim.expert.scripted_expert_action.

State (obs_mode "state" flattens it in this order to [B, 46]): agent qpos [9], qvel [9]; extra is_grasped,
tcp_pose [7], cube_pose [7], plate_pose [7] (position + wxyz), tcp_to_cube_pos [3], cube_to_plate_pos [3].
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch

from gsenv.sim import names
from gsenv.sim.expert import scripted_expert_action
from gsenv.sim.initial_state import SpawnConfig, sample_one
from gsenv.sim.record import POSE_SHAPE, ROBOT_STATE, Field, TaskRecord, info, pose, robot_bodies, state
from gsenv.sim.rewards import DENSE_REWARD_MAX, dense_reward, dense_reward_terms
from gsenv.tasks.base import Task

CUBE, PLATE = names.CUBE, names.PLATE

ON_PLATE_XY = 0.07
"""cube_on_plate: |cube.xy - plate.xy| < ON_PLATE_XY (m), as upstream."""
ON_PLATE_DZ = (0.0, 0.07)
"""cube_on_plate: ON_PLATE_DZ[0] <= cube.z - plate.z <= ON_PLATE_DZ[1] (m), as upstream."""
STATIC_LIN_VEL = 0.01
"""cube_static: linear speed below this (m/s)."""
STATIC_ANG_VEL = 0.2
"""cube_static: angular speed below this (rad/s)."""
REACHED_M = 0.03
"""progress "reached": the TCP within this distance of the cube's centre (or the cube grasped)."""
LIFTED_Z = 0.04
"""progress "lifted": the grasped cube's centre at least this high above the table (2 cm off it)."""


def position_difference(v: Mapping[str, Any], start: str, end: str) -> Any:
    """``end``'s position - ``start``'s (m) [B, 3], from the record's values ("state/extra/<name>_pose"), as
    obs_extra computes it (e.g. tcp -> cube, cube -> plate)."""
    return v[f"state/extra/{end}_pose"][..., :3] - v[f"state/extra/{start}_pose"][..., :3]


def pick_and_place_record(target: str, placed: str, target_body: str | None = None) -> TaskRecord:
    """The record of a task that carries the cube onto a target (named ``target`` in the state, e.g. "plate";
    its body ``target_body``, default the same name): the robot's state, is_grasped, the TCP's, the cube's and
    the target's poses, tcp_to_cube_pos and cube_to_<target>_pos (derived); info ``placed`` (e.g.
    "cube_on_plate"), cube_static, is_grasped, success; the robot's, the cube's and the target's body poses
    (the state's). terminated is success."""
    return TaskRecord(
        state=(
            *ROBOT_STATE,
            state("extra", "is_grasped", (), "bool"),
            state("extra", "tcp_pose", POSE_SHAPE),
            state("extra", "cube_pose", POSE_SHAPE),
            state("extra", f"{target}_pose", POSE_SHAPE),
            state("extra", "tcp_to_cube_pos", (3,), derive=partial(position_difference, start="tcp", end="cube")),
            state("extra", f"cube_to_{target}_pos", (3,),
                  derive=partial(position_difference, start="cube", end=target)),
        ),
        info=(
            info(placed),
            info("cube_static"),
            info("is_grasped", same_as="state/extra/is_grasped"),
            info("success"),
        ),
        bodies=(
            *robot_bodies(tcp_same_as="state/extra/tcp_pose"),
            pose(CUBE, same_as="state/extra/cube_pose"),
            pose(target_body or target, same_as=f"state/extra/{target}_pose"),
        ),
        terminated=Field("terminated", (), "bool", same_as="info/success"),
    )


RECORD = pick_and_place_record(PLATE, "cube_on_plate")
"""25 carried arrays per env (reward, elapsed_steps, 6 state entries, 3 info scalars, 14 link poses); the
rest are the same numbers (TCP, cube and plate poses are the state's; the robot root is fr3_link0;
is_grasped is the state's; terminated is success) or differences of them."""


def staged_progress(stages: list[torch.Tensor]) -> torch.Tensor:
    """bool [B] per stage, in order -> float32 [B]: (the last stage that holds, counting 1..n) / n."""
    n = len(stages)
    reached = torch.zeros_like(stages[0], dtype=torch.float32)
    for k, holds in enumerate(stages, start=1):
        reached = torch.where(holds.bool(), torch.full_like(reached, k / n), reached)
    return reached


def at_rest(linear_velocity: torch.Tensor, angular_velocity: torch.Tensor) -> torch.Tensor:
    """bool [B]: a body with these velocities ([B, 3] each) at rest: linear speed below STATIC_LIN_VEL,
    angular below STATIC_ANG_VEL."""
    lin = torch.linalg.norm(linear_velocity, dim=1)
    ang = torch.linalg.norm(angular_velocity, dim=1)
    return (lin < STATIC_LIN_VEL) & (ang < STATIC_ANG_VEL)


def cube_static(cube) -> torch.Tensor:
    """bool [B]: the cube (a ManiSkill actor) at rest (at_rest)."""
    return at_rest(cube.linear_velocity, cube.angular_velocity)


def within(p: torch.Tensor, target_p: torch.Tensor, max_xy, dz: tuple[float, float]) -> torch.Tensor:
    """bool [B]: centres p [B, 3] closer than max_xy (a float or [B]) to the target's origin target_p [B, 3]
    in xy, and dz[0] to dz[1] above it: placed on a plate, in a bowl."""
    xy = torch.linalg.norm(p[:, :2] - target_p[:, :2], dim=1)
    height = p[:, 2] - target_p[:, 2]
    return (xy < max_xy) & (height >= dz[0]) & (height <= dz[1])


class CarryCubeTask(Task):
    """A task that carries the cube onto a target and lets go (PutCubeOnPlate, PutCubeInBowl, StackCube): what
    they share given where the cube counts as placed (``is_placed``). Its record is pick_and_place_record(target,
    placed, target_body).

    Class attributes: ``target`` (its name in the state: "<target>_pose", "cube_to_<target>_pos"), ``target_body``
    (the body, default the same name), ``placed`` (the info key of is_placed), ``place_xy`` and ``place_dz``
    (is_placed's default rule, see within), ``expert_place_height`` (the
    cube's centre above the target's origin where the expert lets go; None: the expert's default, the plate's),
    ``upstream_success`` (whether ``upstream_compat`` loosens success to "placed", as upstream's PutCubeOnPlate).
    Success: placed, released and at rest. Dense reward: gsenv.sim.rewards' staged terms towards the target.
    Progress stages: reached, grasped, lifted, placed, released. Expert: gsenv.sim.expert with the target as plate.
    """

    target: str = ""
    target_body: str | None = None
    placed: str = ""
    place_xy: float = 0.0
    place_dz: tuple[float, float] = (0.0, 0.0)
    expert_place_height: float | None = None
    upstream_success: bool = True

    def spawn_config(self, specs):
        """The cube and the target as the default spawn places the cube and the plate."""
        return SpawnConfig(cube_radius=specs[CUBE].footprint_radius,
                           plate_radius=specs[self.target_body or self.target].footprint_radius)

    def sample_initial_state(self, gen, spawn):
        s = sample_one(gen, spawn)  # joint noise [7], cube x, y, yaw, target x, y, yaw
        return {"qpos_noise": s[0:7], CUBE: s[7:10], self.target_body or self.target: s[10:13]}

    def is_placed(self, cube_p: torch.Tensor, target_p: torch.Tensor) -> torch.Tensor:
        """bool [B]: the cube (centre [B, 3]) placed on or in the target (origin [B, 3]): within place_xy of it
        in xy and place_dz above it."""
        return within(cube_p, target_p, self.place_xy, self.place_dz)

    def _target(self, env):
        """The target's actor."""
        return env.objects[self.target_body or self.target]

    def evaluate(self, env):
        cube = env.objects[CUBE]
        placed = self.is_placed(cube.pose.p, self._target(env).pose.p)
        is_grasped = env.agent.is_grasping(cube)
        static = cube_static(cube)
        loose = env.upstream_compat and self.upstream_success
        success = placed.clone() if loose else placed & ~is_grasped & static
        return {self.placed: placed, "is_grasped": is_grasped, "cube_static": static, "success": success}

    def obs_extra(self, env, info):
        tcp, cube, target = env.agent.tcp.pose, env.objects[CUBE].pose, self._target(env).pose  # reads build tensors
        return {"is_grasped": info["is_grasped"], "tcp_pose": tcp.raw_pose, "cube_pose": cube.raw_pose,
                f"{self.target}_pose": target.raw_pose, "tcp_to_cube_pos": cube.p - tcp.p,
                f"cube_to_{self.target}_pos": target.p - cube.p}

    def dense_reward_terms(self, env, info) -> dict[str, torch.Tensor]:
        """The staged terms of the dense reward (gsenv.sim.rewards), each float [B]."""
        cube = env.objects[CUBE]
        return dense_reward_terms(env.agent.tcp.pose.p, cube.pose.p, self._target(env).pose.p, cube.linear_velocity,
                                  info["is_grasped"], info[self.placed])

    def dense_reward(self, env, info):
        return dense_reward(self.dense_reward_terms(env, info), info["success"])

    def progress(self, state, info):
        extra = state["extra"]
        grasped = extra["is_grasped"].bool()
        reached = grasped | (torch.linalg.norm(extra["tcp_to_cube_pos"], dim=-1) < REACHED_M)
        lifted = grasped & (extra["cube_pose"][:, 2] >= LIFTED_Z)
        return staged_progress([reached, grasped, lifted, info[self.placed].bool(), info["success"].bool()])

    def expert_inputs(self, state):
        extra = state["extra"]
        return dict(tcp_pose=extra["tcp_pose"], cube_pose=extra["cube_pose"], plate_pose=extra[f"{self.target}_pose"],
                    gripper_qpos=state["agent"]["qpos"][:, names.NUM_ARM_JOINTS:names.NUM_JOINTS])

    def expert_action(self, **inputs):
        if self.expert_place_height is None:
            return scripted_expert_action(**inputs)
        return scripted_expert_action(**inputs, place_height=self.expert_place_height)


class PutCubeOnPlate(CarryCubeTask):
    """Pick up the cube and put it on the plate."""

    name = "PutCubeOnPlate"
    objects = (CUBE, PLATE)
    record = RECORD
    target, placed, place_xy, place_dz = PLATE, "cube_on_plate", ON_PLATE_XY, ON_PLATE_DZ
    instructions = (names.LANGUAGE_INSTRUCTION,)
    progress_stages = ("reached", "grasped", "lifted", "placed", "released")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import default_cube_spec, default_plate_spec  # SAPIEN: only where physics runs

        return {CUBE: default_cube_spec(), PLATE: default_plate_spec()}

    def demonstration_script(self, inputs):
        """The research collector's waypoints (ManiSkill-GS motionplan/solutions/pick_cube.py): pre-grasp 15 cm
        above the grasp, grasp, close (-0.5) 10 steps, up 10 cm, 10 cm above the plate, 5 cm above it, open
        15 steps, 15 cm above the plate."""
        from gsenv.sim.waypoint_expert import OPEN, RESEARCH_CLOSE, Grip, Move, top_grasp

        tcp, cube, plate = (inputs[k].double().cpu().numpy() for k in ("tcp_pose", "cube_pose", "plate_pose"))
        scripts = []
        for i in range(len(tcp)):
            grasp, q = top_grasp(tcp[i], cube[i])
            q = tuple(q)
            at_grasp = [Move(tuple(grasp + (0, 0, h)), q) for h in (0.15, 0.0, 0.10)]
            at_plate = [Move(tuple(plate[i, :3] + (0, 0, h)), q) for h in (0.10, 0.05, 0.15)]
            scripts.append([*at_grasp[:2], Grip(RESEARCH_CLOSE, 10), at_grasp[2], *at_plate[:2], Grip(OPEN, 15),
                            at_plate[2]])
        return scripts
