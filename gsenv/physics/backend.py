"""Physics backends behind one batched interface: B envs in, batched torch tensors out.

- ``physx_cpu``: CpuPhysicsPool of single-env task instances in worker processes.
- ``physx_cuda``: one ManiSkill env with num_envs = B on GPU PhysX.

Both pack the task record's carried fields with the same :class:`~gsenv.physics.packing.StepPacker`
and return one :class:`~gsenv.physics.outputs.PhysicsOutputs` of torch tensors on the env's device per
reset/step, completed from them in this process (:func:`~gsenv.physics.outputs.assemble`). ``record``
says what the task reports (gsenv.sim.record); ``task`` (a gsenv.tasks.Task) is the task they run.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from gsenv.physics import cpu_pool as pool
from gsenv.physics.cpu_pool import CpuPhysicsPool
from gsenv.physics.maniskill_instance import ManiSkillFactory
from gsenv.physics.outputs import RESTARTED_KEY, PhysicsOutputs, assemble
from gsenv.physics.packing import StepPacker
from gsenv.tasks import get_task, physics_id

__all__ = ["TASK_MODULE", "task_factory", "CpuPhysics", "BatchedPhysics", "gpu_physics", "make_physics"]

logger = logging.getLogger(__name__)

TASK_MODULE = "gsenv.sim.task"
"""Holds the ManiSkill env of every task (register_physics_task registers a task's id)."""


def task_factory(task_kwargs: dict, task=None) -> ManiSkillFactory:
    """The recipe of one CPU-PhysX instance of ``task`` (a gsenv.tasks.Task, its name, or None: the default
    task); it reports the task's record (gsenv.sim.record)."""
    task = get_task(task)
    return ManiSkillFactory(physics_id(task.name), task.record, {**task_kwargs, "render_backend": "none"},
                            import_module=TASK_MODULE, task=task)


class CpuPhysics:
    """physx_cpu: B single-env instances over W worker processes."""

    name = "physx_cpu"

    def __init__(self, num_envs: int, task_kwargs: dict, device: torch.device, num_workers: int | None = None,
                 pin_workers: bool | None = None, task=None, **pool_options):
        """task: a gsenv.tasks.Task (None: the default task). pool_options: CpuPhysicsPool's timeout_s,
        max_restarts, restart_window_s, start_method, allow_many_workers, reservation. The action buffer takes the
        task's action shape (7 or 8 by control mode)."""
        factory = task_factory(task_kwargs, task)
        self.pool = CpuPhysicsPool(factory, num_envs, num_workers=num_workers, pin_workers=pin_workers, **pool_options)
        self.record = factory.record
        self.num_envs = num_envs
        self.device = device
        self.action_low = self.pool.meta["action_low"]
        self.action_high = self.pool.meta["action_high"]

    @property
    def restart_seeds(self) -> dict[int, int | None]:
        """{env: seed} of the envs the last reset/step rebuilt after a worker failed."""
        return dict(self.pool.restart_seeds)

    def _to_device(self, out: dict[str, np.ndarray]) -> PhysicsOutputs:
        on_device = {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in out.items()}
        return assemble(self.record, on_device)

    def reset(self, env_idx: Sequence[int], seeds: Sequence[int], options: Sequence[dict]) -> PhysicsOutputs:
        return self._to_device(self.pool.reset(env_idx, seeds, options))

    @property
    def state_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """{key: (per-env shape, numpy dtype name)} of get_state's arrays (gsenv.sim.sim_state)."""
        return dict(self.pool.meta["state_layout"])

    def get_state(self) -> dict[str, np.ndarray]:
        """{key: [B, ...]} every env's simulation state (gsenv.sim.sim_state keys)."""
        per_env = self.pool.get_state()
        return {k: np.stack([s[k] for s in per_env]) for k in self.state_layout}

    def set_state(self, env_idx: Sequence[int], state: dict[str, np.ndarray], carried: dict[str, np.ndarray],
                  options: Sequence[dict]) -> PhysicsOutputs:
        """Put the envs env_idx into state ({key: [n, ...]}, get_state's keys), reporting carried ({key:
        [n, ...]}, the record's carried fields) as their latest outputs; options: each env's episode
        options (episode id, drawn physics values; also what it is reset with should its worker be replaced)."""
        states = [{k: v[j] for k, v in state.items()} for j in range(len(env_idx))]
        outputs = [{k: v[j] for k, v in carried.items()} for j in range(len(env_idx))]
        return self._to_device(self.pool.set_state(env_idx, states, outputs, options))

    def step(self, actions: torch.Tensor) -> PhysicsOutputs:
        return self._to_device(self.pool.step(actions.detach().to("cpu", torch.float32).numpy()))

    def close(self) -> None:
        self.pool.close()


class BatchedPhysics:
    """One ManiSkill env holding all B envs (num_envs = B): GPU PhysX, or any already-built env.

    env: a gsenv task env, wrapped or not (its `record` says what it reports); name: the backend name.
    """

    def __init__(self, env, device: torch.device | str, name: str = "physx_cuda"):
        self.env = env.unwrapped
        self.name = name
        self.num_envs = self.env.num_envs
        self.device = torch.device(device)
        space = self.env.single_action_space
        self.action_low, self.action_high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
        self.record = self.env.record
        self._packer = StepPacker(self.record)

    @property
    def restart_seeds(self) -> dict[int, int | None]:
        """Always empty: one process holds all envs (only the CPU pool's workers get replaced)."""
        return {}

    def _to_device(self, carried: dict) -> PhysicsOutputs:
        # copies: ManiSkill updates some of these in place on the next step (elapsed_steps, GPU poses)
        on_device = {k: torch.as_tensor(v).to(self.device, copy=True) for k, v in carried.items()}
        on_device[RESTARTED_KEY] = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return assemble(self.record, on_device)

    def reset(self, env_idx: Sequence[int], seeds: Sequence[int], options: Sequence[dict]) -> PhysicsOutputs:
        opts = {"env_idx": torch.as_tensor(list(env_idx))}
        ids = [o["episode_id"][0] for o in options if "episode_id" in o]
        if ids:
            opts["episode_id"] = torch.as_tensor(ids)
        _, info = self.env.reset(seed=[int(s) for s in seeds], options=opts)
        return self._to_device(self._packer.reset(self.env, info))

    @property
    def state_layout(self) -> dict:
        raise NotImplementedError(
            f"get_state/set_state need sim_backend='physx_cpu' for now: the {self.name} backend cannot read "
            "PhysX's sleep states and drive targets per env yet, so its states would not restore exactly")

    def get_state(self) -> dict:
        return self.state_layout

    def set_state(self, env_idx, state, carried, options) -> PhysicsOutputs:
        return self.state_layout

    def step(self, actions: torch.Tensor) -> PhysicsOutputs:
        _, reward, terminated, _, info = self.env.step(actions)
        return self._to_device(self._packer.step(self.env, reward, terminated, info))

    def close(self) -> None:
        self.env.close()


def gpu_physics(num_envs: int, task_kwargs: dict, device: torch.device, task=None) -> BatchedPhysics:
    """physx_cuda: the task (a gsenv.tasks.Task; None: the default task) with all B envs on GPU PhysX."""
    import gymnasium as gym

    from gsenv.sim.task import register_physics_task

    if not torch.cuda.is_available():
        raise ValueError("sim_backend='physx_cuda' needs a CUDA GPU and none is available here; "
                         "use sim_backend='physx_cpu' (or 'auto')")
    env_id = register_physics_task(get_task(task))
    try:
        env = gym.make(env_id, num_envs=num_envs, sim_backend="physx_cuda", render_backend="none",
                       obs_mode="state", **task_kwargs)
    except Exception as exc:  # SAPIEN fetches its GPU PhysX library from the internet on first use
        raise RuntimeError(
            f"GPU PhysX (sim_backend='physx_cuda') could not start: {type(exc).__name__}: {exc}. SAPIEN downloads "
            "its PhysX GPU library on first use, which needs internet access; on machines without it use "
            "sim_backend='physx_cpu' (or 'auto')."
        ) from exc
    return BatchedPhysics(env, device, name="physx_cuda")


def make_physics(backend: str, num_envs: int, task_kwargs: dict, device: torch.device,
                 num_workers: int | None = None, pin_workers: bool | None = None,
                 physics_timeout_s: float = pool.DEFAULT_TIMEOUT_S,
                 max_physics_restarts: int = pool.DEFAULT_MAX_RESTARTS,
                 physics_restart_window_s: float = pool.DEFAULT_RESTART_WINDOW_S, task=None, reservation=None):
    """The physics backend `backend` ('auto', 'physx_cpu' or 'physx_cuda') for B = num_envs running
    `task` (a gsenv.tasks.Task, its name; None: the default task).

    physx_cpu only (see CpuPhysicsPool): num_workers, pin_workers (None follows the environment
    variable GSENV_PIN_WORKERS); physics_timeout_s (a worker that does not answer a reset/step within
    it is replaced), max_physics_restarts within physics_restart_window_s seconds (more raise
    PhysicsWorkerError); reservation: the env's early claim on the host's cores (gsenv.physics.host_share.reserve),
    settled when the pool starts."""
    from gsenv.physics.gpu_check import checked_physics_backend as resolve_physics_backend  # auto: self-checked

    choice = resolve_physics_backend(backend)
    if choice == "physx_cuda":
        return gpu_physics(num_envs, task_kwargs, device, task)
    return CpuPhysics(num_envs, task_kwargs, device, num_workers=num_workers, pin_workers=pin_workers, task=task,
                      timeout_s=physics_timeout_s, max_restarts=max_physics_restarts,
                      restart_window_s=physics_restart_window_s, reservation=reservation)
