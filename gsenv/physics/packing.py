"""One ManiSkill reset/step -> :class:`PhysicsOutputs`: the packer both physics backends share.

The GPU backend packs its B-env ManiSkill env with it; each CPU worker packs its single-env
instances with it (B = 1) and strips the batch dimension for the shared-memory transport.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gsenv.physics.outputs import PhysicsOutputs


def scalar_info_keys(info: dict) -> list[str]:
    """The info entries with one value per env (elapsed_steps has its own field; reconfigure only
    appears at reset)."""
    skip = {"elapsed_steps", "reconfigure"}
    return sorted(k for k, v in info.items() if k not in skip and np.ndim(v) <= 1)


class StepPacker:
    """Packs what a ManiSkill env returned into PhysicsOutputs, values as ManiSkill gives them.

    task_state: also report body poses and the state dict (a gsenv PutCubeOnPlate task: poses from
    gsenv.sim.poses, read straight from SAPIEN as numpy on CPU PhysX; state from obs_state_dict).
    The info layout is fixed by the first call, so every later result has the same fields.
    """

    def __init__(self, task_state: bool = True):
        self.task_state = task_state
        self._info_keys: list[str] | None = None

    def reset(self, env, obs: torch.Tensor, info: dict) -> PhysicsOutputs:
        """After env.reset: zero reward, nothing terminated or truncated."""
        zeros = torch.zeros(obs.shape[0], device=obs.device)
        return self.step(env, obs, zeros, zeros.bool(), zeros.bool(), info)

    def step(self, env, obs: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor,
             truncated: torch.Tensor, info: dict) -> PhysicsOutputs:
        """env: the unwrapped ManiSkill env; the rest as its reset/step returned them ([B, ...])."""
        if self._info_keys is None:
            self._info_keys = scalar_info_keys(info)
        out = PhysicsOutputs(obs=obs.float(), reward=reward.float(), terminated=terminated.bool(),
                             truncated=truncated.bool(), elapsed_steps=env.elapsed_steps.int(),
                             info={k: info[k] for k in self._info_keys},
                             restarted=torch.zeros(obs.shape[0], dtype=torch.bool, device=obs.device))
        if self.task_state:
            out.body_poses, out.state = _task_state(env, info)
        return out


def _task_state(env, info: dict) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    from gsenv.sim.poses import body_poses, body_poses_numpy

    poses = body_poses(env) if env.scene.gpu_sim_enabled else body_poses_numpy(env)
    return poses, env.obs_state_dict(info)
