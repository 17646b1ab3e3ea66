"""`SceneRenderer`: a static background plus named rigid bodies, rendered for B envs x C cameras.

Each body's gaussians are stored in the body's own frame. Per render, one pose per body per env
(position + quaternion wxyz) moves all that body's gaussians in batched tensor ops; view-dependent
colour follows the body (body_transforms). All envs and cameras go through ONE rasteriser call.
Clusters of body gaussians no camera sees are left out first (culling).

Static-background cache (default on): while the background and the cameras are unchanged, the
background is rasterised once per distinct camera and kept (camera_cache); each render then
rasterises only the bodies and composites them over it per pixel with premultiplied alpha and a
depth test (compositing), so a body behind background geometry is hidden. With the cache off,
background and bodies are rasterised jointly (per-env copies of the background).

Besides `render`, the stages of the body layer are public so that tools can time them one by one:
`stack_poses` and `visible_bodies` here, body_transforms' `body_features` and `bodies_in_world`, and
`BodySplats.rigid()`'s project / sort / blend.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gsenv.backends import RENDER_BACKENDS, resolve_render_backend
from gsenv.geometry import pose_to_matrix
from gsenv.splat.backdrop import Backdrop
from gsenv.splat.body_transforms import bodies_in_world, body_features, stack_body_poses
from gsenv.splat.camera_cache import CameraCache, distinct_views
from gsenv.splat.cameras import Cameras
from gsenv.splat.compositing import (
    Layer,
    Underlay,
    composite_depth_tested,
    empty_layer,
    pad_feats,
    rgb_over,
    to_uint8,
    underlay,
)
from gsenv.splat.culling import BodyCulling, cluster_bodies, frustum_planes
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.rasterize import DEFAULT_TILE_SIZE, TILE_SIZES, rasterize
from gsenv.splat.render_splats import BodySplats, RenderSplats, background_features

logger = logging.getLogger(__name__)


@dataclass
class RenderOutput:
    """Images of B envs x C cameras, on the input device.

    rgb:        uint8 [B, C, H, W, 3].
    depth:      float32 [B, C, H, W] expected depth along the camera z axis (metres); 0 where alpha = 0.
    alpha:      float32 [B, C, H, W] accumulated opacity of all gaussians (backdrop excluded).
    body_alpha: float32 [B, C, H, W, NB] each body's share of the pixel's opacity, after occlusion by
                everything else (bodies ordered as `body_names`).
    """

    rgb: Tensor
    depth: Tensor | None = None
    alpha: Tensor | None = None
    body_alpha: Tensor | None = None
    body_names: tuple[str, ...] = ()

    def body_ids(self, threshold: float = 0.5) -> Tensor:
        """int64 [B, C, H, W]: index into body_names of the body owning each pixel (largest per-body
        alpha, if >= threshold), -1 elsewhere. Needs render(..., body_alpha=True)."""
        if self.body_alpha is None:
            raise ValueError("body_ids needs per-body alpha: call render(..., body_alpha=True)")
        if self.body_alpha.shape[-1] == 0:
            return torch.full(self.body_alpha.shape[:-1], -1, dtype=torch.long, device=self.body_alpha.device)
        best, idx = self.body_alpha.max(-1)
        return torch.where(best >= threshold, idx, torch.full_like(idx, -1))


def _resolved(device: torch.device | str) -> torch.device:
    """The device tensors actually land on ("cuda" -> "cuda:0"), so device comparisons hold."""
    return torch.empty(0, device=device).device


class SceneRenderer:
    """Render a static background and named rigid bodies for a batch of envs and cameras.

    Args:
        background: gaussians in the world frame (or None).
        bodies: {name: gaussians in that body's frame}; names are the caller's link / object names.
        backend: "auto" (gsplat on CUDA, torch otherwise), "gsplat" or "torch".
        backdrop: what shows where the gaussians leave the pixel uncovered: an RGB colour (3 floats in
            [0, 1]) or an image ([h, w, 3] uint8 or float in [0, 1], any size: resized to each render).
        cache_background: keep the rendered background while background and cameras are unchanged.
        device: where the gaussians live (default: background's / first body's device). Renders follow
            the input device (the renderer moves itself there).
        near_plane, far_plane: camera-space depth range in metres.
        eps2d: low-pass added to every projected covariance (pixels^2). 0.3 (gsplat's default) for
            scans trained through such a rasteriser; 0 for gaussians made from mesh surfaces, whose
            edges would otherwise grow by about a pixel.
        cull: leave out clusters of body gaussians that no camera of any env can see (the image is
            the same; turn it off only to compare).
        tile_size: gsplat's tile edge in pixels (8, 16 or 32; default DEFAULT_TILE_SIZE); the image
            is the same, the speed is not.
    """

    def __init__(
        self,
        background: Gaussians | None,
        bodies: Mapping[str, Gaussians],
        *,
        backend: str = "auto",
        backdrop: Sequence[float] | Tensor | np.ndarray = (0.0, 0.0, 0.0),
        cache_background: bool = True,
        device: torch.device | str | None = None,
        near_plane: float = 0.01,
        far_plane: float = 1e10,
        eps2d: float = 0.3,
        cull: bool = True,
        tile_size: int = DEFAULT_TILE_SIZE,
    ) -> None:
        if backend not in RENDER_BACKENDS:
            raise ValueError(f"backend must be one of {RENDER_BACKENDS}, got {backend!r}")
        self.backend = backend
        self.cache_background = cache_background
        if eps2d < 0:
            raise ValueError(f"eps2d must be >= 0, got {eps2d}")
        self.near_plane, self.far_plane, self.eps2d = near_plane, far_plane, eps2d
        self.cull = cull
        if tile_size not in TILE_SIZES:
            raise ValueError(f"tile_size must be 8, 16 or 32 pixels, got {tile_size!r}")
        self.tile_size = tile_size
        for name, g in bodies.items():
            if not isinstance(g, Gaussians):
                raise ValueError(f"body {name!r} must be a Gaussians, got {type(g).__name__}")
        self._body_names = tuple(bodies)
        first = background if background is not None else next(iter(bodies.values()), None)
        default = first.device if first is not None else torch.device("cpu")
        self.device = _resolved(device) if device is not None else default
        self._background_src = background
        self._bodies_src = dict(bodies)
        self._backdrop_src = backdrop
        self._camera_cache = CameraCache()
        self._background_images = 0
        self._build()

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        f = torch.float32
        bg = self._background_src
        self._bg = RenderSplats(bg.to(self.device, f)) if bg is not None and len(bg) else None
        parts = [self._bodies_src[n].to(self.device, f) for n in self._body_names]
        if parts and sum(len(p) for p in parts):
            body = RenderSplats(Gaussians.concat(parts))
            counts = torch.tensor([len(p) for p in parts], device=self.device)
            index = torch.repeat_interleave(torch.arange(len(parts), device=self.device), counts)  # [Nb]
            self._bodies = BodySplats(body, index, len(parts))
            self._culling = BodyCulling(self._bodies, cluster_bodies(parts))
        else:
            self._bodies, self._culling = None, None
        self._backdrop = Backdrop(self._backdrop_src, self.device)
        self.invalidate_cache()

    @property
    def body_names(self) -> tuple[str, ...]:
        return self._body_names

    @property
    def background_splats(self) -> RenderSplats | None:
        """The background's render-ready gaussians (world frame); None without any."""
        return self._bg

    @property
    def body_splats(self) -> BodySplats | None:
        """All bodies' render-ready gaussians, each in its body's frame, ordered as body_names; None
        without any."""
        return self._bodies

    @property
    def background_images_rendered(self) -> int:
        """How many background images the cache has rasterised so far: one per camera when all envs
        share the cameras, one per env and camera otherwise, each time the cameras change."""
        return self._background_images

    def to(self, device: torch.device | str) -> SceneRenderer:
        """Move the gaussians (and drop the background cache)."""
        self.device = _resolved(device)
        self._build()
        return self

    def set_background(self, background: Gaussians | None) -> None:
        self._background_src = background
        self._build()

    def set_backdrop(self, backdrop) -> None:
        self._backdrop_src = backdrop
        self._backdrop = Backdrop(backdrop, self.device)
        self._camera_cache.underlay = None

    def invalidate_cache(self) -> None:
        """Forget everything derived from the last render's cameras (the background layer above all)."""
        self._camera_cache.clear()

    # ------------------------------------------------------------------ per step
    def render(
        self,
        body_poses: Mapping[str, Tensor],
        cameras: Cameras,
        *,
        depth: bool = False,
        alpha: bool = False,
        body_alpha: bool = False,
    ) -> RenderOutput:
        """Render B envs x C cameras.

        body_poses: {name: [B, 7]} position xyz + quaternion wxyz of each body in the world frame
            (every name in body_names; other names are ignored).
        cameras: `Cameras` with Ks [B, C, 3, 3], viewmats [B, C, 4, 4], width, height.
        depth / alpha / body_alpha: also return those (see RenderOutput).
        """
        dev = cameras.device
        if dev != self.device:
            logger.info("SceneRenderer: moving gaussians to %s (the input device)", dev)
            self.to(dev)
        backend = resolve_render_backend(self.backend, str(dev))
        B, C, W, H = cameras.batch_size, cameras.num_cameras, cameras.width, cameras.height
        Ks, vms = cameras.Ks.to(torch.float32), cameras.viewmats.to(torch.float32)
        poses = self.stack_poses(body_poses, B, dev)  # [B, NB, 7] or None
        nb = len(self._body_names) if body_alpha else 0

        shape = (B, C, H, W)
        rgb = None
        if self.cache_background and self._bg is not None:
            bg = self._background_layer(Ks, vms, W, H, backend)  # [B or 1, C, H, W, *]
            if self._bodies is not None:
                fg = self._body_layer(poses, Ks, vms, W, H, backend, nb)
                under = self._underlay(bg, W, H)
                rgb = rgb_over(fg, under, self._backdrop.at(W, H))  # the step's hot path: few passes
                out = composite_depth_tested(fg, bg, under.far) if depth or alpha or body_alpha else None
            else:
                out = pad_feats(bg, nb)
        else:
            out = self._joint_layer(poses, Ks, vms, W, H, backend, nb)
        if rgb is None:
            rgb = out.feats[..., :3] + (1.0 - out.alpha) * self._backdrop.at(W, H)
        res = RenderOutput(rgb=to_uint8(rgb.expand(shape + (3,))), body_names=self._body_names)
        if out is None:
            return res
        feats = out.feats.expand(shape + out.feats.shape[-1:])
        a = out.alpha.expand(shape + (1,))
        if depth:
            res.depth = (out.depth_acc.expand(shape + (1,)) / a.clamp_min(1e-10))[..., 0].to(torch.float32)
        if alpha:
            res.alpha = a[..., 0].to(torch.float32)
        if body_alpha:
            res.body_alpha = feats[..., 3:3 + nb].to(torch.float32)
        return res

    # ------------------------------------------------------------------ stages (public: tools time them)
    def stack_poses(self, body_poses: Mapping[str, Tensor], batch_size: int, device: torch.device) -> Tensor | None:
        """float32 [B, NB, 7]: body_poses ({name: [B, 7]}) in body_names order, checked (ValueError
        saying what is wrong); None when the renderer has no body gaussians."""
        if self._bodies is None:
            return None
        return stack_body_poses(body_poses, self._body_names, batch_size, device)

    def visible_bodies(self, poses: Tensor, cameras: Cameras) -> BodySplats | None:
        """The body gaussians a render at poses [B, NB, 7] (from stack_poses) through `cameras` uses:
        with `cull`, those some camera of some env can see (by cluster; None when no camera sees any),
        else all of them. None without body gaussians."""
        if self._bodies is None:
            return None
        return self._kept_bodies(pose_to_matrix(poses), cameras.Ks.to(torch.float32),
                                 cameras.viewmats.to(torch.float32), cameras.width, cameras.height)

    # ------------------------------------------------------------------ pieces
    def _kept_bodies(self, body_to_world: Tensor, Ks: Tensor, vms: Tensor, W: int, H: int) -> BodySplats | None:
        if not self.cull:
            return self._bodies
        cache = self._camera_cache.update(Ks, vms, W, H)
        if cache.planes is None:
            cache.planes = frustum_planes(Ks, vms, W, H, self.near_plane)
        return self._culling.kept(body_to_world, cache.planes)

    def _raster(self, means, quats, scales, opac, feats, Ks, vms, W, H, backend) -> Layer:
        out, a = rasterize(means, quats, scales, opac, feats, vms, Ks, W, H, near_plane=self.near_plane,
                           far_plane=self.far_plane, eps2d=self.eps2d, render_mode="RGB+D",
                           backend=backend, tile_size=self.tile_size)
        return Layer(out[..., :-1], out[..., -1:], a)

    def _body_layer(self, poses, Ks, vms, W, H, backend, nb) -> Layer:
        body_to_world = pose_to_matrix(poses)  # [B, NB, 4, 4]
        kept = self._kept_bodies(body_to_world, Ks, vms, W, H)
        if kept is None:  # no camera sees any body
            B, C = vms.shape[:2]
            return empty_layer(B, C, H, W, nb, vms.device)
        if backend == "gsplat":  # poses folded into the view matrices: no per-env copies of the bodies
            out, a = kept.rigid().rasterize(
                body_to_world, body_features(kept, poses, vms, nb), Ks, vms, W, H,
                near_plane=self.near_plane, far_plane=self.far_plane, eps2d=self.eps2d, tile_size=self.tile_size)
            return Layer(out[..., :-1], out[..., -1:], a)
        return self._raster(*bodies_in_world(kept, poses, vms, nb), Ks, vms, W, H, backend)

    def _background_layer(self, Ks: Tensor, vms: Tensor, W: int, H: int, backend: str) -> Layer:
        """The background rendered once per distinct camera: [1, C, ...] when every env shares the
        cameras, else [B, C, ...]; reused while (Ks, viewmats, size, backend) are unchanged."""
        cache = self._camera_cache.update(Ks, vms, W, H)
        if cache.background is not None and cache.background[0] == backend:
            return cache.background[1]
        bg = self._bg
        k, v, lead = distinct_views(Ks, vms)
        layer = self._raster(bg.means, bg.quats, bg.scales, bg.opacities, background_features(bg, v), k, v, W, H,
                             backend)
        layer = Layer(*(x.reshape(lead + x.shape[1:]) for x in (layer.feats, layer.depth_acc, layer.alpha)))
        cache.background, cache.underlay = (backend, layer), None
        self._background_images += lead[0] * lead[1]
        logger.debug("background rendered for %d camera(s) (%s)", lead[0] * lead[1],
                     "shared by all envs" if lead[0] == 1 else "per env")
        return layer

    def _underlay(self, bg: Layer, W: int, H: int) -> Underlay:
        """What the bodies are composited over, derived from the cached background layer once."""
        cache = self._camera_cache
        if cache.underlay is None:
            cache.underlay = underlay(bg, self._backdrop.at(W, H))
        return cache.underlay

    def _joint_layer(self, poses, Ks, vms, W, H, backend, nb) -> Layer:
        """Background and bodies in one rasterisation (no cache)."""
        B, C = vms.shape[:2]
        parts = []
        if self._bg is not None:
            bg = self._bg
            feats = background_features(bg, vms)  # [Nbg, 3] or [B, C, Nbg, 3]
            feats = torch.nn.functional.pad(feats, (0, nb))
            parts.append((bg.means.expand(B, -1, -1), bg.quats.expand(B, -1, -1), bg.scales.expand(B, -1, -1),
                          bg.opacities.expand(B, -1), feats))
        kept = self._kept_bodies(pose_to_matrix(poses), Ks, vms, W, H) if self._bodies is not None else None
        if kept is not None:
            parts.append(bodies_in_world(kept, poses, vms, nb))
        if not parts:
            return empty_layer(B, C, H, W, nb, vms.device)
        # features: [B, N_part, D] each, or [B, C, N_part, D] once any part is view-dependent
        per_cam = any(p[4].dim() == 4 for p in parts)
        feats = []
        for p in parts:
            f = p[4]
            if per_cam and f.dim() != 4:
                f = f.expand((B, C) + f.shape[-2:])
            elif not per_cam:
                f = f.expand((B,) + f.shape[-2:])
            feats.append(f)
        cat = [torch.cat([p[i] for p in parts], 1) for i in range(4)]
        return self._raster(*cat, torch.cat(feats, -2), Ks, vms, W, H, backend)
