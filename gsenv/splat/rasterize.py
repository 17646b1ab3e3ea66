"""`rasterize`: one entry point for both rasterisers (gsplat on CUDA, the pure-PyTorch reference)."""
from __future__ import annotations

import logging

import torch
from torch import Tensor

from gsenv.backends import resolve_render_backend

__all__ = ["RENDER_MODES", "TILE_SIZES", "DEFAULT_TILE_SIZE", "rasterize"]

logger = logging.getLogger(__name__)

RENDER_MODES = ("RGB", "RGB+D", "RGB+ED")

# gsplat's tile edge in pixels. Any of TILE_SIZES gives the same image, not the same speed: 8 was the
# fastest for the scene renderer at 224x224 and tied with 16 at 640x480 on an H100 (docs/benchmarks.md).
TILE_SIZES = (8, 16, 32)
DEFAULT_TILE_SIZE = 8


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    render_mode: str = "RGB",
    backend: str = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
) -> tuple[Tensor, Tensor]:
    """Rasterise gaussians into a batch of cameras: all leading batch dims and cameras in one call.

    Args (leading batch dims `...` identical for gaussians and cameras, as in gsplat.rasterization):
        means:     [..., N, 3] world positions.
        quats:     [..., N, 4] rotations (wxyz, any norm).
        scales:    [..., N, 3] standard deviations (activated, not log).
        opacities: [..., N] in [0, 1] (activated).
        colors:    [..., N, D] or [..., C, N, D] per-gaussian features (already activated; RGB, or RGB
                   plus extra channels such as per-body one-hot ids).
        viewmats:  [..., C, 4, 4] world-to-camera, OpenCV convention (x right, y down, z forward).
        Ks:        [..., C, 3, 3] pinhole intrinsics.
        width, height: image size in pixels.
        render_mode: "RGB" (features), "RGB+D" (plus accumulated depth sum_i w_i z_i) or "RGB+ED"
                   (plus expected depth = accumulated depth / alpha, 0 where alpha = 0).
        backend:   "auto" (gsplat on CUDA tensors, torch otherwise), "gsplat" (needs CUDA) or "torch".
        tile_size: gsplat's tile edge in pixels, e.g. one of TILE_SIZES (the torch backend ignores it).

    Returns:
        render: [..., C, H, W, D] (or D+1 with depth) premultiplied by alpha (no background added).
        alphas: [..., C, H, W, 1] accumulated opacity.
    """
    _check(means.dim() >= 2 and means.shape[-1] == 3, f"means must be [..., N, 3], got {list(means.shape)}")
    batch, N = means.shape[:-2], means.shape[-2]
    _check(viewmats.dim() == len(batch) + 3 and viewmats.shape[-2:] == (4, 4) and viewmats.shape[:-3] == batch,
           f"viewmats must be [..., C, 4, 4] with batch dims {list(batch)}, got {list(viewmats.shape)}")
    C = viewmats.shape[-3]
    for name, t, shape in (("quats", quats, batch + (N, 4)), ("scales", scales, batch + (N, 3)),
                           ("opacities", opacities, batch + (N,)), ("Ks", Ks, batch + (C, 3, 3))):
        _check(tuple(t.shape) == tuple(shape), f"{name} must have shape {list(shape)}, got {list(t.shape)}")
    _check(colors.shape[:-1] in (batch + (N,), batch + (C, N)),
           f"colors must be [..., N, D] or [..., C, N, D] with batch dims {list(batch)}, C={C}, N={N}; "
           f"got {list(colors.shape)}")
    _check(render_mode in RENDER_MODES, f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    _check(isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0,
           f"width and height must be positive ints, got {width!r} x {height!r}")
    devices = {t.device for t in (means, quats, scales, opacities, colors, viewmats, Ks)}
    _check(len(devices) == 1, f"all inputs must be on one device, got {sorted(map(str, devices))}")
    choice = resolve_render_backend(backend, str(means.device))
    with_depth = render_mode != "RGB"

    if choice == "gsplat":  # one gsplat.rasterization call for all batch dims and cameras (gsenv.compat: gsplat
        # 1.4 has no batch dims); imported lazily: its CUDA extension JIT-compiles on first use
        from gsenv.compat import rasterization

        render, alphas = rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=near_plane,
            far_plane=far_plane, eps2d=eps2d, packed=False, tile_size=tile_size, sh_degree=None,
            render_mode="RGB+D" if with_depth else "RGB", rasterize_mode="classic")
    else:
        from gsenv.splat.torch_raster import rasterize_torch

        f = torch.float32
        render, alphas = rasterize_torch(means.to(f), quats.to(f), scales.to(f), opacities.to(f), colors.to(f),
                                         viewmats.to(f), Ks.to(f), width, height, near_plane, far_plane, eps2d,
                                         with_depth)
    if render_mode == "RGB+ED":
        render = torch.cat([render[..., :-1], render[..., -1:] / alphas.clamp_min(1e-10)], -1)
    return render, alphas
