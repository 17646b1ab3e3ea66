"""Dense reward of PutCubeOnPlate: pure functions of batched state tensors.

Staged terms (each in [0, 1]; all tensors [B]):
  reach    1 - tanh(5 |tcp - cube|), held at 1 once the cube is grasped or on the plate
  grasp    1 if the cube is grasped or already on the plate
  carry    (1 - tanh(5 |cube_xy - plate_xy|)) x grasp
  place    1 if the cube is on the plate (evaluate()'s ``cube_on_plate``)
  release  (1 - tanh(10 |cube linear velocity|)) if on the plate and not grasped
dense = sum of the terms (< 5), and exactly DENSE_REWARD_MAX = 5 where ``success``;
normalized_dense = dense / 5 in [0, 1].
"""
from __future__ import annotations

import torch

DENSE_REWARD_MAX = 5.0


def dense_reward_terms(
    tcp_pos: torch.Tensor,
    cube_pos: torch.Tensor,
    plate_pos: torch.Tensor,
    cube_lin_vel: torch.Tensor,
    is_grasped: torch.Tensor,
    cube_on_plate: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Positions [B, 3], cube velocity [B, 3], flags bool [B] -> {term name: float [B]}."""
    grasp = (is_grasped | cube_on_plate).float()
    reach = 1 - torch.tanh(5 * torch.linalg.norm(cube_pos - tcp_pos, dim=-1))
    reach = torch.where(grasp > 0, torch.ones_like(reach), reach)
    carry = (1 - torch.tanh(5 * torch.linalg.norm(cube_pos[:, :2] - plate_pos[:, :2], dim=-1))) * grasp
    place = cube_on_plate.float()
    release = (1 - torch.tanh(10 * torch.linalg.norm(cube_lin_vel, dim=-1))) * (cube_on_plate & ~is_grasped).float()
    return dict(reach=reach, grasp=grasp, carry=carry, place=place, release=release)


def dense_reward(terms: dict[str, torch.Tensor], success: torch.Tensor) -> torch.Tensor:
    """Sum of the staged terms [B]; DENSE_REWARD_MAX where success."""
    total = sum(terms.values())
    return torch.where(success, torch.full_like(total, DENSE_REWARD_MAX), total)
