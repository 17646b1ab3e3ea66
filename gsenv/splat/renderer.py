"""`SceneRenderer`: a static background plus named rigid bodies, rendered for B envs x C cameras.

Each body's gaussians are stored in the body's own frame. Per render, one pose per body per env
(position + quaternion wxyz) moves all that body's gaussians in batched tensor ops (means' = R m + t,
quats' = q ⊗ q_m); view-dependent colour follows the body (SH evaluated with the view direction
taken into the body frame). All envs and cameras go through ONE rasteriser call.

Static-background cache (default on): while the background and the cameras are unchanged, the
background is rasterised once per distinct camera and kept; each render then rasterises only the
bodies and composites them over it per pixel with premultiplied alpha and a depth test (whichever
layer's expected depth is nearer goes in front), so a body behind background geometry is hidden.
With the cache off, background and bodies are rasterised jointly (per-env copies of the background).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from gsenv.backends import RENDER_BACKENDS, resolve_render_backend
from gsenv.splat.cameras import Cameras
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.rasterize import rasterize
from gsenv.splat.rigid_raster import BodySegment, RigidBodies
from gsenv.splat.rotations import pose_to_matrix, quat_conjugate, quat_multiply, quat_normalize, quat_rotate
from gsenv.splat.sh import eval_sh

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


@dataclass
class _Layer:
    """Rasterised layer: premultiplied features [..., C, H, W, D], accumulated depth and alpha [..., 1]."""

    feats: Tensor
    depth_acc: Tensor
    alpha: Tensor


class _Splats:
    """Activated, render-ready tensors of a gaussian set (shared by all envs)."""

    def __init__(self, g: Gaussians) -> None:
        self.means = g.means
        self.quats = quat_normalize(g.quats)
        self.scales = g.scales
        self.opacities = g.opacities
        self.sh = g.sh
        self.view_dependent = g.sh.shape[1] > 1
        self.rgb = eval_sh(g.sh, torch.ones_like(g.means)) if not self.view_dependent else None  # [N, 3]

    def __len__(self) -> int:
        return self.means.shape[0]

    def subset(self, keep: Tensor) -> "_Splats":
        """The gaussians where keep [N] is True."""
        out = object.__new__(_Splats)
        out.means, out.quats, out.scales = self.means[keep], self.quats[keep], self.scales[keep]
        out.opacities, out.sh, out.view_dependent = self.opacities[keep], self.sh[keep], self.view_dependent
        out.rgb = None if self.rgb is None else self.rgb[keep]
        return out


class _KeptBodies:
    """The body gaussians a render uses (all, or those some camera sees), ordered by body: the splats,
    the body index of each [N], and, made on first use, the gsplat path's RigidBodies and the
    features of each gaussian [N, 3 + nb] (colour and per-body one-hot) when they are view-independent."""

    def __init__(self, splats: _Splats, index: Tensor, num_bodies: int) -> None:
        self.splats, self.index, self.num_bodies = splats, index, num_bodies
        self._rigid: RigidBodies | None = None
        self._feats: dict[int, Tensor] = {}

    def rigid(self) -> RigidBodies:
        if self._rigid is None:
            counts = torch.bincount(self.index, minlength=self.num_bodies).tolist()
            bounds = np.cumsum([0] + counts)
            segments = [BodySegment(k, int(bounds[k]), int(bounds[k + 1])) for k in range(self.num_bodies)]
            b = self.splats
            self._rigid = RigidBodies(b.means, b.quats, b.scales, b.opacities, segments)
        return self._rigid

    def static_feats(self, nb: int) -> Tensor:
        """[N, 3 + nb] colour and one-hot body id (view-independent colour only), kept."""
        if nb not in self._feats:
            self._feats[nb] = _with_onehot(self.splats.rgb, self.index, nb).contiguous()
        return self._feats[nb]


def _with_onehot(feats: Tensor, index: Tensor, nb: int) -> Tensor:
    """feats [..., N, 3] with each gaussian's one-hot body id appended (nb channels; none for nb = 0)."""
    if not nb:
        return feats
    onehot = torch.nn.functional.one_hot(index, nb).to(feats.dtype)
    return torch.cat([feats, onehot.expand(feats.shape[:-1] + (nb,))], -1)


# Bodies are culled in clusters: each body's gaussians are grouped by a CLUSTER_CELL_M grid in the
# body frame; a cluster whose bounding sphere (centre of its gaussians, radius to the farthest plus
# 3 of its largest standard deviations) lies outside every camera's frustum widened by
# CULL_MARGIN_PX (which covers the rasteriser's low-pass) cannot touch a pixel and is left out.
CLUSTER_CELL_M = 0.05
CULL_MARGIN_PX = 4.0


def _clusters(parts: Sequence[Gaussians], cell: float = CLUSTER_CELL_M) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Group each body's gaussians by grid cell.

    Returns: cluster of each gaussian [Nb] (bodies concatenated in order), body of each cluster [NC],
    cluster centres [NC, 3] in their body's frame and radii [NC].
    """
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
    return torch.cat(of_gaussian), torch.cat(body_of), torch.cat(centres), torch.cat(radii)


def _frustum_planes(Ks: Tensor, vms: Tensor, W: int, H: int, near: float) -> Tensor:
    """[B, C, 5, 4] each camera's frustum (widened by CULL_MARGIN_PX) as world-frame planes (n, d) with
    unit n: a point x is inside where n . x + d >= 0 for all five (near, left, right, top, bottom)."""
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


def _visible_spheres(centres: Tensor, radii: Tensor, body_of: Tensor, body_to_world: Tensor, planes: Tensor) -> Tensor:
    """bool [NS]: spheres that meet the frustum of any camera of any env.

    centres [NS, 3], radii [NS] in the frames of their bodies body_of [NS]; body_to_world
    [B, NB, 4, 4]; planes [B, C, 5, 4] from _frustum_planes.
    """
    in_bodies = planes[:, :, None] @ body_to_world[:, None]  # [B, C, NB, 5, 4]: the planes in each body's frame
    ones = torch.ones_like(radii)[:, None]
    dist = in_bodies[:, :, body_of] @ torch.cat([centres, ones], -1)[..., None]  # [B, C, NS, 5, 1]
    return (dist[..., 0] > -radii[:, None]).all(-1).flatten(0, 1).any(0)


class _CameraKey:
    """Recognises the cameras of the previous render. The env passes the same tensors every step:
    those are recognised without reading the GPU; other tensors are compared by value."""

    def __init__(self, Ks: Tensor, vms: Tensor, size: tuple) -> None:
        self.refs, self.versions = (Ks, vms), (Ks._version, vms._version)
        self.values, self.size = (Ks.clone(), vms.clone()), size

    def matches(self, Ks: Tensor, vms: Tensor, size: tuple) -> bool:
        if size != self.size or Ks.shape != self.values[0].shape or vms.shape != self.values[1].shape:
            return False
        if Ks is self.refs[0] and vms is self.refs[1] and (Ks._version, vms._version) == self.versions:
            return True
        return torch.equal(Ks, self.values[0]) and torch.equal(vms, self.values[1])


def _resolved(device: torch.device | str) -> torch.device:
    """The device tensors actually land on ("cuda" -> "cuda:0"), so device comparisons hold."""
    return torch.empty(0, device=device).device


def _campos(viewmats: Tensor) -> Tensor:
    """Camera centres in world [..., 3] from world-to-camera [..., 4, 4]."""
    R, t = viewmats[..., :3, :3], viewmats[..., :3, 3:]
    return -(R.transpose(-1, -2) @ t)[..., 0]


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
        tile_size: gsplat's tile edge in pixels (8, 16 or 32); the image is the same, the speed is not
            (8 was fastest at 224x224 and 640x480 on an H100, docs/benchmarks.md).
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
        tile_size: int = 8,
    ) -> None:
        if backend not in RENDER_BACKENDS:
            raise ValueError(f"backend must be one of {RENDER_BACKENDS}, got {backend!r}")
        self.backend = backend
        self.cache_background = cache_background
        if eps2d < 0:
            raise ValueError(f"eps2d must be >= 0, got {eps2d}")
        self.near_plane, self.far_plane, self.eps2d = near_plane, far_plane, eps2d
        self.cull = cull
        if tile_size not in (8, 16, 32):
            raise ValueError(f"tile_size must be 8, 16 or 32 pixels, got {tile_size!r}")
        self.tile_size = tile_size
        for name, g in bodies.items():
            if not isinstance(g, Gaussians):
                raise ValueError(f"body {name!r} must be a Gaussians, got {type(g).__name__}")
        self._body_names = tuple(bodies)
        first = background if background is not None else next(iter(bodies.values()), None)
        self.device = _resolved(device) if device is not None else (first.device if first is not None else torch.device("cpu"))
        self._background_src = background
        self._bodies_src = dict(bodies)
        self._backdrop_src = backdrop
        self._build()

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        f = torch.float32
        bg = self._background_src
        self._bg = _Splats(bg.to(self.device, f)) if bg is not None and len(bg) else None
        parts = [self._bodies_src[n].to(self.device, f) for n in self._body_names]
        if parts and sum(len(p) for p in parts):
            self._body = _Splats(Gaussians.concat(parts))
            counts = torch.tensor([len(p) for p in parts], device=self.device)
            self._body_index = torch.repeat_interleave(torch.arange(len(parts), device=self.device), counts)  # [Nb]
            self._all_bodies = _KeptBodies(self._body, self._body_index, len(parts))
            self._clusters = _clusters(parts)
        else:
            self._body, self._body_index, self._all_bodies, self._clusters = None, None, None, None
        self._culled: tuple[bytes, _KeptBodies] | None = None  # last visibility and its subset
        self._set_backdrop(self._backdrop_src)
        self.invalidate_cache()

    def _set_backdrop(self, backdrop) -> None:
        t = torch.as_tensor(np.asarray(backdrop)) if not isinstance(backdrop, Tensor) else backdrop
        if t.dtype == torch.uint8:
            t = t.float() / 255.0
        t = t.to(self.device, torch.float32)
        if t.shape == (3,):
            self._backdrop_img = None
            self._backdrop_rgb = t
        elif t.dim() == 3 and t.shape[-1] == 3:
            self._backdrop_img = t
            self._backdrop_rgb = None
        else:
            raise ValueError(f"backdrop must be an RGB colour [3] or an image [h, w, 3], got shape {list(t.shape)}")
        self._backdrop_cache: dict[tuple[int, int], Tensor] = {}

    @property
    def body_names(self) -> tuple[str, ...]:
        return self._body_names

    def to(self, device: torch.device | str) -> "SceneRenderer":
        """Move the gaussians (and drop the background cache)."""
        self.device = _resolved(device)
        self._build()
        return self

    def set_background(self, background: Gaussians | None) -> None:
        self._background_src = background
        self._build()

    def set_backdrop(self, backdrop) -> None:
        self._backdrop_src = backdrop
        self._set_backdrop(backdrop)
        self._camera_derived.pop("under", None)

    def invalidate_cache(self) -> None:
        """Forget everything derived from the last render's cameras (the background layer above all)."""
        self._camera_key: _CameraKey | None = None
        self._camera_derived: dict = {}

    def _camera_state(self, Ks: Tensor, vms: Tensor, W: int, H: int) -> dict:
        """What is derived from these cameras (kept while they stay the same): "planes" (the frusta),
        "background" (the backend and the background layer), "under" (it seen from the bodies' side)."""
        if self._camera_key is None or not self._camera_key.matches(Ks, vms, (W, H)):
            self._camera_key = _CameraKey(Ks, vms, (W, H))
            self._camera_derived = {}
        return self._camera_derived

    def _under(self, bg: _Layer, W: int, H: int) -> "_Under":
        """What the bodies are composited over, derived from the cached background layer once."""
        state = self._camera_derived
        if "under" not in state:
            clear = 1.0 - bg.alpha
            far = torch.where(bg.alpha > 1e-6, bg.depth_acc / bg.alpha.clamp_min(1e-10), torch.full_like(bg.alpha, _FAR))
            state["under"] = _Under(far, clear, bg.feats[..., :3] + clear * self._backdrop(W, H))
        return state["under"]

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
        poses = self._stack_poses(body_poses, B, dev)  # [B, NB, 7] or None
        nb = len(self._body_names) if body_alpha else 0

        shape = (B, C, H, W)
        rgb = None
        if self.cache_background and self._bg is not None:
            bg = self._background_layer(Ks, vms, W, H, backend)  # [B or 1, C, H, W, *]
            if self._body is not None:
                fg = self._body_layer(poses, Ks, vms, W, H, backend, nb)
                under = self._under(bg, W, H)
                rgb = _rgb_over(fg, under, self._backdrop(W, H))  # the step's hot path: few passes
                out = _composite_depth_tested(fg, bg, under.far) if depth or alpha or body_alpha else None
            else:
                out = _pad_feats(bg, nb)
        else:
            out = self._joint_layer(poses, Ks, vms, W, H, backend, nb)
        if rgb is None:
            rgb = out.feats[..., :3] + (1.0 - out.alpha) * self._backdrop(W, H)
        res = RenderOutput(rgb=_to_uint8(rgb.expand(shape + (3,))), body_names=self._body_names)
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

    # ------------------------------------------------------------------ pieces
    def _stack_poses(self, body_poses: Mapping[str, Tensor], B: int, dev: torch.device) -> Tensor | None:
        if self._body is None:
            return None
        missing = [n for n in self._body_names if n not in body_poses]
        if missing:
            raise ValueError(f"body_poses lacks {missing}; expected a [B, 7] pose for each of {list(self._body_names)}")
        for n in self._body_names:
            p = body_poses[n]
            if tuple(p.shape) != (B, 7):
                raise ValueError(f"body_poses[{n!r}] must be [B, 7] = [{B}, 7] (xyz + quaternion wxyz), got {list(p.shape)}")
            if p.device != dev:
                raise ValueError(f"body_poses[{n!r}] is on {p.device}, cameras on {dev}: put them on one device")
        return torch.stack([body_poses[n].to(torch.float32) for n in self._body_names], 1)

    def _kept_bodies(self, body_to_world: Tensor, Ks: Tensor, vms: Tensor, W: int, H: int) -> _KeptBodies | None:
        """The body gaussians this render needs: with `cull`, those some camera of some env can see
        (by cluster; None when no camera sees any), else all."""
        if not self.cull:
            return self._all_bodies
        of_gaussian, body_of, centres, radii = self._clusters
        state = self._camera_state(Ks, vms, W, H)
        if "planes" not in state:
            state["planes"] = _frustum_planes(Ks, vms, W, H, self.near_plane)
        visible = _visible_spheres(centres, radii, body_of, body_to_world, state["planes"])
        key = visible.cpu().numpy().tobytes()
        if self._culled is not None and self._culled[0] == key:  # consecutive steps mostly agree
            return self._culled[1]
        if bool(visible.all()):
            return self._all_bodies
        if not bool(visible.any()):
            return None
        keep = visible[of_gaussian]
        self._culled = (key, _KeptBodies(self._body.subset(keep), self._body_index[keep], len(self._body_names)))
        return self._culled[1]

    @staticmethod
    def _body_feats(kept: _KeptBodies, poses: Tensor, vms: Tensor, nb: int) -> Tensor:
        """Features of the kept body gaussians: [N, 3 + nb] when view-independent, else [B, C, N, 3 + nb]
        (SH evaluated with the view direction taken into the body frame)."""
        body, idx = kept.splats, kept.index
        if not body.view_dependent:
            return kept.static_feats(nb)
        # view direction in the body frame: R^T (R m + t - campos) = m + R^T (t - campos)
        q, t = quat_normalize(poses[..., 3:]), poses[..., :3]  # [B, NB, *]
        cam = _campos(vms)  # [B, C, 3]
        off = quat_rotate(quat_conjugate(q)[:, None], t[:, None] - cam[:, :, None])  # [B, C, NB, 3]
        return _with_onehot(eval_sh(body.sh, body.means + off[:, :, idx]), idx, nb)  # [B, C, N, D]

    def _body_splats(self, kept: _KeptBodies, poses: Tensor, vms: Tensor, nb: int) -> tuple[Tensor, ...]:
        """The kept bodies moved to their poses (world frame, per env): means/quats [B, N, *],
        scales/opacities broadcast views, features [B, N, D] or [B, C, N, D] (D = 3 + nb)."""
        body, idx = kept.splats, kept.index
        B = poses.shape[0]
        q = quat_normalize(poses[..., 3:])  # [B, NB, 4]
        qg, tg = q[:, idx], poses[:, idx, :3]  # [B, N, *]
        means = quat_rotate(qg, body.means) + tg
        quats = quat_multiply(qg, body.quats)
        feats = self._body_feats(kept, poses, vms, nb)
        if feats.dim() == 2:
            feats = feats.expand(B, -1, -1)
        return means, quats, body.scales.expand(B, -1, -1), body.opacities.expand(B, -1), feats

    def _bg_feats(self, vms: Tensor) -> Tensor:
        """Background colours: [Nbg, 3], or [..., C, Nbg, 3] when view-dependent (vms [..., C, 4, 4])."""
        bg = self._bg
        if not bg.view_dependent:
            return bg.rgb
        return eval_sh(bg.sh, bg.means - _campos(vms)[..., None, :])

    def _raster(self, means, quats, scales, opac, feats, Ks, vms, W, H, backend) -> _Layer:
        out, a = rasterize(means, quats, scales, opac, feats, vms, Ks, W, H, near_plane=self.near_plane,
                           far_plane=self.far_plane, eps2d=self.eps2d, render_mode="RGB+D",
                           backend=backend, tile_size=self.tile_size)
        return _Layer(out[..., :-1], out[..., -1:], a)

    def _body_layer(self, poses, Ks, vms, W, H, backend, nb) -> _Layer:
        body_to_world = pose_to_matrix(poses)  # [B, NB, 4, 4]
        kept = self._kept_bodies(body_to_world, Ks, vms, W, H)
        if kept is None:  # no camera sees any body
            B, C = vms.shape[:2]
            z = torch.zeros(B, C, H, W, 1, device=vms.device)
            return _Layer(z.expand(B, C, H, W, 3 + nb), z, z)
        if backend == "gsplat":  # poses folded into the view matrices: no per-env copies of the bodies
            out, a = kept.rigid().rasterize(
                body_to_world, self._body_feats(kept, poses, vms, nb), Ks, vms, W, H,
                near_plane=self.near_plane, far_plane=self.far_plane, eps2d=self.eps2d, tile_size=self.tile_size)
            return _Layer(out[..., :-1], out[..., -1:], a)
        return self._raster(*self._body_splats(kept, poses, vms, nb), Ks, vms, W, H, backend)

    def _background_layer(self, Ks: Tensor, vms: Tensor, W: int, H: int, backend: str) -> _Layer:
        """The background rendered once per distinct camera: [1, C, ...] when every env shares the
        cameras, else [B, C, ...]; reused while (Ks, viewmats, size, backend) are unchanged."""
        state = self._camera_state(Ks, vms, W, H)
        if "background" in state and state["background"][0] == backend:
            return state["background"][1]
        bg = self._bg
        B, C = vms.shape[:2]
        shared = B == 1 or (torch.equal(vms, vms[:1].expand_as(vms)) and torch.equal(Ks, Ks[:1].expand_as(Ks)))
        v, k = (vms[0], Ks[0]) if shared else (vms.reshape(B * C, 4, 4), Ks.reshape(B * C, 3, 3))
        layer = self._raster(bg.means, bg.quats, bg.scales, bg.opacities, self._bg_feats(v), k, v, W, H, backend)
        lead = (1, C) if shared else (B, C)
        layer = _Layer(*(x.reshape(lead + x.shape[1:]) for x in (layer.feats, layer.depth_acc, layer.alpha)))
        state["background"] = (backend, layer)
        state.pop("under", None)
        logger.debug("background rendered for %d camera(s) (%s)", lead[0] * C, "shared by all envs" if shared else "per env")
        return layer

    def _joint_layer(self, poses, Ks, vms, W, H, backend, nb) -> _Layer:
        """Background and bodies in one rasterisation (no cache)."""
        B, C = vms.shape[:2]
        parts = []
        if self._bg is not None:
            bg = self._bg
            feats = self._bg_feats(vms)  # [Nbg, 3] or [B, C, Nbg, 3]
            feats = torch.nn.functional.pad(feats, (0, nb))
            parts.append((bg.means.expand(B, -1, -1), bg.quats.expand(B, -1, -1), bg.scales.expand(B, -1, -1),
                          bg.opacities.expand(B, -1), feats))
        kept = self._kept_bodies(pose_to_matrix(poses), Ks, vms, W, H) if self._body is not None else None
        if kept is not None:
            parts.append(self._body_splats(kept, poses, vms, nb))
        if not parts:
            z = torch.zeros(B, C, H, W, 1, device=vms.device)
            return _Layer(z.expand(B, C, H, W, 3 + nb), z, z)
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

    def _backdrop(self, W: int, H: int) -> Tensor:
        """[3] colour or [H, W, 3] image at the render resolution."""
        if self._backdrop_img is None:
            return self._backdrop_rgb
        img = self._backdrop_cache.get((W, H))
        if img is None:
            src = self._backdrop_img.permute(2, 0, 1)[None]
            img = torch.nn.functional.interpolate(src, size=(H, W), mode="bilinear", align_corners=False,
                                                  antialias=True)[0].permute(1, 2, 0).contiguous()
            self._backdrop_cache[(W, H)] = img
        return img


def _pad_feats(layer: _Layer, nb: int) -> _Layer:
    return _Layer(torch.nn.functional.pad(layer.feats, (0, nb)), layer.depth_acc, layer.alpha)


# Expected depth of an empty background pixel: everything is in front of it.
_FAR = 1e30


@dataclass
class _Under:
    """The cached background seen from the bodies' side, [1 or B, C, H, W, *]: its expected depth
    (_FAR where it leaves the pixel empty), its transmittance, and it composited over the backdrop."""

    far: Tensor
    clear: Tensor
    over_backdrop: Tensor


def _in_front(fg: _Layer, far: Tensor) -> Tensor:
    """bool [..., 1]: the bodies' expected depth is nearer than the background's (depth_acc / alpha
    <= far, multiplied out: no division, and an empty body pixel counts as in front)."""
    return fg.depth_acc <= far * fg.alpha


def _rgb_over(fg: _Layer, under: _Under, backdrop: Tensor) -> Tensor:
    """Float RGB [B, C, H, W, 3] of the bodies depth-tested against the background, over the backdrop.

    In front: fg + (1 - a_fg) (bg over backdrop). Behind: bg + (1 - a_bg) (fg + (1 - a_fg) backdrop),
    which is (bg over backdrop) + (1 - a_bg) (fg - a_fg backdrop): both from the cached `under`."""
    f, a = fg.feats[..., :3], fg.alpha
    return torch.where(_in_front(fg, under.far), torch.addcmul(f, 1.0 - a, under.over_backdrop),
                       torch.addcmul(under.over_backdrop, under.clear, f - a * backdrop))


def _to_uint8(rgb: Tensor) -> Tensor:
    return (rgb * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)


def _composite_depth_tested(fg: _Layer, bg: _Layer, far: Tensor) -> _Layer:
    """Per pixel, put the layer with the nearer expected depth in front ("over", premultiplied).
    fg: bodies [B, C, H, W, 3 + nb]; bg: background [1 or B, C, H, W, 3]; far: bg's depth (_Under)."""
    nb = fg.feats.shape[-1] - bg.feats.shape[-1]
    bg = _pad_feats(bg, nb)
    front = _in_front(fg, far)
    t_fg, t_bg = 1.0 - fg.alpha, 1.0 - bg.alpha
    feats = torch.where(front, fg.feats + t_fg * bg.feats, bg.feats + t_bg * fg.feats)
    depth_acc = torch.where(front, fg.depth_acc + t_fg * bg.depth_acc, bg.depth_acc + t_bg * fg.depth_acc)
    alpha = 1.0 - t_fg * t_bg
    return _Layer(feats, depth_acc, alpha)
