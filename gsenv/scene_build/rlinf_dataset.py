"""Adapter: the real-cell dataset in the RLinf/gsenv-assets-v0 layout -> an in-memory SceneBundle.

The layout (see the README's "Real-cell dataset" section):

    robot/my_franka/fr3_wristcam.urdf              robot description (+ .srdf, meshes)
    robot/my_franka/parts/<link>_3dgs_abs.ply      per-link gaussians in WORLD coordinates at the
                                                   default joint configuration, minus an offset
    object/<name>/object_3dgs_abs.ply              object gaussians (centred on their centroid here)
    object/<name>/mesh_w_vertex_color_abs.obj      object visual + collision mesh
    object/table/table_abs.ply                     static background
    background/background_image/green_background.jpg

Conventions we could NOT verify against the real files are parameters of `RLinfLayout`, with
defaults that reproduce what the research code does:
- `robot_ply_offset`: added to a link PLY's coordinates to get simulator-world coordinates
  (the research code translates by +[0, 0, 0.02] before undoing the link's forward kinematics);
- `link_files`: link name -> PLY file stem (finger file names; the URDF's link names);
- object `offset` / `scale`: after centring, the research code translates the plate's gaussians by
  [-0.005, -0.005, 0] and scales their centres by [0.96, 1.0, 0.96] (axes as stored in the file).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gsenv.scene.bundle import SceneBundle, SceneObject
from gsenv.scene.format import SceneError, urdf_link_names
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.ply import PlyError, load_ply

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectLayout:
    ply: str
    mesh: str | None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mass: float = 0.3
    friction: float = 1.0


def _default_objects() -> dict[str, ObjectLayout]:
    return {
        "cube": ObjectLayout("object/cube/object_3dgs_abs.ply", "object/cube/mesh_w_vertex_color_abs.obj"),
        "plate": ObjectLayout("object/plate/object_3dgs_abs.ply", "object/plate/mesh_w_vertex_color_abs.obj",
                              offset=(-0.005, -0.005, 0.0), scale=(0.96, 1.0, 0.96)),
    }


def _default_link_files() -> dict[str, str]:
    from gsenv.sim import names

    return {link: f"{link}_3dgs_abs" for link in names.ROBOT_VISUAL_LINK_NAMES}


@dataclass(frozen=True)
class RLinfLayout:
    """Where the files are and the conventions that turn them into a bundle (see module doc)."""

    urdf: str = "robot/my_franka/fr3_wristcam.urdf"
    parts_dir: str = "robot/my_franka/parts"
    link_files: dict[str, str] = field(default_factory=_default_link_files)
    robot_ply_offset: tuple[float, float, float] = (0.0, 0.0, 0.02)
    default_qpos: dict[str, float] | None = None  # joint name -> value; None: the FR3 default cfg
    objects: dict[str, ObjectLayout] = field(default_factory=_default_objects)
    table: str = "object/table/table_abs.ply"
    backdrop: str | None = "background/background_image/green_background.jpg"


def default_joint_config() -> dict[str, float]:
    from gsenv.sim import names

    return dict(zip(names.JOINT_NAMES, names.FR3_DEFAULT_QPOS))


def link_world_transforms(urdf: Path, joint_config: dict[str, float]) -> dict[str, np.ndarray]:
    """Forward kinematics of a URDF at a joint configuration -> {link: [4,4] pose in the root frame}."""
    batch = forward_kinematics(urdf, {j: [v] for j, v in joint_config.items()})
    return {link: m[0] for link, m in batch.items()}


def forward_kinematics(urdf: str | Path, joints: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Forward kinematics of a URDF at N joint configurations, without a simulator.

    joints: {joint name: [N] values (rad or m)}, one entry per movable joint of the URDF (others are
    ignored). Returns {link: float64 [N, 4, 4] pose in the URDF's root frame}. ValueError naming the
    joints that are missing."""
    import contextlib
    import io

    import pytorch_kinematics as pk

    # its URDF parser writes a line to stderr for every attribute it does not know (friction, ...)
    with contextlib.redirect_stderr(io.StringIO()):
        chain = pk.build_chain_from_urdf(Path(urdf).read_bytes())
    missing = [j for j in chain.get_joint_parameter_names() if j not in joints]
    if missing:
        raise ValueError(f"joint configuration lacks joints {missing} of {urdf}")
    q = torch.stack([torch.as_tensor(np.asarray(joints[j], dtype=np.float64).reshape(-1))
                     for j in chain.get_joint_parameter_names()], -1)  # [N, J]
    chain = chain.to(dtype=torch.float64)
    return {link: t.get_matrix().numpy() for link, t in chain.forward_kinematics(q).items()}


def _to_frame(g: Gaussians, T_world_frame: np.ndarray, world_offset: np.ndarray) -> Gaussians:
    """Gaussians whose coordinates + world_offset are world positions -> gaussians in the frame T."""
    inv = np.linalg.inv(T_world_frame)
    R = torch.as_tensor(inv[:3, :3], dtype=g.dtype)
    t = torch.as_tensor(inv[:3, :3] @ world_offset + inv[:3, 3], dtype=g.dtype)
    return g.transform(R, t)


def load_rlinf_dataset(
    root: str | Path, layout: RLinfLayout | None = None, name: str = "gsenv-assets-v0"
) -> SceneBundle:
    """Read a directory in the RLinf/gsenv-assets-v0 layout into a SceneBundle (link and object
    gaussians converted into their body frames). Raises SceneError listing every missing or
    malformed file."""
    from gsenv.scene_build.default import recipe_camera
    from gsenv.sim import names

    root = Path(root)
    layout = layout or RLinfLayout()
    problems: list[str] = []

    def need(rel: str) -> Path | None:
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: file not found")
            return None
        return p

    urdf = need(layout.urdf)
    link_paths = {link: need(f"{layout.parts_dir}/{stem}.ply") for link, stem in layout.link_files.items()}
    obj_paths = {n: (need(o.ply), need(o.mesh) if o.mesh else None) for n, o in layout.objects.items()}
    table = need(layout.table)
    backdrop = need(layout.backdrop) if layout.backdrop else None
    if urdf is not None:
        unknown = sorted(set(layout.link_files) - urdf_link_names(urdf))
        if unknown:
            problems.append(f"{layout.urdf}: has no links {unknown} (set RLinfLayout.link_files)")
    if problems:
        raise SceneError(root, problems)

    def ply(p: Path) -> Gaussians | None:
        try:
            return load_ply(p)
        except PlyError as exc:
            problems.append(str(exc))
            return None

    fk = link_world_transforms(urdf, layout.default_qpos or default_joint_config())
    offset = np.asarray(layout.robot_ply_offset, dtype=np.float64)
    links = {}
    for link, p in link_paths.items():
        g = ply(p)
        if g is not None:
            links[link] = _to_frame(g, fk[link], offset)
    objects = {}
    for obj_name, (p, mesh) in obj_paths.items():
        spec = layout.objects[obj_name]
        g = ply(p)
        if g is None:
            continue
        # centre on the centroid, then the research code's offset and per-axis scale of the centres
        means = ((g.means - g.means.mean(0) + torch.tensor(spec.offset, dtype=g.dtype))
                 * torch.tensor(spec.scale, dtype=g.dtype))
        g = Gaussians(means, g.quats, g.log_scales, g.opacity_logits, g.sh)
        collision = {"type": "mesh", "path": str(mesh)} if mesh else {"type": "builtin"}
        objects[obj_name] = SceneObject(obj_name, g, collision, spec.mass, spec.friction)
    background = ply(table)
    if problems:
        raise SceneError(root, problems)
    camera = recipe_camera()  # the research code's calibrated camera (the default scene's too)
    return SceneBundle(name=name, links=links, objects=objects, background=background, cameras=[camera],
                       instructions=[names.LANGUAGE_INSTRUCTION], robot_urdf=urdf, backdrop_image=backdrop,
                       root=root)
