"""One single-env ManiSkill environment as a PhysicsInstance (for the CPU worker pool)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gsenv.physics.outputs import carried_layout
from gsenv.physics.shared import Field as SharedField
from gsenv.sim.record import TaskRecord


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

    ``record`` declares what the task reports (gsenv.sim.record); ``import_module`` is imported first
    (it registers the ManiSkill env id); ``task``, a gsenv task (gsenv.tasks.Task, pickled with the
    factory: its module must be importable in the worker), has its physics id registered there.
    """

    env_id: str
    record: TaskRecord
    make_kwargs: dict = field(default_factory=dict)
    import_module: str = "mani_skill.envs"
    task: Any = None

    def layout(self) -> dict[str, SharedField]:
        """{key: per-env shape and dtype} of what each instance's reset/step returns."""
        return carried_layout(self.record)

    def __call__(self, env_index: int) -> ManiSkillInstance:
        import importlib

        importlib.import_module(self.import_module)
        if self.task is not None:
            from gsenv.sim.task import register_physics_task

            register_physics_task(self.task)
        return ManiSkillInstance(self.env_id, self.record, self.make_kwargs)


class ManiSkillInstance:
    """A single-env ManiSkill task whose reset/step return the carried fields of its record
    ({key: numpy array}, batch dimension dropped; layout: ManiSkillFactory.layout).

    The env is driven unwrapped: gymnasium's and ManiSkill's wrappers (a time limit, an input check) are
    the caller's, who checked the actions and owns the time limit. It is built and driven under
    ``torch.inference_mode()`` (same numbers, less per-op overhead), so drive ``self.env`` only through
    these methods: its tensors are inference tensors.
    """

    def __init__(self, env_id: str, record: TaskRecord, make_kwargs: dict):
        import gymnasium as gym

        from gsenv.physics.packing import StepPacker

        kwargs = {"obs_mode": "state", "sim_backend": "physx_cpu", "render_mode": None, **make_kwargs}
        with _no_autograd():  # tensors made at construction are then usable in-place inside step/reset
            self.env = gym.make(env_id, num_envs=1, **kwargs).unwrapped
        self._packer = StepPacker(record)

    @staticmethod
    def _transport(carried: dict) -> dict[str, np.ndarray]:
        return {k: _flat(v) for k, v in carried.items()}

    def describe(self) -> dict:
        """The single-env action space's bounds: {"action_low", "action_high"} float32 [A], and
        "state_layout": {key: (shape, dtype name)} of what get_state returns (gsenv.sim.sim_state)."""
        from gsenv.sim import sim_state

        space = self.env.single_action_space
        with _no_autograd():
            state_layout = sim_state.layout(self.env)
        return {"action_low": np.asarray(space.low, np.float32), "action_high": np.asarray(space.high, np.float32),
                "state_layout": state_layout}

    def reset(self, seed: int | None, options: dict) -> dict[str, np.ndarray]:
        with _no_autograd():
            _, info = self.env.reset(seed=seed, options=options or None)
            return self._transport(self._packer.reset(self.env, info))

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        with _no_autograd():
            _, reward, terminated, _, info = self.env.step(action[None])
            return self._transport(self._packer.step(self.env, reward, terminated, info))

    def get_state(self) -> dict[str, np.ndarray]:
        """The env's whole simulation state (gsenv.sim.sim_state.capture). The env is then put back into
        it in a fresh PhysX scene (sim_state.restore), so that the run going on from here and every run
        restored from this state are the same, bit for bit: PhysX's contact caches and wake counters
        cannot be read, only dropped."""
        from gsenv.sim import sim_state

        with _no_autograd():
            state = sim_state.capture(self.env)
            sim_state.restore(self.env, state)
        return state

    def set_state(self, state: dict[str, np.ndarray], options: dict | None = None) -> None:
        """Put the env into a state get_state returned (from an instance of the same task and settings).
        options: the episode's reset options; their physics values (gsenv.sim.dynamics.OPTION_KEY: the
        drawn object mass and friction, arm PD gains) are set first, the base values without them."""
        from gsenv.sim import dynamics, sim_state

        with _no_autograd():
            dynamics.apply_physics_values(self.env, (options or {}).get(dynamics.OPTION_KEY))
            sim_state.restore(self.env, state)

    def close(self) -> None:
        with _no_autograd():
            self.env.close()
