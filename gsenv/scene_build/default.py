"""The embedded default scene: generated offline and deterministically from a recipe + ManiSkill's meshes.

The recipe (``assets_manifest/default_scene.json``) says how many gaussians each part gets, the
colours, the table texture, the backdrop geometry, the camera and the wrist camera on the hand
(``link_cameras``). The robot's gaussians are sampled from the visual meshes of the simulator's own
robot description (link frames), the cube's and the plate's from the simulator's own collision
primitives (object frames; the recipe lists which, ``gsenv.sim.objects.embedded_object_specs`` gives
each one's geometry and colour): picture and physics line up by construction.

The bundle is built on first use into ``<asset root>/default-scene/<key>`` where the key hashes the
recipe, the density and BUILDER_VERSION (so a changed recipe or builder rebuilds), and is written
atomically: it is built in a temporary sibling directory that is renamed into place only when
complete, so a killed build leaves nothing that looks complete (and the next build removes what it left:
gsenv.scene_build.staging).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import numpy as np

from gsenv.scene.bundle import CameraSpec, SceneBundle, SceneObject
from gsenv.scene.format import MANIFEST, load_bundle, write_bundle
from gsenv.scene_build import staging
from gsenv.scene_build.mesh_sampling import merge_meshes, sample_meshes, sample_surface
from gsenv.splat.gaussians import Gaussians

__all__ = ["BUILDER_VERSION", "RECIPE_FILE", "SCENE_SUBDIR", "load_recipe", "cache_key", "sapien_camera_to_opencv",
           "recipe_camera", "recipe_link_cameras", "link_visual_meshes", "build_robot", "object_meshes",
           "build_background", "build_default_bundle", "default_bundle_dir", "ensure_default_bundle",
           "load_default_bundle"]

logger = logging.getLogger(__name__)

BUILDER_VERSION = 2
RECIPE_FILE = "default_scene.json"
SCENE_SUBDIR = "default-scene"


def load_recipe() -> dict:
    """The packaged default-scene recipe."""
    return json.loads(resources.files("gsenv.assets_manifest").joinpath(RECIPE_FILE).read_text())


def cache_key(recipe: dict, density: float) -> str:
    """Changes with the recipe, the density, the builder's version and the surface-sampling constants."""
    from gsenv.scene_build import mesh_sampling as ms

    sampling = [ms.TANGENT_STD_FRACTION, ms.NORMAL_STD_FRACTION, ms.DEFAULT_OPACITY]
    blob = json.dumps({"recipe": recipe, "density": density, "builder": BUILDER_VERSION, "sampling": sampling},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sapien_camera_to_opencv(cam_to_base_sapien: np.ndarray) -> np.ndarray:
    """[4,4] camera pose with SAPIEN axes (x forward, y left, z up) -> the same pose with OpenCV axes
    (x right, y down, z forward)."""
    import torch

    from gsenv.splat.cameras import sapien_pose_to_viewmat

    viewmat = sapien_pose_to_viewmat(torch.as_tensor(cam_to_base_sapien, dtype=torch.float64))
    return torch.linalg.inv(viewmat).numpy()


def recipe_camera(recipe: dict | None = None) -> CameraSpec:
    """The recipe's camera (the research code's calibrated third-person camera) as a CameraSpec."""
    cam = (recipe or load_recipe())["camera"]
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1]], dtype=np.float64)
    T = np.eye(4)
    T[:3, :] = np.asarray(cam["cam_to_base_sapien"], dtype=np.float64)
    return CameraSpec(cam["name"], int(cam["width"]), int(cam["height"]), K, sapien_camera_to_opencv(T))


def recipe_link_cameras(recipe: dict | None = None) -> list[CameraSpec]:
    """The recipe's link cameras (the wrist camera on the FR3 hand) as CameraSpecs: the mount is
    a chain of URDF-style (xyz, rpy) joints from the link to a SAPIEN-axes camera frame."""
    out = []
    for cam in (recipe or load_recipe()).get("link_cameras", []):
        K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1]], dtype=np.float64)
        T = np.eye(4)
        for joint in cam["mount_sapien"]:
            J = np.eye(4)
            J[:3, :3], J[:3, 3] = _rpy_matrix(joint["rpy"]), joint["xyz"]
            T = T @ J
        out.append(CameraSpec(cam["name"], int(cam["width"]), int(cam["height"]), K, sapien_camera_to_opencv(T),
                              link=cam["link"]))
    return out


def _count(n: int, density: float) -> int:
    return max(1, int(round(n * density)))


# ----------------------------------------------------------------------------------------- robot
def _rpy_matrix(rpy) -> np.ndarray:
    """[3, 3] float64 rotation of a URDF origin's rpy (radians)."""
    import torch

    from gsenv.geometry import rpy_to_rotmat

    return rpy_to_rotmat(torch.tensor([float(v) for v in rpy], dtype=torch.float64)).numpy()


def link_visual_meshes(urdf: Path) -> dict[str, list]:
    """{link name: [trimesh.Trimesh in the link frame]} from a URDF's <visual> mesh elements."""
    import trimesh

    out: dict[str, list] = {}
    for link in ET.parse(urdf).getroot().iter("link"):
        meshes = []
        for vis in link.findall("visual"):
            geom = vis.find("geometry/mesh")
            if geom is None:
                continue
            path = Path(geom.get("filename"))
            if not path.is_absolute():
                path = urdf.parent / path
            T = np.eye(4)
            origin = vis.find("origin")
            if origin is not None:
                T[:3, :3] = _rpy_matrix([float(v) for v in origin.get("rpy", "0 0 0").split()])
                T[:3, 3] = [float(v) for v in origin.get("xyz", "0 0 0").split()]
            if geom.get("scale"):
                T[:3, :3] = T[:3, :3] @ np.diag([float(v) for v in geom.get("scale").split()])
            for mesh in merge_meshes(trimesh.load(path)):
                mesh.apply_transform(T)
                meshes.append(mesh)
        if meshes:
            out[link.get("name")] = meshes
    return out


def build_robot(
    urdf: Path, total: int, seed: int, link_weights: dict[str, float] | None = None
) -> dict[str, Gaussians]:
    """Sample `total` gaussians over all links' visual surfaces, in link frames. Counts follow area x
    weight (default 1): a higher weight gives a small link denser, smaller gaussians that hug its edges."""
    meshes = link_visual_meshes(urdf)
    weights = link_weights or {}
    areas = {link: sum(m.area for m in ms) * float(weights.get(link, 1.0)) for link, ms in meshes.items()}
    scale = total / sum(areas.values())
    return {link: sample_meshes(ms, max(1, int(round(areas[link] * scale))), seed + 101 * i)
            for i, (link, ms) in enumerate(sorted(meshes.items()))}


# ----------------------------------------------------------------------------------------- objects
def _colored(mesh, rgb):
    mesh.visual.face_colors = np.r_[np.asarray(rgb[:3]) * 255, 255].astype(np.uint8)
    return mesh


def object_meshes(spec) -> list:
    """trimesh meshes of a simulator ObjectSpec's geometry (box, dish, marker, cylinder or tray) in the object frame."""
    import trimesh

    from gsenv.sim.objects import _dish_parts, _tray_parts

    if spec.kind == "box":
        return [_colored(trimesh.creation.box(extents=2 * np.asarray(spec.half_size)), spec.color)]
    if spec.kind in ("marker", "cylinder"):  # trimesh's cylinders lie along z already
        return [_colored(trimesh.creation.cylinder(radius=spec.radius, height=spec.height, sections=64), spec.color)]
    if spec.kind == "tray":
        parts = []
        for pose, half, _ in _tray_parts(spec):
            m = trimesh.creation.box(extents=2 * np.asarray(half))
            m.apply_transform(pose.to_transformation_matrix())
            parts.append(_colored(m, spec.color))
        return parts
    if spec.kind != "dish":
        raise ValueError(f"the default scene samples box, dish, marker, cylinder and tray objects, not {spec.kind!r}")
    meshes = []
    for shape, pose, size, _ in _dish_parts(spec):
        T = pose.to_transformation_matrix()
        if shape == "cylinder":  # SAPIEN cylinders lie along x; trimesh's along z
            m = trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=64)
            m.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [0, 1, 0]))
        else:
            m = trimesh.creation.box(extents=2 * np.asarray(size))
        m.apply_transform(T)
        meshes.append(_colored(m, spec.color))
    return meshes


# ----------------------------------------------------------------------------------------- background
def _wood(points: np.ndarray, base, dark, period: float, seed: int) -> np.ndarray:
    """A procedural wood-grain texture on the table top: [N,3] points -> [N,3] RGB."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=4)
    x, y = points[:, 0], points[:, 1]
    warp = 0.015 * np.sin(2 * np.pi * x / 0.37 + phase[0]) + 0.008 * np.sin(2 * np.pi * x / 0.11 + phase[1])
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (y + warp) / period + phase[2])
    planks = (np.floor((y + 10) / 0.2).astype(int) * 7919 % 13) / 13.0  # plank-to-plank tone
    t = np.clip(0.65 * grain ** 3 + 0.25 * planks, 0, 1)[:, None]
    return (1 - t) * np.asarray(base) + t * np.asarray(dark)


def _quad(center, u, v, normal_sign=1.0):
    """A rectangle mesh spanned by half-axes u, v around center."""
    import trimesh

    c, u, v = map(np.asarray, (center, u, v))
    verts = np.stack([c - u - v, c + u - v, c + u + v, c - u + v])
    faces = np.array([[0, 1, 2], [0, 2, 3]]) if normal_sign > 0 else np.array([[0, 2, 1], [0, 3, 2]])
    return trimesh.Trimesh(verts, faces, process=False)


def build_background(recipe: dict, density: float, seed: int) -> Gaussians:
    """Table top (wood texture), table front, floor and wall, in the world (= robot base) frame."""
    parts = []
    for i, (_name, part) in enumerate(sorted(recipe.items())):
        lo, hi = np.asarray(part["min"], float), np.asarray(part["max"], float)
        c = (lo + hi) / 2
        h = (hi - lo) / 2
        axis = part["normal_axis"]
        flat = [a for a in range(3) if a != axis]
        u, v = np.zeros(3), np.zeros(3)
        u[flat[0]], v[flat[1]] = h[flat[0]], h[flat[1]]
        sign = part.get("normal_sign", 1.0)
        mesh = _quad(c, u, v)
        if np.sign(mesh.face_normals[0][axis]) != np.sign(sign):
            mesh = _quad(c, u, v, normal_sign=-1.0)
        n = _count(part["gaussians"], density)
        if "wood" in part:
            w = part["wood"]
            fn = lambda p, f, w=w, s=seed + i: _wood(p, w["base"], w["dark"], w["period"], s)  # noqa: E731
        else:
            rgb = np.asarray(part["color"], float)
            noise = float(part.get("noise", 0.0))

            def fn(p, f, rgb=rgb, noise=noise, s=seed + i):
                r = np.random.default_rng(s).normal(0, noise, size=(len(p), 1))
                return np.clip(rgb + r, 0, 1)
        parts.append(sample_surface(mesh, n, seed + 1000 * (i + 1), color_fn=fn))
    return Gaussians.concat(parts)


# ----------------------------------------------------------------------------------------- bundle
def build_default_bundle(density: float = 1.0, recipe: dict | None = None, progress: bool = False,
                         asset_root: str | os.PathLike | None = None) -> SceneBundle:
    """Generate the default scene in memory. density scales every gaussian count; asset_root is where
    the simulator's FR3 description is generated (whose visual meshes are sampled)."""
    from gsenv.sim import names
    from gsenv.sim.objects import embedded_object_specs
    from gsenv.sim.robot_description import default_fr3_urdf

    if not density > 0:
        raise ValueError(f"density must be > 0, got {density}")
    recipe = recipe or load_recipe()
    seed = int(recipe["seed"])
    steps = ["robot", "objects", "background"]
    bar = _progress(len(steps), progress)
    links = build_robot(default_fr3_urdf(asset_root), _count(recipe["robot"]["gaussians"], density), seed,
                        recipe["robot"].get("link_weights"))
    bar.update(1)
    objects = {}
    specs = embedded_object_specs()
    unknown = sorted(set(recipe["objects"]) - set(specs))
    if unknown:
        raise ValueError(f"the recipe's objects {unknown} have no simulator geometry (known: {sorted(specs)})")
    for i, name in enumerate(recipe["objects"]):  # the recipe's order: an object's seed is its place there
        g = sample_meshes(object_meshes(specs[name]), _count(recipe["objects"][name]["gaussians"], density),
                          seed + 17 * (i + 1))
        objects[name] = SceneObject(name, g, {"type": "builtin"})
    bar.update(1)
    background = build_background(recipe["background"], density, seed + 5)
    bar.update(1)
    bar.close()
    camera = recipe_camera(recipe)
    return SceneBundle(name="default", links=links, objects=objects, background=background, cameras=[camera],
                       instructions=[names.LANGUAGE_INSTRUCTION],
                       background_color=tuple(recipe["background_color"]), eps2d=float(recipe["render"]["eps2d"]),
                       link_cameras=recipe_link_cameras(recipe))


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="building the default scene", unit="part", disable=not enabled)


def default_bundle_dir(asset_root: Path, density: float = 1.0, recipe: dict | None = None) -> Path:
    recipe = recipe or load_recipe()
    return Path(asset_root) / SCENE_SUBDIR / cache_key(recipe, density)


def ensure_default_bundle(asset_root: str | os.PathLike, density: float = 1.0, force: bool = False,
                          progress: bool = True) -> Path:
    """Path of the built default bundle under asset_root, building it (atomically) when missing,
    outdated or forced.

    A build first proves the root writable and removes stale staging folders left by killed builds
    (gsenv.scene_build.staging); any failure of the root (cannot be created, not a directory, read-only,
    unwritable, full) raises gsenv.assets.errors.AssetRootError with the path and the fix. The built
    folder gets the umask's permissions. An up-to-date build is only read (a read-only cache works)."""
    from gsenv.assets.root import require_writable, root_write_errors

    recipe = load_recipe()
    final = default_bundle_dir(Path(asset_root), density, recipe)
    if (final / MANIFEST).is_file() and not force:
        return final
    require_writable(asset_root)
    with root_write_errors(asset_root):
        require_writable(final.parent)
        staging.remove_stale(final.parent)
        tmp = staging.new_staging_dir(final.parent, final.name)
        try:
            t0 = time.perf_counter()
            bundle = build_default_bundle(density, recipe, progress=progress, asset_root=asset_root)
            write_bundle(bundle, tmp, extra={"builder_version": BUILDER_VERSION, "density": density,
                                             "recipe_key": final.name,
                                             "seconds": round(time.perf_counter() - t0, 2)})
            if final.exists():  # forced rebuild: move the old one aside first
                old = staging.new_staging_dir(final.parent, final.name, kind="old")
                os.replace(final, old)
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:  # another process finished the same build first: keep theirs
                if not (final / MANIFEST).is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            logger.info("default scene (density %s) built in %.1f s at %s", density, time.perf_counter() - t0,
                        final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def load_default_bundle(asset_root: str | os.PathLike, density: float = 1.0, device: str = "cpu",
                        progress: bool = True) -> SceneBundle:
    """The default bundle, built on first use and read from the cache afterwards."""
    from gsenv.sim import names

    path = ensure_default_bundle(asset_root, density, progress=progress)
    return load_bundle(path, known_links=names.ROBOT_LINK_NAMES, device=device)
