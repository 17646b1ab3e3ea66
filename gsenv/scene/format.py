"""scene.json: the on-disk scene bundle (schema version 1), its validation, reading and writing.

A bundle is a directory:

    scene.json                  this manifest (paths inside are relative to the directory)
    robot/<link>.ply            per-link gaussians in the link frame
    robot/<name>.urdf           optional: a robot description replacing the simulator's default
    objects/<name>.ply          per-object gaussians in the object frame (+ optional collision mesh)
    background.ply              optional static background, in the splat model's world frame
    backdrop.(jpg|png)          optional image behind everything

"cameras" are fixed: {name, width, height, K, cam_to_base} (OpenCV axes, robot-base frame).
Optional "link_cameras" move with a robot link (a wrist camera): {name, width, height, K, link,
cam_to_link} (cam_to_link: the OpenCV camera pose in that link's frame).

Optional "render": {"eps2d": px^2} sets the rasteriser's low-pass (default 0.3, as scans are trained;
0 suits gaussians sampled from mesh surfaces).

Every file path in scene.json must resolve (symbolic links followed) inside the bundle's folder, so that a
bundle cannot name files anywhere on disk; a bundle that references shared files is read with
`allow_outside_paths=True` (or GSENV_ALLOW_OUTSIDE_PATHS=1, the route for `gym.make(scene=...)`).

Validation collects every problem, each with its JSON path, and raises one SceneError listing them.
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from gsenv.scene.bundle import CameraSpec, SceneBundle, SceneObject, Similarity

__all__ = ["SCHEMA_VERSION", "MANIFEST", "COLLISION_TYPES", "ALLOW_OUTSIDE_ENV", "SceneError",
           "outside_paths_allowed", "urdf_link_names", "read_manifest", "read_fixed_cameras", "camera_problems",
           "load_bundle", "write_bundle"]

SCHEMA_VERSION = 1
MANIFEST = "scene.json"
COLLISION_TYPES = ("box", "mesh", "builtin")
ALLOW_OUTSIDE_ENV = "GSENV_ALLOW_OUTSIDE_PATHS"
"""Environment variable: "1" lets scene.json name files outside the bundle (as allow_outside_paths=True)."""


class SceneError(ValueError):
    """A scene bundle is missing or malformed; the message lists every problem with its path."""

    def __init__(self, where: str | Path, problems: Iterable[str]):
        self.where = str(where)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid scene bundle {self.where}:\n{lines}")


def outside_paths_allowed(allow_outside_paths: bool | None = None) -> bool:
    """allow_outside_paths, or when None the environment variable ALLOW_OUTSIDE_ENV ("1" or unset)."""
    if allow_outside_paths is not None:
        return bool(allow_outside_paths)
    value = os.environ.get(ALLOW_OUTSIDE_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{ALLOW_OUTSIDE_ENV}={value!r}: set it to 1 (scene.json may name files outside the "
                         "bundle) or leave it unset")
    return value == "1"


class _Checker:
    """Collects problems while reading a JSON document."""

    def __init__(self, allow_outside: bool = False) -> None:
        self.problems: list[str] = []
        self.allow_outside = allow_outside

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def get(self, obj: Any, key: str, path: str, kind: type | tuple, required: bool = True) -> Any:
        if not isinstance(obj, dict):
            return None
        if key not in obj or obj[key] is None:
            if required:
                self.fail(f"{path}.{key}", "missing")
            return None
        value = obj[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(f"{path}.{key}", f"must be {names}, got {type(value).__name__}")
            return None
        return value

    def matrix(self, value: Any, shape: tuple[int, ...], path: str) -> np.ndarray | None:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            self.fail(path, f"must be a {shape} matrix of numbers")
            return None
        if arr.shape != shape:
            self.fail(path, f"must have shape {list(shape)}, got {list(arr.shape)}")
            return None
        if not np.isfinite(arr).all():
            self.fail(path, "contains NaN or infinity")
            return None
        return arr

    def rotation(self, value: Any, path: str) -> np.ndarray | None:
        R = self.matrix(value, (3, 3), path)
        if R is not None and (not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0):
            self.fail(path, "must be a rotation matrix (orthonormal, determinant +1)")
            return None
        return R

    def file(self, root: Path, rel: Any, path: str, suffixes: tuple[str, ...] = ()) -> Path | None:
        if not isinstance(rel, str) or not rel:
            self.fail(path, "must be a relative file path")
            return None
        p = (root / rel).resolve()
        if not self.allow_outside and not p.is_relative_to(root.resolve()):
            self.fail(path, f"{rel!r} is {p}, outside the bundle {root.resolve()}; a bundle's files must lie "
                            "inside its folder (copy the file in, or allow shared files with "
                            f"allow_outside_paths=True or {ALLOW_OUTSIDE_ENV}=1)")
            return None
        if suffixes and p.suffix.lower() not in suffixes:
            self.fail(path, f"{rel!r} must be one of {'/'.join(suffixes)}")
        elif not p.is_file():
            self.fail(path, f"file {rel!r} not found in {root}")
            return None
        return p


def urdf_link_names(urdf: Path) -> set[str]:
    return {el.get("name") for el in ET.parse(urdf).getroot().iter("link")}


def read_manifest(root: str | Path) -> dict:
    root = Path(root)
    manifest = root / MANIFEST
    if not root.is_dir():
        raise SceneError(root, ["not a directory (a scene bundle is a directory with scene.json)"])
    if not manifest.is_file():
        raise SceneError(root, [f"{MANIFEST} not found"])
    try:
        doc = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise SceneError(manifest, [f"not valid JSON: {exc}"]) from None
    if not isinstance(doc, dict):
        raise SceneError(manifest, ["top level must be a JSON object"])
    return doc


def _camera_intrinsics(c: _Checker, cam: Any, path: str, seen: set[str]):
    """(name, width, height, K) of one camera entry, fixed or on a link; names are unique across both."""
    cname = c.get(cam, "name", path, str)
    if cname in seen:
        c.fail(f"{path}.name", f"duplicate camera name {cname!r}")
    seen.add(cname)
    w = c.get(cam, "width", path, int)
    h = c.get(cam, "height", path, int)
    for key, v in (("width", w), ("height", h)):
        if v is not None and v <= 0:
            c.fail(f"{path}.{key}", "must be > 0")
    K = c.matrix(cam.get("K") if isinstance(cam, dict) else None, (3, 3), f"{path}.K")
    if K is not None:
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            c.fail(f"{path}.K", f"focal lengths must be > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
        if not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
            c.fail(f"{path}.K", "must be a pinhole matrix [[fx,s,cx],[0,fy,cy],[0,0,1]]")
        elif w is not None and h is not None and w > 0 and h > 0 \
                and not (0 <= K[0, 2] <= w and 0 <= K[1, 2] <= h):
            c.fail(f"{path}.K", f"principal point ({K[0, 2]}, {K[1, 2]}) must lie inside the {w}x{h} image")
    return cname, w, h, K


def _camera_pose(c: _Checker, cam: Any, path: str, key: str) -> np.ndarray | None:
    """The rigid 4x4 pose cam[key] (cam_to_base or cam_to_link), checked."""
    T = c.matrix(cam.get(key) if isinstance(cam, dict) else None, (4, 4), f"{path}.{key}")
    if T is not None:
        if not np.allclose(T[3], [0, 0, 0, 1]):
            c.fail(f"{path}.{key}", "last row must be [0, 0, 0, 1]")
        c.rotation(T[:3, :3], f"{path}.{key}[:3,:3]")
    return T


def _fixed_cameras(c: _Checker, docs: list, prefix: str, seen: set[str]) -> list[CameraSpec]:
    """Entries {name, width, height, K, cam_to_base} -> the valid ones as CameraSpecs; problems into c."""
    cameras = []
    for i, cam in enumerate(docs):
        path = f"{prefix}[{i}]"
        cname, w, h, K = _camera_intrinsics(c, cam, path, seen)
        T = _camera_pose(c, cam, path, "cam_to_base")
        if all(v is not None for v in (cname, w, h, K, T)):
            cameras.append(CameraSpec(cname, w, h, K, T))
    return cameras


def read_fixed_cameras(docs: list, prefix: str = "cameras",
                       taken: Iterable[str] = ()) -> tuple[list[CameraSpec], list[str]]:
    """Fixed cameras given as scene.json's "cameras" entries (name, width, height, K [3x3], cam_to_base
    [4x4]), checked as scene.json's are: positive integer size, finite pinhole K with positive focal
    lengths and the principal point in the image, a rigid pose, names unique (also against `taken`).
    Returns (the cameras, every problem with its path under `prefix`); the cameras are complete only
    when there is no problem."""
    c = _Checker()
    cameras = _fixed_cameras(c, docs, prefix, set(taken))
    return cameras, c.problems


def camera_problems(bundle: SceneBundle) -> list[str]:
    """What the checks of scene.json's cameras find in an in-memory bundle's fixed and link cameras
    (paths as scene.json's: cameras[i].K, link_cameras[j].cam_to_link, ...)."""
    c = _Checker()
    seen: set[str] = set()
    _fixed_cameras(c, [cam.to_json() for cam in bundle.cameras], "cameras", seen)
    for i, cam in enumerate(bundle.link_cameras):
        _camera_intrinsics(c, cam.to_json(), f"link_cameras[{i}]", seen)
        _camera_pose(c, cam.to_json(), f"link_cameras[{i}]", "cam_to_link")
    return c.problems


def load_bundle(root: str | Path, known_links: Iterable[str] | None = None, device: str = "cpu",
                allow_outside_paths: bool | None = None) -> SceneBundle:
    """Read and validate a bundle directory; load every PLY.

    known_links: link names the simulator's robot has (used when the bundle brings no URDF of its own).
    allow_outside_paths: let scene.json name files outside the bundle's folder (shared files); None reads
    the environment variable GSENV_ALLOW_OUTSIDE_PATHS ("1" allows), else such paths are refused.
    Raises SceneError listing every problem (structure first; PLY contents once the structure is valid).
    This checks the bundle in itself; whether it has what a task needs is gsenv.scene.task_fit's check.
    """
    from gsenv.splat.ply import PlyError, load_ply

    root = Path(root).resolve()
    doc = read_manifest(root)
    c = _Checker(allow_outside=outside_paths_allowed(allow_outside_paths))
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        c.fail("schema_version", f"must be {SCHEMA_VERSION}, got {version!r} (a bundle from another gsenv version?)")
    name = c.get(doc, "name", "$", str) or root.name

    robot = c.get(doc, "robot", "$", dict) or {}
    urdf = None
    if robot.get("urdf") is not None:
        urdf = c.file(root, robot["urdf"], "robot.urdf", (".urdf",))
    links_doc = c.get(robot, "links", "robot", dict) or {}
    allowed = None
    if urdf is not None:
        try:
            allowed = urdf_link_names(urdf)
        except ET.ParseError as exc:
            c.fail("robot.urdf", f"not valid XML: {exc}")
    elif known_links is not None:
        allowed = set(known_links)
    link_files: dict[str, Path] = {}
    for link, rel in links_doc.items():
        if allowed is not None and link not in allowed:
            c.fail(f"robot.links.{link}", f"unknown link (the robot has {', '.join(sorted(allowed))})")
        p = c.file(root, rel, f"robot.links.{link}", (".ply",))
        if p is not None:
            link_files[link] = p

    object_docs = c.get(doc, "objects", "$", dict) or {}
    objects: dict[str, tuple[Path | None, dict, float | None, float | None]] = {}
    for obj, spec in object_docs.items():
        path = f"objects.{obj}"
        if not isinstance(spec, dict):
            c.fail(path, "must be an object")
            continue
        ply = c.file(root, spec.get("ply"), f"{path}.ply", (".ply",))
        collision = dict(spec.get("collision") or {"type": "builtin"})
        ctype = collision.get("type")
        if ctype not in COLLISION_TYPES:
            c.fail(f"{path}.collision.type", f"must be one of {COLLISION_TYPES}, got {ctype!r}")
        elif ctype == "box":
            hs = c.matrix(collision.get("half_size"), (3,), f"{path}.collision.half_size")
            if hs is not None and (hs <= 0).any():
                c.fail(f"{path}.collision.half_size", "must be positive")
        elif ctype == "mesh":
            mesh = c.file(root, collision.get("path"), f"{path}.collision.path")
            if mesh is not None:
                collision["path"] = str(mesh)
        mass = c.get(spec, "mass", path, float, required=False)
        friction = c.get(spec, "friction", path, float, required=False)
        if mass is not None and mass <= 0:
            c.fail(f"{path}.mass", "must be > 0")
        if friction is not None and friction < 0:
            c.fail(f"{path}.friction", "must be >= 0")
        objects[obj] = (ply, collision, mass, friction)

    bg = c.get(doc, "background", "$", dict, required=False) or {}
    bg_ply = c.file(root, bg["ply"], "background.ply", (".ply",)) if bg.get("ply") else None
    backdrop = c.file(root, bg["image"], "background.image", (".jpg", ".jpeg", ".png")) if bg.get("image") else None
    color = (0.0, 0.0, 0.0)
    if bg.get("color") is not None:
        col = c.matrix(bg["color"], (3,), "background.color")
        if col is not None and ((col < 0) | (col > 1)).any():
            c.fail("background.color", "must be RGB in [0, 1]")
        elif col is not None:
            color = tuple(float(v) for v in col)

    cam_docs = c.get(doc, "cameras", "$", list) or []
    if not cam_docs and "cameras" in doc:
        c.fail("cameras", "needs at least one camera")
    seen: set[str] = set()
    cameras = _fixed_cameras(c, cam_docs, "cameras", seen)

    link_cameras: list[CameraSpec] = []
    for i, cam in enumerate(c.get(doc, "link_cameras", "$", list, required=False) or []):
        path = f"link_cameras[{i}]"
        cname, w, h, K = _camera_intrinsics(c, cam, path, seen)
        link = c.get(cam, "link", path, str)
        known = allowed if allowed is not None else set(links_doc)
        if link is not None and known and link not in known:
            c.fail(f"{path}.link", f"unknown link {link!r} (the robot has {', '.join(sorted(known))})")
        T = _camera_pose(c, cam, path, "cam_to_link")
        if all(v is not None for v in (cname, w, h, K, link, T)):
            link_cameras.append(CameraSpec(cname, w, h, K, T, link=link))

    sim = c.get(doc, "splat_to_sim", "$", dict, required=False)
    similarity = Similarity()
    if sim is not None:
        s = c.get(sim, "scale", "splat_to_sim", float)
        R = c.rotation(sim.get("rotation"), "splat_to_sim.rotation")
        t = c.matrix(sim.get("translation"), (3,), "splat_to_sim.translation")
        if s is not None and s <= 0:
            c.fail("splat_to_sim.scale", "must be > 0")
        elif all(v is not None for v in (s, R, t)):
            similarity = Similarity(s, R, t)

    render = c.get(doc, "render", "$", dict, required=False) or {}
    eps2d = c.get(render, "eps2d", "render", float, required=False)
    if eps2d is not None and eps2d < 0:
        c.fail("render.eps2d", "must be >= 0")

    instructions = c.get(doc, "instructions", "$", list) or []
    if "instructions" in doc and (not instructions or not all(isinstance(s, str) and s.strip() for s in instructions)):
        c.fail("instructions", "must be a non-empty list of non-empty strings")

    if c.problems:
        raise SceneError(root / MANIFEST, c.problems)

    def ply(p: Path, where: str):
        try:
            return load_ply(p, device=device)
        except PlyError as exc:
            c.fail(where, str(exc))
            return None

    links = {link: ply(p, f"robot.links.{link}") for link, p in link_files.items()}
    objs = {}
    for obj, (p, collision, mass, friction) in objects.items():
        g = ply(p, f"objects.{obj}.ply")
        objs[obj] = SceneObject(obj, g, collision, mass, friction)
    background = ply(bg_ply, "background.ply") if bg_ply is not None else None
    if c.problems:
        raise SceneError(root / MANIFEST, c.problems)
    return SceneBundle(name=name, links=links, objects=objs, background=background, cameras=cameras,
                       instructions=list(instructions), splat_to_sim=similarity, robot_urdf=urdf,
                       backdrop_image=backdrop, background_color=color,
                       eps2d=0.3 if eps2d is None else eps2d, root=root, link_cameras=link_cameras)


def write_bundle(bundle: SceneBundle, root: str | Path, extra: dict | None = None) -> Path:
    """Write a bundle directory (PLYs + scene.json). `extra` goes into the manifest's "build" field.

    The robot URDF and backdrop image are referenced by path relative to `root` when inside it,
    else copied in.
    """
    import shutil

    from gsenv.splat.ply import save_ply

    root = Path(root)
    (root / "robot").mkdir(parents=True, exist_ok=True)
    (root / "objects").mkdir(exist_ok=True)

    def rel_or_copy(p: Path | None, dest_dir: str) -> str | None:
        if p is None:
            return None
        p = Path(p)
        try:
            return str(p.resolve().relative_to(root.resolve()))
        except ValueError:
            (root / dest_dir).mkdir(exist_ok=True)
            shutil.copy2(p, root / dest_dir / p.name)
            return f"{dest_dir}/{p.name}"

    links = {}
    for link, g in bundle.links.items():
        save_ply(g, root / "robot" / f"{link}.ply")
        links[link] = f"robot/{link}.ply"
    objects = {}
    for name, obj in bundle.objects.items():
        save_ply(obj.gaussians, root / "objects" / f"{name}.ply")
        collision = dict(obj.collision)
        if collision.get("type") == "mesh":
            collision["path"] = rel_or_copy(Path(collision["path"]), "objects")
        entry = {"ply": f"objects/{name}.ply", "collision": collision}
        if obj.mass is not None:
            entry["mass"] = obj.mass
        if obj.friction is not None:
            entry["friction"] = obj.friction
        objects[name] = entry
    background: dict[str, Any] = {"color": list(bundle.background_color)}
    if bundle.background is not None:
        save_ply(bundle.background, root / "background.ply")
        background["ply"] = "background.ply"
    if bundle.backdrop_image is not None:
        background["image"] = rel_or_copy(bundle.backdrop_image, ".")
    doc = {
        "schema_version": SCHEMA_VERSION,
        "name": bundle.name,
        "robot": {"urdf": rel_or_copy(bundle.robot_urdf, "robot"), "links": links},
        "objects": objects,
        "background": background,
        "cameras": [cam.to_json() for cam in bundle.cameras],
        "link_cameras": [cam.to_json() for cam in bundle.link_cameras],
        "splat_to_sim": bundle.splat_to_sim.to_json(),
        "instructions": list(bundle.instructions),
        "render": {"eps2d": bundle.eps2d},
    }
    if extra:
        doc["build"] = extra
    (root / MANIFEST).write_text(json.dumps(doc, indent=2))
    return root
