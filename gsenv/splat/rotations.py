"""Quaternion and rigid-transform maths (pure functions; quaternions are w-first: [w, x, y, z])."""
from __future__ import annotations

import torch
from torch import Tensor


def quat_normalize(q: Tensor) -> Tensor:
    """Unit quaternions. q: [..., 4] -> [..., 4] (a zero quaternion stays zero)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a ⊗ b (rotation b first, then a). a, b: [..., 4] (broadcast) -> [..., 4]."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_conjugate(q: Tensor) -> Tensor:
    """Inverse of a unit quaternion. q: [..., 4] -> [..., 4]."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quat_to_rotmat(q: Tensor) -> Tensor:
    """Rotation matrices of (normalised) quaternions. q: [..., 4] -> [..., 3, 3]."""
    w, x, y, z = quat_normalize(q).unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return R.reshape(q.shape[:-1] + (3, 3))


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Quaternions (w >= 0) of rotation matrices. R: [..., 3, 3] -> [..., 4]."""
    m = R
    t = 1.0 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cand = torch.stack(
        [
            torch.stack([t, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    diag = torch.stack([t, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)
    best = diag.argmax(dim=-1)  # the numerically largest component
    q = torch.gather(cand, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors by unit quaternions. q: [..., 4], v: [..., 3] (broadcast) -> [..., 3]."""
    w = q[..., :1]
    u = q[..., 1:]
    uv = torch.cross(u.expand(torch.broadcast_shapes(u.shape, v.shape)), v.expand(torch.broadcast_shapes(u.shape, v.shape)), dim=-1)
    uuv = torch.cross(u.expand_as(uv), uv, dim=-1)
    return v + 2.0 * (w * uv + uuv)


def pose_to_matrix(pose: Tensor) -> Tensor:
    """4x4 rigid transforms from [..., 7] poses (position xyz + quaternion wxyz) -> [..., 4, 4]."""
    T = torch.zeros(pose.shape[:-1] + (4, 4), dtype=pose.dtype, device=pose.device)
    T[..., :3, :3] = quat_to_rotmat(pose[..., 3:])
    T[..., :3, 3] = pose[..., :3]
    T[..., 3, 3] = 1.0
    return T
