"""Registers gsenv's environment ids with gymnasium, by string entry point (no heavy imports)."""
from __future__ import annotations

import logging
import sys

from gsenv.tasks import DEFAULT_TASK, env_ids, task_names  # cheap: pure Python

__all__ = ["ENV_ID", "RLINF_ENV_ID", "ENTRY_POINT", "RESEARCH_DISTRIBUTION", "register_envs", "register_task",
           "resolution_note"]

logger = logging.getLogger(__name__)

ENV_ID, RLINF_ENV_ID = env_ids(DEFAULT_TASK)
"""The default task's ids: gsenv's and the one RLinf's GSEnv config uses (`GSEnv-PutCubeOnPlate-v0`, found
through `import mani_skill_gs`, or `gsenv:GSEnv-PutCubeOnPlate-v0`); the research package ManiSkill-GS
registers the latter too. Every task <Name> has both forms, GSEnv/<Name>-v0 and GSEnv-<Name>-v0."""
ENTRY_POINT = "gsenv.env:GSEnv"
RESEARCH_DISTRIBUTION = "mani_skill_gs"
"""The research package's distribution name (ManiSkill-GS's setup.py); its import name is mani_skill_gs too."""


def _register_ids(name: str, episode_steps: int, extra: dict | None = None) -> None:
    """gym ids GSEnv/<name>-v0 and GSEnv-<name>-v0 -> GSEnv(task=name, **extra); an id taken already is left
    alone."""
    import gymnasium
    from gymnasium.envs.registration import WrapperSpec

    for env_id in env_ids(name):
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            max_episode_steps=episode_steps,
            # the BatchTimeLimit wrapper below is the time limit (gym.make's max_episode_steps sets it):
            # GSEnv's own limit, for envs built directly, stays off
            kwargs={"task": name, "max_episode_steps": None, **(extra or {})},
            # the passive checker expects numpy single-env data; ours is batched torch
            disable_env_checker=True,
            additional_wrappers=(WrapperSpec("BatchTimeLimit", "gsenv.wrappers.time_limit:BatchTimeLimit",
                                             {"max_episode_steps": episode_steps}),),
        )


def register_envs() -> None:
    """Register both ids of every built-in task and of the generalisation suite's once; safe to call repeatedly.
    An id someone else registered first (the research package) is left alone, and one log line says which implementation
    RLINF_ENV_ID is."""
    from gsenv.sim.names import EPISODE_STEPS
    from gsenv.tasks.ood import registration_kwargs  # cheap: plain data
    from gsenv.tasks.registry import SUITE_TASKS

    for name in task_names():
        _register_ids(name, EPISODE_STEPS)
    for name in SUITE_TASKS:  # the generalisation suite's (gsenv.tasks.ood)
        _register_ids(name, EPISODE_STEPS, registration_kwargs(name))
    line = resolution_note()
    if line and not _in_physics_worker():  # said once, by the main process
        logger.warning(line)


def register_task(task) -> tuple[str, str]:
    """Make a task of your own (an instance of a gsenv.tasks.Task subclass) a gsenv environment: its name
    is then known to GSEnv(task=...), `gsenv ... --task` and gym.make under GSEnv/<Name>-v0 and
    GSEnv-<Name>-v0, which this returns. Registering the same task again is a no-op; another task under a
    name already taken is a ValueError. See the README's "Write your own task"."""
    from gsenv.tasks.registry import register

    task = register(task)
    _register_ids(task.name, task.episode_steps)
    return env_ids(task.name)


def _in_physics_worker() -> bool:
    """gsenv's physics server and workers run `python -m gsenv.physics.<module>` (or fork from it)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return bool(spec and spec.name.startswith("gsenv.physics."))


def _describe(entry_point) -> str:
    if isinstance(entry_point, str):
        return entry_point
    return f"{getattr(entry_point, '__module__', '?')}.{getattr(entry_point, '__qualname__', repr(entry_point))}"


def resolution_note() -> str | None:
    """One line naming the implementation RLINF_ENV_ID resolves to, where that is in doubt: the id
    registered by someone else, or the research package installed beside gsenv. None otherwise."""
    import importlib.metadata as md

    import gymnasium

    spec = gymnasium.registry.get(RLINF_ENV_ID)
    if spec is not None and spec.entry_point != ENTRY_POINT:
        return (f"{RLINF_ENV_ID} resolves to {_describe(spec.entry_point)} (registered before gsenv, e.g. by the "
                f"research package ManiSkill-GS), not to gsenv; gsenv's environment is id {ENV_ID!r}")
    try:
        research = md.version(RESEARCH_DISTRIBUTION)
    except md.PackageNotFoundError:
        return None
    return (f"{RLINF_ENV_ID} resolves to gsenv ({ENTRY_POINT}); the research package {RESEARCH_DISTRIBUTION} "
            f"{research} is installed too, and gsenv's module mani_skill_gs is the one imported")
