"""The physics -> env seam: what a physics backend reports for B envs after a reset or a step.

Both backends hand the env one :class:`PhysicsOutputs` of batched torch tensors on the env's device.
Inside the CPU pool the same record travels as a flat ``{key: array}`` dict through shared memory
(:func:`flatten` / :func:`unflatten`); those keys are this module's private encoding, and nothing
outside the physics package reads them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")  # torch.Tensor in the env; numpy arrays inside the CPU pool
U = TypeVar("U")

_SCALARS = ("obs", "reward", "terminated", "truncated", "elapsed_steps")
_INFO, _POSE, _STATE = "info/", "pose/", "state/"
RESTARTED_KEY = "restarted"
"""The flat key of PhysicsOutputs.restarted (the CPU pool sets it True for envs it rebuilt)."""


@dataclass
class PhysicsOutputs(Generic[T]):
    """One reset or step of B envs (a single instance of the CPU pool reports the same without B).

    obs:           float32 [B, D] flat state observation.
    reward:        float32 [B] (zeros after a reset).
    terminated:    bool [B] (success, in the task's terms).
    truncated:     bool [B] the simulator's own time limit (the env's wrapper sets its own).
    elapsed_steps: int32 [B] steps since each env's last reset.
    info:          {name: [B]} the task's per-env scalars (success, cube_on_plate, is_grasped, ...).
    body_poses:    {body: float32 [B, 7]} position (m) + quaternion wxyz of every robot link, the
                   robot root and the objects (keys: gsenv.sim.names).
    state:         {group: {name: [B, ...]}} the task's state-dict observation (agent/qpos, extra/tcp_pose, ...).
    restarted:     bool [B] the env's physics worker died or hung and was replaced in this call: the env
                   was rebuilt and reset (its other fields are those of that reset). Packers set False;
                   only the CPU pool sets True. None only in records built by hand.
    """

    obs: T
    reward: T
    terminated: T
    truncated: T
    elapsed_steps: T
    info: dict[str, T] = field(default_factory=dict)
    body_poses: dict[str, T] = field(default_factory=dict)
    state: dict[str, dict[str, T]] = field(default_factory=dict)
    restarted: T | None = None

    def map(self, fn: Callable[[T], U]) -> PhysicsOutputs[U]:
        """The same record with fn applied to every array."""
        return unflatten({k: fn(v) for k, v in flatten(self).items()})


def flatten(outputs: PhysicsOutputs[T]) -> dict[str, T]:
    """{key: array} with one key per array (the CPU pool's shared-memory layout)."""
    flat: dict[str, Any] = {name: getattr(outputs, name) for name in _SCALARS}
    if outputs.restarted is not None:
        flat[RESTARTED_KEY] = outputs.restarted
    flat.update({_INFO + k: v for k, v in outputs.info.items()})
    flat.update({_POSE + k: v for k, v in outputs.body_poses.items()})
    for group, leaves in outputs.state.items():
        flat.update({f"{_STATE}{group}/{name}": v for name, v in leaves.items()})
    return flat


def unflatten(flat: dict[str, T]) -> PhysicsOutputs[T]:
    """The inverse of :func:`flatten`."""
    info: dict[str, T] = {}
    poses: dict[str, T] = {}
    state: dict[str, dict[str, T]] = {}
    for key, value in flat.items():
        if key.startswith(_INFO):
            info[key[len(_INFO):]] = value
        elif key.startswith(_POSE):
            poses[key[len(_POSE):]] = value
        elif key.startswith(_STATE):
            group, name = key[len(_STATE):].split("/", 1)
            state.setdefault(group, {})[name] = value
        elif key not in _SCALARS and key != RESTARTED_KEY:
            raise KeyError(f"not a physics output key: {key!r}")
    return PhysicsOutputs(*(flat[name] for name in _SCALARS), info=info, body_poses=poses, state=state,
                          restarted=flat.get(RESTARTED_KEY))
