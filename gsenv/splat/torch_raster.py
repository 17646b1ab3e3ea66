"""Pure-PyTorch reference rasteriser with gsplat's maths (CPU or CUDA; no gradients).

Same steps and constants as gsplat 1.5.3's CUDA kernels (`ProjectionEWA3DGSFused.cu`,
`IntersectTile.cu`, `RasterizeToPixels3DGSFwd.cu`):
- EWA projection with the pinhole Jacobian (view-frustum clamp of 1.3x the image), a low-pass
  `eps2d` (0.3 px^2) added to the 2D covariance's diagonal, gaussians culled outside
  [near_plane, far_plane], with det <= 0, opacity < 1/255, or off-image; opacity-aware bounding
  radius min(3.33, sqrt(2 ln(255 opacity))) * sigma per axis.
- Gaussians front to back by camera depth, alpha = min(0.999, o exp(-q)) with the pixel centre at
  (x + 0.5, y + 0.5); alpha < 1/255 skipped; a pixel stops before the gaussian that would bring its
  transmittance to <= 1e-4.

Vectorised without tiles: every visible gaussian lists the pixels of its bounding box (the
opacity-aware radius bounds where alpha >= 1/255, so nothing gsplat draws is missed); the pairs are
evaluated at once, stably sorted by pixel (keeping depth order) and composited with a segmented
cumulative sum of log(1 - alpha). Chunks of depth-sorted gaussians bound the memory.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from gsenv.geometry import quat_to_rotmat

ALPHA_THRESHOLD = 1.0 / 255.0
TRANSMITTANCE_STOP = 1e-4
MAX_ALPHA = 0.999
WORK_ELEMENTS = 1 << 21  # (gaussian, pixel) pairs per chunk: bounds temporary memory


class Projected(NamedTuple):
    """Per-image projected gaussians, all [..., C, N, *]."""

    radii: Tensor  # [..., C, N, 2] int32, 0 where culled
    means2d: Tensor  # [..., C, N, 2] pixels
    depths: Tensor  # [..., C, N] camera-space z
    conics: Tensor  # [..., C, N, 3] inverse 2D covariance (xx, xy, yy)
    opacities: Tensor  # [..., C, N]


def project(
    means: Tensor,  # [..., N, 3]
    quats: Tensor,  # [..., N, 4]
    scales: Tensor,  # [..., N, 3]
    opacities: Tensor,  # [..., N]
    viewmats: Tensor,  # [..., C, 4, 4]
    Ks: Tensor,  # [..., C, 3, 3]
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> Projected:
    """EWA-project 3D gaussians into each camera (gsplat's fully fused projection, pinhole)."""
    R = viewmats[..., :3, :3]  # [..., C, 3, 3]
    t = viewmats[..., :3, 3]  # [..., C, 3]
    means_c = torch.einsum("...cij,...nj->...cni", R, means) + t[..., None, :]  # [..., C, N, 3]
    M = quat_to_rotmat(quats) * scales[..., None, :]  # [..., N, 3, 3] = R_g S
    RM = torch.einsum("...cij,...njk->...cnik", R, M)  # [..., C, N, 3, 3]

    x, y, z = means_c.unbind(-1)
    fx, fy = Ks[..., 0, 0, None], Ks[..., 1, 1, None]  # [..., C, 1]
    cx, cy = Ks[..., 0, 2, None], Ks[..., 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    safe_z = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))
    rz = 1.0 / safe_z
    tx = safe_z * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = safe_z * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    zero = torch.zeros_like(z)
    J = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], -1)
    J = J.reshape(z.shape + (2, 3))
    JRM = J @ RM  # [..., C, N, 2, 3]
    cov = JRM @ JRM.transpose(-1, -2)  # [..., C, N, 2, 2]
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)

    cxx = cov[..., 0, 0] + eps2d
    cyy = cov[..., 1, 1] + eps2d
    cxy = cov[..., 0, 1]
    det = cxx * cyy - cxy * cxy
    safe_det = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([cyy / safe_det, -cxy / safe_det, cxx / safe_det], -1)

    op = opacities[..., None, :].expand(z.shape)  # [..., C, N]
    extend = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp(max=3.33)
    rx = torch.ceil(extend * cxx.clamp_min(0).sqrt())
    ry = torch.ceil(extend * cyy.clamp_min(0).sqrt())
    mx, my = means2d.unbind(-1)
    valid = (
        (z >= near_plane) & (z <= far_plane) & (det > 0) & (op >= ALPHA_THRESHOLD) & ((rx > 0) | (ry > 0))
        & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
    )
    radii = torch.stack([rx, ry], -1) * valid[..., None]
    return Projected(radii.to(torch.int32), means2d, z, conics, op)


def _pixel_pairs(
    pk: Tensor,  # [V, 7] (mean x, mean y, conic a, b, c, opacity, image)
    radii: Tensor,  # [V, 2]
    width: int,
    height: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Enumerate the pixels (centres at x + 0.5) where each gaussian's alpha can reach 1/255.

    Rows come from the bounding radius; in each row the span solves the quadratic
    0.5 a dx^2 + b dx dy + 0.5 c dy^2 <= ln(255 o) (with a 0.01 px margin; alpha is re-checked
    later). Returns (owner [K] index into V, px [K], py [K]) in gaussian order.
    """
    dev = pk.device
    my, ry = pk[:, 1], radii[:, 1].to(pk.dtype)
    y0 = torch.ceil(my - ry - 0.5).clamp(0, height).long()
    y1 = (torch.floor(my + ry - 0.5) + 1).clamp(0, height).long()
    nrows = (y1 - y0).clamp_min(0)
    rown = torch.repeat_interleave(torch.arange(len(pk), device=dev), nrows)  # [R]
    row = (y0.index_select(0, rown) + torch.arange(len(rown), device=dev)
           - (torch.cumsum(nrows, 0) - nrows).index_select(0, rown))
    p = pk.index_select(0, rown)
    mx, a, b, c, op = p[:, 0], p[:, 2], p[:, 3], p[:, 4], p[:, 5]
    dy = p[:, 1] - (row.to(pk.dtype) + 0.5)
    S = torch.log(op * 255.0)
    disc = (b * dy) ** 2 - a * (c * dy * dy - 2.0 * S)
    root = disc.clamp_min(0).sqrt()
    dx_lo, dx_hi = (-b * dy - root) / a, (-b * dy + root) / a
    xs = torch.ceil(mx - dx_hi - 0.5 - 0.01).clamp(0, width).long()
    xe = (torch.floor(mx - dx_lo - 0.5 + 0.01) + 1).clamp(0, width).long()
    cnt = torch.where(disc >= 0, (xe - xs).clamp_min(0), 0)
    pown = torch.repeat_interleave(torch.arange(len(rown), device=dev), cnt)  # [K]
    px = (xs.index_select(0, pown) + torch.arange(len(pown), device=dev)
          - (torch.cumsum(cnt, 0) - cnt).index_select(0, pown))
    return rown.index_select(0, pown), px, row.index_select(0, pown)


def composite(
    proj: Projected,  # [I, N, *] fields (image dims flattened)
    colors: Tensor,  # [I, N, D]
    width: int,
    height: int,
    max_pairs: int = WORK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """Front-to-back alpha compositing. Returns premultiplied colours [I, H, W, D], alphas [I, H, W, 1].

    Visible gaussians are sorted by depth and processed in chunks (front to back) of at most
    `max_pairs` (gaussian, pixel) bounding-box pairs. Within a chunk, the pairs with alpha >= 1/255 are stably
    sorted by pixel (keeping depth order), and each pixel's transmittance is a segmented cumulative
    sum of log(1 - alpha) (float64) on top of the transmittance left by earlier chunks.
    """
    I, N, D = colors.shape
    device, dtype = colors.device, colors.dtype
    n_pix = I * height * width
    out = torch.zeros(n_pix, D, device=device, dtype=dtype)
    logT = torch.zeros(n_pix, device=device, dtype=torch.float64)  # log transmittance so far
    done = torch.zeros(n_pix, device=device, dtype=torch.bool)

    vis = (proj.radii > 0).all(-1).reshape(-1).nonzero().squeeze(-1)  # [V] flat ids into I*N
    vis = vis[torch.argsort(proj.depths.reshape(-1)[vis], stable=True)]
    radii = proj.radii.reshape(-1, 2)[vis]
    # per visible gaussian: mean x, mean y, conic a b c, opacity, image index (gathered once per pair)
    pk = torch.cat([proj.means2d.reshape(-1, 2)[vis], proj.conics.reshape(-1, 3)[vis],
                    proj.opacities.reshape(-1)[vis, None], (vis // N)[:, None].to(proj.means2d.dtype)], -1).to(dtype)
    area = ((2 * radii[:, 0] + 1) * (2 * radii[:, 1] + 1)).to(torch.float64)
    chunk_id = (torch.cumsum(area, 0) - area) // max_pairs  # consecutive, front to back
    bounds = torch.searchsorted(chunk_id, torch.unique(chunk_id)).tolist() + [len(vis)]
    col = colors.reshape(-1, D)
    log_stop = math.log(TRANSMITTANCE_STOP)
    key_dtype = torch.int32 if n_pix < 2**31 else torch.int64

    for s, e in zip(bounds[:-1], bounds[1:]):
        owner, px, py = _pixel_pairs(pk[s:e], radii[s:e], width, height)
        owner = owner + s
        p = pk.index_select(0, owner)  # [K, 7]
        pix = ((p[:, 6].long() * height + py) * width + px).to(key_dtype)
        if s > 0:  # drop pixels already saturated by earlier chunks
            live = (~done.index_select(0, pix)).nonzero().squeeze(-1)
            owner, p, pix, px, py = (t.index_select(0, live) for t in (owner, p, pix, px, py))
        dx = p[:, 0] - (px.to(dtype) + 0.5)
        dy = p[:, 1] - (py.to(dtype) + 0.5)
        sigma = 0.5 * (p[:, 2] * dx * dx + p[:, 4] * dy * dy) + p[:, 3] * dx * dy
        alpha = (p[:, 5] * torch.exp(-sigma)).clamp_max(MAX_ALPHA)
        ok = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
        if not bool(ok.all()):
            sel = ok.nonzero().squeeze(-1)
            pix, alpha, owner = (t.index_select(0, sel) for t in (pix, alpha, owner))
        if len(pix) == 0:
            continue
        pix, order = torch.sort(pix, stable=True)  # stable: depth order within a pixel
        alpha = alpha.index_select(0, order)
        g = vis.index_select(0, owner.index_select(0, order))
        la = torch.log1p(-alpha.to(torch.float64))
        incl = torch.cumsum(la, 0)
        _, counts = torch.unique_consecutive(pix, return_counts=True)
        seg_start = torch.cumsum(counts, 0) - counts
        base = (incl.index_select(0, seg_start) - la.index_select(0, seg_start)).repeat_interleave(counts)
        pixl = pix.long()
        incl = incl - base + logT.index_select(0, pixl)  # log T after this gaussian
        keep = incl > log_stop
        w = (alpha.to(torch.float64) * torch.exp(incl - la)) * keep
        out.index_add_(0, pixl, w.to(dtype)[:, None] * col.index_select(0, g).to(dtype))
        logT.index_add_(0, pixl, la * keep)
        done[pixl[~keep]] = True

    alphas = (1.0 - torch.exp(logT)).to(dtype)
    return out.reshape(I, height, width, D), alphas.reshape(I, height, width, 1)


@torch.no_grad()
def rasterize_torch(
    means: Tensor,  # [..., N, 3]
    quats: Tensor,  # [..., N, 4]
    scales: Tensor,  # [..., N, 3]
    opacities: Tensor,  # [..., N]
    colors: Tensor,  # [..., N, D] or [..., C, N, D]
    viewmats: Tensor,  # [..., C, 4, 4]
    Ks: Tensor,  # [..., C, 3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    with_depth: bool = False,
) -> tuple[Tensor, Tensor]:
    """Render premultiplied features [..., C, H, W, D (+1 accumulated depth)] and alphas [..., C, H, W, 1]."""
    batch = viewmats.shape[:-3]
    C, N = viewmats.shape[-3], means.shape[-2]
    proj = project(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane)
    if colors.dim() == means.dim():  # [..., N, D] -> [..., C, N, D]
        colors = colors[..., None, :, :].expand(batch + (C, N, colors.shape[-1]))
    if with_depth:
        colors = torch.cat([colors, proj.depths[..., None].to(colors.dtype)], -1)
    I = math.prod(batch) * C
    flat = Projected(*(f.reshape((I, N) + f.shape[len(batch) + 2:]) for f in proj))
    rgb, alpha = composite(flat, colors.reshape(I, N, -1), width, height)
    return rgb.reshape(batch + (C, height, width, -1)), alpha.reshape(batch + (C, height, width, 1))
