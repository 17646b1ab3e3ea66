"""`ViewState`: what a `SceneRenderer` keeps from one render to the next, and is told to forget.

A renderer is stateless: `render(poses, cameras, look=..., views=None)` derives everything from its
arguments. A caller that renders the same views many times (the env: the same still cameras and look
for a whole episode, only the poses change every step) passes one `ViewState` to every render, and
says when the views change:

- `cameras_changed(env_idx)`: the still cameras of these envs (or all) have new values;
- `look_changed()`: the look's body colour shifts or backdrops have new values.

Nothing is recognised by identity or by torch's version counters: what is kept is dropped exactly
when the caller says so. Cameras marked `moving` (on a robot link) are taken from each render's
arguments; only the still ones are kept.

What is kept (None until made):
    planes      [B, C, 5, 4] the still cameras' culling frusta (culling.frustum_planes);
    background  Layer [1 or B, Cs, H, W, *] the still cameras' rasterised background, [1, ...] when
                every env had the same cameras when it was made;
    stale_envs  int64 [n] envs whose cameras changed since `background` was made, where only some did
                (to be rasterised again alone); None: none;
    underlay    `Underlay` of that background over the backdrop (the scene's or the look's);
    bodies      `KeptBodies`: the body gaussians some camera saw in the last render, and what was
                derived from them under the current look;
    background_seen  `KeptBodies` of the background gaussians the moving cameras saw.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from gsenv.splat.compositing import Layer, Underlay
from gsenv.splat.render_splats import BodySplats

__all__ = ["KeptBodies", "ViewState", "distinct_views"]


@dataclass
class KeptBodies:
    """The gaussians of one visibility (clusters some camera sees) and what is derived from them.

    visible: bool [S] the visible clusters they were chosen by (None: all, without culling);
    splats: the kept gaussians (None: no camera sees any);
    feats: {nb: [N, 3 + nb] or [B, N, 3 + nb]} view-independent features under the current look;
    buffers: {(nb, images): [I, N, 3 + nb + 1]} gsplat's blend input with those features written.
    """

    visible: Tensor | None
    splats: BodySplats | None
    feats: dict[int, Tensor] = field(default_factory=dict)
    buffers: dict[tuple[int, int], Tensor] = field(default_factory=dict)

    def same_visibility(self, visible: Tensor | None) -> bool:
        if self.visible is None or visible is None:
            return self.visible is None and visible is None
        return torch.equal(self.visible, visible)

    def forget_features(self) -> None:
        self.feats.clear()
        self.buffers.clear()


class ViewState:
    """What a renderer keeps between renders of the same still cameras and look (see the module doc)."""

    def __init__(self) -> None:
        self.device: torch.device | None = None  # where what is kept lives (the renderer sets it)
        self.clear()

    def clear(self) -> None:
        """Forget everything (new cameras of another size or count, another device, another look)."""
        self.shape: tuple[int, int, int, int] | None = None  # (B, C, H, W) of the views kept
        self.planes: Tensor | None = None
        self.background: Layer | None = None
        self.stale_envs: Tensor | None = None
        self.underlay: Underlay | None = None
        self.bodies: KeptBodies | None = None
        self.background_seen: KeptBodies | None = None

    def cameras_changed(self, env_idx: Tensor | list[int] | None = None) -> None:
        """The still cameras of the envs env_idx (default: all, and they may change number and image
        size) have new values: their background and the frusta are made again at the next render (a
        per-env background: those envs alone)."""
        self.planes, self.underlay = None, None
        per_env = self.background is not None and self.background.feats.shape[0] > 1
        if env_idx is None or not per_env:
            self.background, self.stale_envs = None, None
            if env_idx is None:
                self.shape = None
            return
        device = self.background.feats.device
        idx = torch.as_tensor(env_idx, dtype=torch.long, device=device).reshape(-1)
        if self.stale_envs is not None:  # not rendered since the last change
            idx = torch.cat([self.stale_envs, idx])
        self.stale_envs = torch.unique(idx)

    def check_shape(self, shape: tuple[int, int, int, int]) -> None:
        """Take the views' (B, C, H, W) at the first render; ValueError for another one later (the
        caller did not say the cameras changed)."""
        if self.shape is None:
            self.shape = shape
        elif self.shape != shape:
            raise ValueError(f"this ViewState keeps views of (B, C, H, W) = {self.shape}, the cameras are "
                             f"{shape}: call views.cameras_changed() when the cameras change")

    def look_changed(self) -> None:
        """The look's body colour shifts or backdrops have new values (or another look is used)."""
        self.underlay = None
        if self.bodies is not None:
            self.bodies.forget_features()


def distinct_views(Ks: Tensor, vms: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """The cameras the background has to be rendered for, from Ks [B, C, 3, 3] and viewmats
    [B, C, 4, 4]: (Ks [C, 3, 3], viewmats [C, 4, 4], (1, C)) when every env has the same cameras,
    else (Ks [B*C, 3, 3], viewmats [B*C, 4, 4], (B, C)); the last item is the layer's leading shape."""
    B, C = vms.shape[:2]
    shared = B == 1 or (torch.equal(vms, vms[:1].expand_as(vms)) and torch.equal(Ks, Ks[:1].expand_as(Ks)))
    v, k = (vms[0], Ks[0]) if shared else (vms.reshape(B * C, 4, 4), Ks.reshape(B * C, 3, 3))
    return k, v, ((1, C) if shared else (B, C))
