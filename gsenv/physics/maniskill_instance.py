"""One single-env ManiSkill environment as a PhysicsInstance (for the CPU worker pool)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class ManiSkillFactory:
    """Picklable recipe for ``ManiSkillInstance``: ``factory(env_index)`` builds one in a worker.

    ``import_module`` is imported first (it registers the ManiSkill env id); ``task_state`` adds the
    gsenv task's body poses and state dict to every result (see gsenv.physics.packing.StepPacker).
    """

    env_id: str
    make_kwargs: dict = field(default_factory=dict)
    import_module: str = "mani_skill.envs"
    task_state: bool = False

    def __call__(self, env_index: int) -> ManiSkillInstance:
        import importlib

        importlib.import_module(self.import_module)
        return ManiSkillInstance(self.env_id, self.make_kwargs, self.task_state)


class ManiSkillInstance:
    """A single-env ManiSkill env whose reset/step return flat numpy dicts of fixed layout: the
    flattened :class:`~gsenv.physics.outputs.PhysicsOutputs` of its one env, batch dimension dropped.

    The env is built and driven under ``torch.inference_mode()`` (same numbers, less per-op overhead),
    so drive ``self.env`` only through these methods: its tensors are inference tensors.
    """

    def __init__(self, env_id: str, make_kwargs: dict, task_state: bool = False):
        import gymnasium as gym

        from gsenv.physics.packing import StepPacker

        kwargs = {"obs_mode": "state", "sim_backend": "physx_cpu", "render_mode": None, **make_kwargs}
        with _no_autograd():  # tensors made at construction are then usable in-place inside step/reset
            self.env = gym.make(env_id, num_envs=1, **kwargs)
        self._packer = StepPacker(task_state)

    @staticmethod
    def _transport(outputs) -> dict[str, np.ndarray]:
        from gsenv.physics.outputs import flatten

        return {k: _flat(v) for k, v in flatten(outputs).items()}

    def describe(self) -> dict:
        """The single-env action space's bounds: {"action_low", "action_high"} float32 [A]."""
        space = self.env.unwrapped.single_action_space
        return {"action_low": np.asarray(space.low, np.float32), "action_high": np.asarray(space.high, np.float32)}

    def reset(self, seed: int | None, options: dict) -> dict[str, np.ndarray]:
        with _no_autograd():
            obs, info = self.env.reset(seed=seed, options=options or None)
            return self._transport(self._packer.reset(self.env.unwrapped, obs, info))

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        with _no_autograd():
            obs, reward, terminated, truncated, info = self.env.step(action[None])
            return self._transport(self._packer.step(self.env.unwrapped, obs, reward, terminated, truncated, info))

    def close(self) -> None:
        with _no_autograd():
            self.env.close()
