"""The physics -> env seam: what a physics backend reports for B envs after a reset or a step.

A backend carries only its task record's carried fields (:meth:`gsenv.sim.record.TaskRecord.carried`,
each fact once; the CPU pool through shared memory laid out by :func:`carried_layout`) plus
``restarted``, and hands the env one :class:`PhysicsOutputs` that :func:`assemble` builds from them in
the env's process. :func:`flatten` / :func:`unflatten` give the record's flat ``{key: array}`` form (the
keys of :mod:`gsenv.sim.record`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gsenv.physics.shared import Field as SharedField
from gsenv.sim.record import TaskRecord

T = TypeVar("T")  # torch.Tensor in the env; numpy arrays inside the CPU pool
U = TypeVar("U")

_SCALARS = ("reward", "terminated", "elapsed_steps")
_INFO, _POSE, _STATE = "info/", "pose/", "state/"
RESTARTED_KEY = "restarted"
"""The flat key of PhysicsOutputs.restarted (the CPU pool sets it True for envs it rebuilt)."""


@dataclass
class PhysicsOutputs(Generic[T]):
    """One reset or step of B envs, every field of the task's record (gsenv.sim.record).

    reward:        float32 [B] (zeros after a reset).
    terminated:    bool [B] (success, in the task's terms; after a reset, what a step would say).
    elapsed_steps: int32 [B] steps since each env's last reset.
    info:          {name: [B]} the task's per-env scalars (success among them: its record's info fields).
    body_poses:    {body: float32 [B, 7]} position (m) + quaternion wxyz of every robot link, the
                   robot root and the objects (keys: gsenv.sim.names).
    state:         {group: {name: [B, ...]}} the task's state-dict observation (agent/qpos, extra/tcp_pose, ...).
    restarted:     bool [B] the env's physics worker died or hung and was replaced in this call: the env
                   was rebuilt and reset (its other fields are those of that reset). Only the CPU pool
                   sets True. None only in records built by hand.

    Fields the record declares the same (a body pose and a state entry, terminated and success) are
    the very same array.
    """

    reward: T
    terminated: T
    elapsed_steps: T
    info: dict[str, T] = field(default_factory=dict)
    body_poses: dict[str, T] = field(default_factory=dict)
    state: dict[str, dict[str, T]] = field(default_factory=dict)
    restarted: T | None = None

    def map(self, fn: Callable[[T], U]) -> PhysicsOutputs[U]:
        """The same record with fn applied to every array."""
        return unflatten({k: fn(v) for k, v in flatten(self).items()})


def carried_layout(record: TaskRecord) -> dict[str, SharedField]:
    """{key: per-env shape and dtype} of a task's carried fields (the CPU pool's shared arrays)."""
    return {f.key: SharedField(f.shape, f.dtype) for f in record.carried()}


def assemble(record: TaskRecord, carried: Mapping[str, T]) -> PhysicsOutputs[T]:
    """The whole record from its carried fields and ``restarted`` ({key: [B, ...]})."""
    return unflatten({**record.complete(carried), RESTARTED_KEY: carried[RESTARTED_KEY]})


def flatten(outputs: PhysicsOutputs[T]) -> dict[str, T]:
    """{key: array} with one key per field (gsenv.sim.record's keys, and ``restarted`` when set)."""
    flat: dict[str, Any] = {name: getattr(outputs, name) for name in _SCALARS}
    if outputs.restarted is not None:
        flat[RESTARTED_KEY] = outputs.restarted
    flat.update({_INFO + k: v for k, v in outputs.info.items()})
    flat.update({_POSE + k: v for k, v in outputs.body_poses.items()})
    for group, leaves in outputs.state.items():
        flat.update({f"{_STATE}{group}/{name}": v for name, v in leaves.items()})
    return flat


def unflatten(flat: Mapping[str, T]) -> PhysicsOutputs[T]:
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
