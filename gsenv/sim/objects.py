"""Collision geometry of the task's objects as configuration, and the builders that make actors.

The default cube and plate are primitives (a 4 cm box; a shallow dish made of a flat cylinder
floor and a ring of box segments as rim); the object pool of the pick-and-place family adds upright
cylinders (``kind="cylinder"``) and square trays (``kind="tray"``: a box floor and four box walls).
A scene bundle may instead give a collision mesh
(``kind="mesh"``: convex hull, or a convex decomposition when the file holds several convex parts).
A marker (``kind="marker"``: a flat disc) is seen but not collided: a kinematic body without collision
shapes, which tasks place and read like any other object. :func:`embedded_object_specs` is every object
the embedded default scene draws; :data:`POOL_GRASPABLES` and :data:`POOL_RECEPTACLES` the object pool of the
pick-and-place family (gsenv.tasks.put_on_receptacle), each with its train / test split.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sapien

from gsenv.sim import names

_KINDS = ("box", "dish", "mesh", "marker", "cylinder", "tray")


@dataclass(frozen=True)
class ObjectSpec:
    """Physical description of one rigid object.

    kind: "box" (uses ``half_size``), "dish" (``radius``, ``height``, ``floor_thickness``,
        ``rim_thickness``, ``rim_segments``; origin at the centre of its bounding box) or "mesh"
        (``mesh_path``, optionally ``mesh_scale``; origin = the mesh's origin, which must be the
        frame its gaussians are stored in) or "marker" (a flat disc of ``radius`` and ``height``,
        origin at its centre, without collision: nothing touches it and it does not move) or "cylinder"
        (upright, ``radius`` and ``height``, origin at its centre) or "tray" (a square tray: a box floor of
        ``floor_thickness`` and four walls of ``rim_thickness``, outer half extents ``half_size`` (x, y, z =
        half the height), origin at its bounding-box centre).
    rest_height: height (m) of the object's origin above the table when it rests upright on it.
    top_height: height (m) above the object's origin of the surface another object rests on
        (for the plate: its floor's top); used by the expert and the dense reward.
    """

    kind: str
    mass: float
    rest_height: float
    top_height: float = 0.0
    half_size: tuple[float, float, float] = (0.02, 0.02, 0.02)
    radius: float = 0.09
    height: float = 0.02
    floor_thickness: float = 0.006
    rim_thickness: float = 0.008
    rim_segments: int = 16
    mesh_path: str | None = None
    mesh_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    static_friction: float = names.OBJECT_STATIC_FRICTION
    dynamic_friction: float = names.OBJECT_DYNAMIC_FRICTION
    restitution: float = names.OBJECT_RESTITUTION
    color: tuple[float, float, float, float] = field(default=(0.8, 0.2, 0.2, 1.0))

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"ObjectSpec.kind must be one of {_KINDS}, got {self.kind!r}")
        if not self.mass > 0:
            raise ValueError(f"ObjectSpec.mass must be > 0 kg, got {self.mass!r}")
        if self.kind == "mesh":
            if self.mesh_path is None or not Path(self.mesh_path).is_file():
                raise ValueError(
                    f"ObjectSpec(kind='mesh') needs mesh_path pointing to an existing mesh file, "
                    f"got {self.mesh_path!r}"
                )
        if self.kind == "dish" and not (0 < self.floor_thickness < self.height):
            raise ValueError("ObjectSpec(kind='dish') needs 0 < floor_thickness < height")
        if self.kind == "tray" and not (0 < self.floor_thickness < 2 * self.half_size[2]
                                        and 0 < self.rim_thickness < min(self.half_size[:2])):
            raise ValueError("ObjectSpec(kind='tray') needs 0 < floor_thickness < 2 * half_size[2] and "
                             "0 < rim_thickness < the smaller horizontal half size")

    @property
    def footprint_radius(self) -> float:
        """Radius (m) of a vertical cylinder about the origin that contains the object's footprint."""
        if self.kind in ("box", "tray"):
            return math.hypot(self.half_size[0], self.half_size[1])
        if self.kind in ("dish", "marker", "cylinder"):
            return self.radius
        import trimesh  # only for meshes: a dependency of ManiSkill

        mesh = trimesh.load(self.mesh_path, force="mesh")
        xy = np.asarray(mesh.vertices)[:, :2] * np.asarray(self.mesh_scale[:2])
        return float(np.linalg.norm(xy, axis=1).max())


def default_cube_spec() -> ObjectSpec:
    """The 4 cm, 0.3 kg cube (origin at its centre)."""
    h = names.CUBE_HALF_SIZE
    return ObjectSpec(
        kind="box", mass=names.CUBE_MASS, rest_height=h, top_height=h, half_size=(h, h, h),
        color=(0.85, 0.15, 0.1, 1.0),
    )


def dish_spec(radius: float, height: float, rgb: tuple[float, float, float]) -> ObjectSpec:
    """A dish of the plate's build, 0.3 kg: a floor and a ring of rim segments, ``radius`` and ``height`` (m),
    origin at its bounding-box centre."""
    return ObjectSpec(
        kind="dish",
        mass=names.PLATE_MASS,
        rest_height=height / 2,
        top_height=names.PLATE_BASE_THICKNESS - height / 2,
        radius=radius,
        height=height,
        floor_thickness=names.PLATE_BASE_THICKNESS,
        rim_thickness=names.PLATE_RIM_THICKNESS,
        rim_segments=names.PLATE_RIM_SEGMENTS,
        color=(*rgb, 1.0),
    )


def default_plate_spec() -> ObjectSpec:
    """The 18 cm shallow dish, 0.3 kg (origin at its bounding-box centre)."""
    return dish_spec(names.PLATE_RADIUS, names.PLATE_HEIGHT, (0.9, 0.9, 0.85))


def colored_cube_spec(rgb: tuple[float, float, float]) -> ObjectSpec:
    """A cube of the default cube's size and mass in colour ``rgb``."""
    return dataclasses.replace(default_cube_spec(), color=(*rgb, 1.0))


def bowl_spec() -> ObjectSpec:
    """The 16 cm bowl, 4 cm deep, 0.3 kg: the plate's build, taller."""
    return dish_spec(names.BOWL_RADIUS, names.BOWL_HEIGHT, (0.2, 0.45, 0.55))


def target_spec() -> ObjectSpec:
    """The flat 10 cm target marker (a 2 mm disc; seen, not collided)."""
    return ObjectSpec(kind="marker", mass=0.01, rest_height=names.TARGET_THICKNESS / 2,
                      top_height=names.TARGET_THICKNESS / 2, radius=names.TARGET_RADIUS,
                      height=names.TARGET_THICKNESS, color=(0.2, 0.75, 0.3, 1.0))


def cube_spec(edge: float, rgb: tuple[float, float, float], mass: float = names.CUBE_MASS) -> ObjectSpec:
    """A cube of ``edge`` m in colour ``rgb`` (origin at its centre)."""
    h = edge / 2
    return ObjectSpec(kind="box", mass=mass, rest_height=h, top_height=h, half_size=(h, h, h), color=(*rgb, 1.0))


def cylinder_spec(radius: float, height: float, rgb: tuple[float, float, float], mass: float) -> ObjectSpec:
    """An upright cylinder (origin at its centre)."""
    return ObjectSpec(kind="cylinder", mass=mass, rest_height=height / 2, top_height=height / 2, radius=radius,
                      height=height, color=(*rgb, 1.0))


def plate_spec(radius: float, rgb: tuple[float, float, float]) -> ObjectSpec:
    """A shallow dish of the default plate's build (height, floor, rim) and another radius and colour."""
    return dish_spec(radius, names.PLATE_HEIGHT, rgb)


def tray_spec(half_extent: float, height: float, rgb: tuple[float, float, float]) -> ObjectSpec:
    """A square tray of outer side 2 * half_extent and ``height`` (the plate's floor and rim thickness and mass)."""
    return ObjectSpec(kind="tray", mass=names.PLATE_MASS, rest_height=height / 2,
                      top_height=names.PLATE_BASE_THICKNESS - height / 2,
                      half_size=(half_extent, half_extent, height / 2),
                      floor_thickness=names.PLATE_BASE_THICKNESS, rim_thickness=names.PLATE_RIM_THICKNESS,
                      color=(*rgb, 1.0))


POOL_GRASPABLES: dict[str, tuple[str, ObjectSpec]] = {
    # train: three 4 cm cubes and a small one
    names.CUBE: ("train", default_cube_spec()),
    "green_cube": ("train", colored_cube_spec(names.COLOR_CUBES["green_cube"])),
    "blue_cube": ("train", colored_cube_spec(names.COLOR_CUBES["blue_cube"])),
    "small_magenta_cube": ("train", cube_spec(0.03, (0.8, 0.2, 0.6))),
    # test: an unseen colour, two unseen sizes, an unseen shape
    "yellow_cube": ("test", colored_cube_spec(names.COLOR_CUBES["yellow_cube"])),
    "small_orange_cube": ("test", cube_spec(0.03, (0.95, 0.5, 0.1))),
    "large_cyan_cube": ("test", cube_spec(0.05, (0.1, 0.75, 0.8))),
    "purple_cylinder": ("test", cylinder_spec(0.02, 0.05, (0.45, 0.2, 0.7), mass=0.2)),
}
"""The pick-and-place family's graspable objects: name -> (split, spec). Cubes 3-5 cm and a 4 cm wide cylinder:
all fit the open gripper (8 cm) and are held by the closed one (2-7 cm between the fingers)."""
POOL_RECEPTACLES: dict[str, tuple[str, ObjectSpec]] = {
    names.PLATE: ("train", default_plate_spec()),
    "grey_plate": ("train", plate_spec(0.08, (0.55, 0.55, 0.6))),
    names.BOWL: ("test", bowl_spec()),
    "tray": ("test", tray_spec(0.085, 0.03, (0.85, 0.6, 0.3))),
}
"""The pick-and-place family's receptacles: name -> (split, spec)."""


def embedded_object_specs() -> dict[str, ObjectSpec]:
    """{name: spec} of every object the embedded default scene draws (its gaussians are sampled from these)."""
    return {names.CUBE: default_cube_spec(), names.PLATE: default_plate_spec(),
            **{name: colored_cube_spec(rgb) for name, rgb in names.COLOR_CUBES.items()},
            names.BOWL: bowl_spec(), names.TARGET: target_spec(),
            **{name: spec for name, (_, spec) in (*POOL_GRASPABLES.items(), *POOL_RECEPTACLES.items())}}


def _dish_parts(spec: ObjectSpec) -> list[tuple[str, sapien.Pose, tuple, float]]:
    """(shape kind, local pose, size, volume) of the dish's convex pieces."""
    parts = []
    z0 = -spec.height / 2
    # floor: cylinder (SAPIEN cylinders lie along x; rotate so the axis is z)
    floor_half = spec.floor_thickness / 2
    axis_z = sapien.Pose(p=[0, 0, z0 + floor_half], q=[math.sqrt(0.5), 0, math.sqrt(0.5), 0])
    parts.append(("cylinder", axis_z, (spec.radius, floor_half), math.pi * spec.radius**2 * spec.floor_thickness))
    # rim: n boxes tangent to the circle, standing on the floor
    n = spec.rim_segments
    rim_h = spec.height - spec.floor_thickness
    r_mid = spec.radius - spec.rim_thickness / 2
    seg_len = 2 * spec.radius * math.tan(math.pi / n)
    half = (spec.rim_thickness / 2, seg_len / 2, rim_h / 2)
    for i in range(n):
        a = 2 * math.pi * i / n
        pose = sapien.Pose(
            p=[r_mid * math.cos(a), r_mid * math.sin(a), z0 + spec.floor_thickness + rim_h / 2],
            q=[math.cos(a / 2), 0, 0, math.sin(a / 2)],
        )
        parts.append(("box", pose, half, 8 * half[0] * half[1] * half[2]))
    return parts


def _tray_parts(spec: ObjectSpec) -> list[tuple[sapien.Pose, tuple, float]]:
    """(local pose, box half size, volume) of the tray's floor and four walls."""
    hx, hy, hz = spec.half_size
    t, f = spec.rim_thickness, spec.floor_thickness
    wall_hz = hz - f / 2
    wall_z = -hz + f + wall_hz
    parts = [(sapien.Pose(p=[0, 0, -hz + f / 2]), (hx, hy, f / 2))]
    parts += [(sapien.Pose(p=[sx * (hx - t / 2), 0, wall_z]), (t / 2, hy, wall_hz)) for sx in (-1, 1)]
    parts += [(sapien.Pose(p=[0, sy * (hy - t / 2), wall_z]), (hx - t, t / 2, wall_hz)) for sy in (-1, 1)]
    return [(pose, half, 8 * half[0] * half[1] * half[2]) for pose, half in parts]


_DISC_AXIS_Z = sapien.Pose(q=[math.sqrt(0.5), 0, math.sqrt(0.5), 0])
"""SAPIEN cylinders lie along x: this turns one's axis to z."""


def build_object(scene, spec: ObjectSpec, name: str, initial_pose: sapien.Pose):
    """Build a dynamic actor named ``name`` from ``spec`` in a ManiSkill scene -> Actor.

    Visual shapes only where the scene renders (the alignment check's mesh view): creating a render
    material starts SAPIEN's render device (Vulkan), which physics-only workers must not pay for.
    """
    builder = scene.create_actor_builder()
    material = sapien.physx.PhysxMaterial(
        static_friction=spec.static_friction,
        dynamic_friction=spec.dynamic_friction,
        restitution=spec.restitution,
    )
    visual = scene.can_render()
    render_mat = sapien.render.RenderMaterial(base_color=list(spec.color)) if visual else None
    if spec.kind == "box":
        volume = 8 * float(np.prod(spec.half_size))
        builder.add_box_collision(half_size=spec.half_size, material=material, density=spec.mass / volume)
        if visual:
            builder.add_box_visual(half_size=spec.half_size, material=render_mat)
    elif spec.kind == "dish":
        parts = _dish_parts(spec)
        density = spec.mass / sum(p[3] for p in parts)
        for shape, pose, size, _ in parts:
            if shape == "cylinder":
                builder.add_cylinder_collision(pose, radius=size[0], half_length=size[1], material=material,
                                               density=density)
                if visual:
                    builder.add_cylinder_visual(pose, radius=size[0], half_length=size[1], material=render_mat)
            else:
                builder.add_box_collision(pose, half_size=size, material=material, density=density)
                if visual:
                    builder.add_box_visual(pose, half_size=size, material=render_mat)
    elif spec.kind == "cylinder":
        builder.add_cylinder_collision(_DISC_AXIS_Z, radius=spec.radius, half_length=spec.height / 2,
                                       material=material, density=spec.mass / (math.pi * spec.radius**2 * spec.height))
        if visual:
            builder.add_cylinder_visual(_DISC_AXIS_Z, radius=spec.radius, half_length=spec.height / 2,
                                        material=render_mat)
    elif spec.kind == "tray":
        parts = _tray_parts(spec)
        density = spec.mass / sum(p[2] for p in parts)
        for pose, half, _ in parts:
            builder.add_box_collision(pose, half_size=half, material=material, density=density)
            if visual:
                builder.add_box_visual(pose, half_size=half, material=render_mat)
    elif spec.kind == "marker":  # seen, not collided: no collision shape, a kinematic body
        if visual:
            builder.add_cylinder_visual(_DISC_AXIS_Z, radius=spec.radius, half_length=spec.height / 2,
                                        material=render_mat)
        builder.initial_pose = initial_pose
        return builder.build_kinematic(name=name)
    else:
        builder.add_multiple_convex_collisions_from_file(
            spec.mesh_path, scale=spec.mesh_scale, material=material
        )
        if visual:
            builder.add_visual_from_file(spec.mesh_path, scale=spec.mesh_scale)
    builder.initial_pose = initial_pose
    actor = builder.build(name=name)
    # PhysX's volumes (cooked meshes, faceted cylinders) differ slightly from ours: set the mass exactly
    for body in actor._bodies:
        body.set_mass(spec.mass)
    return actor


def build_table(scene, name: str = "table"):
    """A static plane at z = 0 (the table top), with the scene's default material."""
    builder = scene.create_actor_builder()
    builder.add_plane_collision(sapien.Pose(p=[0, 0, 0], q=[math.sqrt(0.5), 0, -math.sqrt(0.5), 0]))
    builder.initial_pose = sapien.Pose()
    return builder.build_static(name=name)
