"""The gaussian sets a `SceneRenderer` rasterises, activated once: the background and the bodies.

`RenderSplats` holds one set's render-ready tensors (N gaussians, shared by all envs); `BodySplats`
is the bodies' gaussians ordered body after body, with the body of each gaussian; `background_features`
gives the background's colours for a batch of views.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gsenv.geometry import quat_normalize
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.rigid_raster import BodySegment, RigidBodies
from gsenv.splat.sh import eval_sh


class RenderSplats:
    """Activated, render-ready tensors of a gaussian set (shared by all envs).

    means [N, 3], quats [N, 4] (unit, wxyz), scales [N, 3] (standard deviations), opacities [N],
    sh [N, K, 3]; rgb [N, 3] the colour when it does not depend on the view (K = 1), else None.
    """

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

    def subset(self, keep: Tensor) -> RenderSplats:
        """The gaussians where keep [N] is True."""
        out = object.__new__(RenderSplats)
        out.means, out.quats, out.scales = self.means[keep], self.quats[keep], self.scales[keep]
        out.opacities, out.sh, out.view_dependent = self.opacities[keep], self.sh[keep], self.view_dependent
        out.rgb = None if self.rgb is None else self.rgb[keep]
        return out


class BodySplats:
    """Body gaussians ordered by body (all of them, or those some camera sees): the splats, the body
    index of each [N] (into the renderer's body_names), and, made on first use from these gaussians
    alone, the gsplat path's `RigidBodies` and the features of each gaussian [N, 3 + nb] (colour and
    per-body one-hot) when they are view-independent."""

    def __init__(self, splats: RenderSplats, index: Tensor, num_bodies: int) -> None:
        self.splats, self.index, self.num_bodies = splats, index, num_bodies
        self._rigid: RigidBodies | None = None
        self._feats: dict[int, Tensor] = {}

    def subset(self, keep: Tensor) -> BodySplats:
        """The gaussians where keep [N] is True (still ordered by body)."""
        return BodySplats(self.splats.subset(keep), self.index[keep], self.num_bodies)

    def rigid(self) -> RigidBodies:
        """These gaussians as `RigidBodies` (gsplat's stages with each body's pose in the view matrix), kept."""
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
            self._feats[nb] = with_onehot(self.splats.rgb, self.index, nb).contiguous()
        return self._feats[nb]

    def shifted_feats(self, nb: int, shift: Tensor) -> Tensor:
        """[B, N, 3 + nb] colour with each env's per-body colour shift [B, NB, 3] (view-independent
        colour only) and the one-hot body id."""
        s = self.splats
        rgb = eval_sh(s.sh, torch.ones_like(s.means), dc_shift=shift[:, self.index])  # [B, N, 3]
        return with_onehot(rgb, self.index, nb).contiguous()


def with_onehot(feats: Tensor, index: Tensor, nb: int) -> Tensor:
    """feats [..., N, 3] with each gaussian's one-hot body id appended (nb channels; none for nb = 0)."""
    if not nb:
        return feats
    onehot = torch.nn.functional.one_hot(index, nb).to(feats.dtype)
    return torch.cat([feats, onehot.expand(feats.shape[:-1] + (nb,))], -1)


def camera_centres(viewmats: Tensor) -> Tensor:
    """Camera centres in world [..., 3] from world-to-camera [..., 4, 4]."""
    R, t = viewmats[..., :3, :3], viewmats[..., :3, 3:]
    return -(R.transpose(-1, -2) @ t)[..., 0]


def background_features(background: RenderSplats, viewmats: Tensor) -> Tensor:
    """Background colours: [Nbg, 3], or [..., C, Nbg, 3] when view-dependent (viewmats [..., C, 4, 4])."""
    if not background.view_dependent:
        return background.rgb
    return eval_sh(background.sh, background.means - camera_centres(viewmats)[..., None, :])
