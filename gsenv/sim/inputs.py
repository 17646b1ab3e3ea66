"""Checks of what callers pass to a batched env (actions, episode ids): one message per mistake.

Used where the input enters, by the product env (before anything reaches a physics worker) and by
the ManiSkill task (for users who drive it directly). Pure numpy/torch: importing it is cheap.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def checked_actions(action: Any, num_envs: int, action_dim: int, control_mode: str | None = None) -> torch.Tensor:
    """float32 [B, A] torch tensor (on the input's device; numpy and lists become CPU tensors).

    Takes a torch tensor, numpy array or nested list of shape [B, A]; a single action [A] when B = 1.
    Raises TypeError for other types and ValueError for a wrong shape or NaN/infinity.
    """
    if isinstance(action, (list, tuple)):
        action = np.asarray(action, dtype=np.float32)
    if isinstance(action, np.ndarray):
        action = torch.from_numpy(np.ascontiguousarray(action, dtype=np.float32))
    shape = [num_envs, action_dim]
    if not torch.is_tensor(action):
        raise TypeError(f"action must be a torch tensor or numpy array of shape {shape}, got {type(action).__name__}")
    if num_envs == 1 and list(action.shape) == [action_dim]:
        action = action[None]
    if list(action.shape) != shape:
        mode = f" for control mode {control_mode!r}" if control_mode else ""
        raise ValueError(f"action must have shape {shape} (num_envs x action dim{mode}), got {list(action.shape)}")
    if not torch.isfinite(action).all():
        raise ValueError(f"action of shape {shape} contains NaN or infinity")
    return action.to(torch.float32)


def checked_episode_ids(ids: Any, count: int, total_num_trials: int) -> list[int]:
    """options["episode_id"] -> one int per reset env, each in [0, total_num_trials).

    Takes an int (one reset env) or a sequence / numpy array / tensor of ints; TypeError for
    anything else (floats included: 1.5 is no episode), ValueError for a wrong count or range.
    """
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        values = [int(ids)]
    elif isinstance(ids, (torch.Tensor, np.ndarray, list, tuple)):
        arr = np.asarray(ids.detach().cpu() if isinstance(ids, torch.Tensor) else ids).reshape(-1)
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f'options["episode_id"] must hold integers, got dtype {arr.dtype}')
        values = [int(v) for v in arr]
    else:
        raise TypeError('options["episode_id"] must be an int or a sequence/tensor of ints (one per reset env), '
                        f"got {type(ids).__name__}")
    if len(values) != count:
        raise ValueError(f'options["episode_id"] must hold one id per reset env: expected {count}, got {len(values)}')
    bad = [k for k in values if not 0 <= k < total_num_trials]
    if bad:
        raise ValueError(f'options["episode_id"] values must lie in [0, total_num_trials={total_num_trials}), '
                         f"got {bad}")
    return values
