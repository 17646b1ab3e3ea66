"""Structural check of a scene bundle: every body there, every frame where it should be.

Cheap (no rendering): works on bundles whose PLYs are too small for a pixel comparison (e.g. the
miniature dataset of the tests). It checks that

- every robot link with geometry (``names.ROBOT_VISUAL_LINK_NAMES``) and every task object has
  gaussians, all finite;
- each link's gaussians sit on that link in the link's own frame: their centroid lies inside the
  link's visual-mesh bounding box (from the bundle's URDF) grown by `margin`; likewise each object's
  centroid inside its collision geometry's box (a PLY left in world coordinates, or converted with
  the wrong link's pose, lands far outside);
- the similarity splat_to_sim is a proper one (scale > 0, rotation orthonormal with det +1);
- every camera has positive focal lengths, a rigid cam_to_base, and sees the robot's hand (at the
  task's default configuration) in front of it and inside the image: an OpenGL-vs-OpenCV axis
  mix-up puts it behind the camera.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gsenv.scene.bundle import SceneBundle

__all__ = ["DEFAULT_MARGIN", "BodyFrameCheck", "StructureReport", "check_structure"]

DEFAULT_MARGIN = 0.05  # metres


@dataclass
class BodyFrameCheck:
    body: str
    gaussians: int
    centroid: list[float]
    """Centroid of the gaussians' means in the body frame (m)."""
    distance_outside: float | None
    """Distance (m) from the centroid to the box around the body's geometry and its frame origin; 0
    inside; None for a body without geometry."""
    ok: bool


@dataclass
class StructureReport:
    scene: str
    problems: list[str] = field(default_factory=list)
    bodies: list[BodyFrameCheck] = field(default_factory=list)
    cameras: dict[str, dict] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        from dataclasses import asdict

        return {"scene": self.scene, "passed": self.passed, "problems": self.problems,
                "bodies": [asdict(b) for b in self.bodies], "cameras": self.cameras}

    def format(self) -> str:
        lines = [f"structure of scene {self.scene!r}: {'OK' if self.passed else 'PROBLEMS'}"]
        for b in self.bodies:
            where = "-" if b.distance_outside is None else f"{b.distance_outside * 100:.1f} cm outside" \
                if b.distance_outside > 0 else "inside its geometry"
            lines.append(f"  {b.body:<16} {b.gaussians:>8} gaussians, centroid {where}{'' if b.ok else '  <- FAIL'}")
        for name, c in self.cameras.items():
            lines.append(f"  camera {name}: hand at pixel {c.get('hand_pixel')} depth {c.get('hand_depth')}")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def _box_distance(point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.linalg.norm(np.maximum(0.0, np.maximum(lo - point, point - hi))))


def _object_bounds(spec) -> np.ndarray:
    """[2, 3] bounds of an ObjectSpec's geometry in the object frame."""
    import trimesh

    from gsenv.scene_build.default import object_meshes

    if spec.kind == "mesh":
        mesh = trimesh.load(spec.mesh_path, force="mesh")
        return np.asarray(mesh.bounds) * np.asarray(spec.mesh_scale)
    meshes = object_meshes(spec)
    return np.stack([np.min([m.bounds[0] for m in meshes], 0), np.max([m.bounds[1] for m in meshes], 0)])


def check_structure(bundle: SceneBundle, margin: float = DEFAULT_MARGIN, task=None) -> StructureReport:
    """Check a bundle's bodies, frames, similarity and cameras (see the module doc) for ``task`` (a gsenv
    task or its name; None: the default task): its objects must be there."""
    import torch

    from gsenv.alignment.sampling import project
    from gsenv.scene.resolve import task_kwargs_from_bundle
    from gsenv.scene_build.default import link_visual_meshes
    from gsenv.scene_build.rlinf_dataset import default_joint_config, link_world_transforms
    from gsenv.sim import names
    from gsenv.sim.robot_description import default_fr3_urdf

    if margin < 0:
        raise ValueError(f"margin must be >= 0 m, got {margin}")
    rep = StructureReport(bundle.name)
    urdf = bundle.robot_urdf or default_fr3_urdf()
    meshes = link_visual_meshes(urdf)
    for link in names.ROBOT_VISUAL_LINK_NAMES:
        if link not in bundle.links:
            rep.problems.append(f"robot link {link!r} has no gaussians (the bundle has {sorted(bundle.links)})")
    from gsenv.sim.objects import embedded_object_specs
    from gsenv.tasks import get_task

    task = get_task(task)
    specs = task_kwargs_from_bundle(bundle, task=task)
    # objects of other tasks that keep the simulator's own geometry ('builtin'): the embedded catalogue's
    specs = {**{name: spec for name, spec in embedded_object_specs().items()
                if name in bundle.objects and bundle.objects[name].collision.get("type", "builtin") == "builtin"},
             **specs}
    for obj in task.objects:
        if obj not in bundle.objects:
            rep.problems.append(f"object {obj!r} has no gaussians (the bundle has {sorted(bundle.objects)})")

    def body_check(name, g, lo_hi):
        means = g.means.detach().cpu().double()
        if len(g) == 0:
            rep.problems.append(f"{name}: no gaussians")
            return
        if not all(torch.isfinite(t).all() for t in (g.means, g.quats, g.log_scales, g.opacity_logits, g.sh)):
            rep.problems.append(f"{name}: non-finite gaussian parameters")
        c = means.mean(0).numpy()
        # the box of the body's geometry, grown to contain the frame's origin (the joint)
        dist = None if lo_hi is None else _box_distance(c, np.minimum(lo_hi[0], 0.0), np.maximum(lo_hi[1], 0.0))
        ok = dist is None or dist <= margin
        if not ok:
            rep.problems.append(f"{name}: the gaussians' centroid {np.round(c, 3).tolist()} (body frame) lies "
                                f"{dist * 100:.1f} cm outside the body's geometry (allowed {margin * 100:.0f} cm): "
                                "are its gaussians in the body's own frame (not world) and for the right body?")
        rep.bodies.append(BodyFrameCheck(name, len(g), np.round(c, 4).tolist(),
                                         None if dist is None else round(dist, 4), ok))

    for link, g in bundle.links.items():
        if link in meshes:
            ms = meshes[link]
            lo_hi = (np.min([m.bounds[0] for m in ms], 0), np.max([m.bounds[1] for m in ms], 0))
        else:
            lo_hi = None
            if link not in names.ROBOT_LINK_NAMES:
                rep.problems.append(f"{link}: not a link of the robot ({urdf})")
        body_check(link, g, lo_hi)
    for name, obj in bundle.objects.items():
        spec = specs.get(name)
        body_check(name, obj.gaussians, None if spec is None else _object_bounds(spec))

    sim = bundle.splat_to_sim
    R = np.asarray(sim.rotation, dtype=np.float64)
    if not sim.scale > 0:
        rep.problems.append(f"splat_to_sim.scale must be > 0, got {sim.scale}")
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        rep.problems.append("splat_to_sim.rotation is not a proper rotation (orthonormal, det +1)")

    if not bundle.cameras:
        rep.problems.append("the scene has no cameras")
    fk = link_world_transforms(urdf, default_joint_config())
    hand = names.HAND_LINK
    hand_point = None
    if hand in fk:
        local = (bundle.links[hand].means.detach().cpu().double().mean(0).numpy()
                 if hand in bundle.links else np.zeros(3))
        hand_point = fk[hand][:3, :3] @ local + fk[hand][:3, 3]
    for cam in bundle.cameras:
        K, T = np.asarray(cam.K, np.float64), np.asarray(cam.pose, np.float64)
        info: dict = {}
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            rep.problems.append(f"camera {cam.name}: focal lengths must be > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
        Rc = T[:3, :3]
        if not np.allclose(Rc @ Rc.T, np.eye(3), atol=1e-4) or np.linalg.det(Rc) < 0:
            rep.problems.append(f"camera {cam.name}: cam_to_base's rotation is not a proper rotation")
        if hand_point is not None:
            uv, z = project(hand_point[None], cam)
            info = {"hand_pixel": np.round(uv[0], 1).tolist(), "hand_depth": round(float(z[0]), 3)}
            if z[0] <= 0:
                rep.problems.append(f"camera {cam.name}: the robot's hand is behind the camera (depth {z[0]:.2f} m): "
                                    "cam_to_base must be the OpenCV camera pose (x right, y down, z forward) in "
                                    "the robot-base frame; an OpenGL or SAPIEN pose needs converting")
            elif not (0 <= uv[0, 0] < cam.width and 0 <= uv[0, 1] < cam.height):
                rep.problems.append(f"camera {cam.name}: the robot's hand (default configuration) projects to "
                                    f"pixel {np.round(uv[0], 1).tolist()}, outside the {cam.width}x{cam.height} "
                                    "image: check cam_to_base and K")
        rep.cameras[cam.name] = info
    return rep
