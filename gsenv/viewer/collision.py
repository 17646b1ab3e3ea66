"""The simulator's collision geometry of a scene bundle's task, as triangle meshes in body frames.

Builds the physics task in this process (one CPU-PhysX env, no renderer: a few seconds, so the
viewer does it only when the overlay is first switched on) and reads every collision shape of the
robot links, the objects and the table from SAPIEN. Physics in the env's workers is the same task
built from the same bundle, so these are the shapes its contacts use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANE_HALF_SIZE = 1.0  # m: a PhysX plane is infinite; the overlay draws this much of it
CIRCLE_SECTIONS = 24


@dataclass
class BodyMesh:
    """One body's collision shapes merged: vertices float32 [V, 3] in the body frame, faces int32 [F, 3].
    `fixed_pose` [7] (xyz + wxyz) for a static body that has no pose in the env's body poses, else None."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    fixed_pose: np.ndarray | None = None


def _pose_matrix(pose) -> np.ndarray:
    return np.asarray(pose.to_transformation_matrix(), dtype=np.float64)


def _x_axis_to_z() -> np.ndarray:
    """PhysX cylinders, capsules and planes point along x; trimesh builds them along z."""
    return np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def shape_mesh(shape):
    """One SAPIEN collision shape -> a trimesh.Trimesh in the shape's own frame, or None for a kind
    without a surface to draw."""
    import sapien
    import trimesh

    physx = sapien.physx
    if isinstance(shape, physx.PhysxCollisionShapeBox):
        return trimesh.creation.box(extents=2.0 * np.asarray(shape.half_size))
    if isinstance(shape, physx.PhysxCollisionShapeSphere):
        return trimesh.creation.icosphere(subdivisions=2, radius=float(shape.radius))
    if isinstance(shape, physx.PhysxCollisionShapeCapsule):
        m = trimesh.creation.capsule(height=2.0 * float(shape.half_length), radius=float(shape.radius),
                                     count=[CIRCLE_SECTIONS, CIRCLE_SECTIONS])
        return m.apply_transform(_x_axis_to_z().T)
    if isinstance(shape, physx.PhysxCollisionShapeCylinder):
        m = trimesh.creation.cylinder(radius=float(shape.radius), height=2.0 * float(shape.half_length),
                                      sections=CIRCLE_SECTIONS)
        return m.apply_transform(_x_axis_to_z().T)
    if isinstance(shape, physx.PhysxCollisionShapePlane):
        # the plane x = 0 of its frame, solid on the -x side: a thin square just below its surface
        m = trimesh.creation.box(extents=[0.002, 2 * PLANE_HALF_SIZE, 2 * PLANE_HALF_SIZE])
        return m.apply_translation([-0.001, 0.0, 0.0])
    if isinstance(shape, (physx.PhysxCollisionShapeConvexMesh, physx.PhysxCollisionShapeTriangleMesh)):
        v = np.asarray(shape.get_vertices(), dtype=np.float64) * np.asarray(shape.get_scale(), dtype=np.float64)
        return trimesh.Trimesh(v, np.asarray(shape.get_triangles()), process=False)
    return None


def component_mesh(component) -> tuple[np.ndarray, np.ndarray] | None:
    """Every collision shape of one rigid component, merged in the component's entity frame."""
    import trimesh

    parts = []
    for shape in component.get_collision_shapes():
        m = shape_mesh(shape)
        if m is not None:
            parts.append(m.apply_transform(_pose_matrix(shape.get_local_pose())))
    if not parts:
        return None
    merged = trimesh.util.concatenate(parts)
    return np.asarray(merged.vertices, dtype=np.float32), np.asarray(merged.faces, dtype=np.int32)


def collision_meshes(bundle, task=None) -> list[BodyMesh]:
    """Collision meshes of every robot link, object and the table of `task` (a gsenv.tasks.Task or its
    name; None: the default task) in `bundle`.

    Names are the env's body names (``GSEnv.get_body_poses()`` keys) except the static table, which
    carries its fixed pose. Bodies without collision shapes are left out.
    """
    import gymnasium as gym
    import sapien

    from gsenv.scene.resolve import task_kwargs_from_bundle
    from gsenv.sim.task import register_physics_task
    from gsenv.tasks import get_task

    task = get_task(task)
    env = gym.make(register_physics_task(task), num_envs=1, obs_mode="state", render_backend="none",
                   sim_backend="physx_cpu", **task_kwargs_from_bundle(bundle, task=task))
    try:
        env.reset(seed=0)
        sim = env.unwrapped
        out: list[BodyMesh] = []
        for link in sim.agent.robot.get_links():
            mesh = component_mesh(link._objs[0])
            if mesh is not None:
                out.append(BodyMesh(link.name, *mesh))
        for actor, static in (*((a, False) for a in sim.objects.values()), (sim.table, True)):
            entity = actor._objs[0]
            mesh = component_mesh(entity.find_component_by_type(sapien.physx.PhysxRigidBaseComponent))
            if mesh is not None:
                pose = np.concatenate([entity.pose.p, entity.pose.q]).astype(np.float32) if static else None
                out.append(BodyMesh(actor.name, *mesh, fixed_pose=pose))
        return out
    finally:
        env.close()
