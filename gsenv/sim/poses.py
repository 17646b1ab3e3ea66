"""Body poses for the renderer, read from the simulator (no second forward-kinematics library)."""
from __future__ import annotations

import numpy as np
import torch

from gsenv.sim import names


def body_poses(env) -> dict[str, torch.Tensor]:
    """Poses of every robot link, the robot root and the task's objects.

    Args:
        env: a :class:`gsenv.sim.task.TaskEnv` (or a wrapper around one).
    Returns:
        {canonical name: float32 [B, 7] = position (m, world frame) + quaternion wxyz}. Keys: every
        name of ``names.ROBOT_LINK_NAMES`` (the links the robot description has), ``names.ROBOT_ROOT``
        (the articulation's root pose, equal to ``fr3_link0``'s) and each object of the task (``env.objects``).
        Tensors live on the simulation device.
    """
    env = getattr(env, "unwrapped", env)
    if not env.scene.gpu_sim_enabled:
        return {name: torch.from_numpy(pose) for name, pose in body_poses_numpy(env).items()}
    robot = env.agent.robot
    poses = {link.name: link.pose.raw_pose.to(torch.float32) for link in robot.get_links()}
    poses[names.ROBOT_ROOT] = robot.pose.raw_pose.to(torch.float32)
    poses.update({name: actor.pose.raw_pose.to(torch.float32) for name, actor in env.objects.items()})
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
    poses.update({name: _stack([obj.pose for obj in actor._objs]) for name, actor in env.objects.items()})
    return poses
