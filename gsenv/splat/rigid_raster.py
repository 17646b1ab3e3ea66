"""Rigid bodies through gsplat's stages, each body's pose folded into the view matrices (CUDA).

`gsplat.rasterization` wants every gaussian in the world frame: moving B envs' body gaussians there
costs a gather and a rigid transform of B x N gaussians per render, more than the projection and
sort together at B=256. A body at pose T seen by a camera with view matrix V is the body at rest
seen through V T. So each body's gaussians stay in the body frame, never copied per env, and are
projected once per body for all images with the combined matrices (gsplat's "one scene, many
cameras" form); the projected bodies of an image are then sorted and rasterised together, as one
rasterisation call would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class BodySegment:
    """Gaussians [start, stop) of the concatenation belong to body `body` (index into the poses)."""

    body: int
    start: int
    stop: int


class RigidBodies:
    """Gaussians of rigid bodies in their own frames, concatenated body after body.

    means [N, 3], quats [N, 4] (wxyz), scales [N, 3] (standard deviations), opacities [N];
    segments: which rows belong to which body (contiguous, in order, covering [0, N)).
    """

    def __init__(self, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                 segments: list[BodySegment]) -> None:
        self.means, self.quats, self.scales, self.opacities = means, quats, scales, opacities
        # each body's rows, contiguous, sliced once: the projection runs body by body every render
        self._parts = [(seg.body, *(t[seg.start:seg.stop].contiguous() for t in (means, quats, scales, opacities)))
                       for seg in segments if seg.stop > seg.start]
        self._opacities: Tensor | None = None  # [I, N], contiguous (rasterize_to_pixels copies views)

    def __len__(self) -> int:
        return self.means.shape[0]

    def feature_buffer(self, feats: Tensor, images: int) -> Tensor:
        """[I, N, D + 1]: the features [N, D] (the same in every image) or [B, C, N, D] (I = B x C)
        written into a new buffer, the last channel left for each gaussian's camera depth.

        rasterize_to_pixels wants features and depth in one contiguous tensor. A caller whose features
        stay the same from render to render (a `ViewState`) keeps the buffer and passes it again:
        only the depth channel is written then."""
        D = feats.shape[-1]
        buf = torch.empty((images, len(self), D + 1), device=feats.device, dtype=torch.float32)
        buf[..., :D] = feats if feats.dim() == 2 else feats.reshape((images,) + feats.shape[2:])
        return buf

    def project(self, body_to_world: Tensor, Ks: Tensor, viewmats: Tensor, width: int, height: int, *,
                near_plane: float, far_plane: float, eps2d: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """gsplat's projection of every body into every image, body by body: radii [I, N, 2] ([I, N]
        on gsplat 1.4, see gsenv.compat.radii_xy), means2d [I, N, 2], depths [I, N] and conics
        [I, N, 3], images I = B x C in (env, camera) order."""
        from gsenv.compat import project_fused

        project = project_fused()
        B, C = viewmats.shape[:2]
        I = B * C
        Ks_flat = Ks.reshape(I, 3, 3).contiguous()
        # per body, per image: V T_body, [NB, I, 4, 4]
        combined = (viewmats[:, :, None] @ body_to_world[:, None]).permute(2, 0, 1, 3, 4)
        combined = combined.reshape(-1, I, 4, 4).contiguous()
        outs = [project(means, quats, scales, opacities, combined[body], Ks_flat, width, height, eps2d, near_plane,
                        far_plane) for body, means, quats, scales, opacities in self._parts]
        return tuple(torch.cat(x, 1) for x in zip(*outs))

    @staticmethod
    def sort(projected: tuple[Tensor, ...], width: int, height: int, tile_size: int) -> tuple[Tensor, Tensor]:
        """Tile hits sorted by image, tile and depth: offsets [I, tiles_h, tiles_w] and flatten_ids."""
        from gsplat.cuda._wrapper import isect_offset_encode

        from gsenv.compat import isect_tiles

        radii, means2d, depths, _ = projected
        I = radii.shape[0]
        tiles_w, tiles_h = math.ceil(width / tile_size), math.ceil(height / tile_size)
        _, isect_ids, flatten_ids = isect_tiles(means2d, radii, depths, tile_size, tiles_w, tiles_h)
        return isect_offset_encode(isect_ids, I, tiles_w, tiles_h), flatten_ids

    def blend(self, projected: tuple[Tensor, ...], order: tuple[Tensor, Tensor], buffer: Tensor, width: int,
              height: int, tile_size: int) -> tuple[Tensor, Tensor]:
        """gsplat's rasterize_to_pixels: features + depth [I, H, W, D + 1] and alphas [I, H, W, 1].
        buffer [I, N, D + 1] from feature_buffer: its last channel is overwritten with the depths."""
        from gsplat.cuda._wrapper import rasterize_to_pixels

        _, means2d, depths, conics = projected
        I = means2d.shape[0]
        buffer[..., -1] = depths
        colors = buffer
        if self._opacities is None or self._opacities.shape[0] != I:
            self._opacities = self.opacities.expand(I, -1).contiguous()
        offsets, flatten_ids = order
        return rasterize_to_pixels(means2d, conics, colors, self._opacities, width, height, tile_size, offsets,
                                   flatten_ids)

    def rasterize(self, body_to_world: Tensor, feats: Tensor, Ks: Tensor, viewmats: Tensor, width: int, height: int,
                  *, near_plane: float, far_plane: float, eps2d: float, tile_size: int,
                  buffer: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Rasterise the bodies at their poses into B x C images.

        body_to_world: [B, NB, 4, 4] each body's pose per env; feats: [N, D] (the same in every image)
        or [B, C, N, D]; Ks [B, C, 3, 3]; viewmats [B, C, 4, 4] world-to-camera (OpenCV).
        buffer: feature_buffer(feats, B x C) kept from an earlier render with these same features
        (None: made here).
        Returns premultiplied features with accumulated depth [B, C, H, W, D + 1] and alphas
        [B, C, H, W, 1], as `rasterize(..., render_mode="RGB+D")`.
        """
        B, C = viewmats.shape[:2]
        projected = self.project(body_to_world, Ks, viewmats, width, height, near_plane=near_plane,
                                 far_plane=far_plane, eps2d=eps2d)
        order = self.sort(projected, width, height, tile_size)
        if buffer is None:
            buffer = self.feature_buffer(feats, B * C)
        render, alphas = self.blend(projected, order, buffer, width, height, tile_size)
        return render.reshape(B, C, height, width, -1), alphas.reshape(B, C, height, width, 1)
