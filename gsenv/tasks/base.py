"""The task seam: what one gsenv task declares (:class:`Task`), and the ids derived from its name.

A task is one subclass of :class:`Task` in one module. It declares, as class attributes:

- ``name``: e.g. "PutCubeOnPlate"; the ids follow from it (:func:`env_ids`, :func:`physics_id`).
- ``objects``: the scene bodies it simulates, by name; the scene must draw each (gaussians) and the
  simulator builds each from ``object_specs()`` (collision) unless the scene bundle gives geometry.
- ``record``: what every reset and step reports (:class:`gsenv.sim.record.TaskRecord`): state-dict
  entries in ManiSkill's order, info scalars (``evaluate()``'s), body poses.
- ``instructions``: one or several phrasings; each env's episode gets one (:func:`instruction_for`), which
  the ``instruction`` hook may complete from the episode's state (e.g. the colour of the cube it names).
- ``progress_stages``: the names of its stages, in order (``progress()`` counts them).
- ``dense_reward_max``: the dense reward where it succeeds (normalised dense = dense / it).

and implements the hooks below. The env hooks take the simulation task (``gsenv.sim.task.TaskEnv``,
a ManiSkill BaseEnv): ``env.agent`` (the FR3), ``env.objects[name]`` (ManiSkill actors, also
``env.<name>``), ``env.object_specs[name]``, ``env.upstream_compat``. The other hooks are pure functions
of batched tensors, so the env's process can run them on its device.

A task instance must pickle (the CPU physics workers receive it): keep its state to plain values.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gsenv.sim import names
from gsenv.sim.record import TaskRecord

if TYPE_CHECKING:
    import torch

    from gsenv.sim.objects import ObjectSpec

NAME_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]*$")
"""A task name: CamelCase letters and digits ("PickCube")."""
INSTRUCTION_SEED = 0x1A5C_0000
"""Mixed into a reset seed or episode id to draw the episode's instruction phrasing."""


class Task:
    """One task (see the module docstring). Subclass it, set the class attributes, implement the hooks."""

    name: str = ""
    objects: tuple[str, ...] = ()
    record: TaskRecord
    instructions: tuple[str, ...] = ()
    progress_stages: tuple[str, ...] = ()
    dense_reward_max: float = 1.0
    episode_steps: int = names.EPISODE_STEPS

    # ------------------------------------------------------------------ objects and initial states
    def object_specs(self) -> dict[str, ObjectSpec]:
        """{object name: its default collision geometry} for every name of ``objects``."""
        raise NotImplementedError

    def spawn_config(self, specs: dict[str, ObjectSpec]) -> Any:
        """The default spawn configuration for these object specs: a frozen dataclass with at least
        ``randomize_yaw`` (bool) and ``qpos_noise`` (rad, std of the arm joints' noise) fields."""
        raise NotImplementedError

    def sample_initial_state(self, gen: torch.Generator, spawn: Any) -> dict[str, torch.Tensor]:
        """One env's initial state drawn from ``gen`` only: {"qpos_noise": float64 [7] (added to the FR3's
        default arm joints), <object>: float64 [3] = (x, y, yaw) on the table for every object}. Any other
        key is an episode value the env keeps for the task: ``env.episode_values[key]`` [B, ...] (on the
        env's device), e.g. which cube the instruction names."""
        raise NotImplementedError

    def before_step(self, env) -> None:
        """Called before each step's action is applied, ``env.elapsed_steps`` [B] being the steps each env has
        done: a task that changes the scene during an episode (moves a body at a step) does it here. Default:
        nothing."""

    # ------------------------------------------------------------------ evaluation, observation, reward
    def evaluate(self, env) -> dict[str, torch.Tensor]:
        """{name: bool [B]} with at least "success": the info scalars the record declares."""
        raise NotImplementedError

    def obs_extra(self, env, info: dict) -> dict[str, torch.Tensor]:
        """The state dict's "extra" group ({name: [B, ...]}), in the record's order."""
        raise NotImplementedError

    def dense_reward(self, env, info: dict) -> torch.Tensor:
        """float [B] in [0, dense_reward_max], dense_reward_max exactly where info["success"]."""
        raise NotImplementedError

    def progress(self, state: dict, info: dict) -> torch.Tensor:
        """float32 [B] in [0, 1]: the share of ``progress_stages`` reached, from the state dict
        ({"agent": {...}, "extra": {...}}) and the info scalars of one reset or step."""
        raise NotImplementedError

    def instruction(self, phrasing: str, state: dict, index: int) -> str:
        """The instruction of env ``index``'s episode from its drawn phrasing (one of ``instructions``) and
        the state dict of its reset ([B, ...] tensors): the phrasing itself unless the task fills in what
        the episode drew (e.g. the named cube's colour)."""
        return phrasing

    # ------------------------------------------------------------------ the scripted expert
    def expert_inputs(self, state: dict) -> dict[str, torch.Tensor]:
        """Keyword tensors [B, ...] for :meth:`expert_action`, from the state dict."""
        raise NotImplementedError

    def expert_action(self, **inputs: torch.Tensor) -> torch.Tensor:
        """float32 [B, 7] end-effector delta action ([dx, dy, dz, drx, dry, drz, grip]) of the scripted
        expert: a pure function of ``expert_inputs``, for ``pd_ee_target_delta_pose`` / ``pd_ee_delta_pose``."""
        raise NotImplementedError

    def demonstration_script(self, inputs: dict[str, torch.Tensor]) -> list[list]:
        """Optional: research-style demonstrations (``gsenv collect``'s default where a task has them). Per env
        of the expert inputs (:meth:`expert_inputs`' dict, with "tcp_pose" [B, 7]), a list of
        :class:`gsenv.sim.waypoint_expert.Move` / ``Grip`` items, planned from the state after the settle steps
        and played open loop (gsenv.sim.waypoint_expert.ScriptedEpisodes).
        A task without them keeps this (NotImplementedError): collect then records its scripted expert."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def has_demonstration_script(task: Task) -> bool:
    """Whether ``task`` defines research-style demonstrations (:meth:`Task.demonstration_script`)."""
    return type(task).demonstration_script is not Task.demonstration_script


def env_ids(name: str) -> tuple[str, str]:
    """gsenv's gymnasium id and RLinf's form of it: ("GSEnv/<name>-v0", "GSEnv-<name>-v0")."""
    return f"GSEnv/{name}-v0", f"GSEnv-{name}-v0"


def physics_id(name: str) -> str:
    """The ManiSkill id of the task's physics-only env: "GSEnvSim-<name>-v0"."""
    return f"GSEnvSim-{name}-v0"


def checked_task(task: Any) -> Task:
    """task, when it is a well-formed Task instance; TypeError / ValueError saying what is wrong otherwise."""
    if isinstance(task, type) and issubclass(task, Task):
        raise TypeError(f"give a task instance, e.g. {task.__name__}(), not the class {task.__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"a task must be an instance of a gsenv.tasks.Task subclass, got {type(task).__name__}")
    problems = []
    if not isinstance(task.name, str) or not NAME_PATTERN.match(task.name):
        problems.append(f"name must be CamelCase letters and digits (e.g. 'PickCube'), got {task.name!r}")
    if not isinstance(getattr(task, "record", None), TaskRecord):
        problems.append("record must be a gsenv.sim.record.TaskRecord")
    if not task.objects or not all(isinstance(o, str) and o.isidentifier() for o in task.objects):
        problems.append(f"objects must name its scene bodies (identifiers), got {task.objects!r}")
    if not task.instructions or not all(isinstance(s, str) and s for s in task.instructions):
        problems.append(f"instructions must hold at least one non-empty string, got {task.instructions!r}")
    if problems:
        raise ValueError(f"task {type(task).__name__}: " + "; ".join(problems))
    return task


def instruction_for(task: Task, seed: int | None, episode_id: int | None, state: dict | None = None,
                    index: int = 0) -> str:
    """The instruction of one env's episode: the phrasing of ``task.instructions`` drawn from its episode
    id when it has one, else from its reset seed (always the first with one phrasing or neither), then
    ``task.instruction(phrasing, state, index)`` when the reset's state dict is given."""
    import torch

    if len(task.instructions) == 1 or (seed is None and episode_id is None):
        phrasing = task.instructions[0]
    else:
        key = (1, int(episode_id)) if episode_id is not None else (0, int(seed))
        gen = torch.Generator().manual_seed(INSTRUCTION_SEED + 2 * key[1] + key[0])
        phrasing = task.instructions[int(torch.randint(len(task.instructions), (1,), generator=gen))]
    return phrasing if state is None else task.instruction(phrasing, state, index)
