"""gsplat (CUDA) backend of `rasterize`: one `gsplat.rasterization` call for all batch dims and cameras
(one per batch element on gsplat 1.4, which has no batch dims: gsenv.compat.rasterization)."""
from __future__ import annotations

from torch import Tensor


def rasterize_gsplat(
    means: Tensor,  # [..., N, 3]
    quats: Tensor,  # [..., N, 4]
    scales: Tensor,  # [..., N, 3]
    opacities: Tensor,  # [..., N]
    colors: Tensor,  # [..., N, D] or [..., C, N, D]
    viewmats: Tensor,  # [..., C, 4, 4]
    Ks: Tensor,  # [..., C, 3, 3]
    width: int,
    height: int,
    near_plane: float,
    far_plane: float,
    eps2d: float,
    with_depth: bool,
    tile_size: int,
) -> tuple[Tensor, Tensor]:
    """Premultiplied features [..., C, H, W, D (+1 accumulated depth)] and alphas [..., C, H, W, 1]."""
    from gsenv.compat import rasterization  # gsplat, imported lazily: its CUDA extension JIT-compiles on first use

    render, alphas = rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, packed=False, tile_size=tile_size,
        sh_degree=None, render_mode="RGB+D" if with_depth else "RGB", rasterize_mode="classic",
    )
    return render, alphas
