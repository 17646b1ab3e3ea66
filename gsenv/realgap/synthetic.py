"""A "real" recording made from the scene itself, to try `gsenv real compare` (and to test it): the
robot rendered at given joint positions through cameras moved by a known offset, with chosen links
moved, a colour gain and bias and sensor noise, written as a LeRobot v2.1 dataset by gsenv's own writer
(H.264 videos, as a real camera's recording would be stored)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from gsenv.lerobot_v21 import Episode, LeRobotV21Writer, VectorFeature, VideoFeature
from gsenv.realgap.kinematics import robot_body_poses, scene_robot_urdf
from gsenv.scene.bundle import SceneBundle
from gsenv.sim import names

__all__ = ["STATE_KEY", "video_key", "arm_configurations", "write_synthetic_recording"]

STATE_KEY = "observation.state"
# half-widths (rad) of the arm joints' spread about the default configuration: the hand stays in view of
# the default scene's third-person camera
SPREAD = (0.3, 0.2, 0.3, 0.2, 0.4, 0.2, 0.5)


def video_key(camera: str) -> str:
    return f"observation.images.{camera}"


def arm_configurations(n: int, seed: int = 0) -> np.ndarray:
    """qpos [n, 9]: the FR3's default configuration with uniform offsets of the arm joints (SPREAD) and
    random finger openings."""
    rng = np.random.default_rng(seed)
    q = np.tile(np.asarray(names.FR3_DEFAULT_QPOS), (n, 1))
    q[:, :7] += rng.uniform(-1, 1, (n, 7)) * np.asarray(SPREAD)
    q[:, 7:] = rng.uniform(0.01, 0.04, (n, 1))
    return q


def write_synthetic_recording(root: str | Path, bundle: SceneBundle, qpos: np.ndarray, *,
                              cameras: Sequence[str] | None = None, image_size: tuple[int, int] = (96, 128),
                              camera_offset: torch.Tensor | None = None,
                              moved_links: Mapping[tuple[int, str], Sequence[float]] | None = None,
                              colour_gain: Sequence[float] = (1.0, 1.0, 1.0),
                              colour_bias: Sequence[float] = (0.0, 0.0, 0.0), noise_std: float = 0.0,
                              seed: int = 0, render_backend: str = "auto", device: str = "cpu",
                              asset_root: str | Path | None = None) -> Path:
    """Write one episode at `root` (a new folder): the robot (the scene's objects left out) at qpos
    [N, 9] seen by `cameras` (default: the fixed ones) at image_size (H, W), each camera moved by
    camera_offset [4, 4] in its own frame (cam_to_world @ offset); moved_links: {(frame, link): [3] m}
    moves that link in that frame; then real = gain * render + bias + N(0, noise_std), in 0-255.
    Features: observation.state [9] and one video per camera under video_key(camera)."""
    from gsenv.scene.camera_rig import CameraRig, camera_specs
    from gsenv.scene.rendering import make_renderer

    scene = dataclasses.replace(bundle, objects={})
    q = np.asarray(qpos, dtype=np.float64)
    n = len(q)
    names_ = [c.name for c in camera_specs(scene, cameras)]
    poses = robot_body_poses(scene_robot_urdf(scene, asset_root), q)
    for (frame, link), d in (moved_links or {}).items():
        poses[link][frame, :3] += torch.as_tensor(d, dtype=torch.float32)
    poses = {k: v.to(device) for k, v in poses.items()}
    rig = CameraRig(scene, names_, n, device, image_size)
    if camera_offset is not None:
        rig.set_offsets(torch.as_tensor(camera_offset, dtype=torch.float32, device=device)[None, None]
                        .expand(n, len(names_), 4, 4).contiguous(), None)
    rgb = make_renderer(scene, render_backend, device).render(poses, rig.cameras(poses)).rgb.cpu().numpy()
    rng = np.random.default_rng(seed)
    real = rgb.astype(np.float64) * np.asarray(colour_gain) + np.asarray(colour_bias)
    real = np.clip(real + rng.normal(0.0, noise_std, real.shape), 0, 255).round().astype(np.uint8)
    h, w = image_size
    features = {**{video_key(c): VideoFeature(h, w, camera=c) for c in names_}, STATE_KEY: VectorFeature(9)}
    writer = LeRobotV21Writer(root, fps=10, features=features, robot_type="fr3")
    try:
        frames = {**{video_key(c): real[:, i] for i, c in enumerate(names_)}, STATE_KEY: q.astype(np.float32)}
        writer.add_episode(Episode(frames, names.LANGUAGE_INSTRUCTION))
    finally:
        writer.close()
    return Path(root)
