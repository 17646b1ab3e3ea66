"""Per-episode physical parameters of one CPU-PhysX task instance: object mass and friction, arm PD gains.

gsenv's physics randomisation (gsenv.physics.randomization) draws the values in the env's process and
sends them with each env's reset, under the reset option ``OPTION_KEY``; ``TaskEnv._initialize_episode``
hands them to :func:`apply_physics_values`. Every value is a factor on the instance's own base value
(the one it was built with, remembered on first use), so episodes never compound.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["OPTION_KEY", "apply_physics_values", "read_physics_values"]

OPTION_KEY = "physics_values"
"""The reset option carrying one env's factors: {"object_mass": {object name: factor}, "object_friction":
{object name: factor}, "arm_stiffness": [7 factors], "arm_damping": [7 factors]} (plain Python values)."""


def _arm_joints(env):
    """The arm controller's joints (ManiSkill ArticulationJoint, one per arm joint) of the active control mode."""
    controller = env.agent.controller
    arm = controller.controllers["arm"] if hasattr(controller, "controllers") else controller
    return arm.joints


def _bases(env) -> dict:
    """The instance's base values, read once (before any factor was applied)."""
    base = getattr(env, "_physics_base", None)
    if base is None:
        objects = {}
        for name, actor in env.objects.items():
            body = actor._bodies[0]
            shapes = body.get_collision_shapes()
            if not shapes:  # a marker: seen, not collided
                continue
            objects[name] = (body.get_mass(), np.asarray(body.get_inertia(), np.float32),
                             [(s.physical_material.static_friction, s.physical_material.dynamic_friction)
                              for s in shapes])
        joints = [(j._objs[0].get_stiffness(), j._objs[0].get_damping(), j._objs[0].get_force_limit(),
                   j._objs[0].get_drive_mode()) for j in _arm_joints(env)]
        base = env._physics_base = {"objects": objects, "joints": joints}
    return base


def apply_physics_values(env, values: Mapping | None) -> None:
    """Set the factors of ``values`` (as OPTION_KEY says; a missing key or object: factor 1, the base) on
    a single-env CPU-PhysX TaskEnv. None (an episode without the option): the base values again where an
    earlier episode changed them, else nothing is touched.

    Mass scales the body's mass and its inertia (the same shape, denser); friction both coefficients
    of every collision shape's material (each object has its own material: gsenv.sim.objects.build_object);
    stiffness / damping the arm joints' drives (force limit and drive mode kept)."""
    if values is None:
        if getattr(env, "_physics_base", None) is None:
            return
        values = {}
    if env.num_envs != 1 or env.scene.gpu_sim_enabled:
        raise ValueError("physics values (object mass and friction, arm PD gains) are set per single-env "
                         "CPU-PhysX instance; use sim_backend='physx_cpu'")
    base = _bases(env)
    masses, frictions = values.get("object_mass", {}), values.get("object_friction", {})
    for name, (mass, inertia, materials) in base["objects"].items():
        body = env.objects[name]._bodies[0]
        m = float(masses.get(name, 1.0))
        body.set_mass(float(mass * m))
        body.set_inertia((inertia * np.float32(m)).astype(np.float32))
        f = float(frictions.get(name, 1.0))
        for shape, (static, dynamic) in zip(body.get_collision_shapes(), materials):
            shape.physical_material.set_static_friction(float(static * f))
            shape.physical_material.set_dynamic_friction(float(dynamic * f))
    n = len(base["joints"])
    k_scale, d_scale = values.get("arm_stiffness", [1.0] * n), values.get("arm_damping", [1.0] * n)
    for joint, (k, d, limit, mode), ks, ds in zip(_arm_joints(env), base["joints"], k_scale, d_scale):
        joint._objs[0].set_drive_properties(float(k * ks), float(d * ds), limit, mode)


def read_physics_values(env) -> dict:
    """What PhysX holds now: {"object_mass": {name: kg}, "object_static_friction" / "object_dynamic_friction":
    {name: [per shape]}, "arm_stiffness" / "arm_damping": [7]} (tests and checks read the sim back)."""
    out = {"object_mass": {}, "object_static_friction": {}, "object_dynamic_friction": {}}
    for name, actor in env.objects.items():
        body = actor._bodies[0]
        shapes = body.get_collision_shapes()
        if shapes:
            out["object_mass"][name] = float(body.get_mass())
            out["object_static_friction"][name] = [float(s.physical_material.static_friction) for s in shapes]
            out["object_dynamic_friction"][name] = [float(s.physical_material.dynamic_friction) for s in shapes]
    joints = _arm_joints(env)
    out["arm_stiffness"] = [float(j._objs[0].get_stiffness()) for j in joints]
    out["arm_damping"] = [float(j._objs[0].get_damping()) for j in joints]
    return out
