"""What a physics worker reports for one PutCubeOnPlate instance besides obs/reward/info.

Keys: ``pose/<body>`` [7] for every body of gsenv.sim.poses.body_poses (position + wxyz), and
``state/<group>/<name>`` for every leaf of the task's state-dict observation (agent/qpos, ...).
"""
from __future__ import annotations

import torch

POSE_PREFIX = "pose/"
STATE_PREFIX = "state/"


def task_outputs(env, info: dict) -> dict[str, torch.Tensor]:
    """env: the unwrapped PutCubeOnPlateEnv; info: its latest reset/step info (evaluation included).

    Values are [B, ...] torch tensors, or numpy arrays on CPU PhysX (poses read straight from SAPIEN).
    """
    from gsenv.sim.poses import body_poses, body_poses_numpy

    poses = body_poses(env) if env.scene.gpu_sim_enabled else body_poses_numpy(env)
    out = {f"{POSE_PREFIX}{name}": pose for name, pose in poses.items()}
    state = env.obs_state_dict(info)
    for group, leaves in state.items():
        for name, value in leaves.items():
            out[f"{STATE_PREFIX}{group}/{name}"] = value
    return out
