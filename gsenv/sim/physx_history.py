"""An episode that depends only on its seed: what CPU PhysX remembers across a reset, forgotten.

A reset sets every body's pose and the robot's joints, but a PhysX scene keeps more: its contact pairs,
their cached manifolds and friction anchors, and the order its solver visits constraints in, all shaped
by what the scene simulated before. So the same seed and the same closed-loop actions gave trajectories
that departed at the first grasp (measured: 0.016 rad of qpos, 2 mm of cube, 24 steps into seed 3 after
two other episodes in the same instance), and an episode's outcome depended on num_envs, num_workers
and partial-reset order.

Taking every body out of the PhysX scene and putting it back, in a fixed order, drops all of that: each
episode then runs exactly as the first episode of a fresh instance does (bit for bit, measured), for
about as much time again as the reset itself. Poses, velocities and joint states are the components'
own and survive the round trip.
"""
from __future__ import annotations

__all__ = ["forget_physx_history"]


def forget_physx_history(scene) -> None:
    """Remove every rigid body and articulation of each CPU PhysX sub-scene of a ManiSkill scene
    (`env.scene`) and add them back in a fixed order. GPU PhysX scenes are left as they are."""
    if scene.gpu_sim_enabled:
        return
    for sub in scene.sub_scenes:
        system = sub.physx_system
        bodies = [*system.rigid_static_components, *system.rigid_dynamic_components]
        articulations = []
        for link in system.articulation_link_components:
            if link.articulation not in articulations:
                articulations.append(link.articulation)
        for body in bodies:
            body.disable()
        for art in articulations:
            for link in art.links:
                link.disable()
        for art in articulations:
            for link in art.links:
                link.enable()
        for body in bodies:
            body.enable()
