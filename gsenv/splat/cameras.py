"""Camera batches in the renderer's convention, and conversions into it.

Convention (OpenCV / gsplat): camera x right, y down, z forward; `viewmats` are world-to-camera
[..., 4, 4]; pixel (column j, row i) has its centre at (j + 0.5, i + 0.5) in the coordinates K maps to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gsenv.geometry import CV_IN_SAPIEN, CV_TO_GL

__all__ = ["image_size_hw", "Cameras", "sapien_pose_to_viewmat", "opengl_pose_to_viewmat", "look_at",
           "scale_intrinsics"]

# Columns: the OpenCV camera axes (x right, y down, z forward) written in another camera frame.


def image_size_hw(image_size) -> tuple[int, int]:
    """An int (square) or (height, width) of positive ints -> (height, width); ValueError otherwise
    (a string, a float or a bool is no size: nothing is silently converted)."""
    def is_int(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if is_int(image_size):
        image_size = (image_size, image_size)
    if (isinstance(image_size, (str, bytes)) or not hasattr(image_size, "__len__") or len(image_size) != 2
            or not all(is_int(v) for v in image_size)):
        raise ValueError(f"image_size must be an int or (height, width) of ints, got {image_size!r}")
    h, w = (int(v) for v in image_size)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w


@dataclass
class Cameras:
    """A batch of pinhole cameras: C cameras in each of B envs.

    Ks:       [B, C, 3, 3] intrinsics for images of `width` x `height` pixels.
    viewmats: [B, C, 4, 4] world-to-camera transforms, OpenCV convention.
    moving:   C bools, or () for all False: which cameras move from render to render (a camera on a
              robot link): the renderer keeps nothing derived from those (no cached background).
    """

    Ks: Tensor
    viewmats: Tensor
    width: int
    height: int
    moving: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if self.viewmats.dim() != 4 or self.viewmats.shape[-2:] != (4, 4):
            raise ValueError(f"Cameras.viewmats must be [B, C, 4, 4], got {list(self.viewmats.shape)}")
        if tuple(self.Ks.shape) != tuple(self.viewmats.shape[:2]) + (3, 3):
            raise ValueError(f"Cameras.Ks must be [B, C, 3, 3] = {list(self.viewmats.shape[:2]) + [3, 3]}, "
                             f"got {list(self.Ks.shape)}")
        if self.Ks.device != self.viewmats.device:
            raise ValueError(f"Cameras.Ks ({self.Ks.device}) and viewmats ({self.viewmats.device}) must share a device")
        if not (isinstance(self.width, int) and isinstance(self.height, int) and self.width > 0 and self.height > 0):
            raise ValueError(f"Cameras width/height must be positive ints, got {self.width!r} x {self.height!r}")
        self.moving = tuple(bool(m) for m in self.moving)
        if self.moving and len(self.moving) != self.viewmats.shape[1]:
            raise ValueError(f"Cameras.moving must give one bool per camera ({self.viewmats.shape[1]}), "
                             f"got {len(self.moving)}")

    @property
    def moving_columns(self) -> tuple[list[int], list[int]] | None:
        """(static camera indices, moving camera indices), or None when no camera moves."""
        if not any(self.moving):
            return None
        return [c for c, m in enumerate(self.moving) if not m], [c for c, m in enumerate(self.moving) if m]

    @property
    def batch_size(self) -> int:
        return self.viewmats.shape[0]

    @property
    def num_cameras(self) -> int:
        return self.viewmats.shape[1]

    @property
    def device(self) -> torch.device:
        return self.viewmats.device

    @classmethod
    def shared(cls, Ks: Tensor, viewmats: Tensor, width: int, height: int, batch_size: int,
               moving: tuple[bool, ...] = ()) -> Cameras:
        """The same C cameras in every env: Ks [C, 3, 3] (or [3, 3]), viewmats [C, 4, 4] (or [4, 4])."""
        Ks = Ks.reshape(-1, 3, 3)
        viewmats = viewmats.reshape(-1, 4, 4)
        return cls(Ks[None].expand(batch_size, -1, -1, -1), viewmats[None].expand(batch_size, -1, -1, -1),
                   width, height, moving)

    def scaled(self, width: int, height: int) -> Cameras:
        """The same cameras rendering `width` x `height` images (K rescaled)."""
        return Cameras(scale_intrinsics(self.Ks, (self.width, self.height), (width, height)), self.viewmats,
                       width, height, self.moving)

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(self.Ks.to(device), self.viewmats.to(device), self.width, self.height, self.moving)


def sapien_pose_to_viewmat(cam_to_world: Tensor) -> Tensor:
    """World-to-camera (OpenCV) from a SAPIEN camera pose (x forward, y left, z up).

    cam_to_world: [..., 4, 4] camera-to-world (or camera-to-base) pose -> [..., 4, 4].
    """
    c2w = cam_to_world.clone()
    c2w[..., :3, :3] = cam_to_world[..., :3, :3] @ CV_IN_SAPIEN.to(cam_to_world)
    return torch.linalg.inv(c2w)


def opengl_pose_to_viewmat(cam_to_world: Tensor) -> Tensor:
    """World-to-camera (OpenCV) from an OpenGL / Blender camera pose (x right, y up, z backward).

    cam_to_world: [..., 4, 4] -> [..., 4, 4].
    """
    return torch.linalg.inv(cam_to_world @ CV_TO_GL.to(cam_to_world))  # CV_TO_GL is its own inverse


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """OpenCV world-to-camera [..., 4, 4] of a camera at eye [..., 3] looking at target [..., 3]
    (image up along `up`, default +z)."""
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device) if up is None else up
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    x = torch.nn.functional.normalize(torch.cross(z, up.expand_as(z), dim=-1), dim=-1)
    y = torch.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], -2)  # rows: camera axes in world
    V = torch.zeros(eye.shape[:-1] + (4, 4), dtype=eye.dtype, device=eye.device)
    V[..., :3, :3] = R
    V[..., :3, 3] = -(R @ eye[..., None])[..., 0]
    V[..., 3, 3] = 1.0
    return V


def scale_intrinsics(K: Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> Tensor:
    """Intrinsics [..., 3, 3] for `to_size` = (W, H) from those for `from_size` = (W, H).

    With pixel centres at (j + 0.5, i + 0.5), resizing the image scales the first row by W'/W and
    the second by H'/H (focal lengths and principal point alike).
    """
    (w0, h0), (w1, h1) = from_size, to_size
    if min(w0, h0, w1, h1) <= 0:
        raise ValueError(f"image sizes must be positive, got {from_size} -> {to_size}")
    s = torch.tensor([w1 / w0, h1 / h0, 1.0], dtype=K.dtype, device=K.device)
    return K * s[:, None]
