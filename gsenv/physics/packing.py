"""One ManiSkill reset/step -> the carried fields of the task's record: the packer both physics backends share.

The GPU backend packs its B-env ManiSkill env with it; each CPU worker packs its single-env
instances with it (B = 1) and strips the batch dimension for the shared-memory transport.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gsenv.sim.record import TaskRecord


def scalar_info_keys(info: dict) -> list[str]:
    """The info entries with one value per env (elapsed_steps has its own field; reconfigure only
    appears at reset)."""
    skip = {"elapsed_steps", "reconfigure"}
    return sorted(k for k, v in info.items() if k not in skip and np.ndim(v) <= 1)


class StepPacker:
    """Packs what a gsenv task's ManiSkill env reports into its record's carried fields
    ({key: [B, ...]}, gsenv.sim.record), values as ManiSkill gives them: poses from gsenv.sim.poses
    (read straight from SAPIEN as numpy on CPU PhysX), the state dict from the task's obs_state_dict.

    The first call checks the task against its declaration (every field there, of the declared shape
    and dtype, and the fields it does not carry equal to what the task computed): a task whose record
    is out of date fails at its first reset, not with wrong observations later.
    """

    def __init__(self, record: TaskRecord):
        self.record = record
        self._checked = False

    def reset(self, env, info: dict) -> dict[str, Any]:
        """After env.reset: zero reward, nothing terminated."""
        zeros = torch.zeros(env.num_envs, device=env.device)
        return self._pack(_reported(env, zeros, zeros.bool(), info), {"terminated"})

    def step(self, env, reward: torch.Tensor, terminated: torch.Tensor, info: dict) -> dict[str, Any]:
        """env: the unwrapped task env; reward, terminated [B] and info as its step returned them."""
        return self._pack(_reported(env, reward, terminated, info), set())

    def _pack(self, values: dict[str, Any], unset: set[str]) -> dict[str, Any]:
        if not self._checked:
            _check(self.record, values, unset)
            self._checked = True
        return {f.key: values[f.key] for f in self.record.carried()}


def _reported(env, reward, terminated, info: dict) -> dict[str, Any]:
    """Everything the task reports, {key: [B, ...]} in the record's keys."""
    from gsenv.sim.poses import body_poses, body_poses_numpy

    poses = body_poses(env) if env.scene.gpu_sim_enabled else body_poses_numpy(env)
    values = {"reward": reward.float(), "elapsed_steps": env.elapsed_steps.int(), "terminated": terminated.bool()}
    values.update({f"info/{k}": info[k] for k in scalar_info_keys(info)})
    values.update({f"pose/{k}": v for k, v in poses.items()})
    for group, leaves in env.obs_state_dict(info).items():
        values.update({f"state/{group}/{name}": v for name, v in leaves.items()})
    return values


def _dtype(value: Any) -> str:
    return str(value.dtype).removeprefix("torch.") if torch.is_tensor(value) else np.asarray(value).dtype.name


def _equal(a: Any, b: Any) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b):
        return torch.equal(torch.as_tensor(a), torch.as_tensor(b).to(torch.as_tensor(a).device))
    return np.array_equal(a, b)


def _check(record: TaskRecord, values: dict[str, Any], unset: set[str]) -> None:
    """unset: keys whose reported value is a placeholder (terminated after a reset): not compared."""
    declared = {f.key: f for f in record.fields()}
    problems = [f"{k} is reported but not declared" for k in values.keys() - declared.keys()]
    problems += [f"{k} is declared but not reported" for k in declared.keys() - values.keys()]
    for key in declared.keys() & values.keys():
        f, v = declared[key], values[key]
        if (tuple(v.shape[1:]), _dtype(v)) != (f.shape, f.dtype):
            problems.append(f"{key} is {tuple(v.shape[1:])} {_dtype(v)}, declared {f.shape} {f.dtype}")
    if not problems:
        complete = record.complete(values)
        problems += [f"{f.key} differs from what its declaration computes" for f in record.fields()
                     if not f.carried and f.key not in unset and not _equal(complete[f.key], values[f.key])]
    if problems:
        raise ValueError("the task does not report what its record (gsenv.sim.record) declares: "
                         + "; ".join(sorted(problems)) + ". Update the task's TaskRecord")
