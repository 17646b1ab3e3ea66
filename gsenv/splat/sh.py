"""Real spherical harmonics (degrees 0..3) in the 3DGS / gsplat convention, and their rotation.

Colour of a gaussian seen along unit direction d (from the camera towards the gaussian):
    rgb = max(0, sum_k Y_k(d) * sh[k] + 0.5)
with the basis ordering and constants of gsplat (Sloan, "Efficient Spherical Harmonic Evaluation").
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SH_C0", "num_sh_bases", "sh_degree_from_bases", "eval_sh_bases", "eval_sh", "sh_rotation_blocks",
           "rotate_sh"]

SH_C0 = 0.28209479177387814
_BASES_TO_DEGREE = {1: 0, 4: 1, 9: 2, 16: 3}


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients per channel for a degree in 0..3."""
    if degree not in (0, 1, 2, 3):
        raise ValueError(f"SH degree must be 0, 1, 2 or 3, got {degree}")
    return (degree + 1) ** 2


def sh_degree_from_bases(k: int) -> int:
    """Degree of an SH expansion with k coefficients per channel (1, 4, 9 or 16)."""
    if k not in _BASES_TO_DEGREE:
        raise ValueError(f"number of SH coefficients per channel must be 1, 4, 9 or 16 (degree 0..3), got {k}")
    return _BASES_TO_DEGREE[k]


def eval_sh_bases(num_bases: int, dirs: Tensor) -> Tensor:
    """SH basis values at unit directions. dirs: [..., 3] (unit) -> [..., num_bases]."""
    sh_degree_from_bases(num_bases)
    out = torch.empty(dirs.shape[:-1] + (num_bases,), dtype=dirs.dtype, device=dirs.device)
    out[..., 0] = SH_C0
    if num_bases == 1:
        return out
    x, y, z = dirs.unbind(-1)
    a = -0.48860251190292
    out[..., 1] = a * y
    out[..., 2] = -a * z
    out[..., 3] = a * x
    if num_bases == 4:
        return out
    z2 = z * z
    b = -1.092548430592079 * z
    a = 0.5462742152960395
    c1 = x * x - y * y
    s1 = 2 * x * y
    out[..., 4] = a * s1
    out[..., 5] = b * y
    out[..., 6] = 0.9461746957575601 * z2 - 0.3153915652525201
    out[..., 7] = b * x
    out[..., 8] = a * c1
    if num_bases == 9:
        return out
    c = -2.285228997322329 * z2 + 0.4570457994644658
    b = 1.445305721320277 * z
    a = -0.5900435899266435
    c2 = x * c1 - y * s1
    s2 = x * s1 + y * c1
    out[..., 9] = a * s2
    out[..., 10] = b * s1
    out[..., 11] = c * y
    out[..., 12] = z * (1.865881662950577 * z2 - 1.119528997770346)
    out[..., 13] = c * x
    out[..., 14] = b * c1
    out[..., 15] = a * c2
    return out


def eval_sh(sh: Tensor, dirs: Tensor, dc_shift: Tensor | None = None) -> Tensor:
    """View-dependent colour. sh: [..., N, K, 3] (broadcast against dirs), dirs: [..., N, 3] (any length,
    from the camera to the gaussian) -> rgb [..., N, 3], clamped at 0 from below (not above), like gsplat.
    dc_shift [..., N, 3] (broadcast): added to the colour before the clamp, i.e. a shift of the DC
    term by dc_shift / SH_C0 (per-env colour randomisation)."""
    k = sh.shape[-2]
    if k == 1:
        rgb = SH_C0 * sh[..., 0, :]
        rgb = rgb.expand(torch.broadcast_shapes(rgb.shape, dirs.shape)) + 0.5
        return torch.clamp_min(rgb if dc_shift is None else rgb + dc_shift, 0.0)
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    bases = eval_sh_bases(k, d)  # [..., N, K]
    rgb = torch.einsum("...k,...kc->...c", bases, sh) + 0.5
    return torch.clamp_min(rgb if dc_shift is None else rgb + dc_shift, 0.0)


def sh_rotation_blocks(R: Tensor, degree: int) -> list[Tensor]:
    """Per-band matrices D_l ([2l+1, 2l+1], l = 1..degree) with Y_l(R^T d) = D_l Y_l(d) for all d.

    Found by an exact least-squares fit on fixed sample directions (float64); SH bands are closed
    under rotation, so the fit is exact to rounding.
    """
    Rd = R.detach().to(torch.float64)
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(64, 3, generator=g, dtype=torch.float64), dim=-1).to(Rd.device)
    k = num_sh_bases(degree)
    Y = eval_sh_bases(k, d)  # [S, K]
    Yr = eval_sh_bases(k, d @ Rd)  # Y(R^T d): rows d^T R = (R^T d)^T
    blocks = []
    for l in range(1, degree + 1):
        sl = slice(l * l, (l + 1) * (l + 1))
        # Yr_l = Y_l @ D_l^T  ->  solve for D_l^T
        Dt = torch.linalg.lstsq(Y[:, sl], Yr[:, sl]).solution
        blocks.append(Dt.T)
    return blocks


def rotate_sh(sh: Tensor, R: Tensor) -> Tensor:
    """SH coefficients of the colour field rotated by R: new(d) = old(R^T d).

    sh: [N, K, 3]; R: [3, 3] -> [N, K, 3].
    """
    k = sh.shape[-2]
    degree = sh_degree_from_bases(k)
    if degree == 0:
        return sh.clone()
    out = sh.clone()
    for l, D in enumerate(sh_rotation_blocks(R, degree), start=1):
        sl = slice(l * l, (l + 1) * (l + 1))
        # sum_k c'_k Y_k(d) = sum_j c_j Y_j(R^T d) = sum_j c_j sum_k D_jk Y_k(d)  ->  c' = D^T c
        out[..., sl, :] = torch.einsum("jk,...jc->...kc", D.to(sh.dtype).to(sh.device), sh[..., sl, :])
    return out
