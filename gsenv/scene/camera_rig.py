"""The one way to build cameras from a scene: `CameraRig`, the env's cameras [B, C] at every step,
fixed ones and ones mounted on robot links (and `bundle_cameras`, a rig's fixed cameras for tools).

A fixed camera's view matrix is its bundle pose; a link camera's (a wrist camera) is made each step
from its link's pose in every env: cam_to_world = link_to_world @ cam_to_link. Per-env offsets
(domain randomisation) move each camera in its own frame (cam_to_world @ offset) and scale its focal
lengths. Without link cameras or offsets the rig hands out the same `Cameras` every step, so the
renderer recognises them without comparing values.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from gsenv.geometry import pose_to_matrix, rigid_inverse
from gsenv.scene.bundle import CameraSpec, SceneBundle
from gsenv.splat.cameras import Cameras, image_size_hw

__all__ = ["checked_camera_names", "camera_specs", "bundle_cameras", "CameraRig"]


def checked_camera_names(names) -> None:
    """ValueError unless names is a list (or tuple) of str: a plain str would be read letter by letter."""
    if isinstance(names, (str, bytes)):
        raise ValueError(f"cameras must be a list of camera names, not a str: pass [{names!r}]")
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"cameras must be a list of camera names (str), got {names!r}")


def camera_specs(bundle: SceneBundle, names: Sequence[str] | None = None,
                 image_size: int | tuple[int, int] | None = None) -> list[CameraSpec]:
    """The named cameras, fixed or on links (default: the fixed ones), at image_size = (height, width)
    or an int (intrinsics rescaled, see CameraSpec.at_resolution), or None: their calibrated size,
    which must then agree (one image size per Cameras batch). ValueError for an unknown name, a
    repeated one, or sizes that do not agree."""
    if names is None:
        if not bundle.cameras:
            raise ValueError(f"scene {bundle.name!r} has no fixed cameras: add one to scene.json (name, width, "
                             f"height, K, cam_to_base) or name its link cameras "
                             f"{[c.name for c in bundle.link_cameras]}")
        names = [c.name for c in bundle.cameras]
    checked_camera_names(names)
    if len(set(names)) != len(names):
        raise ValueError(f"cameras {list(names)} name a camera twice")
    specs = []
    for name in names:
        try:
            specs.append(bundle.any_camera(name))
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    if not specs:
        raise ValueError("cameras must name at least one camera")
    if image_size is None:
        sizes = {(c.height, c.width) for c in specs}
        if len(sizes) > 1:
            raise ValueError(f"cameras {[c.name for c in specs]} have different calibrated sizes (height, width) "
                             f"{sorted(sizes)}: pass image_size=(height, width)")
        height, width = sizes.pop()
    else:
        height, width = image_size_hw(image_size)
    return [c.at_resolution(width, height) for c in specs]


def bundle_cameras(bundle: SceneBundle, names: Sequence[str] | None, num_envs: int,
                   device: str | torch.device = "cpu", image_size: int | tuple[int, int] | None = None) -> Cameras:
    """Cameras [num_envs, C] of the named fixed cameras (default: all), the same in every env, as a
    CameraRig makes them, rendering image_size as camera_specs. ValueError for a camera on a link
    (its view needs the link's pose: use a CameraRig)."""
    if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    rig = CameraRig(bundle, names, int(num_envs), device, image_size)
    on_links = [n for n, link in zip(rig.names, rig.links) if link is not None]
    if on_links:
        raise ValueError(f"cameras {on_links} are mounted on robot links: their views follow the links' poses "
                         "(use gsenv.scene.camera_rig.CameraRig(...).cameras(body_poses))")
    return rig.cameras({})


class CameraRig:
    """Cameras [B, C] of named bundle cameras (fixed and link cameras, in `names` order).

    Args:
        bundle: the scene; names: camera names (default: the fixed cameras); num_envs: B;
        device: where the tensors live; image_size: as camera_specs.
    """

    def __init__(self, bundle: SceneBundle, names: Sequence[str] | None, num_envs: int, device,
                 image_size: int | tuple[int, int] | None = None) -> None:
        specs = camera_specs(bundle, names, image_size)
        self.names = [c.name for c in specs]
        self.links: list[str | None] = [c.link for c in specs]
        self.moving = tuple(link is not None for link in self.links)
        self.width, self.height = int(specs[0].width), int(specs[0].height)
        self.num_envs, self.device = int(num_envs), torch.device(device)
        f = torch.float32
        Ks = torch.tensor(np.stack([c.K for c in specs]), dtype=f, device=self.device)  # [C, 3, 3]
        mount = np.stack([c.pose for c in specs])
        self._mount = torch.tensor(mount, dtype=f, device=self.device)  # [C, 4, 4] in the base or the link frame
        # fixed: the bundle's world_to_cam (inverted in float64); a link camera's column is filled in at
        # every step
        fixed_vms = torch.tensor(np.stack([np.eye(4) if c.on_link else c.world_to_cam for c in specs]), dtype=f,
                                 device=self.device)
        self._base = Cameras.shared(Ks, fixed_vms, self.width, self.height, self.num_envs, self.moving)
        self._moving_idx = [c for c, m in enumerate(self.moving) if m]
        self._offsets: Tensor | None = None  # [B, C, 4, 4] camera-frame offsets
        self._still = self._base

    @property
    def num_cameras(self) -> int:
        return len(self.names)

    def set_offsets(self, offsets: Tensor | None, focal_scale: Tensor | None) -> None:
        """Per-env offsets [B, C, 4, 4] (each camera moved in its own frame: cam_to_world @ offset) and
        focal scales [B, C]; None, None: no offsets."""
        if offsets is None and focal_scale is None:
            self._offsets, self._still = None, self._base
            return
        B, C = self.num_envs, self.num_cameras
        if offsets is not None and tuple(offsets.shape) != (B, C, 4, 4):
            raise ValueError(f"camera offsets must be [B, C, 4, 4] = [{B}, {C}, 4, 4], got {list(offsets.shape)}")
        if focal_scale is not None and tuple(focal_scale.shape) != (B, C):
            raise ValueError(f"focal scales must be [B, C] = [{B}, {C}], got {list(focal_scale.shape)}")
        Ks, vms = self._base.Ks.clone(), self._base.viewmats.clone()
        if focal_scale is not None:
            s = focal_scale.to(Ks)
            Ks[..., 0, 0] *= s
            Ks[..., 1, 1] *= s
        if offsets is not None:
            self._offsets = offsets.to(vms)
            vms = rigid_inverse(self._offsets) @ vms  # inverse(cam_to_world @ offset)
        self._still = Cameras(Ks, vms, self.width, self.height, self.moving)

    def cameras(self, body_poses: Mapping[str, Tensor]) -> Cameras:
        """Cameras [B, C] for the current body poses ({name: [B, 7]} position + wxyz; each link camera's
        link must be there)."""
        if not self._moving_idx:
            return self._still
        idx = self._moving_idx
        missing = sorted({self.links[c] for c in idx if self.links[c] not in body_poses})
        if missing:
            raise ValueError(f"body poses lack the links {missing} that cameras are mounted on")
        link_to_world = pose_to_matrix(torch.stack([body_poses[self.links[c]] for c in idx], 1).to(self.device,
                                                                                                   torch.float32))
        cam_to_world = link_to_world @ self._mount[idx]  # [B, Cm, 4, 4]
        if self._offsets is not None:
            cam_to_world = cam_to_world @ self._offsets[:, idx]
        vms = self._still.viewmats.clone()
        vms[:, idx] = rigid_inverse(cam_to_world)
        return Cameras(self._still.Ks, vms, self.width, self.height, self.moving)
