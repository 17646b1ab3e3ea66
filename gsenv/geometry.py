"""Rotations and rigid poses: the one home of gsenv's quaternion / rotation-matrix / pose maths.

Pure torch functions, batched over any leading dims. Quaternions are w-first: [w, x, y, z]; a pose
is [..., 7] = position xyz + quaternion wxyz; roll-pitch-yaw angles (URDF's rpy) are R = Rz Ry Rx.
`CV_TO_GL` turns OpenCV camera axes (x right, y down, z forward) into OpenGL's (x right, y up, z
back): cam_to_world_gl = cam_to_world_cv @ CV_TO_GL. `CV_IN_SAPIEN` writes OpenCV's camera axes in
SAPIEN's camera frame (x forward, y left, z up): R_sapien = R_cv @ CV_IN_SAPIEN.T.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CV_TO_GL", "CV_IN_SAPIEN", "quat_normalize", "quat_multiply", "quat_conjugate", "quat_to_rotmat",
           "rotmat_to_quat", "quat_rotate", "pose_to_matrix", "rigid_inverse", "rpy_to_rotmat", "matrix_to_rotvec"]

# [4, 4] float32: flips the camera's y and z axes (its own inverse, so it also maps OpenGL -> OpenCV).
CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
# [3, 3] float64: OpenCV's camera axes (columns x right, y down, z forward) in SAPIEN's camera frame.
CV_IN_SAPIEN = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)


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


def _rotation_quadratic_form() -> Tensor:
    """[9, 16]: the rotation matrix of a unit quaternion q = (w, x, y, z) is quadratic in q,
    R.flatten() = C @ (q q^T).flatten()."""
    w, x, y, z = range(4)
    terms = {  # (row, col): [(coefficient, a, b)] meaning sum of coefficient * q_a * q_b
        (0, 0): [(1, w, w), (1, x, x), (-1, y, y), (-1, z, z)],
        (0, 1): [(2, x, y), (-2, w, z)],
        (0, 2): [(2, x, z), (2, w, y)],
        (1, 0): [(2, x, y), (2, w, z)],
        (1, 1): [(1, w, w), (-1, x, x), (1, y, y), (-1, z, z)],
        (1, 2): [(2, y, z), (-2, w, x)],
        (2, 0): [(2, x, z), (-2, w, y)],
        (2, 1): [(2, y, z), (2, w, x)],
        (2, 2): [(1, w, w), (-1, x, x), (-1, y, y), (1, z, z)],
    }
    C = torch.zeros(3, 3, 4, 4, dtype=torch.float64)
    for (i, j), entries in terms.items():
        for c, a, b in entries:
            C[i, j, a, b] += c
    return C.reshape(9, 16)


_ROTATION_FORM = _rotation_quadratic_form()
_ROTATION_FORM_ON: dict[tuple, Tensor] = {}


def quat_to_rotmat(q: Tensor) -> Tensor:
    """Rotation matrices of quaternions (any norm; a zero quaternion gives a zero matrix).
    q: [..., 4] -> [..., 3, 3]. A quadratic form divided by |q|^2: a handful of kernels per call."""
    key = (q.device, q.dtype)
    if key not in _ROTATION_FORM_ON:
        _ROTATION_FORM_ON[key] = _ROTATION_FORM.to(q.device, q.dtype).T.contiguous()  # [16, 9]
    outer = q[..., :, None] * q[..., None, :]  # [..., 4, 4]
    norm2 = outer.diagonal(dim1=-2, dim2=-1).sum(-1, keepdim=True).clamp_min(1e-30)
    return (outer.flatten(-2) @ _ROTATION_FORM_ON[key] / norm2).reshape(q.shape[:-1] + (3, 3))


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Quaternions (w >= 0) of rotation matrices. R: [..., 3, 3] -> [..., 4]."""
    m = R
    t = 1.0 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cand = torch.stack(
        [
            torch.stack([t, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                         m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                         1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                         1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    diag = torch.stack([t, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                        1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                        1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)
    best = diag.argmax(dim=-1)  # the numerically largest component
    q = torch.gather(cand, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors by unit quaternions. q: [..., 4], v: [..., 3] (broadcast) -> [..., 3]."""
    w = q[..., :1]
    u = q[..., 1:]
    uv = torch.cross(
        u.expand(torch.broadcast_shapes(u.shape, v.shape)), v.expand(torch.broadcast_shapes(u.shape, v.shape)), dim=-1
    )
    uuv = torch.cross(u.expand_as(uv), uv, dim=-1)
    return v + 2.0 * (w * uv + uuv)


def pose_to_matrix(pose: Tensor) -> Tensor:
    """4x4 rigid transforms from [..., 7] poses (position xyz + quaternion wxyz) -> [..., 4, 4]."""
    top = torch.cat([quat_to_rotmat(pose[..., 3:]), pose[..., :3, None]], -1)  # [..., 3, 4]
    bottom = pose.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(pose.shape[:-1] + (1, 4))
    return torch.cat([top, bottom], -2)


def rigid_inverse(T: Tensor) -> Tensor:
    """[..., 4, 4] inverse of rigid transforms (R^T, -R^T t): exact, no general matrix inverse."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    out = torch.zeros_like(T)
    out[..., :3, :3] = R.transpose(-1, -2)
    out[..., :3, 3:] = -(R.transpose(-1, -2) @ t)
    out[..., 3, 3] = 1.0
    return out


def rpy_to_rotmat(rpy: Tensor) -> Tensor:
    """[..., 3, 3] rotations R = Rz(yaw) Ry(pitch) Rx(roll) from rpy [..., 3] radians (URDF's convention:
    about x, then y, then z, fixed axes)."""
    cx, cy, cz = torch.cos(rpy).unbind(-1)
    sx, sy, sz = torch.sin(rpy).unbind(-1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    shape = rpy.shape[:-1] + (3, 3)
    Rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(shape)
    Ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(shape)
    Rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(shape)
    return Rz @ Ry @ Rx


def matrix_to_rotvec(m: Tensor) -> Tensor:
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
