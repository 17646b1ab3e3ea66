"""Small batched rotation helpers (pure torch; quaternions are w-first)."""
from __future__ import annotations

import torch


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions wxyz [..., 4] -> rotation matrices [..., 3, 3]."""
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def matrix_to_rotvec(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> rotation vectors (axis x angle, rad) [..., 3].

    Accurate for angles below about 3 rad (the expert's use); exactly zero for the identity.
    """
    cos = ((m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
    angle = torch.acos(cos)
    vee = torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], dim=-1
    )
    sin = torch.sin(angle)
    scale = torch.where(sin.abs() > 1e-6, angle / (2 * sin.clamp(min=1e-6)), torch.full_like(sin, 0.5))
    return vee * scale[..., None]
