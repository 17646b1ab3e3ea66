"""What a renderer derives from its cameras, kept while the cameras stay the same.

The env passes the same camera tensors every step, so the static background is rasterised once per
distinct camera and kept, as are the culling frusta and the background as the bodies see it. A new
camera (other values, other image size) drops all of it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gsenv.splat.compositing import Layer, Underlay


class CameraKey:
    """Recognises the cameras of the previous render. The env passes the same tensors every step:
    those are recognised without reading the GPU; other tensors are compared by value.
    Ks [B, C, 3, 3], viewmats [B, C, 4, 4], size (width, height)."""

    def __init__(self, Ks: Tensor, vms: Tensor, size: tuple) -> None:
        self.refs, self.versions = (Ks, vms), (Ks._version, vms._version)
        self.values, self.size = (Ks.clone(), vms.clone()), size

    def matches(self, Ks: Tensor, vms: Tensor, size: tuple) -> bool:
        if size != self.size or Ks.shape != self.values[0].shape or vms.shape != self.values[1].shape:
            return False
        if Ks is self.refs[0] and vms is self.refs[1] and (Ks._version, vms._version) == self.versions:
            return True
        return torch.equal(Ks, self.values[0]) and torch.equal(vms, self.values[1])


class CameraCache:
    """Derived from the current cameras (None until made):
        planes      [B, C, 5, 4] the culling frusta (culling.frustum_planes);
        background  (backend, Layer [1 or B, C, H, W, *]) the rasterised background;
        stale_envs  int64 [n]: envs whose cameras changed since `background` was rendered for them,
                    where only some did (per-env cameras after a partial reset); None: all or none;
        underlay    `Underlay` of that background over the backdrop, made for `underlay_key`.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the cameras and everything derived from them."""
        self._key: CameraKey | None = None
        self.planes: Tensor | None = None
        self.background: tuple[str, Layer] | None = None
        self.stale_envs: Tensor | None = None
        self.underlay: Underlay | None = None
        self.underlay_key: object = None

    def update(self, Ks: Tensor, vms: Tensor, width: int, height: int) -> CameraCache:
        """Itself, emptied first unless these are the cameras it holds things for. When only some envs'
        cameras changed (same shapes and size) a per-env background is kept and those envs are
        listed in stale_envs, to be rendered again alone."""
        if self._key is None or not self._key.matches(Ks, vms, (width, height)):
            old, self._key = self._key, CameraKey(Ks, vms, (width, height))
            self.planes, self.underlay = None, None
            stale = None
            if (self.background is not None and old is not None and old.size == (width, height)
                    and old.values[0].shape == Ks.shape and old.values[1].shape == vms.shape
                    and self.background[1].feats.shape[0] == Ks.shape[0] > 1):
                changed = ((Ks != old.values[0]).flatten(1).any(1) | (vms != old.values[1]).flatten(1).any(1))
                stale = changed.nonzero()[:, 0]
                if self.stale_envs is not None:  # not rendered since the last change
                    stale = torch.unique(torch.cat([self.stale_envs, stale]))
            if stale is None or len(stale) == Ks.shape[0]:
                self.background, stale = None, None
            self.stale_envs = stale
        return self


def distinct_views(Ks: Tensor, vms: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """The cameras the background has to be rendered for, from Ks [B, C, 3, 3] and viewmats
    [B, C, 4, 4]: (Ks [C, 3, 3], viewmats [C, 4, 4], (1, C)) when every env has the same cameras,
    else (Ks [B*C, 3, 3], viewmats [B*C, 4, 4], (B, C)); the last item is the layer's leading shape."""
    B, C = vms.shape[:2]
    shared = B == 1 or (torch.equal(vms, vms[:1].expand_as(vms)) and torch.equal(Ks, Ks[:1].expand_as(Ks)))
    v, k = (vms[0], Ks[0]) if shared else (vms.reshape(B * C, 4, 4), Ks.reshape(B * C, 3, 3))
    return k, v, ((1, C) if shared else (B, C))
