"""Body poses into what a rasteriser needs: the poses stacked, the bodies' view-dependent colour, and
(for the torch backend) the bodies' gaussians moved into the world frame per env.

A body's gaussians stay in its own frame; a pose is [7] = position xyz + quaternion wxyz of the body
in the world. View-dependent colour follows the body: SH is evaluated with the view direction taken
into the body frame.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from gsenv.geometry import quat_conjugate, quat_multiply, quat_normalize, quat_rotate
from gsenv.splat.render_splats import BodySplats, camera_centres, with_onehot
from gsenv.splat.sh import eval_sh

__all__ = ["stack_body_poses", "body_features", "bodies_in_world"]


def stack_body_poses(body_poses: Mapping[str, Tensor], names: Sequence[str], batch_size: int,
                     device: torch.device) -> Tensor:
    """float32 [B, NB, 7]: the pose [B, 7] of each body in `names`, in that order (other keys ignored).

    Raises ValueError naming the body when one is missing, has another shape or lives on another device.
    """
    B, dev = batch_size, device
    missing = [n for n in names if n not in body_poses]
    if missing:
        raise ValueError(f"body_poses lacks {missing}; expected a [B, 7] pose for each of {list(names)}")
    for n in names:
        p = body_poses[n]
        if tuple(p.shape) != (B, 7):
            raise ValueError(f"body_poses[{n!r}] must be [B, 7] = [{B}, 7] (xyz + quaternion wxyz), "
                             f"got {list(p.shape)}")
        if p.device != dev:
            raise ValueError(f"body_poses[{n!r}] is on {p.device}, cameras on {dev}: put them on one device")
    return torch.stack([body_poses[n].to(torch.float32) for n in names], 1)


def body_features(bodies: BodySplats, poses: Tensor, viewmats: Tensor, nb: int,
                  color_shift: Tensor | None = None) -> Tensor:
    """Features of the bodies' gaussians (colour, then nb one-hot body channels): [N, 3 + nb] when
    view-independent, else [B, C, N, 3 + nb] (SH evaluated with the view direction taken into the
    body frame). poses [B, NB, 7], viewmats [B, C, 4, 4]; color_shift [B, NB, 3]: added to each body's
    colour per env (before SH's clamp at 0), which makes the features [B, C, N, 3 + nb]."""
    body, idx = bodies.splats, bodies.index
    if not body.view_dependent:
        if color_shift is None:
            return bodies.static_feats(nb)
        return bodies.shifted_feats(nb, color_shift)[:, None].expand(-1, viewmats.shape[1], -1, -1)
    # view direction in the body frame: R^T (R m + t - campos) = m + R^T (t - campos)
    q, t = quat_normalize(poses[..., 3:]), poses[..., :3]  # [B, NB, *]
    cam = camera_centres(viewmats)  # [B, C, 3]
    off = quat_rotate(quat_conjugate(q)[:, None], t[:, None] - cam[:, :, None])  # [B, C, NB, 3]
    shift = None if color_shift is None else color_shift[:, None, idx]  # [B, 1, N, 3]
    return with_onehot(eval_sh(body.sh, body.means + off[:, :, idx], dc_shift=shift), idx, nb)  # [B, C, N, D]


def bodies_in_world(bodies: BodySplats, poses: Tensor, viewmats: Tensor, nb: int,
                    color_shift: Tensor | None = None, feats: Tensor | None = None) -> tuple[Tensor, ...]:
    """The bodies moved to their poses (world frame, per env): means/quats [B, N, *], scales [B, N, 3]
    and opacities [B, N] (broadcast views), features [B, N, D] or [B, C, N, D] (D = 3 + nb).
    poses [B, NB, 7], viewmats [B, C, 4, 4] (for view-dependent colour); color_shift [B, NB, 3] as in
    body_features; feats: body_features(...) made earlier for these same arguments (None: made here)."""
    body, idx = bodies.splats, bodies.index
    B = poses.shape[0]
    q = quat_normalize(poses[..., 3:])  # [B, NB, 4]
    qg, tg = q[:, idx], poses[:, idx, :3]  # [B, N, *]
    means = quat_rotate(qg, body.means) + tg
    quats = quat_multiply(qg, body.quats)
    if feats is None:
        feats = body_features(bodies, poses, viewmats, nb, color_shift)
    if feats.dim() == 2:
        feats = feats.expand(B, -1, -1)
    return means, quats, body.scales.expand(B, -1, -1), body.opacities.expand(B, -1), feats
