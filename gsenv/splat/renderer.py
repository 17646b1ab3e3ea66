"""`SceneRenderer`: a static background plus named rigid bodies, rendered for B envs x C cameras.

Each body's gaussians are stored in the body's own frame. Per render, one pose per body per env
(position + quaternion wxyz) moves all that body's gaussians in batched tensor ops; view-dependent
colour follows the body (body_transforms). All envs and cameras go through ONE rasteriser call.
Clusters of body gaussians no camera sees are left out first (culling).

The renderer holds the scene, not the views: what is kept from one render to the next lives in a
`ViewState` (gsenv.splat.view_state) that the caller passes and tells when cameras or look change.
Static-background cache (default on): the background is rasterised once per distinct camera (kept in
the ViewState while the caller's still cameras are unchanged); each render rasterises only the bodies
and composites them over it per pixel with premultiplied alpha and a depth test (compositing), so a
body behind background geometry is hidden. With the cache off, background and bodies are rasterised
jointly (per-env copies of the background). Cameras marked `moving` (on a robot link) share the
bodies' rasterisation with the others, but their background is rasterised at every render; per-env
cameras (randomised) keep a per-env background, rendered again only for the envs the caller names.
A `Look` (gsenv.splat.appearance) varies the appearance per env inside the same render.

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
from gsenv.splat.appearance import Look, jitter_to_uint8
from gsenv.splat.backdrop import Backdrop
from gsenv.splat.body_transforms import bodies_in_world, body_features, stack_body_poses
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
from gsenv.splat.view_state import KeptBodies, ViewState, distinct_views

__all__ = ["RenderOutput", "per_env_backdrop", "SceneRenderer"]

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


def per_env_backdrop(backdrop: Tensor, B: int, W: int, H: int) -> Tensor:
    """A look's backdrop, [B, 3] colours or [B, H, W, 3] images at the render size, as [B, 1, 1 or H,
    1 or W, 3] (broadcasting over cameras and pixels); ValueError for another shape."""
    if tuple(backdrop.shape) == (B, 3):
        return backdrop[:, None, None, None, :]
    if tuple(backdrop.shape) == (B, H, W, 3):
        return backdrop[:, None]
    raise ValueError(f"look.backdrop must be [B, 3] colours or [B, H, W, 3] images at the render size "
                     f"([{B}, 3] or [{B}, {H}, {W}, 3]), got {list(backdrop.shape)}")


def _columns(still: Tensor, moving: Tensor, cols: tuple[list[int], list[int]]) -> Tensor:
    """[B, C, ...] from the still cameras' part [1 or B, Cs, ...] and the moving ones' [B, Cm, ...],
    in camera order (cols: their camera indices)."""
    B = moving.shape[0]
    both = torch.cat([still.expand((B,) + still.shape[1:]), moving], 1)
    order = cols[0] + cols[1]
    if order == sorted(order):
        return both
    inverse = torch.as_tensor(sorted(range(len(order)), key=order.__getitem__), device=both.device)
    return both.index_select(1, inverse)


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
        cache_background: rasterise the background apart from the bodies and composite (kept across
            renders in the caller's ViewState); False: background and bodies in one rasterisation.
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
        self._background_images = 0
        self._build()

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        f = torch.float32
        bg = self._background_src
        self._bg_gaussians = bg.to(self.device, f) if bg is not None and len(bg) else None
        self._bg = RenderSplats(self._bg_gaussians) if self._bg_gaussians is not None else None
        self._bg_culling = None  # made when a moving camera first needs the background
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
        """How many background images have been rasterised so far (with cache_background): per
        ViewState, one per camera when all envs share the cameras, one per env and camera otherwise,
        each time the caller says the cameras changed; moving cameras' at every render."""
        return self._background_images

    def to(self, device: torch.device | str) -> SceneRenderer:
        """Move the gaussians (a ViewState kept for another device starts afresh at its next render)."""
        self.device = _resolved(device)
        self._build()
        return self

    # ------------------------------------------------------------------ per step
    def render(
        self,
        body_poses: Mapping[str, Tensor],
        cameras: Cameras,
        *,
        depth: bool = False,
        alpha: bool = False,
        body_alpha: bool = False,
        look: Look | None = None,
        views: ViewState | None = None,
    ) -> RenderOutput:
        """Render B envs x C cameras.

        body_poses: {name: [B, 7]} position xyz + quaternion wxyz of each body in the world frame
            (every name in body_names; other names are ignored).
        cameras: `Cameras` with Ks [B, C, 3, 3], viewmats [B, C, 4, 4], width, height; cameras marked
            `moving` get their background rasterised every render (the others' is cached).
        depth / alpha / body_alpha: also return those (see RenderOutput).
        look: per-env appearance (`gsenv.splat.appearance.Look`: body colour shifts, backdrops, image
            colour), applied inside this render; None: the scene as it is.
        views: what to keep for the next render of the same still cameras and look (the caller says
            when they change: ViewState.cameras_changed / look_changed); None: nothing is kept.
        """
        dev = cameras.device
        if dev != self.device:
            logger.info("SceneRenderer: moving gaussians to %s (the input device)", dev)
            self.to(dev)
        views = ViewState() if views is None else views
        if views.device != dev:  # kept for another device (or new): start afresh
            views.clear()
            views.device = dev
        backend = resolve_render_backend(self.backend, str(dev))
        B, C, W, H = cameras.batch_size, cameras.num_cameras, cameras.width, cameras.height
        views.check_shape((B, C, H, W))
        Ks, vms = cameras.Ks.to(torch.float32), cameras.viewmats.to(torch.float32)
        cols = cameras.moving_columns  # None, or (static, moving) camera indices
        poses = self.stack_poses(body_poses, B, dev)  # [B, NB, 7] or None
        nb = len(self._body_names) if body_alpha else 0
        shift = self._checked_shift(look, B)
        backdrop = self._backdrop.at(W, H) if look is None or look.backdrop is None else \
            per_env_backdrop(look.backdrop, B, W, H)

        shape = (B, C, H, W)
        rgb = None
        if self.cache_background and self._bg is not None:
            bg, fresh = self._background(Ks, vms, W, H, backend, cols, views)  # [B or 1, C, H, W, *]
            if self._bodies is not None:
                fg = self._body_layer(poses, Ks, vms, W, H, backend, nb, shift, cols, views)
                under = self._underlay(bg, backdrop, fresh, cols, views)
                rgb = rgb_over(fg, under, backdrop)  # the step's hot path: few passes
                out = composite_depth_tested(fg, bg, under.far) if depth or alpha or body_alpha else None
            else:
                out = pad_feats(bg, nb)
        else:
            out = self._joint_layer(poses, Ks, vms, W, H, backend, nb, shift, cols, views)
        if rgb is None:
            rgb = out.feats[..., :3] + (1.0 - out.alpha) * backdrop
        rgb = rgb.expand(shape + (3,))
        rgb8 = to_uint8(rgb) if look is None or look.image is None else jitter_to_uint8(rgb, look.image)
        res = RenderOutput(rgb=rgb8, body_names=self._body_names)
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
                                 cameras.viewmats.to(torch.float32), cameras.width, cameras.height, None,
                                 ViewState()).splats

    # ------------------------------------------------------------------ pieces
    def _checked_shift(self, look: Look | None, B: int) -> Tensor | None:
        """look.body_color_shift as float32 [B, NB, 3] (None without one); ValueError for another shape."""
        if look is None or look.body_color_shift is None:
            return None
        s = look.body_color_shift
        if tuple(s.shape) != (B, len(self._body_names), 3):
            raise ValueError(f"look.body_color_shift must be [B, NB, 3] = [{B}, {len(self._body_names)}, 3] "
                             f"(bodies as body_names), got {list(s.shape)}")
        return s

    def _planes(self, Ks: Tensor, vms: Tensor, W: int, H: int, cols, views: ViewState) -> Tensor:
        """[B, C, 5, 4] culling frusta: kept for still cameras, made anew for moving ones."""
        if cols is None:
            if views.planes is None:
                views.planes = frustum_planes(Ks, vms, W, H, self.near_plane)
            return views.planes
        return frustum_planes(Ks, vms, W, H, self.near_plane)  # [B, C, 5, 4]: a few hundred numbers

    @staticmethod
    def _kept(culling: BodyCulling, kept: KeptBodies | None, body_to_world: Tensor, planes: Tensor) -> KeptBodies:
        """The gaussians `culling` finds visible, as kept (with what was derived from them) while the
        visible clusters are the same as last render's: consecutive steps mostly agree."""
        visible = culling.visible(body_to_world, planes)
        if kept is not None and kept.same_visibility(visible):
            return kept
        return KeptBodies(visible, culling.subset(visible))

    def _kept_bodies(self, body_to_world: Tensor, Ks: Tensor, vms: Tensor, W: int, H: int, cols,
                     views: ViewState) -> KeptBodies:
        """The body gaussians this render uses: with `cull`, those some camera of some env sees."""
        if not self.cull:
            if views.bodies is None:
                views.bodies = KeptBodies(None, self._bodies)
        else:
            views.bodies = self._kept(self._culling, views.bodies, body_to_world,
                                      self._planes(Ks, vms, W, H, cols, views))
        return views.bodies

    def _body_feats(self, kept: KeptBodies, poses: Tensor, vms: Tensor, nb: int, shift: Tensor | None) -> Tensor:
        """The kept gaussians' features (body_features): view-independent ones kept in `kept` until
        the look changes, view-dependent ones made every render."""
        if kept.splats.splats.view_dependent:
            return body_features(kept.splats, poses, vms, nb, shift)
        if nb not in kept.feats:
            kept.feats[nb] = body_features(kept.splats, poses, vms, nb, shift)
        return kept.feats[nb]

    def _raster(self, means, quats, scales, opac, feats, Ks, vms, W, H, backend) -> Layer:
        out, a = rasterize(means, quats, scales, opac, feats, vms, Ks, W, H, near_plane=self.near_plane,
                           far_plane=self.far_plane, eps2d=self.eps2d, render_mode="RGB+D",
                           backend=backend, tile_size=self.tile_size)
        return Layer(out[..., :-1], out[..., -1:], a)

    def _body_layer(self, poses, Ks, vms, W, H, backend, nb, shift, cols, views: ViewState) -> Layer:
        body_to_world = pose_to_matrix(poses)  # [B, NB, 4, 4]
        kept = self._kept_bodies(body_to_world, Ks, vms, W, H, cols, views)
        if kept.splats is None:  # no camera sees any body
            B, C = vms.shape[:2]
            return empty_layer(B, C, H, W, nb, vms.device)
        feats = self._body_feats(kept, poses, vms, nb, shift)
        if backend == "gsplat":  # poses folded into the view matrices: no per-env copies of the bodies
            rigid, images = kept.splats.rigid(), vms.shape[0] * vms.shape[1]
            buffer = None
            if not kept.splats.splats.view_dependent:  # the same features every render: written once
                if (nb, images) not in kept.buffers:
                    kept.buffers[(nb, images)] = rigid.feature_buffer(feats, images)
                buffer = kept.buffers[(nb, images)]
            out, a = rigid.rasterize(body_to_world, feats, Ks, vms, W, H, near_plane=self.near_plane,
                                     far_plane=self.far_plane, eps2d=self.eps2d, tile_size=self.tile_size,
                                     buffer=buffer)
            return Layer(out[..., :-1], out[..., -1:], a)
        return self._raster(*bodies_in_world(kept.splats, poses, vms, nb, shift, feats), Ks, vms, W, H, backend)

    def _bg_seen_by(self, Ks: Tensor, vms: Tensor, W: int, H: int, views: ViewState) -> RenderSplats | None:
        """The background gaussians some of these cameras (Ks [B, Cm, 3, 3], viewmats [B, Cm, 4, 4]) can
        see: culled by 5 cm cluster against their frusta (with `cull`; the image is the same), None
        when they see none. A wrist camera sees a patch of the table, not the floor and the wall."""
        if not self.cull:
            return self._bg
        if self._bg_culling is None:
            bg = self._bg
            index = torch.zeros(len(bg), dtype=torch.long, device=self.device)
            self._bg_culling = BodyCulling(BodySplats(bg, index, 1), cluster_bodies([self._bg_gaussians]))
        views.background_seen = self._kept(self._bg_culling, views.background_seen,
                                           torch.eye(4, device=self.device)[None, None],
                                           frustum_planes(Ks, vms, W, H, self.near_plane))
        kept = views.background_seen.splats
        return None if kept is None else kept.splats

    def _background_views(self, k: Tensor, v: Tensor, W: int, H: int, backend: str,
                          bg: RenderSplats | None = None) -> Layer:
        """The background (or its part bg) rasterised into views Ks [V, 3, 3], viewmats [V, 4, 4]:
        Layer [V, H, W, *]."""
        bg = self._bg if bg is None else bg
        self._background_images += k.shape[0]
        return self._raster(bg.means, bg.quats, bg.scales, bg.opacities, background_features(bg, v), k, v, W, H,
                            backend)

    def _background_layer(self, Ks: Tensor, vms: Tensor, W: int, H: int, backend: str, views: ViewState) -> Layer:
        """The still cameras' background (Ks [B, Cs, 3, 3], viewmats [B, Cs, 4, 4]) rendered once per
        distinct camera: [1, Cs, ...] when every env shares the cameras, else [B, Cs, ...]; kept in
        `views`, and, per env, only the envs the caller said changed are rendered again."""
        layer = views.background
        if layer is not None:
            B, C = Ks.shape[:2]
            rows = views.stale_envs
            if rows is None:
                return layer
            views.stale_envs, views.underlay = None, None
            if len(rows) < B:  # some envs' cameras changed (partial reset): those alone
                part = self._background_views(Ks[rows].reshape(-1, 3, 3), vms[rows].reshape(-1, 4, 4), W, H, backend)
                for dst, src in zip((layer.feats, layer.depth_acc, layer.alpha),
                                    (part.feats, part.depth_acc, part.alpha)):
                    dst[rows] = src.reshape((len(rows), C) + src.shape[1:])
                logger.debug("background rendered again for %d env(s)", len(rows))
                return layer
        k, v, lead = distinct_views(Ks, vms)
        layer = self._background_views(k, v, W, H, backend)
        layer = Layer(*(x.reshape(lead + x.shape[1:]) for x in (layer.feats, layer.depth_acc, layer.alpha)))
        views.background, views.underlay, views.stale_envs = layer, None, None
        logger.debug("background rendered for %d camera(s) (%s)", lead[0] * lead[1],
                     "shared by all envs" if lead[0] == 1 else "per env")
        return layer

    def _background(self, Ks, vms, W, H, backend, cols, views: ViewState) -> tuple[Layer, Layer | None]:
        """(background layer of every camera [1 or B, C, ...], the moving cameras' part rendered now
        [B, Cm, ...] or None): still cameras from the cache, moving ones rasterised every render."""
        if cols is None:
            return self._background_layer(Ks, vms, W, H, backend, views), None
        still, moving = cols
        B, Cm = Ks.shape[0], len(moving)
        k, v = Ks[:, moving], vms[:, moving]
        splats = self._bg_seen_by(k, v, W, H, views)
        if splats is None:  # no moving camera sees any background
            fresh = empty_layer(B, Cm, H, W, 0, vms.device)
        else:
            fresh = self._background_views(k.reshape(-1, 3, 3), v.reshape(-1, 4, 4), W, H, backend, splats)
            fresh = Layer(*(x.reshape((B, Cm) + x.shape[1:]) for x in (fresh.feats, fresh.depth_acc, fresh.alpha)))
        if not still:
            return fresh, fresh
        cached = self._background_layer(Ks[:, still], vms[:, still], W, H, backend, views)
        return Layer(*(_columns(a, b, cols) for a, b in zip(
            (cached.feats, cached.depth_acc, cached.alpha), (fresh.feats, fresh.depth_acc, fresh.alpha)))), fresh

    def _underlay(self, bg: Layer, backdrop: Tensor, fresh: Layer | None, cols, views: ViewState) -> Underlay:
        """What the bodies are composited over: derived from the kept background layer once per
        backdrop (kept in `views` until the cameras or the look change); the moving cameras' part made
        anew every render."""
        if cols is not None and not cols[0]:  # every camera moves: nothing to keep
            return underlay(bg, backdrop)
        if views.underlay is None:
            views.underlay = underlay(views.background if cols is not None else bg, backdrop)
        if cols is None:
            return views.underlay
        now = underlay(fresh, backdrop)
        kept = views.underlay
        return Underlay(*(_columns(a, b, cols) for a, b in zip(
            (kept.far, kept.clear, kept.over_backdrop), (now.far, now.clear, now.over_backdrop))))

    def _joint_layer(self, poses, Ks, vms, W, H, backend, nb, shift, cols, views: ViewState) -> Layer:
        """Background and bodies in one rasterisation (no cache)."""
        B, C = vms.shape[:2]
        parts = []
        if self._bg is not None:
            bg = self._bg
            feats = background_features(bg, vms)  # [Nbg, 3] or [B, C, Nbg, 3]
            feats = torch.nn.functional.pad(feats, (0, nb))
            parts.append((bg.means.expand(B, -1, -1), bg.quats.expand(B, -1, -1), bg.scales.expand(B, -1, -1),
                          bg.opacities.expand(B, -1), feats))
        if self._bodies is not None:
            kept = self._kept_bodies(pose_to_matrix(poses), Ks, vms, W, H, cols, views)
            if kept.splats is not None:
                feats = self._body_feats(kept, poses, vms, nb, shift)
                parts.append(bodies_in_world(kept.splats, poses, vms, nb, shift, feats))
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
