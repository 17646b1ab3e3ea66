"""StackCube-v0: put the red cube on the green cube, released and at rest.

Objects: the cube (red, 4 cm, 0.3 kg) and the green cube (the same size and mass). Initial state: arm
joints FR3 default + N(0, 0.02 rad); the red cube in PutCubeOnPlate's cube region, the green cube in the
plate's region widened sideways, at least MIN_GAP apart (the open fingers must not touch the other cube).
Success (ManiSkill's StackCube rule): the red cube's centre within ON_TOP_XY of the green cube's axis and
ON_TOP_DZ = one edge above its centre (within ON_TOP_DZ_TOL), not grasped, at rest. Dense reward:
PutCubeOnPlate's terms (reach, grasp, carry, place, release) with the green cube as receptacle, 5 where it
succeeds. Expert: PutCubeOnPlate's, letting go of the red cube just above the green one.

State (obs_mode "state": [B, 46]): agent qpos [9], qvel [9]; extra is_grasped, tcp_pose [7], cube_pose [7],
base_pose [7] (the green cube's), tcp_to_cube_pos [3], cube_to_base_pos [3].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gsenv.sim import names
from gsenv.sim.rewards import DENSE_REWARD_MAX
from gsenv.tasks.put_cube_on_plate import (
    CarryCubeTask,
    pick_and_place_record,
)

CUBE, BASE = names.CUBE, "green_cube"

ON_TOP_XY = math.hypot(names.CUBE_HALF_SIZE, names.CUBE_HALF_SIZE) + 0.005
"""cube_on_base: |cube.xy - base.xy| at most this (m), as ManiSkill's StackCube."""
ON_TOP_DZ = names.CUBE_EDGE
"""cube_on_base: cube.z - base.z = one edge (m) ..."""
ON_TOP_DZ_TOL = 0.005
"""... within this (m)."""
MAX_TRIES = 100
RELEASE_ABOVE = 0.015
"""The expert lets go of the cube this high (m) above its resting place on the other: the fingertips reach
below a held cube's bottom and would wedge the lower cube."""


@dataclass(frozen=True)
class StackSpawnConfig:
    """Where episodes start: each cube's xy ~ its centre + U(-half_range, +half_range), the two at least
    min_gap apart; yaw ~ U(-pi, pi) if randomize_yaw else 0; arm joints = FR3 default + N(0, qpos_noise)."""

    cube_center: tuple[float, float] = names.CUBE_SPAWN_CENTER
    cube_half_range: tuple[float, float] = names.CUBE_SPAWN_HALF_RANGE
    base_center: tuple[float, float] = (0.45, 0.0)
    base_half_range: tuple[float, float] = (0.08, 0.05)
    min_gap: float = 0.10
    randomize_yaw: bool = False
    qpos_noise: float = 0.02


RECORD = pick_and_place_record("base", "cube_on_base", target_body=BASE)


class StackCube(CarryCubeTask):
    """Stack the red cube on the green cube."""

    name = "StackCube"
    objects = (CUBE, BASE)
    record = RECORD
    target, target_body, placed = "base", BASE, "cube_on_base"
    expert_place_height = ON_TOP_DZ + RELEASE_ABOVE
    upstream_success = False  # ManiSkill's StackCube has no looser rule
    instructions = ("stack the red cube on the green cube", "put the red cube on top of the green cube",
                    "place the red cube on the green one")
    progress_stages = ("reached", "grasped", "lifted", "stacked", "released")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import colored_cube_spec, default_cube_spec  # SAPIEN: only where physics runs

        return {CUBE: default_cube_spec(), BASE: colored_cube_spec(names.COLOR_CUBES[BASE])}

    def spawn_config(self, specs):
        return StackSpawnConfig()

    def sample_initial_state(self, gen, spawn):
        f64 = torch.float64
        noise = torch.randn(names.NUM_ARM_JOINTS, generator=gen, dtype=f64) * spawn.qpos_noise
        for _ in range(MAX_TRIES):
            u = torch.rand(6, generator=gen, dtype=f64)
            cube = torch.tensor(spawn.cube_center, dtype=f64) + (2 * u[0:2] - 1) * torch.tensor(spawn.cube_half_range,
                                                                                               dtype=f64)
            base = torch.tensor(spawn.base_center, dtype=f64) + (2 * u[2:4] - 1) * torch.tensor(spawn.base_half_range,
                                                                                               dtype=f64)
            yaws = (2 * u[4:6] - 1) * torch.pi if spawn.randomize_yaw else torch.zeros(2, dtype=f64)
            if torch.linalg.norm(cube - base) >= spawn.min_gap:
                return {"qpos_noise": noise, CUBE: torch.cat([cube, yaws[0:1]]), BASE: torch.cat([base, yaws[1:2]])}
        raise ValueError(f"could not place the two cubes {spawn.min_gap} m apart in {MAX_TRIES} tries: move the "
                         "spawn regions apart")

    def is_placed(self, cube_p, target_p):
        offset = cube_p - target_p
        return (torch.linalg.norm(offset[:, :2], dim=1) <= ON_TOP_XY) & (
            (offset[:, 2] - ON_TOP_DZ).abs() <= ON_TOP_DZ_TOL)
