"""Which body gaussians some camera can see: bodies culled in clusters against the camera frusta.

Each body's gaussians are grouped by a CLUSTER_CELL_M grid in the body frame; a cluster whose
bounding sphere (centre of its gaussians, radius to the farthest plus 3 of its largest standard
deviations) lies outside every camera's frustum widened by CULL_MARGIN_PX (which covers the
rasteriser's low-pass) cannot touch a pixel and is left out. The image stays the same.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from gsenv.splat.gaussians import Gaussians
from gsenv.splat.render_splats import BodySplats

CLUSTER_CELL_M = 0.05
CULL_MARGIN_PX = 4.0


class BodyClusters(NamedTuple):
    """Clusters of the bodies' gaussians (bodies concatenated in order, Nb gaussians, NC clusters).

    of_gaussian [Nb]: the cluster of each gaussian; body_of [NC]: the body of each cluster;
    centres [NC, 3] in their body's frame; radii [NC] of the bounding spheres.
    """

    of_gaussian: Tensor
    body_of: Tensor
    centres: Tensor
    radii: Tensor


def cluster_bodies(parts: Sequence[Gaussians], cell: float = CLUSTER_CELL_M) -> BodyClusters:
    """Group each body's gaussians (parts: one `Gaussians` per body, in its frame) by grid cell."""
    of_gaussian, body_of, centres, radii = [], [], [], []
    first = 0
    for k, g in enumerate(parts):
        if len(g) == 0:
            continue
        cells = torch.floor(g.means / cell).to(torch.int64)
        _, local = torch.unique(cells, dim=0, return_inverse=True)  # [n] cluster within the body
        n = int(local.max()) + 1
        count = torch.zeros(n, device=g.device).index_add_(0, local, torch.ones(len(g), device=g.device))
        c = torch.zeros(n, 3, device=g.device).index_add_(0, local, g.means) / count[:, None]
        extent = (g.means - c[local]).norm(dim=1) + 3.0 * g.scales.max(dim=1).values
        r = torch.zeros(n, device=g.device).scatter_reduce_(0, local, extent, "amax", include_self=True)
        of_gaussian.append(local + first)
        body_of.append(torch.full((n,), k, device=g.device, dtype=torch.int64))
        centres.append(c)
        radii.append(r)
        first += n
    return BodyClusters(torch.cat(of_gaussian), torch.cat(body_of), torch.cat(centres), torch.cat(radii))


def frustum_planes(Ks: Tensor, viewmats: Tensor, width: int, height: int, near: float) -> Tensor:
    """[B, C, 5, 4] each camera's frustum (widened by CULL_MARGIN_PX) as world-frame planes (n, d) with
    unit n: a point x is inside where n . x + d >= 0 for all five (near, left, right, top, bottom).
    Ks [B, C, 3, 3], viewmats [B, C, 4, 4] world-to-camera (OpenCV)."""
    W, H, vms = width, height, viewmats
    fx, fy, cx, cy = Ks[..., 0, 0], Ks[..., 1, 1], Ks[..., 0, 2], Ks[..., 1, 2]
    m = CULL_MARGIN_PX
    lo_x, hi_x = (-m - cx) / fx, (W + m - cx) / fx  # side planes as slopes x/z, y/z
    lo_y, hi_y = (-m - cy) / fy, (H + m - cy) / fy
    one, zero = torch.ones_like(fx), torch.zeros_like(fx)
    cam = torch.stack([  # camera-frame normals (x, y, z) and offsets
        torch.stack([zero, zero, one, -near * one], -1),
        torch.stack([one, zero, -lo_x, zero], -1), torch.stack([-one, zero, hi_x, zero], -1),
        torch.stack([zero, one, -lo_y, zero], -1), torch.stack([zero, -one, hi_y, zero], -1),
    ], -2)  # [B, C, 5, 4]
    cam = cam / cam[..., :3].norm(dim=-1, keepdim=True)
    return cam @ vms  # (n_c, d) . (V x) = (V^T (n_c, d)) . x


class SphereBlocks(NamedTuple):
    """The clusters' bounding spheres laid out body by body for one batched matrix product (S: the most
    clusters of any body): centres [NB, 4, S] in their body's frame, homogeneous, zero-padded; radii
    [NB, 1, S], padded with -inf (never visible); at [NC]: each cluster's place in the flat [NB * S]."""

    centres: Tensor
    radii: Tensor
    at: Tensor


def sphere_blocks(clusters: BodyClusters) -> SphereBlocks:
    """The blocks of `clusters` (whose clusters come body by body, as cluster_bodies makes them)."""
    body_of, dev = clusters.body_of, clusters.centres.device
    counts = torch.bincount(body_of)  # [NB]: clusters per body
    NB, S = len(counts), int(counts.max())
    first = torch.cumsum(counts, 0) - counts
    at = body_of * S + torch.arange(len(body_of), device=dev) - first[body_of]
    centres = torch.zeros(NB * S, 4, device=dev)
    centres[at, :3], centres[at, 3] = clusters.centres, 1.0
    radii = torch.full((NB * S,), -torch.inf, device=dev)
    radii[at] = clusters.radii
    return SphereBlocks(centres.reshape(NB, S, 4).transpose(1, 2), radii.reshape(NB, 1, S), at)


def visible_spheres(blocks: SphereBlocks, body_to_world: Tensor, planes: Tensor) -> Tensor:
    """bool [NC]: spheres that meet the frustum of any camera of any env.

    blocks: sphere_blocks of the clusters; body_to_world [B or 1, NB', 4, 4] (NB' >= the blocks' NB);
    planes [B, C, 5, 4] from frustum_planes. One matrix product per body over every env and camera
    (a gather of the planes per cluster would be a batched 5x4 product per cluster: far slower).
    """
    NB = blocks.centres.shape[0]
    in_bodies = planes[:, :, None] @ body_to_world[:, None, :NB]  # [B, C, NB, 5, 4]: the planes in each body's frame
    B, C = in_bodies.shape[:2]
    dist = in_bodies.permute(2, 0, 1, 3, 4).reshape(NB, B * C * 5, 4) @ blocks.centres  # [NB, B * C * 5, S]
    inside = (dist > -blocks.radii).reshape(NB, B * C, 5, -1).all(2).any(1)  # [NB, S]
    return inside.reshape(-1)[blocks.at]


class BodyCulling:
    """Which of one renderer's body gaussians some camera of some env sees, by cluster."""

    def __init__(self, bodies: BodySplats, clusters: BodyClusters) -> None:
        self.bodies, self.clusters = bodies, clusters
        self._blocks = sphere_blocks(clusters)

    def visible(self, body_to_world: Tensor, planes: Tensor) -> Tensor:
        """bool [S]: the clusters some camera sees. body_to_world [B, NB, 4, 4], planes [B, C, 5, 4]
        from frustum_planes."""
        return visible_spheres(self._blocks, body_to_world, planes)

    def subset(self, visible: Tensor) -> BodySplats | None:
        """All bodies, the gaussians of the visible clusters (visible [S] from `visible`), or None
        when no camera sees any."""
        if bool(visible.all()):
            return self.bodies
        if not bool(visible.any()):
            return None
        return self.bodies.subset(visible[self.clusters.of_gaussian])
