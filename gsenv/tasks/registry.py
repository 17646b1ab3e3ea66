"""The tasks gsenv knows, by name: the built-in ones (by module path, imported on first use) and those
user code registers (:func:`register`). Cheap to import: no task module, no torch."""
from __future__ import annotations

import importlib
from typing import Any

BUILTIN: dict[str, str] = {
    "PutCubeOnPlate": "gsenv.tasks.put_cube_on_plate:PutCubeOnPlate",
    "PickCube": "gsenv.tasks.pick_cube:PickCube",
    "PutColorCubeOnPlate": "gsenv.tasks.put_color_cube_on_plate:PutColorCubeOnPlate",
    "PutCubeInBowl": "gsenv.tasks.put_cube_in_bowl:PutCubeInBowl",
    "StackCube": "gsenv.tasks.stack_cube:StackCube",
    "PushCube": "gsenv.tasks.push_cube:PushCube",
}
"""Built-in task name -> "module:class"."""
SUITE_TASKS: tuple[str, ...] = (
    "PutCubeOnPlateMain", "PutCubeOnPlateVisionImage", "PutCubeOnPlateVisionTexture03", "PutCubeOnPlateVisionTexture05",
    "PutCubeOnPlateVisionWhole03", "PutCubeOnPlateVisionWhole05", "PutCubeOnPlateUnseenObjects",
    "PutCubeOnPlateUnseenReceptacles", "PutCubeOnPlateInstruct", "PutCubeOnPlateMultiObject",
    "PutCubeOnPlateMultiReceptacle", "PutCubeOnPlatePosition", "PutCubeOnPlateEEPose", "PutCubeOnPlatePositionChangeTo",
)
"""The generalisation suite's tasks (gsenv.tasks.ood lists them with what each changes): each known by name
like a built-in, its class of the same name in gsenv.tasks.put_on_receptacle; not in task_names()."""
DEFAULT_TASK = "PutCubeOnPlate"
"""The task of GSEnv when none is named (the RLinf GSEnv config's)."""

_registered: dict[str, Any] = {}  # name -> Task instance (built-ins once loaded, and user tasks)


def task_names() -> list[str]:
    """Every task known here: the built-ins, then those registered, in order."""
    return [*BUILTIN, *(n for n in _registered if n not in BUILTIN)]


def _load(ref: str) -> Any:
    """"module:attr" -> a Task instance (attr: a Task subclass, instantiated without arguments, or an instance)."""
    from gsenv.tasks.base import Task, checked_task

    module, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"task {ref!r}: cannot load it ({type(exc).__name__}: {exc}); write MODULE:NAME with "
                         "MODULE importable (on PYTHONPATH) and NAME a gsenv.tasks.Task subclass or instance") from exc
    if isinstance(obj, type) and issubclass(obj, Task):
        obj = obj()
    return checked_task(obj)


def get_task(task: Any = None) -> Any:
    """A task name (built-in or registered), "module:attr", or a Task instance -> the Task instance
    (None: DEFAULT_TASK). ValueError naming the known tasks for an unknown name."""
    from gsenv.tasks.base import Task, checked_task

    if task is None:
        task = DEFAULT_TASK
    if isinstance(task, Task) or (isinstance(task, type) and issubclass(task, Task)):
        return checked_task(task)
    if not isinstance(task, str):
        raise TypeError(f"task must be a task name, 'module:attr' or a gsenv.tasks.Task, got {type(task).__name__}")
    if task in _registered:
        return _registered[task]
    if task in BUILTIN:
        _registered[task] = _load(BUILTIN[task])
        return _registered[task]
    if task in SUITE_TASKS:
        _registered[task] = _load(f"gsenv.tasks.put_on_receptacle:{task}")
        return _registered[task]
    if ":" in task:
        loaded = _load(task)
        return _registered.get(loaded.name, loaded)
    raise ValueError(f"unknown task {task!r}: the known tasks are {', '.join(task_names())} and the generalisation "
                     "suite's (gsenv.tasks.ood.SUITE; or give "
                     "MODULE:NAME of a gsenv.tasks.Task; see the README's 'Write your own task')")


def register(task: Any) -> Any:
    """Make ``task`` (a Task instance) known by its name; the same task again is a no-op, another task
    under a taken name a ValueError."""
    from gsenv.tasks.base import checked_task

    task = checked_task(task)
    known = _registered.get(task.name)
    if (task.name in BUILTIN or task.name in SUITE_TASKS) and known is None:
        known = get_task(task.name)
    if known is not None and type(known) is not type(task):
        raise ValueError(f"a task named {task.name!r} is already registered ({type(known).__module__}."
                         f"{type(known).__qualname__}); give yours another name")
    _registered.setdefault(task.name, task)
    return _registered[task.name]
