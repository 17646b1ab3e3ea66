"""One single-env ManiSkill environment as a PhysicsInstance (for the CPU worker pool)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


def _flat(value: Any) -> np.ndarray:
    """A ManiSkill batch-of-one tensor -> numpy without the batch dimension."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    return value[0] if value.ndim >= 1 and value.shape[0] == 1 else value


def _no_autograd():
    """torch.inference_mode(): ManiSkill's step is hundreds of tiny torch ops on CPU and autograd's
    bookkeeping (dispatch, version counters) is a large share of each; the kernels, hence the
    numbers, are the same. Everything an instance computes stays inside it (results leave as numpy)."""
    import torch

    return torch.inference_mode()


def scalar_info_keys(info: dict) -> list[str]:
    """The info entries with one value per env, reported as ``info/<key>`` (elapsed_steps has its own
    key; reconfigure only appears at reset)."""
    skip = {"elapsed_steps", "reconfigure"}
    return sorted(k for k, v in info.items() if k not in skip and np.ndim(v) <= 1)


@dataclass
class ManiSkillFactory:
    """Picklable recipe for ``ManiSkillInstance``: ``factory(env_index)`` builds one in a worker.

    ``import_module`` is imported first (it registers the ManiSkill env id); ``extra_outputs``
    (module:function, called with the unwrapped env and the step's info dict) adds arrays to every
    result, e.g. body poses.
    """

    env_id: str
    make_kwargs: dict = field(default_factory=dict)
    import_module: str = "mani_skill.envs"
    extra_outputs: str | None = None

    def __call__(self, env_index: int) -> "ManiSkillInstance":
        import importlib

        importlib.import_module(self.import_module)
        extra = None
        if self.extra_outputs:
            module, name = self.extra_outputs.split(":")
            extra = getattr(importlib.import_module(module), name)
        return ManiSkillInstance(self.env_id, self.make_kwargs, extra)


class ManiSkillInstance:
    """A single-env ManiSkill env whose reset/step return flat numpy dicts of fixed layout.

    Keys: ``obs`` [D] (state obs), ``reward`` [], ``terminated`` [], ``truncated`` [],
    ``elapsed_steps`` [], ``info/<name>`` for every bool/number in info, plus ``extra_outputs``.

    The env is built and driven under ``torch.inference_mode()`` (same numbers, less per-op overhead),
    so drive ``self.env`` only through these methods: its tensors are inference tensors.
    """

    def __init__(self, env_id: str, make_kwargs: dict, extra: Callable[[Any, dict], dict] | None = None):
        import gymnasium as gym

        kwargs = {"obs_mode": "state", "sim_backend": "physx_cpu", "render_mode": None, **make_kwargs}
        with _no_autograd():  # tensors made at construction are then usable in-place inside step/reset
            self.env = gym.make(env_id, num_envs=1, **kwargs)
        self.extra = extra
        self._info_keys: list[str] | None = None

    def _pack(self, obs, reward, terminated, truncated, info) -> dict[str, np.ndarray]:
        base = self.env.unwrapped
        out = {
            "obs": _flat(obs).astype(np.float32),
            "reward": np.float32(_flat(reward)),
            "terminated": np.bool_(_flat(terminated)),
            "truncated": np.bool_(_flat(truncated)),
            "elapsed_steps": np.int32(_flat(base.elapsed_steps)),
        }
        if self._info_keys is None:  # fix the layout on the first call
            self._info_keys = scalar_info_keys(info)
        for k in self._info_keys:
            out[f"info/{k}"] = _flat(info[k]).reshape(())
        if self.extra is not None:
            out.update({k: _flat(v) for k, v in self.extra(base, info).items()})
        return out

    def describe(self) -> dict:
        """The single-env action space's bounds, the flat state's size and the instructions."""
        space = self.env.unwrapped.single_action_space
        return {"action_low": np.asarray(space.low, np.float32), "action_high": np.asarray(space.high, np.float32)}

    def reset(self, seed: int | None, options: dict) -> dict[str, np.ndarray]:
        with _no_autograd():
            obs, info = self.env.reset(seed=seed, options=options or None)
            return self._pack(obs, np.zeros(()), np.zeros((), bool), np.zeros((), bool), info)

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        with _no_autograd():
            return self._pack(*self.env.step(action[None]))

    def close(self) -> None:
        with _no_autograd():
            self.env.close()
