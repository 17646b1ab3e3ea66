"""The in-memory scene bundle: what the renderer and the simulator need to know about one cell.

Frames: robot links' and objects' gaussians are stored in their own body frames (simulator units,
metres). The background is stored in the splat model's world frame and mapped into the simulator's
world by the similarity `splat_to_sim` (x_sim = s R x + t) when the renderer is built. Cameras are
OpenCV pinhole cameras (x right, y down, z forward), one `CameraSpec` each: fixed ones posed in the
robot-base frame, link cameras (a wrist camera) posed in their link's frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gsenv.splat.gaussians import Gaussians


@dataclass(frozen=True)
class Similarity:
    """x_out = scale * rotation @ x + translation."""

    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """[N,3] -> [N,3]."""
        return self.scale * np.asarray(points) @ self.rotation.T + self.translation

    def apply_to(self, gaussians: Gaussians) -> Gaussians:
        import torch

        R = torch.as_tensor(self.rotation, dtype=gaussians.dtype, device=gaussians.device)
        t = torch.as_tensor(self.translation, dtype=gaussians.dtype, device=gaussians.device)
        return gaussians.transform(R, t, scale=float(self.scale))

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and np.allclose(self.rotation, np.eye(3)) and np.allclose(self.translation, 0)

    def to_json(self) -> dict:
        return {"scale": float(self.scale), "rotation": np.asarray(self.rotation).tolist(),
                "translation": np.asarray(self.translation).tolist()}


@dataclass(frozen=True)
class CameraSpec:
    """A calibrated pinhole camera (OpenCV axes: x right, y down, z forward), fixed or on a robot link.

    K: [3,3] intrinsics at (width, height). pose: [4,4] the camera frame in its mount's frame: the robot
    base (the simulator's world origin) when link is None, else the frame of the robot link `link` (a
    wrist camera), whose pose in the world is then link_to_world @ pose at every step.
    """

    name: str
    width: int
    height: int
    K: np.ndarray
    pose: np.ndarray
    link: str | None = None

    @property
    def on_link(self) -> bool:
        """Whether the camera moves with a robot link."""
        return self.link is not None

    def at_resolution(self, width: int, height: int) -> CameraSpec:
        """The same camera rendering at another resolution: K's rows scale with width and height."""
        import torch

        from gsenv.splat.cameras import scale_intrinsics

        K = scale_intrinsics(torch.as_tensor(self.K, dtype=torch.float64), (self.width, self.height), (width, height))
        return replace(self, width=int(width), height=int(height), K=K.numpy())

    @property
    def world_to_cam(self) -> np.ndarray:
        """[4,4] base-frame -> OpenCV camera of a fixed camera (the robot base is the simulator's world
        origin); ValueError for a camera on a link (its view follows the link)."""
        if self.on_link:
            raise ValueError(f"camera {self.name!r} is mounted on link {self.link!r}: its view follows the link")
        return np.linalg.inv(self.pose)

    def to_json(self) -> dict:
        """scene.json's entry: cam_to_base for a fixed camera, link + cam_to_link for one on a link."""
        out = {"name": self.name, "width": self.width, "height": self.height, "K": np.asarray(self.K).tolist()}
        if self.on_link:
            return {**out, "link": self.link, "cam_to_link": np.asarray(self.pose).tolist()}
        return {**out, "cam_to_base": np.asarray(self.pose).tolist()}


@dataclass
class SceneObject:
    """A movable object: gaussians in its own frame and how the simulator should build it.

    collision: {"type": "box", "half_size": [3]} | {"type": "mesh", "path": str (absolute)} |
    {"type": "builtin"} (the simulator's own geometry for this object name).
    """

    name: str
    gaussians: Gaussians
    collision: dict = field(default_factory=lambda: {"type": "builtin"})
    mass: float | None = None
    friction: float | None = None


@dataclass
class SceneBundle:
    name: str
    links: dict[str, Gaussians]
    objects: dict[str, SceneObject]
    background: Gaussians | None
    cameras: list[CameraSpec]
    """The fixed cameras (link None)."""
    instructions: list[str]
    splat_to_sim: Similarity = field(default_factory=Similarity)
    robot_urdf: Path | None = None
    backdrop_image: Path | None = None
    background_color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    eps2d: float = 0.3
    """Rasteriser low-pass (pixels^2): 0.3 for trained scans, 0 for gaussians sampled from meshes."""
    root: Path | None = None
    link_cameras: list[CameraSpec] = field(default_factory=list)
    """Cameras mounted on robot links (e.g. a wrist camera); `cameras` are the fixed ones."""

    def any_camera(self, name: str) -> CameraSpec:
        """The fixed or link camera called name; KeyError naming them all otherwise."""
        for cam in [*self.cameras, *self.link_cameras]:
            if cam.name == name:
                return cam
        raise KeyError(f"scene {self.name!r} has no camera {name!r}; it has "
                       f"{[c.name for c in [*self.cameras, *self.link_cameras]]}")

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"scene {self.name!r} has no camera {name!r}; it has {[c.name for c in self.cameras]}")

    def body_gaussians(self) -> dict[str, Gaussians]:
        """{body name: gaussians in that body's frame} for every robot link and object."""
        return {**self.links, **{name: obj.gaussians for name, obj in self.objects.items()}}

    def background_in_sim(self) -> Gaussians | None:
        """The background gaussians mapped into the simulator's world frame."""
        if self.background is None or self.splat_to_sim.is_identity:
            return self.background
        return self.splat_to_sim.apply_to(self.background)

    @property
    def num_body_gaussians(self) -> int:
        return sum(len(g) for g in self.body_gaussians().values())

    @property
    def num_background_gaussians(self) -> int:
        return 0 if self.background is None else len(self.background)
