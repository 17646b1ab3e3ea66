"""gsenv's tasks: the seam (``base.Task``), the registry (``registry``) and the built-in tasks.

Importing this package is cheap (no torch, no ManiSkill); a task module loads when its task is first
used. Modules:
- ``base``: ``Task`` (what a task declares: objects, record, initial states, success, dense reward,
  progress, instructions, scripted expert), the ids a name gives, the instruction draw.
- ``registry``: task name -> Task (built-ins by module path; ``gsenv.register_task`` adds yours).
- ``put_cube_on_plate``: ``PutCubeOnPlate`` (GSEnv/PutCubeOnPlate-v0).
- ``pick_cube``: ``PickCube`` (GSEnv/PickCube-v0).
- ``put_color_cube_on_plate``: ``PutColorCubeOnPlate`` (GSEnv/PutColorCubeOnPlate-v0).
- ``put_cube_in_bowl``: ``PutCubeInBowl`` (GSEnv/PutCubeInBowl-v0).
- ``stack_cube``: ``StackCube`` (GSEnv/StackCube-v0).
- ``push_cube``: ``PushCube`` (GSEnv/PushCube-v0).
"""
from gsenv.tasks.base import Task, env_ids, has_demonstration_script, physics_id
from gsenv.tasks.registry import DEFAULT_TASK, get_task, task_names

__all__ = ["DEFAULT_TASK", "Task", "env_ids", "get_task", "has_demonstration_script", "physics_id", "task_names"]
