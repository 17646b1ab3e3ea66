"""Episode initial states: pure functions of torch generators (one generator per env).

An initial state is: arm joint noise [7] (added to the FR3 default configuration), cube xy [2] and
yaw [1], plate xy [2] and yaw [1]. The fixed table of ``total_num_trials`` states used by
``options["episode_id"]`` is defined by :func:`episode_generator`: state k is drawn from a generator
seeded with ``EPISODE_TABLE_SEED + k``, so it does not depend on any reset seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gsenv.sim import names

EPISODE_TABLE_SEED = 20_240_301
_MAX_TRIES = 100


@dataclass(frozen=True)
class SpawnConfig:
    """Where and how episodes start (defaults: the research code's ranges).

    cube/plate xy ~ centre + U(-half_range, +half_range) per axis; yaw ~ U(-pi, pi) if randomize_yaw
    else 0; arm joints = FR3 default + N(0, qpos_noise); objects never overlap: their footprint
    circles (radii cube_radius, plate_radius) stay ``min_gap`` apart (resampled if not).
    """

    cube_center: tuple[float, float] = names.CUBE_SPAWN_CENTER
    cube_half_range: tuple[float, float] = names.CUBE_SPAWN_HALF_RANGE
    plate_center: tuple[float, float] = names.PLATE_SPAWN_CENTER
    plate_half_range: tuple[float, float] = names.PLATE_SPAWN_HALF_RANGE
    randomize_yaw: bool = False
    qpos_noise: float = 0.02
    cube_radius: float = math.hypot(names.CUBE_HALF_SIZE, names.CUBE_HALF_SIZE)
    plate_radius: float = names.PLATE_RADIUS
    min_gap: float = 0.01


def episode_generator(episode_id: int) -> torch.Generator:
    """The generator that defines entry ``episode_id`` of the fixed initial-state table."""
    return torch.Generator().manual_seed(EPISODE_TABLE_SEED + int(episode_id))


def sample_one(gen: torch.Generator, cfg: SpawnConfig) -> torch.Tensor:
    """Draw one initial state -> float64 [13] = joint_noise[7], cube_xy[2], cube_yaw, plate_xy[2], plate_yaw."""
    noise = torch.randn(names.NUM_ARM_JOINTS, generator=gen, dtype=torch.float64) * cfg.qpos_noise
    cc = torch.tensor(cfg.cube_center, dtype=torch.float64)
    ch = torch.tensor(cfg.cube_half_range, dtype=torch.float64)
    pc = torch.tensor(cfg.plate_center, dtype=torch.float64)
    ph = torch.tensor(cfg.plate_half_range, dtype=torch.float64)
    for _ in range(_MAX_TRIES):
        u = torch.rand(6, generator=gen, dtype=torch.float64)
        cube_xy = cc + (2 * u[0:2] - 1) * ch
        plate_xy = pc + (2 * u[2:4] - 1) * ph
        yaws = (2 * u[4:6] - 1) * math.pi if cfg.randomize_yaw else torch.zeros(2, dtype=torch.float64)
        if torch.linalg.norm(cube_xy - plate_xy) >= cfg.cube_radius + cfg.plate_radius + cfg.min_gap:
            return torch.cat([noise, cube_xy, yaws[0:1], plate_xy, yaws[1:2]])
    raise ValueError(
        f"could not place cube and plate without overlap in {_MAX_TRIES} tries: the spawn regions "
        f"{cfg.cube_center}+-{cfg.cube_half_range} and {cfg.plate_center}+-{cfg.plate_half_range} "
        "overlap too much; move them apart"
    )


def sample_batch(generators: list[torch.Generator], cfg: SpawnConfig) -> torch.Tensor:
    """One state per generator -> float64 [b, 13] (layout of :func:`sample_one`)."""
    if not generators:
        return torch.zeros(0, 13, dtype=torch.float64)
    return torch.stack([sample_one(g, cfg) for g in generators])


def yaw_to_quat(yaw: torch.Tensor) -> torch.Tensor:
    """Rotation about z: yaw [b] (rad) -> quaternion wxyz [b, 4]."""
    half = yaw / 2
    zeros = torch.zeros_like(half)
    return torch.stack([torch.cos(half), zeros, zeros, torch.sin(half)], dim=-1)
