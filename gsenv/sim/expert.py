"""Scripted expert for PutCubeOnPlate: a pure, stateless function of batched state -> 7-D action.

The phase (approach, descend, close, carry, lower, release, retreat) is read off the state each
step, so the expert needs no memory and works in every env of a batch independently. Its action
is for the end-effector delta modes (``pd_ee_target_delta_pose`` and ``pd_ee_delta_pose``):
[dx, dy, dz (m, base frame), drx, dry, drz (rad, base frame; small, so rotation vector = XYZ Euler
to first order), grip (+1 open, -1 close)].
"""
from __future__ import annotations

import torch

from gsenv.geometry import matrix_to_rotvec, quat_to_rotmat
from gsenv.sim import names

OPEN, CLOSE = 1.0, -1.0
_PLACE_HEIGHT = (names.PLATE_BASE_THICKNESS - names.PLATE_HEIGHT / 2) + names.CUBE_HALF_SIZE


def _closing_axis(tcp_rot: torch.Tensor, cube_rot: torch.Tensor, holding: torch.Tensor) -> torch.Tensor:
    """Horizontal unit vector [B, 3] the fingers should close along."""
    y_now = tcp_rot[..., :, 1]
    cand = torch.stack([cube_rot[..., :, 0], cube_rot[..., :, 1]], dim=1)  # [B, 2, 3]
    cand = cand * torch.tensor([1.0, 1.0, 0.0], device=cand.device, dtype=cand.dtype)
    dots = (cand * y_now[:, None, :]).sum(-1)  # [B, 2]
    best = dots.abs().argmax(dim=1)
    axis = cand[torch.arange(cand.shape[0]), best]
    axis = axis * torch.sign(dots[torch.arange(cand.shape[0]), best])[:, None]
    # holding the cube: keep the current heading, just level the hand
    flat_now = y_now * torch.tensor([1.0, 1.0, 0.0], device=y_now.device, dtype=y_now.dtype)
    axis = torch.where(holding[:, None], flat_now, axis)
    return axis / torch.linalg.norm(axis, dim=-1, keepdim=True).clamp(min=1e-9)


def scripted_expert_action(
    tcp_pose: torch.Tensor,
    cube_pose: torch.Tensor,
    plate_pose: torch.Tensor,
    gripper_qpos: torch.Tensor,
    *,
    place_height: float = _PLACE_HEIGHT,
    hover: float = 0.07,
    max_step: float = 0.05,
    max_rot: float = 0.1,
) -> torch.Tensor:
    """Action [B, 7] that picks the cube and puts it on the plate.

    Args:
        tcp_pose: [B, 7] TCP (``fr3_hand_tcp``) pose in the robot-base/world frame, position (m) +
            quaternion wxyz (``env.agent.tcp.pose.raw_pose``).
        cube_pose: [B, 7] cube pose, same layout (``env.cube.pose.raw_pose``).
        plate_pose: [B, 7] plate pose, same layout (``env.plate.pose.raw_pose``).
        gripper_qpos: [B, 2] the two finger joint positions (m, 0.04 = open) = qpos[:, 7:9].
        place_height: height (m) of the cube's centre above the plate's origin when it rests on
            the plate (default: the default dish's floor + half the 4 cm cube).
        hover: carrying height (m) of the cube above its resting place on the plate.
        max_step: largest translation per step (m); max_rot: largest rotation per axis (rad).
    Returns:
        float32 [B, 7] = [dx, dy, dz, drx, dry, drz, grip], within the env's action bounds.
        ``PutCubeOnPlateEnv.get_expert_inputs()`` returns the four tensors as keywords.
    """
    for label, t, d in (("tcp_pose", tcp_pose, 7), ("cube_pose", cube_pose, 7),
                        ("plate_pose", plate_pose, 7), ("gripper_qpos", gripper_qpos, 2)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != d:
            raise ValueError(f"{label} must be a tensor of shape [B, {d}], got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        if t.shape[0] != tcp_pose.shape[0]:
            raise ValueError(f"{label} has batch size {t.shape[0]}, expected {tcp_pose.shape[0]} like tcp_pose")
    f = torch.float32
    tcp_p, cube_p, plate_p = tcp_pose[:, :3].to(f), cube_pose[:, :3].to(f), plate_pose[:, :3].to(f)
    tcp_rot, cube_rot = quat_to_rotmat(tcp_pose[:, 3:].to(f)), quat_to_rotmat(cube_pose[:, 3:].to(f))
    width = gripper_qpos.to(f).sum(dim=1)
    b = tcp_p.shape[0]
    up = torch.tensor([0.0, 0.0, 1.0], device=tcp_p.device).expand(b, 3)

    xy_cube_plate = torch.linalg.norm(cube_p[:, :2] - plate_p[:, :2], dim=1)
    rest_z = plate_p[:, 2] + place_height  # cube centre when resting on the plate
    target, grip, holding, is_open = grasp_phase(tcp_p, cube_p, width)
    placed = (xy_cube_plate < 0.02) & (cube_p[:, 2] < rest_z + 0.008)

    # carry: lift, move over the plate, lower onto it (TCP keeps its offset to the cube)
    offset = tcp_p - cube_p
    hover_z = rest_z + hover
    over = xy_cube_plate < 0.01
    carry_cube_t = torch.where(
        over[:, None],
        torch.cat([plate_p[:, :2], (rest_z + 0.002)[:, None]], dim=1),
        torch.cat([plate_p[:, :2], hover_z[:, None]], dim=1),
    )
    lift_first = (cube_p[:, 2] < hover_z - 0.02) & (xy_cube_plate > 0.03)
    carry_cube_t = torch.where(
        lift_first[:, None], torch.cat([cube_p[:, :2], hover_z[:, None]], dim=1), carry_cube_t
    )
    carry_t = carry_cube_t + offset
    carrying = holding & ~placed
    target = torch.where(carrying[:, None], carry_t, target)
    grip = torch.where(carrying, torch.full_like(grip, CLOSE), grip)

    # placed: open in place, then retreat upwards
    release_t = torch.where(is_open[:, None], tcp_p + up * max_step, tcp_p)
    target = torch.where(placed[:, None], release_t, target)
    grip = torch.where(placed, torch.full_like(grip, OPEN), grip)

    return ee_action(tcp_p, tcp_rot, cube_rot, target, grip, holding, max_step, max_rot)


def grasp_phase(tcp_p: torch.Tensor, cube_p: torch.Tensor, width: torch.Tensor):
    """The approach-and-grasp part of a pick: TCP position, cube position [B, 3] (m), gripper width [B] (m)
    -> (TCP target [B, 3], grip [B] (+1 open, -1 close), holding [B] bool, gripper open [B] bool).

    Above the cube, then down to it (lifting first if low and off to the side), close there; a closed
    gripper that holds nothing opens in place before approaching again."""
    b = tcp_p.shape[0]
    up = torch.tensor([0.0, 0.0, 1.0], device=tcp_p.device).expand(b, 3)
    d_tcp_cube = torch.linalg.norm(cube_p - tcp_p, dim=1)
    xy_tcp_cube = torch.linalg.norm(cube_p[:, :2] - tcp_p[:, :2], dim=1)
    is_open = width > 0.075
    holding = (d_tcp_cube < 0.02) & (width > 0.02) & (width < 0.07)

    grip = torch.full((b,), OPEN, device=tcp_p.device)
    pre = torch.cat([cube_p[:, :2], (cube_p[:, 2] + 0.06)[:, None]], dim=1)
    aligned = xy_tcp_cube < 0.008
    at_grasp = aligned & ((tcp_p[:, 2] - cube_p[:, 2]).abs() < 0.006)
    approach_t = torch.where(aligned[:, None], cube_p, pre)
    low_far = (tcp_p[:, 2] < cube_p[:, 2] + 0.03) & (xy_tcp_cube > 0.02)
    approach_t = torch.where(low_far[:, None], tcp_p + up * 0.05, approach_t)
    approach_t = torch.where(at_grasp[:, None], tcp_p, approach_t)
    missed = ~is_open & ~holding & ~at_grasp
    approach_t = torch.where(missed[:, None], tcp_p, approach_t)
    grip = torch.where(at_grasp & ~missed, torch.full_like(grip, CLOSE), grip)
    grip = torch.where(at_grasp & ~is_open & (width < 0.02), torch.full_like(grip, OPEN), grip)
    return approach_t, grip, holding, is_open


def ee_action(tcp_p, tcp_rot, cube_rot, target, grip, holding, max_step: float, max_rot: float) -> torch.Tensor:
    """[B, 7] end-effector delta towards target [B, 3] (each axis within max_step m), the TCP pointing
    down with the fingers closing along a horizontal cube axis (within max_rot rad per axis), and grip [B]."""
    b = tcp_p.shape[0]
    up = torch.tensor([0.0, 0.0, 1.0], device=tcp_p.device).expand(b, 3)
    delta = (target - tcp_p).clamp(-max_step, max_step)
    closing = _closing_axis(tcp_rot, cube_rot, holding)
    approach_dir = -up
    ortho = torch.linalg.cross(closing, approach_dir, dim=-1)
    r_des = torch.stack([ortho, closing, approach_dir], dim=-1)  # columns x, y, z
    rot = matrix_to_rotvec(r_des @ tcp_rot.transpose(-1, -2)).clamp(-max_rot, max_rot)
    return torch.cat([delta, rot, grip[:, None]], dim=1)
