"""Body poses for the renderer, read from the simulator (no second forward-kinematics library)."""
from __future__ import annotations

import numpy as np
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
    if not env.scene.gpu_sim_enabled:
        return {name: torch.from_numpy(pose) for name, pose in body_poses_numpy(env).items()}
    robot = env.agent.robot
    poses = {link.name: link.pose.raw_pose.to(torch.float32) for link in robot.get_links()}
    poses[names.ROBOT_ROOT] = robot.pose.raw_pose.to(torch.float32)
    poses[names.CUBE] = env.cube.pose.raw_pose.to(torch.float32)
    poses[names.PLATE] = env.plate.pose.raw_pose.to(torch.float32)
    return poses


def _stack(poses) -> np.ndarray:
    """sapien.Pose list -> float32 [n, 7] (p, q): the values ManiSkill's Pose.create builds from them."""
    return np.array([np.concatenate([p.p, p.q]) for p in poses], dtype=np.float32)


def body_poses_numpy(env) -> dict[str, np.ndarray]:
    """:func:`body_poses` of a CPU-PhysX env as numpy float32 [B, 7], read straight from SAPIEN.

    The same numbers as ManiSkill's ``link.pose`` / ``actor.pose`` (which wrap these sapien poses in
    torch tensors), without the dozen small tensor constructions per body.
    """
    env = getattr(env, "unwrapped", env)
    if env.scene.gpu_sim_enabled:
        raise ValueError("body_poses_numpy reads CPU PhysX; use body_poses on GPU PhysX")
    robot = env.agent.robot
    poses = {link.name: _stack([obj.entity_pose for obj in link._objs]) for link in robot.get_links()}
    poses[names.ROBOT_ROOT] = _stack([obj.entity_pose for obj in robot.root._objs])
    poses[names.CUBE] = _stack([obj.pose for obj in env.cube._objs])
    poses[names.PLATE] = _stack([obj.pose for obj in env.plate._objs])
    return poses
