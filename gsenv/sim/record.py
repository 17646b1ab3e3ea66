"""What a task reports after every reset and step, declared once: its physics record.

A task states each per-env value it reports as a :class:`Field` of a :class:`TaskRecord`: its state-dict
entries (in ManiSkill's flattening order), its info scalars and its body poses. Each fact is carried once:
a field that holds the same numbers as another names it (``same_as``), and one computed from others says
how (``derive``); only the rest is *carried* (sent from the physics). The physics layer lays its
shared memory out from :meth:`TaskRecord.carried`, the env rebuilds the whole record from the carried part
with :meth:`TaskRecord.complete` and builds its observation space from :attr:`TaskRecord.state`.

Keys are flat: ``reward``, ``elapsed_steps``, ``terminated``, ``info/<name>``, ``pose/<body>`` and
``state/<group>/<name>``. Values are arrays [B, *shape] (numpy or torch; the batch dimension is not part
of ``shape``). Pure Python: importing it is cheap and it is safe to pickle (derive functions are
module-level functions).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gsenv.sim import names

POSE_SHAPE = (7,)
"""A body pose: position (m) + quaternion wxyz, float32."""


@dataclass(frozen=True)
class Field:
    """One per-env value a task reports.

    key:     the flat key (see the module docstring), e.g. "state/agent/qpos", "info/success", "pose/cube".
    shape:   the per-env shape (() for a scalar per env).
    dtype:   numpy dtype name: "float32", "bool", "int32".
    same_as: the key of a carried field holding exactly these numbers (not carried itself).
    derive:  a function of the values so far ({key: [B, ...]}) giving this one, bit for bit what the task
             computes (not carried itself).
    """

    key: str
    shape: tuple[int, ...] = ()
    dtype: str = "float32"
    same_as: str | None = None
    derive: Callable[[Mapping[str, Any]], Any] | None = None

    @property
    def carried(self) -> bool:
        return self.same_as is None and self.derive is None

    @property
    def name(self) -> str:
        """The key without its kind: "agent/qpos", "success", "cube"."""
        return self.key.split("/", 1)[1]


def state(group: str, name: str, shape: tuple[int, ...] = (), dtype: str = "float32", **kw) -> Field:
    return Field(f"state/{group}/{name}", shape, dtype, **kw)


def info(name: str, dtype: str = "bool", **kw) -> Field:
    return Field(f"info/{name}", (), dtype, **kw)


def pose(body: str, **kw) -> Field:
    return Field(f"pose/{body}", POSE_SHAPE, "float32", **kw)


COMMON: tuple[Field, ...] = (Field("reward", (), "float32"), Field("elapsed_steps", (), "int32"))
"""What every task reports: the step's reward and the steps since each env's last reset."""


@dataclass(frozen=True)
class TaskRecord:
    """The declaration of what one task reports (see the module docstring).

    state:      its state-dict entries in ManiSkill's order (obs_mode "state" concatenates them so).
    info:       its per-env info scalars (the task's evaluate()).
    bodies:     the poses the renderer and the cameras read: every robot link, the robot root, objects.
    terminated: ManiSkill's terminated (success, or success | fail), usually the same as an info field.
    """

    state: tuple[Field, ...]
    info: tuple[Field, ...]
    bodies: tuple[Field, ...]
    terminated: Field = Field("terminated", (), "bool")

    def __post_init__(self):
        seen: dict[str, Field] = {}
        for f in self.fields():
            if f.key in seen:
                raise ValueError(f"task record declares {f.key!r} twice")
            if f.same_as is not None:
                source = seen.get(f.same_as)
                if source is None or not source.carried:
                    raise ValueError(f"task record field {f.key!r} is the same as {f.same_as!r}, which must be a "
                                     "carried field declared before it")
                if (source.shape, source.dtype) != (f.shape, f.dtype):
                    raise ValueError(f"task record field {f.key!r} {f.shape} {f.dtype} is the same as {f.same_as!r} "
                                     f"{source.shape} {source.dtype}: their shapes and dtypes must agree")
            seen[f.key] = f

    def fields(self) -> tuple[Field, ...]:
        """Every field, in the order :meth:`complete` fills them."""
        return (*COMMON, *self.state, *self.info, *self.bodies, self.terminated)

    def carried(self) -> tuple[Field, ...]:
        """The fields the physics sends (each fact once)."""
        return tuple(f for f in self.fields() if f.carried)

    def complete(self, carried: Mapping[str, Any]) -> dict[str, Any]:
        """{key: [B, ...]} of every field from the carried ones (same_as: the very same array)."""
        values = {f.key: carried[f.key] for f in self.carried()}
        for f in self.fields():
            if f.same_as is not None:
                values[f.key] = values[f.same_as]
            elif f.derive is not None:
                values[f.key] = f.derive(values)
        return {f.key: values[f.key] for f in self.fields()}


# --------------------------------------------------------------------------------------------- #
# the robot's part, the same in every task
# --------------------------------------------------------------------------------------------- #
_ROBOT_LINK_ORDER = (  # the order the articulation lists its links (robot.get_links())
    *names.ARM_LINK_NAMES, "fr3_link8", names.HAND_LINK, names.TCP_LINK, *names.FINGER_LINKS,
    "fr3_leftfinger_pad", "fr3_rightfinger_pad",
)

ROBOT_STATE: tuple[Field, ...] = (
    state("agent", "qpos", (names.NUM_JOINTS,)),
    state("agent", "qvel", (names.NUM_JOINTS,)),
)
"""The state dict's "agent" group: joint positions and velocities [B, 9]."""


def robot_bodies(tcp_same_as: str | None = None) -> tuple[Field, ...]:
    """Every robot link's pose in the articulation's order, then the robot root (the same as
    fr3_link0). tcp_same_as: the key of a state entry holding the TCP pose, if the task reports one."""
    links = tuple(pose(link, same_as=tcp_same_as) if link == names.TCP_LINK else pose(link)
                  for link in _ROBOT_LINK_ORDER)
    return (*links, pose(names.ROBOT_ROOT, same_as=f"pose/{names.ROBOT_ROOT_LINK}"))
