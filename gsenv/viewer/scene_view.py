"""The 3D content of the viewer: splats, camera frustums and the collision overlay, as viser nodes.

Background gaussians are one static node in the world frame; each body's gaussians are one node in
the body's frame, so following the simulation is one pose update per body (no gaussian is resent).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gsenv.viewer.collision import BodyMesh
from gsenv.viewer.history import Frame
from gsenv.viewer.splats import SPLAT_UNIT, splat_arrays

FRUSTUM_SCALE = 0.12  # m: size of a camera's frustum in the scene
COLLISION_RGB = (255, 120, 40)
COLLISION_OPACITY = 0.45


def camera_pose(viewmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera [4, 4] (OpenCV axes) -> (position [3], wxyz [4]) of the camera in the world.
    viser's frustums use the same OpenCV axes (z forward, y down)."""
    from gsenv.geometry import rotmat_to_quat

    cam_to_world = np.linalg.inv(np.asarray(viewmat, dtype=np.float64))
    wxyz = rotmat_to_quat(torch.as_tensor(cam_to_world[:3, :3])).numpy()
    return cam_to_world[:3, 3], wxyz


class SceneView:
    """Viser nodes for one env of a GSEnv-like object (`scene`, `camera_names`, `cameras`).

    show(frame) moves the bodies and sets the camera images; set_collision(meshes) adds the overlay
    (its visibility: `collision_visible`).
    """

    def __init__(self, server, bundle, camera_names, cameras, env_index: int):
        self.server = server
        self._body_nodes = {}
        self._collision_nodes = {}
        self._moving_collision: set[str] = set()  # collision bodies that follow the body poses
        self._collision_visible = False
        background = bundle.background_in_sim()
        if background is not None and len(background):
            a = splat_arrays(background)
            server.scene.add_gaussian_splats("/splats/background", centers=a.centers, covariances=a.covariances,
                                             rgbs=a.rgbs, opacities=a.opacities, scale=SPLAT_UNIT)
        for name, g in bundle.body_gaussians().items():
            if len(g):
                a = splat_arrays(g)
                self._body_nodes[name] = server.scene.add_gaussian_splats(
                    f"/splats/bodies/{name}", centers=a.centers, covariances=a.covariances, rgbs=a.rgbs,
                    opacities=a.opacities, scale=SPLAT_UNIT)
        self._frustums = []
        self.set_cameras(camera_names, cameras, env_index)

    def set_cameras(self, camera_names, cameras, env_index: int) -> None:
        """One frustum per camera of env `env_index` (cameras: Ks [B, C, 3, 3], viewmats [B, C, 4, 4])."""
        for f in self._frustums:
            f.remove()
        self._frustums = []
        Ks = cameras.Ks[env_index].detach().cpu().numpy()
        vms = cameras.viewmats[env_index].detach().cpu().numpy()
        for c, name in enumerate(camera_names):
            position, wxyz = camera_pose(vms[c])
            fov = 2.0 * math.atan(cameras.height / (2.0 * float(Ks[c, 1, 1])))
            self._frustums.append(self.server.scene.add_camera_frustum(
                f"/cameras/{name}", fov=fov, aspect=cameras.width / cameras.height, scale=FRUSTUM_SCALE,
                thickness=0.002, color=(30, 90, 220), position=position, wxyz=wxyz))

    def set_collision(self, meshes: list[BodyMesh]) -> None:
        for m in meshes:
            pose = m.fixed_pose if m.fixed_pose is not None else np.array([0, 0, 0, 1, 0, 0, 0], np.float32)
            self._collision_nodes[m.name] = self.server.scene.add_mesh_simple(
                f"/collision/{m.name}", m.vertices, m.faces, color=COLLISION_RGB, opacity=COLLISION_OPACITY,
                flat_shading=True, side="double", position=pose[:3], wxyz=pose[3:],
                visible=self._collision_visible)
        self._moving_collision = {m.name for m in meshes if m.fixed_pose is None}

    @property
    def has_collision(self) -> bool:
        return bool(self._collision_nodes)

    @property
    def collision_visible(self) -> bool:
        return self._collision_visible

    @collision_visible.setter
    def collision_visible(self, visible: bool) -> None:
        self._collision_visible = bool(visible)
        for node in self._collision_nodes.values():
            node.visible = self._collision_visible

    def show(self, frame: Frame) -> None:
        """Bodies at the frame's poses, each frustum where its camera was, showing its image of that frame."""
        with self.server.atomic():
            for name, pose in frame.poses.items():
                nodes = [self._body_nodes.get(name)]
                if name in self._moving_collision:
                    nodes.append(self._collision_nodes[name])
                for node in nodes:
                    if node is not None:
                        node.position = pose[:3]
                        node.wxyz = pose[3:]
            for f, image, viewmat in zip(self._frustums, frame.images, frame.viewmats):
                f.position, f.wxyz = camera_pose(viewmat)
                f.image = image
