"""Body poses for the renderer, read from the simulator (no second forward-kinematics library)."""
from __future__ import annotations

import torch

from gsenv.sim import names


def body_poses(env) -> dict[str, torch.Tensor]:
    """Poses of every robot link, the robot root and both objects of a PutCubeOnPlate task.

    Args:
        env: a :class:`gsenv.sim.task.PutCubeOnPlateEnv` (or a wrapper around one).
    Returns:
        {canonical name: float32 [B, 7] = position (m, world frame) + quaternion wxyz}. Keys: every
        name of ``names.ROBOT_LINK_NAMES`` (the links the robot description has), ``names.ROBOT_ROOT``
        (the articulation's root pose, equal to ``fr3_link0``'s), ``names.CUBE`` and ``names.PLATE``.
        Tensors live on the simulation device.
    """
    env = getattr(env, "unwrapped", env)
    robot = env.agent.robot
    poses = {link.name: link.pose.raw_pose.to(torch.float32) for link in robot.get_links()}
    poses[names.ROBOT_ROOT] = robot.pose.raw_pose.to(torch.float32)
    poses[names.CUBE] = env.cube.pose.raw_pose.to(torch.float32)
    poses[names.PLATE] = env.plate.pose.raw_pose.to(torch.float32)
    return poses
