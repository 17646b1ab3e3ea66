"""Recorded joint positions -> the body poses the splat renderer takes, by the URDF's forward
kinematics (no simulator, no stepping: a recording is a list of configurations, not a trajectory to
replay). The robot's base is the simulator's world origin, as in the task."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsenv.geometry import rotmat_to_quat
from gsenv.scene_build.rlinf_dataset import forward_kinematics
from gsenv.sim import names

__all__ = ["robot_body_poses", "scene_robot_urdf"]


def scene_robot_urdf(bundle, asset_root: str | Path | None = None) -> Path:
    """The robot description the task builds for a bundle: its own URDF, else the generated FR3 one."""
    from gsenv.sim.robot_description import default_fr3_urdf

    return Path(bundle.robot_urdf) if bundle.robot_urdf is not None else default_fr3_urdf(asset_root)


def robot_body_poses(urdf: str | Path, qpos: np.ndarray) -> dict[str, torch.Tensor]:
    """qpos [N, 9] (7 arm joints in rad, 2 finger joints in m, names.JOINT_NAMES order) -> {link:
    float32 [N, 7] position + quaternion wxyz in the world (= robot base) frame} for every link of
    the URDF, plus names.ROBOT_ROOT."""
    q = np.asarray(qpos, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != names.NUM_JOINTS:
        raise ValueError(f"qpos must be [N, {names.NUM_JOINTS}] (7 arm joints + 2 fingers), got {list(q.shape)}")
    fk = forward_kinematics(urdf, {j: q[:, i] for i, j in enumerate(names.JOINT_NAMES)})
    poses = {}
    for link, m in fk.items():
        m = torch.from_numpy(m)
        poses[link] = torch.cat([m[:, :3, 3], rotmat_to_quat(m[:, :3, :3])], -1).to(torch.float32)
    poses[names.ROBOT_ROOT] = poses[names.ROBOT_ROOT_LINK]
    return poses
