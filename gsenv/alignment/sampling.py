"""Random states for the alignment check: joint configurations that keep the hand in view, object poses.

Joint configurations are the task's default configuration plus uniform offsets (clipped to the
joint limits); a configuration is kept when the TCP and the hand project inside every camera's
image (with a margin) in front of the camera, and the hand is above the table. Objects are placed
on the table in their spawn regions with random yaw, apart from each other.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gsenv.scene.bundle import CameraSpec

# Half-width (rad) of the uniform offset around the default configuration, per arm joint.
JOINT_SPREAD = (0.7, 0.45, 0.7, 0.5, 0.9, 0.5, 1.2)
# A projected point must lie this fraction of the image size inside the border.
VIEW_MARGIN = 0.15
MAX_TRIES = 200


@dataclass
class State:
    """qpos [9]; object_poses {object name: [7] (xyz + quaternion wxyz)}."""

    qpos: np.ndarray
    object_poses: dict[str, np.ndarray]

    def to_json(self) -> dict:
        return {"qpos": np.round(self.qpos, 6).tolist(),
                **{f"{name}_pose": np.round(p, 6).tolist() for name, p in self.object_poses.items()}}


def project(points: np.ndarray, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """World points [N, 3] -> pixel coordinates [N, 2] (x right, y down; pixel centres at +0.5) and
    camera depths [N] (z along the optical axis; <= 0 is behind the camera)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    V = camera.world_to_cam
    pc = p @ V[:3, :3].T + V[:3, 3]
    z = pc[:, 2]
    uvw = pc @ np.asarray(camera.K, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / uvw[:, 2:3]
    return uv, z


def in_view(points: np.ndarray, camera: CameraSpec, margin: float = VIEW_MARGIN) -> bool:
    """Whether every point projects in front of the camera, at least `margin` of the image inside it."""
    uv, z = project(points, camera)
    mx, my = margin * camera.width, margin * camera.height
    return bool(np.all(z > 0.05) and np.all((uv[:, 0] >= mx) & (uv[:, 0] <= camera.width - mx)
                                           & (uv[:, 1] >= my) & (uv[:, 1] <= camera.height - my)))


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def sample_states(view, cameras: Sequence[CameraSpec], n: int, seed: int = 0,
                  min_object_pixels: int = 0) -> list[State]:
    """n random states whose hand and objects are in view of every camera, each object covering at least
    min_object_pixels of each camera's mesh render (not hidden behind the arm).

    view: a MeshView (its simulator computes the forward kinematics); its task's objects rest on the
    table where its initial-state sampler puts them, with a random yaw.
    Raises ValueError when no such configuration turns up (the cameras do not see the workspace).
    """
    import dataclasses

    import torch

    from gsenv.sim import names

    if n < 1:
        raise ValueError(f"the number of samples must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    default = np.asarray(names.FR3_DEFAULT_QPOS, dtype=np.float64)
    lo = np.array([a for a, _ in names.FR3_JOINT_LIMITS])
    hi = np.array([b for _, b in names.FR3_JOINT_LIMITS])
    task, specs = view.gsenv_task, view.object_specs
    spawn = dataclasses.replace(view.task.spawn, randomize_yaw=True)
    states: list[State] = []
    for i in range(n):
        for _ in range(MAX_TRIES):
            q = default.copy()
            q[:7] = np.clip(default[:7] + rng.uniform(-1, 1, 7) * np.asarray(JOINT_SPREAD), lo, hi)
            q[7:] = rng.uniform(*names.FINGER_LIMITS)
            # objects: where the task's sampler puts them (its spawn regions, apart), random yaw
            drawn = task.sample_initial_state(torch.Generator().manual_seed(int(rng.integers(2**62))), spawn)
            objects = {name: np.r_[drawn[name][:2].numpy(), specs[name].rest_height, _yaw_quat(float(drawn[name][2]))]
                       for name in task.objects}
            view.set_state(q, objects)
            poses = view.body_poses()
            tcp, hand = poses[names.TCP_LINK][0, :3].numpy(), poses[names.HAND_LINK][0, :3].numpy()
            fingers = [poses[f][0, :3].numpy() for f in names.FINGER_LINKS]
            if min(tcp[2], hand[2], *(f[2] for f in fingers)) < 0.03:
                continue
            points = np.stack([tcp, hand, *(p[:3] for p in objects.values())])
            if all(in_view(points, cam) for cam in cameras) and _objects_seen(view, cameras, min_object_pixels):
                states.append(State(q, objects))
                break
        else:
            objects = (f" and each object covering >= {min_object_pixels} pixels" if min_object_pixels > 0 else "")
            raise ValueError(f"found no joint configuration with the hand{objects} in view of cameras "
                             f"{[c.name for c in cameras]} in {MAX_TRIES} tries (sample {i}): check the cameras' "
                             "poses (cam_to_base, OpenCV axes, robot-base frame)"
                             + (", or render larger images / ask fewer pixels (--min-pixels)" if objects else ""))
    return states


def _objects_seen(view, cameras: Sequence[CameraSpec], min_pixels: int) -> bool:
    """Whether each of the view's task objects covers >= min_pixels in the mesh render of each camera."""
    if min_pixels <= 0:
        return True
    wanted = {c.name for c in cameras}
    ids = [view.body_names.index(name) for name in view.gsenv_task.objects if name in view.body_names]
    for cam, frame in zip(view.cameras, view.render()):
        if cam.name in wanted and any(int((frame.labels == i).sum()) < min_pixels for i in ids):
            return False
    return True
