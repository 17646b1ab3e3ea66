"""Physics backends behind one batched interface: B envs in, batched torch tensors out.

- ``physx_cpu``: CpuPhysicsPool of single-env PutCubeOnPlate instances in worker processes.
- ``physx_cuda``: one ManiSkill env with num_envs = B on GPU PhysX.

Both return the same keys (see gsenv.physics.maniskill_instance and gsenv.physics.task_outputs):
``obs`` [B, D] flat state, ``reward`` [B], ``terminated`` [B], ``elapsed_steps`` [B], ``info/<k>`` [B],
``pose/<body>`` [B, 7], ``state/<group>/<name>`` [B, ...].
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

from gsenv.physics.cpu_pool import CpuPhysicsPool
from gsenv.physics.maniskill_instance import ManiSkillFactory, scalar_info_keys

logger = logging.getLogger(__name__)

TASK_MODULE = "gsenv.sim.task"
OUTPUTS = "gsenv.physics.task_outputs:task_outputs"


class CpuPhysics:
    """physx_cpu: B single-env instances over W worker processes."""

    name = "physx_cpu"

    def __init__(self, num_envs: int, task_kwargs: dict, device: torch.device, num_workers: int | None = None,
                 pin_workers: bool | None = None):
        from gsenv.sim import names

        factory = ManiSkillFactory(names.TASK_ID, {**task_kwargs, "render_backend": "none"},
                                   import_module=TASK_MODULE, extra_outputs=OUTPUTS)
        self.pool = CpuPhysicsPool(factory, num_envs, action_shape=(7,), num_workers=num_workers,
                                   pin_workers=pin_workers)
        self.num_envs = num_envs
        self.device = device
        self.action_low = self.pool.meta["action_low"]
        self.action_high = self.pool.meta["action_high"]

    def _to_device(self, out: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in out.items()}

    def reset(self, env_idx: Sequence[int], seeds: Sequence[int], options: Sequence[dict]) -> dict[str, torch.Tensor]:
        return self._to_device(self.pool.reset(env_idx, seeds, options))

    def step(self, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._to_device(self.pool.step(actions.detach().to("cpu", torch.float32).numpy()))

    def close(self) -> None:
        self.pool.close()


class GpuPhysics:
    """physx_cuda: one ManiSkill env holding all B envs on GPU PhysX."""

    name = "physx_cuda"

    def __init__(self, num_envs: int, task_kwargs: dict, device: torch.device):
        import gymnasium as gym
        import importlib

        from gsenv.sim import names

        if not torch.cuda.is_available():
            raise ValueError("sim_backend='physx_cuda' needs a CUDA GPU and none is available here; "
                             "use sim_backend='physx_cpu' (or 'auto')")
        importlib.import_module(TASK_MODULE)
        try:
            self.env = gym.make(names.TASK_ID, num_envs=num_envs, sim_backend="physx_cuda", render_backend="none",
                                obs_mode="state", **task_kwargs).unwrapped
        except Exception as exc:  # SAPIEN fetches its GPU PhysX library from the internet on first use
            raise RuntimeError(
                f"GPU PhysX (sim_backend='physx_cuda') could not start: {type(exc).__name__}: {exc}. SAPIEN downloads "
                "its PhysX GPU library on first use, which needs internet access; on machines without it use "
                "sim_backend='physx_cpu' (or 'auto')."
            ) from exc
        self.num_envs = num_envs
        self.device = device
        space = self.env.single_action_space
        self.action_low, self.action_high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
        self._info_keys: list[str] | None = None

    def _pack(self, obs, reward, terminated, info) -> dict[str, torch.Tensor]:
        from gsenv.physics.task_outputs import task_outputs

        if self._info_keys is None:
            self._info_keys = scalar_info_keys(info)
        out = {"obs": obs.float(), "reward": reward.float(), "terminated": terminated.bool(),
               "elapsed_steps": self.env.elapsed_steps.int()}
        out.update({f"info/{k}": info[k] for k in self._info_keys})
        out.update(task_outputs(self.env, info))
        return {k: torch.as_tensor(v).to(self.device) for k, v in out.items()}

    def reset(self, env_idx: Sequence[int], seeds: Sequence[int], options: Sequence[dict]) -> dict[str, torch.Tensor]:
        opts = {"env_idx": torch.as_tensor(list(env_idx))}
        ids = [o["episode_id"][0] for o in options if "episode_id" in o]
        if ids:
            opts["episode_id"] = torch.as_tensor(ids)
        obs, info = self.env.reset(seed=[int(s) for s in seeds], options=opts)
        zeros = torch.zeros(self.num_envs, device=obs.device)
        return self._pack(obs, zeros, zeros.bool(), info)

    def step(self, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        obs, reward, terminated, _, info = self.env.step(actions)
        return self._pack(obs, reward, terminated, info)

    def close(self) -> None:
        self.env.close()


def make_physics(backend: str, num_envs: int, task_kwargs: dict, device: torch.device,
                 num_workers: int | None = None, pin_workers: bool | None = None):
    """The physics backend `backend` ('auto', 'physx_cpu' or 'physx_cuda') for B = num_envs.

    num_workers / pin_workers: physx_cpu only (see CpuPhysicsPool; pin_workers None follows the
    environment variable GSENV_PIN_WORKERS)."""
    from gsenv.backends import resolve_physics_backend

    choice = resolve_physics_backend(backend)
    if choice == "physx_cuda":
        return GpuPhysics(num_envs, task_kwargs, device)
    return CpuPhysics(num_envs, task_kwargs, device, num_workers=num_workers, pin_workers=pin_workers)
