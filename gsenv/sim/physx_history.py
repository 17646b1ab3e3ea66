"""Episodes that depend only on their initial state and actions: a CPU PhysX scene without history.

What PhysX keeps across a reset. Setting every pose, velocity and joint state (what a ManiSkill reset
does) rewrites the bodies, but not the scene that simulates them. A PxScene keeps, from everything it
simulated before:
- contact pairs that stay in broadphase overlap across the reset (the cube and the dish on the table),
  with their persistent contact manifolds and friction anchors, used as the next step's warm start;
- the ids its pools hand out (actor, shape/element and constraint ids: Cm::IDPool; island-graph node
  and edge handles: HandleManager). Freed ids go to free lists and come back in the order of their
  release, so the bodies' and contacts' indices, which order the solver's constraints, and with them
  the float rounding, depend on the order in which pairs were found and lost in earlier episodes.
Taking the bodies out of the scene and putting them back drops the pairs but reuses ids in a
history-dependent order (the island graph's handles are never returned to their counter), and
enable_enhanced_determinism does not cover it (it makes a run repeatable from the same scene state,
not independent of it). Measured on the task's 9-episode sequence: 3-4 of 9 episodes departed at the
grasp from the same episode run first in a fresh instance; out-and-back re-adding left 6 of 9.

What this does: moves every entity, in the order the scene was built, into a new, empty PxScene made
with the env's own scene configuration. Everything above starts from nothing, as after a rebuild
(``reset(options={"reconfigure": True})``), but nothing is rebuilt: no URDF, meshes, ManiSkill
structs or controllers; the bodies, their shapes, joints and drive targets move as they are. Cost:
under a millisecond on top of a 3-5 ms reset (a rebuild costs about 220 ms).

CPU simulation only: on GPU PhysX (one scene for all envs, partial resets) it does nothing.
A SAPIEN render system, where the env has one, moves to the new scene as it is; entities keep their
per-scene ids (ManiSkill's segmentation), the renderer's own per-shape ids are renumbered.
"""
from __future__ import annotations

import sapien
from mani_skill.envs.sapien_env import BaseEnv
from sapien import physx


def forget_physx_history(env: BaseEnv) -> None:
    """Move ``env``'s bodies into a fresh CPU PhysX scene (see the module docstring); no-op on GPU.

    Call it once the episode's initial state is set (end of ``_initialize_episode``): what the next
    steps give then depends only on that state and the actions, whatever the instance simulated
    before. A fresh instance's first episode is unchanged (bit for bit).
    """
    scene = env.scene
    if scene.gpu_sim_enabled:
        return
    if len(scene.sub_scenes) != 1:
        raise RuntimeError(f"a CPU ManiSkill scene has one sub-scene, this one has {len(scene.sub_scenes)}")
    old = scene.sub_scenes[0]
    old_px = scene.px
    entities = list(old.entities)  # in the order they were added: the fresh scene's insertion order
    env._set_scene_config()  # PhysxCpuSystem() reads the process-wide defaults; another env may have set them
    new_px = physx.PhysxCpuSystem()
    new_px.timestep = old_px.timestep
    new_px.scene_collision_id = old_px.scene_collision_id
    systems: list[sapien.System] = [new_px]
    try:
        systems.append(old.get_system("render"))  # renderer state is not physics: keep it
    except RuntimeError:
        pass
    new = sapien.Scene(systems)
    for entity in reversed(entities):
        old.remove_entity(entity)
    for entity in entities:
        new.add_entity(entity)
    scene.sub_scenes[0] = new
    scene.px = new_px
    if getattr(env, "_viewer", None) is not None:
        env._viewer.set_scene(new)
