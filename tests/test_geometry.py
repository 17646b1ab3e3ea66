"""gsenv.geometry: quaternions, rotation matrices, poses and the OpenCV -> OpenGL camera flip."""
from __future__ import annotations

import torch

from gsenv.geometry import (
    CV_TO_GL,
    matrix_to_rotvec,
    pose_to_matrix,
    quat_multiply,
    quat_normalize,
    quat_rotate,
    quat_to_rotmat,
    rotmat_to_quat,
)


def _textbook_rotmat(q: torch.Tensor) -> torch.Tensor:
    """The rotation matrix of q / |q| written out entry by entry (what sim's quat_to_matrix was)."""
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(q.shape[:-1] + (3, 3))


def test_rotation_matrices_agree_with_quaternion_rotation():
    g = torch.Generator().manual_seed(5)
    q = torch.randn(500, 4, generator=g, dtype=torch.float64) * 3.0  # any norm
    v = torch.randn(500, 3, generator=g, dtype=torch.float64)
    R = quat_to_rotmat(q)
    assert torch.allclose((R @ v[:, :, None])[..., 0], quat_rotate(quat_normalize(q), v), atol=1e-12)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(500, 3, 3), atol=1e-12)
    T = pose_to_matrix(torch.cat([v, q], -1))
    assert torch.equal(T[:, :3, 3], v) and torch.equal(T[:, :3, :3], R)
    assert torch.equal(T[:, 3], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(500, 4))


def test_quat_to_rotmat_is_the_textbook_matrix_for_any_norm():
    g = torch.Generator().manual_seed(6)
    norms = torch.rand(2, 300, 1, generator=g, dtype=torch.float64) * 5
    q = torch.randn(2, 300, 4, generator=g, dtype=torch.float64) * norms
    assert torch.allclose(quat_to_rotmat(q), _textbook_rotmat(q), atol=1e-12)
    q32 = q.float()
    assert torch.allclose(quat_to_rotmat(q32), _textbook_rotmat(q32), atol=2e-6)
    assert torch.equal(quat_to_rotmat(torch.zeros(1, 4)), torch.zeros(1, 3, 3))  # zero quaternion: zero matrix


def test_rotmat_to_quat_inverts_quat_to_rotmat():
    g = torch.Generator().manual_seed(7)
    q = quat_normalize(torch.randn(400, 4, generator=g, dtype=torch.float64))
    q = torch.where(q[:, :1] < 0, -q, q)  # rotmat_to_quat returns w >= 0
    assert torch.allclose(rotmat_to_quat(quat_to_rotmat(q)), q, atol=1e-12)
    # q and -q are one rotation; q (x) q^-1 is the identity
    assert torch.allclose(quat_to_rotmat(-q), quat_to_rotmat(q), atol=1e-15)
    inv = q * torch.tensor([1, -1, -1, -1.0], dtype=torch.float64)
    assert torch.allclose(quat_multiply(q, inv), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).expand(400, 4))


def test_matrix_to_rotvec_small_angles():
    angle = torch.tensor([0.0, 0.2, 1.0, 2.5], dtype=torch.float64)
    axis = torch.nn.functional.normalize(torch.tensor([[0.3, -0.4, 0.8]], dtype=torch.float64), dim=-1)
    q = torch.cat([torch.cos(angle / 2)[:, None], torch.sin(angle / 2)[:, None] * axis], -1)
    assert torch.allclose(matrix_to_rotvec(quat_to_rotmat(q)), angle[:, None] * axis, atol=1e-9)


def test_cv_to_gl_flips_the_camera_y_and_z_axes():
    assert CV_TO_GL.dtype == torch.float32
    assert torch.equal(CV_TO_GL, torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0])))
    # an OpenCV camera looking down +z (y down) at the origin: as an OpenGL camera it looks down its -z (y up)
    cam_to_world_cv = torch.eye(4)
    cam_to_world_gl = cam_to_world_cv @ CV_TO_GL
    forward_gl = cam_to_world_gl[:3, :3] @ torch.tensor([0.0, 0.0, -1.0])
    up_gl = cam_to_world_gl[:3, :3] @ torch.tensor([0.0, 1.0, 0.0])
    assert torch.equal(forward_gl, torch.tensor([0.0, 0.0, 1.0])) and torch.equal(up_gl, torch.tensor([0.0, -1.0, 0.0]))
    assert torch.equal(CV_TO_GL @ CV_TO_GL, torch.eye(4))
