"""Checks of what callers pass to a batched env (actions, seeds, env indices, episode ids, reset
options, task keywords): one message per mistake.

Used where the input enters, by the product env (before anything reaches a physics worker) and by
``gym.make`` of the bare ManiSkill task (its CheckedActions wrapper, for users who drive it directly);
nothing downstream checks again. Pure numpy/torch: importing it is cheap.
"""
from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import torch

__all__ = ["checked_actions", "checked_action_chunk", "checked_episode_ids", "SEED_LIMIT", "RESET_OPTIONS",
           "TASK_KEYWORDS", "OBJ_SETS", "checked_env_indices", "checked_seeds", "checked_reset_options",
           "checked_task_kwargs"]


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


def checked_action_chunk(actions: Any, num_envs: int, action_dim: int, who: str = "the driver") -> torch.Tensor:
    """float32 [B, T, A] (on the input's device) from what a policy or driver returned: a torch tensor
    or numpy array of shape [B, A] (one step) or [B, T, A] (a chunk of T >= 1 steps), floating, finite.

    Raises TypeError for another type or an integer or bool dtype, ValueError for a wrong shape or
    NaN/infinity; each message starts with `who`.
    """
    expected = f"[B, A] = [{num_envs}, {action_dim}] or [B, T, A] = [{num_envs}, T, {action_dim}] (T >= 1)"
    if isinstance(actions, np.ndarray):
        if actions.dtype.kind != "f":
            raise TypeError(f"{who} returned actions of dtype {actions.dtype}; expected a floating dtype")
        # torch reads native byte order only (an array off a wire may be big-endian) and warns on a
        # read-only buffer (msgpack's): a native copy, a few numbers
        actions = torch.from_numpy(actions.astype(actions.dtype.newbyteorder("="), copy=True))
    if not torch.is_tensor(actions):
        raise TypeError(f"{who} returned a {type(actions).__name__}; expected a torch tensor or numpy array "
                        f"of shape {expected}")
    shape = list(actions.shape)
    if actions.ndim == 2:
        actions = actions[:, None]
    if actions.ndim != 3 or actions.shape[0] != num_envs or actions.shape[1] < 1 or actions.shape[2] != action_dim:
        raise ValueError(f"{who} returned actions of shape {shape}; expected {expected}")
    if not actions.is_floating_point():
        raise TypeError(f"{who} returned actions of dtype {actions.dtype}; expected a floating dtype")
    if not torch.isfinite(actions).all():
        raise ValueError(f"{who} returned actions with NaN or infinity")
    return actions.to(torch.float32)


def checked_episode_ids(ids: Any, count: int, total_num_trials: int) -> list[int]:
    """options["episode_id"] -> one int per reset env, each in [0, total_num_trials).

    Takes an int (one reset env) or a sequence / numpy array / tensor of ints; TypeError for
    anything else (floats included: 1.5 is no episode), ValueError for a wrong count or range.
    """
    if _is_int(ids):
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


SEED_LIMIT = 2**32
"""Seeds are ints in [0, 2**32) (numpy's and ManiSkill's range), the derived seed + i included."""

RESET_OPTIONS = ("env_idx", "episode_id", "reconfigure")
"""Keys a reset's options may have (reconfigure is accepted; scenes are fixed, nothing is rebuilt)."""

TASK_KEYWORDS: tuple[str, ...] = (
    # gsenv.sim.task.TaskEnv's own (and one per task object, named as the object: checked_task_kwargs)
    "robot_uids", "control_mode", "robot_urdf", "spawn", "randomize_yaw",
    "robot_init_qpos_noise", "total_num_trials", "sparse_reward_at_end", "episode_steps", "upstream_compat",
    "obj_set",
    # ManiSkill's BaseEnv's that mean something to a physics-only task
    "reward_mode", "sim_config", "enhanced_determinism",
)
"""Keywords the task takes (tests/test_sim_inputs.py holds this against the real signatures)."""
OBJ_SETS: tuple[str, ...] = ("train", "test", "all")
"""The values of the ``obj_set`` keyword (tasks with object splits: gsenv.tasks.put_on_receptacle)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def checked_env_indices(env_idx: Any, num_envs: int, name: str = 'options["env_idx"]') -> np.ndarray:
    """options["env_idx"] -> int64 [n] distinct env indices in [0, num_envs) (None: all envs).

    Takes ints, a sequence / array / tensor of ints, or a boolean mask [num_envs]; name: what the
    messages call it.
    """
    if env_idx is None:
        return np.arange(num_envs)
    idx = np.asarray(env_idx.detach().cpu() if torch.is_tensor(env_idx) else env_idx).reshape(-1)
    if idx.dtype == np.bool_:
        if idx.shape != (num_envs,):
            raise ValueError(f'a boolean {name} must have shape [{num_envs}], got {list(idx.shape)}')
        idx = np.flatnonzero(idx)
    if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= num_envs):
        raise ValueError(f'{name} must hold env indices in [0, {num_envs}), got {idx.tolist()}')
    if len(np.unique(idx)) != len(idx):
        dupes = sorted({int(i) for i in idx if (idx == i).sum() > 1})
        raise ValueError(f'{name} names envs {dupes} more than once: give each env once')
    return idx.astype(np.int64)


def checked_seeds(seed: Any, offsets: np.ndarray) -> np.ndarray | None:
    """int64 [n] per-env seeds for the n reset envs: an int s gives s + offsets (env i: seed + i), a
    sequence holds one seed per reset env; None stays None (the caller draws seeds). TypeError for
    non-integers; ValueError for a wrong count or a seed outside [0, 2**32)."""
    if seed is None:
        return None
    offsets = np.asarray(offsets, dtype=np.int64)
    if _is_int(seed):
        values = [int(seed) + int(i) for i in offsets]
        what = f"seed={int(seed)} gives env seeds {values}"
    else:
        arr = np.asarray(seed.detach().cpu() if torch.is_tensor(seed) else seed).reshape(-1)
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"seed must be an int or one int per reset env, got dtype {arr.dtype}")
        if len(arr) != len(offsets):
            raise ValueError(f"seed must be an int or one int per reset env ({len(offsets)}), got {len(arr)}")
        values = [int(v) for v in arr]
        what = f"got {values}"
    if any(not 0 <= v < SEED_LIMIT for v in values):
        raise ValueError(f"seeds must lie in [0, 2**32): {what}")
    return np.array(values, dtype=np.int64)


def checked_reset_options(options: Any) -> dict:
    """A copy of a reset's options dict, unknown keys refused (a typo would otherwise do nothing)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}: the options are {list(RESET_OPTIONS)}")
    return dict(options)


def checked_task_kwargs(kwargs: dict, objects: tuple[str, ...] = ()) -> dict:
    """The task's keywords, checked before any physics starts: known names (TASK_KEYWORDS and the task's
    object names, each an ObjectSpec keyword), control and reward modes."""
    from gsenv.sim import names

    known = (*TASK_KEYWORDS, *objects)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        # short: gymnasium's make appends every keyword it passed to a TypeError's message
        close = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
        hints = "".join(f" ({k!r}: did you mean {m[0]!r}?)" for k, m in close.items() if m)
        raise TypeError(f"unknown keyword argument(s) {unknown}{hints}; the options are in help(gsenv.GSEnv), "
                        "the task's in gsenv.sim.inputs.TASK_KEYWORDS")
    if "obj_set" in kwargs and kwargs["obj_set"] not in OBJ_SETS:
        raise ValueError(f"obj_set must be one of {OBJ_SETS} (which split of the task's objects episodes draw "
                         f"from), got {kwargs['obj_set']!r}")
    if kwargs.get("control_mode") not in names.CONTROL_MODES:
        raise ValueError(f"control_mode must be one of {names.CONTROL_MODES}, got {kwargs.get('control_mode')!r}")
    if kwargs.get("reward_mode", names.REWARD_MODES[0]) not in names.REWARD_MODES:
        raise ValueError(f"reward_mode must be one of {names.REWARD_MODES}, got {kwargs.get('reward_mode')!r}")
    return kwargs
