"""Physics half of gsenv: the ManiSkill3 env every task runs in, the Franka FR3 agent, the objects.

Importing this package is cheap (no ManiSkill). Modules:
- ``names``: canonical link/joint/object names, dimensions, task constants (one place).
- ``robot_description``: the FR3-named URDF generated from ManiSkill's bundled Panda.
- ``agent``: ``MyFranka`` (ManiSkill uid ``my_franka``, alias ``fr3``) and its controllers.
- ``objects``: ``ObjectSpec`` collision geometry (box / dish / mesh) and builders.
- ``initial_state``: ``SpawnConfig`` and per-generator initial-state sampling, episode-id table.
- ``task``: ``TaskEnv`` (a gsenv.tasks.Task as a ManiSkill env); ``register_physics_task(task)`` registers
  ``GSEnvSim-<Name>-v0``.
- ``record``: ``TaskRecord``, what a task reports each step (its state, info, bodies), declared once.
- ``poses``: ``body_poses(env)`` -> {canonical name: float32 [B, 7]} for the renderer.
- ``rewards``: staged dense reward terms; ``expert``: ``scripted_expert_action``.
"""
