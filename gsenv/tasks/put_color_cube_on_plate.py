"""PutColorCubeOnPlate-v0: two to four cubes of different colours; put the one the instruction names on the plate.

Objects: the red, green, blue and yellow cubes (the cube's size and mass) and the plate. Initial state
(from the env's per-episode generator): 2-4 of the cubes on the table in the cube region, at least
MIN_CUBE_GAP apart (the others parked out of sight, PARK_X m away behind the wall), the plate in its
spawn region, and which present cube the instruction names (``goal``, kept in ``env.episode_values``).
The instruction: one of several phrasings (drawn per episode like every task's) with the named cube's
colour filled in. Success: the named cube on the plate, released and at rest (PutCubeOnPlate's rule and
thresholds); any other cube on the plate counts for nothing. Dense reward, progress: PutCubeOnPlate's,
of the named cube. Expert: PutCubeOnPlate's expert on the named cube.

State (obs_mode "state": [B, 82]): agent qpos [9], qvel [9]; extra is_grasped (the named cube), tcp_pose
[7], goal_pose [7] (the named cube's), plate_pose [7], red/green/blue/yellow_cube_pose [7] each, goal [4]
(one-hot over red, green, blue, yellow), tcp_to_goal_pos [3], goal_to_plate_pos [3].
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gsenv.sim import names
from gsenv.sim.expert import scripted_expert_action
from gsenv.sim.record import POSE_SHAPE, ROBOT_STATE, Field, TaskRecord, info, pose, robot_bodies, state
from gsenv.sim.rewards import DENSE_REWARD_MAX, dense_reward, dense_reward_terms
from gsenv.tasks.base import Task
from gsenv.tasks.put_cube_on_plate import (
    LIFTED_Z,
    ON_PLATE_DZ,
    ON_PLATE_XY,
    REACHED_M,
    at_rest,
    staged_progress,
    within,
)

PLATE = names.PLATE
CUBES = tuple(names.COLOR_CUBES)
"""The cube objects, in the one-hot ``goal``'s order: red, green, blue, yellow."""
COLORS = tuple(c.removesuffix("_cube") for c in CUBES)
PARK_X = 10.0
"""x (m) of the cubes an episode leaves out: behind the wall, out of every camera's sight."""
MAX_TRIES = 100
FINGER_CLEARANCE = 0.07
"""A cube's centre stays this far (m) from the plate's rim: the open fingers reach 6 cm to either side."""


@dataclass(frozen=True)
class ColorSpawnConfig:
    """Where episodes start: n_cubes ~ U{min_cubes..max_cubes} cubes at xy ~ cube_center + U(-half, +half),
    at least min_cube_gap apart (centres); the plate as PutCubeOnPlate's; yaw ~ U(-pi, pi) if randomize_yaw
    else 0; arm joints = FR3 default + N(0, qpos_noise)."""

    cube_center: tuple[float, float] = (0.43, 0.25)
    cube_half_range: tuple[float, float] = (0.13, 0.10)
    plate_center: tuple[float, float] = names.PLATE_SPAWN_CENTER
    plate_half_range: tuple[float, float] = names.PLATE_SPAWN_HALF_RANGE
    min_cubes: int = 2
    max_cubes: int = 4
    min_cube_gap: float = 0.10
    randomize_yaw: bool = False
    qpos_noise: float = 0.02


def _tcp_to_goal_pos(v: Mapping[str, Any]) -> Any:
    return v["state/extra/goal_pose"][..., :3] - v["state/extra/tcp_pose"][..., :3]


def _goal_to_plate_pos(v: Mapping[str, Any]) -> Any:
    return v["state/extra/plate_pose"][..., :3] - v["state/extra/goal_pose"][..., :3]


RECORD = TaskRecord(
    state=(
        *ROBOT_STATE,
        state("extra", "is_grasped", (), "bool"),
        state("extra", "tcp_pose", POSE_SHAPE),
        state("extra", "goal_pose", POSE_SHAPE),
        state("extra", "plate_pose", POSE_SHAPE),
        *(state("extra", f"{c}_pose", POSE_SHAPE) for c in CUBES),
        state("extra", "goal", (len(CUBES),)),
        state("extra", "tcp_to_goal_pos", (3,), derive=_tcp_to_goal_pos),
        state("extra", "goal_to_plate_pos", (3,), derive=_goal_to_plate_pos),
    ),
    info=(
        info("goal_on_plate"),
        info("goal_static"),
        info("is_grasped", same_as="state/extra/is_grasped"),
        info("success"),
    ),
    bodies=(
        *robot_bodies(tcp_same_as="state/extra/tcp_pose"),
        *(pose(c, same_as=f"state/extra/{c}_pose") for c in CUBES),
        pose(PLATE, same_as="state/extra/plate_pose"),
    ),
    terminated=Field("terminated", (), "bool", same_as="info/success"),
)


def goal_index(state: dict) -> torch.Tensor:
    """int64 [B]: which of CUBES the instruction names, from a state dict."""
    return state["extra"]["goal"].argmax(dim=-1)


class PutColorCubeOnPlate(Task):
    """Put the cube of the named colour on the plate (2-4 cubes on the table)."""

    name = "PutColorCubeOnPlate"
    objects = (*CUBES, PLATE)
    record = RECORD
    instructions = ("put the {color} cube on the plate", "pick up the {color} cube and put it on the plate",
                    "place the {color} cube onto the plate", "move the {color} cube to the plate")
    progress_stages = ("reached", "grasped", "lifted", "placed", "released")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import colored_cube_spec, default_plate_spec  # SAPIEN: only where physics runs

        return {**{c: colored_cube_spec(names.COLOR_CUBES[c]) for c in CUBES}, PLATE: default_plate_spec()}

    def spawn_config(self, specs):
        return ColorSpawnConfig()

    def sample_initial_state(self, gen, spawn):
        f64 = torch.float64
        noise = torch.randn(names.NUM_ARM_JOINTS, generator=gen, dtype=f64) * spawn.qpos_noise
        n = int(torch.randint(spawn.min_cubes, spawn.max_cubes + 1, (1,), generator=gen))
        present = torch.randperm(len(CUBES), generator=gen)[:n].tolist()
        goal = present[int(torch.randint(n, (1,), generator=gen))]
        u = torch.rand(2, generator=gen, dtype=f64)
        plate_xy = (torch.tensor(spawn.plate_center, dtype=f64)
                    + (2 * u - 1) * torch.tensor(spawn.plate_half_range, dtype=f64))
        out = {"qpos_noise": noise, PLATE: torch.cat([plate_xy, torch.zeros(1, dtype=f64)]),
               "goal": torch.nn.functional.one_hot(torch.tensor(goal), len(CUBES)).to(torch.float32)}
        xy = _spread(gen, n, spawn, plate_xy)
        for k, cube in enumerate(CUBES):
            yaw = (2 * torch.rand(1, generator=gen, dtype=f64) - 1) * torch.pi if spawn.randomize_yaw else \
                torch.zeros(1, dtype=f64)
            place = xy[present.index(k)] if k in present else torch.tensor([PARK_X, 0.5 * k], dtype=f64)
            out[cube] = torch.cat([place, yaw])
        return out

    def instruction(self, phrasing, state, index):
        return phrasing.format(color=COLORS[int(goal_index(state)[index])])

    # -------------------------------------------------------------------------------------- evaluation
    def _goal(self, env) -> tuple[torch.Tensor, list]:
        """(goal index [B], the cube actors)."""
        return env.episode_values["goal"].argmax(dim=-1), [env.objects[c] for c in CUBES]

    def evaluate(self, env):
        goal, cubes = self._goal(env)
        rows = torch.arange(goal.shape[0], device=goal.device)
        pick = lambda xs: torch.stack(xs, dim=1)[rows, goal]  # noqa: E731  [B, 4, ...] -> [B, ...]
        p = pick([c.pose.p for c in cubes])
        on_plate = within(p, env.objects[PLATE].pose.p, ON_PLATE_XY, ON_PLATE_DZ)
        is_grasped = pick([env.agent.is_grasping(c) for c in cubes])
        static = at_rest(pick([c.linear_velocity for c in cubes]), pick([c.angular_velocity for c in cubes]))
        success = on_plate.clone() if env.upstream_compat else on_plate & ~is_grasped & static
        return dict(goal_on_plate=on_plate, is_grasped=is_grasped, goal_static=static, success=success)

    def obs_extra(self, env, info):
        goal, cubes = self._goal(env)
        poses = torch.stack([c.pose.raw_pose for c in cubes], dim=1)  # [B, 4, 7]
        goal_pose = poses[torch.arange(goal.shape[0], device=goal.device), goal]
        tcp, plate = env.agent.tcp.pose, env.objects[PLATE].pose
        return dict(is_grasped=info["is_grasped"], tcp_pose=tcp.raw_pose, goal_pose=goal_pose,
                    plate_pose=plate.raw_pose, **{f"{c}_pose": poses[:, k] for k, c in enumerate(CUBES)},
                    goal=env.episode_values["goal"].clone(), tcp_to_goal_pos=goal_pose[:, :3] - tcp.p,
                    goal_to_plate_pos=plate.p - goal_pose[:, :3])

    def dense_reward(self, env, info):
        goal, cubes = self._goal(env)
        rows = torch.arange(goal.shape[0], device=goal.device)
        p = torch.stack([c.pose.p for c in cubes], dim=1)[rows, goal]
        vel = torch.stack([c.linear_velocity for c in cubes], dim=1)[rows, goal]
        terms = dense_reward_terms(env.agent.tcp.pose.p, p, env.objects[PLATE].pose.p, vel, info["is_grasped"],
                                   info["goal_on_plate"])
        return dense_reward(terms, info["success"])

    def progress(self, state, info):
        extra = state["extra"]
        grasped = extra["is_grasped"].bool()
        reached = grasped | (torch.linalg.norm(extra["tcp_to_goal_pos"], dim=-1) < REACHED_M)
        lifted = grasped & (extra["goal_pose"][:, 2] >= LIFTED_Z)
        placed = info["goal_on_plate"].bool()
        return staged_progress([reached, grasped, lifted, placed, info["success"].bool()])

    # -------------------------------------------------------------------------------------- expert
    def expert_inputs(self, state):
        extra = state["extra"]
        return dict(tcp_pose=extra["tcp_pose"], cube_pose=extra["goal_pose"], plate_pose=extra["plate_pose"],
                    gripper_qpos=state["agent"]["qpos"][:, names.NUM_ARM_JOINTS:names.NUM_JOINTS])

    def expert_action(self, **inputs):
        return scripted_expert_action(**inputs)


def _spread(gen: torch.Generator, n: int, spawn: ColorSpawnConfig, plate_xy: torch.Tensor) -> list[torch.Tensor]:
    """n cube positions (float64 [2] each) in the cube region, min_cube_gap apart and clear of the plate."""
    f64 = torch.float64
    center, half = torch.tensor(spawn.cube_center, dtype=f64), torch.tensor(spawn.cube_half_range, dtype=f64)
    clear_of_plate = names.PLATE_RADIUS + FINGER_CLEARANCE
    for _ in range(MAX_TRIES):  # one cube after the other, each drawn until it fits; all again if one cannot
        xy: list[torch.Tensor] = []
        for _ in range(MAX_TRIES * n):
            p = center + (2 * torch.rand(2, generator=gen, dtype=f64) - 1) * half
            if torch.linalg.norm(p - plate_xy) >= clear_of_plate and all(
                    torch.linalg.norm(p - q) >= spawn.min_cube_gap for q in xy):
                xy.append(p)
                if len(xy) == n:
                    return xy
    raise ValueError(f"could not place {n} cubes {spawn.min_cube_gap} m apart in {MAX_TRIES} tries: the cube region "
                     f"{spawn.cube_center}+-{spawn.cube_half_range} is too small; widen it or lower min_cube_gap")


def other_cube_inputs(state: dict) -> dict[str, torch.Tensor]:
    """Expert inputs (``PutColorCubeOnPlate.expert_inputs``' keywords) for another cube than the named one:
    the next present cube after it in CUBES' order. What a policy that ignores the instruction would do;
    its expert scores (almost) nothing."""
    extra = state["extra"]
    poses = torch.stack([extra[f"{c}_pose"] for c in CUBES], dim=1)  # [B, 4, 7]
    present = poses[:, :, 0] < PARK_X / 2
    goal = goal_index(state)
    rows = torch.arange(goal.shape[0], device=goal.device)
    shift = torch.arange(1, len(CUBES), device=goal.device)  # try goal+1, goal+2, ... in turn
    candidates = (goal[:, None] + shift[None, :]) % len(CUBES)  # [B, 3]
    first = present[rows[:, None], candidates].float().argmax(dim=1)  # the first present one
    other = candidates[rows, first]
    return dict(tcp_pose=extra["tcp_pose"], cube_pose=poses[rows, other], plate_pose=extra["plate_pose"],
                gripper_qpos=state["agent"]["qpos"][:, names.NUM_ARM_JOINTS:names.NUM_JOINTS])
