"""The inputs of `gsenv scene build`, each checked where it enters, with one message saying what to do.

- the capture: a 3DGS PLY (gsenv.splat.ply.load_ply names what is missing);
- the robot: a URDF whose visual meshes exist, with the joints the task drives and the links it reads
  (gsenv.scene.task_fit); the joint positions at capture time, one per movable joint;
- the objects: NAME=MESH, one for each of the task's objects;
- points.json: {"pairs": [{"splat": [x, y, z], "robot": [x, y, z]}, ...] (>= 3, picked in any
  viewer: the splat's coordinates and the same point in the robot-base frame, metres),
  "objects": {NAME: [x, y, z]} (a point on or near each object, in the splat's coordinates)};
- cameras: JSON files, each one camera {"name", "width", "height", "K" [3x3], "cam_to_base"
  [4x4], OpenCV axes in the robot-base frame} or {"cameras": [...]}, checked as scene.json's cameras.

Everything the task needs of the bundle that can be known from the inputs is checked here, before the
build starts (the rest, every body getting gaussians, by build_scene before it returns).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from gsenv.scene.bundle import CameraSpec
from gsenv.scene.format import read_fixed_cameras
from gsenv.scene.task_fit import DEFAULT_TASK_NEEDS, TaskNeeds, urdf_problems

__all__ = ["CaptureError", "urdf_mesh_problems", "read_urdf", "movable_joints", "parse_qpos", "parse_objects",
           "load_object_mesh", "read_points", "read_cameras"]


class CaptureError(ValueError):
    """A malformed input of the scene builder; the message says which and what to do."""


def urdf_mesh_problems(urdf: Path) -> list[str]:
    """Visual or collision mesh files a URDF names that are not there."""
    missing = []
    for el in ET.parse(urdf).getroot().iter("mesh"):
        name = el.get("filename") or ""
        if name.startswith("package://"):
            missing.append(f"{name} (package:// paths are not resolved: write the path relative to the URDF)")
            continue
        path = Path(name) if Path(name).is_absolute() else urdf.parent / name
        if not path.is_file():
            missing.append(str(path))
    return sorted(set(missing))


def read_urdf(path: str | Path, needs: TaskNeeds | None = DEFAULT_TASK_NEEDS) -> Path:
    """The URDF's path once it parses, its meshes exist and it has what the task needs (None: any robot)."""
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"--urdf {path}: file not found")
    try:
        ET.parse(path)
    except ET.ParseError as exc:
        raise CaptureError(f"--urdf {path}: not valid XML ({exc})") from None
    missing = urdf_mesh_problems(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise CaptureError(f"--urdf {path}: {len(missing)} mesh file(s) it names are missing: {shown}; copy the "
                           "meshes beside the URDF (paths are relative to the URDF's folder)")
    problems = [] if needs is None else urdf_problems(path, needs, shown_as=path.name)
    if problems:
        raise CaptureError(f"--urdf {path}: " + "; ".join(problems) + f" (a bundle for task {needs.task} needs "
                           "its robot, named as in gsenv.sim.names)")
    return path


def movable_joints(urdf: Path) -> list[str]:
    """The URDF's movable joints, in the order --qpos takes them (the kinematic chain's order)."""
    import contextlib
    import io

    import pytorch_kinematics as pk

    with contextlib.redirect_stderr(io.StringIO()):
        chain = pk.build_chain_from_urdf(Path(urdf).read_bytes())
    return list(chain.get_joint_parameter_names())


def parse_qpos(text: str | list, urdf: Path) -> dict[str, float]:
    """'q1,q2,...' (or a list of numbers) -> {joint: value}, one value per movable joint."""
    joints = movable_joints(urdf)
    try:
        values = [float(v) for v in (text.replace(",", " ").split() if isinstance(text, str) else text)]
    except ValueError:
        raise CaptureError(f"--qpos {text!r}: not a list of numbers; give {len(joints)} comma-separated joint "
                           f"positions (rad or m) for {', '.join(joints)}") from None
    if len(values) != len(joints) or not np.isfinite(values).all():
        raise CaptureError(f"--qpos has {len(values)} value(s) but {urdf.name} has {len(joints)} movable joints: "
                           f"give one finite position per joint, in this order: {', '.join(joints)}")
    return dict(zip(joints, values))


def parse_objects(items: list[str] | None, needs: TaskNeeds | None = DEFAULT_TASK_NEEDS) -> dict[str, Path]:
    """['cube=cube.obj', ...] -> {name: mesh path}: one for each of the task's objects (None: any
    names, any number)."""
    out: dict[str, Path] = {}
    for item in items or []:
        name, sep, mesh = item.partition("=")
        if not sep or not name or not mesh:
            raise CaptureError(f"--object {item!r}: write NAME=MESH, e.g. --object cube=cube.obj")
        if needs is not None and name not in needs.objects:
            raise CaptureError(f"--object {item!r}: the task's objects are {', '.join(needs.objects)}")
        if name in out:
            raise CaptureError(f"--object {name} is given twice")
        path = Path(mesh)
        if not path.is_file():
            raise CaptureError(f"--object {item!r}: mesh file {path} not found")
        out[name] = path
    missing = [] if needs is None else [name for name in needs.objects if name not in out]
    if missing:
        raise CaptureError(f"task {needs.task} simulates {', '.join(needs.objects)}: give a mesh of each (in "
                           f"metres) and a point on it in points.json; missing: "
                           + ", ".join(f"--object {name}=MESH" for name in missing))
    return out


def load_object_mesh(name: str, path: Path):
    import trimesh

    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise CaptureError(f"--object {name}={path}: not a readable mesh ({type(exc).__name__}: {exc})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or mesh.area <= 0:
        raise CaptureError(f"--object {name}={path}: the mesh has no faces")
    return mesh


def _xyz(value, where: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64) if isinstance(value, list) else None
    if arr is None or arr.shape != (3,) or not np.isfinite(arr).all():
        raise CaptureError(f"{where}: must be [x, y, z] (three numbers), got {value!r}")
    return arr


def _read_json(path: Path, where: str) -> Any:
    """The JSON document at path; CaptureError naming `where` when it is missing or not JSON."""
    if not path.is_file():
        raise CaptureError(f"{where}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CaptureError(f"{where}: not valid JSON ({exc})") from None


def read_points(path: str | Path | None) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray]]:
    """points.json -> (splat points [P, 3], robot points [P, 3], {object: splat point [3]}); None pairs
    when the file gives none."""
    if path is None:
        return None, None, {}
    path = Path(path)
    where = f"--points {path}"
    doc = _read_json(path, where)
    if not isinstance(doc, dict) or not set(doc) <= {"pairs", "objects"}:
        raise CaptureError(f"{where}: must be an object with 'pairs' and/or 'objects' (see `gsenv scene build -h`)")
    pairs = doc.get("pairs") or []
    if not isinstance(pairs, list) or not all(isinstance(p, dict) and set(p) == {"splat", "robot"} for p in pairs):
        raise CaptureError(f"{where}: 'pairs' must be a list of {{\"splat\": [x, y, z], \"robot\": [x, y, z]}}")
    if pairs and len(pairs) < 3:
        raise CaptureError(f"{where}: {len(pairs)} point pair(s); the frame needs at least 3 (better 4+ spread "
                           "over the robot and the table)")
    src = np.stack([_xyz(p["splat"], f"{where}: pairs[{i}].splat") for i, p in enumerate(pairs)]) if pairs else None
    dst = np.stack([_xyz(p["robot"], f"{where}: pairs[{i}].robot") for i, p in enumerate(pairs)]) if pairs else None
    objects = doc.get("objects") or {}
    if not isinstance(objects, dict):
        raise CaptureError(f"{where}: 'objects' must map object names to [x, y, z] (splat coordinates)")
    return src, dst, {k: _xyz(v, f"{where}: objects.{k}") for k, v in objects.items()}


def read_cameras(paths: list[str] | None) -> list[CameraSpec]:
    """Camera JSON files -> CameraSpecs, each checked as scene.json's cameras are (positive integer
    size, a pinhole K with positive focal lengths and the principal point in the image, a rigid
    cam_to_base, all finite) and names unique across the files."""
    cams: list[CameraSpec] = []
    for path in paths or []:
        path = Path(path)
        where = f"--camera {path}"
        doc = _read_json(path, where)
        docs = doc.get("cameras") if isinstance(doc, dict) and "cameras" in doc else [doc]
        if not isinstance(docs, list) or not docs:
            raise CaptureError(f"{where}: 'cameras' must be a non-empty list of cameras")
        got, problems = read_fixed_cameras(docs, "cameras", taken=[c.name for c in cams])
        if problems:
            raise CaptureError(f"{where}: " + "; ".join(problems) + " (a camera is {\"name\", \"width\", "
                               "\"height\", \"K\": 3x3, \"cam_to_base\": 4x4 (OpenCV axes, robot-base frame)})")
        cams += got
    return cams
