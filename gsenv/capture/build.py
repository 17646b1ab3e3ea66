"""One 3DGS capture of a robot cell -> a scene bundle (the library behind `gsenv scene build`).

1. Frame: the similarity splat -> robot base, from >= 3 point pairs (fit_similarity), refined by
   ICP with scale of the gaussians near the robot against the URDF's surfaces posed at Q.
2. Objects: each object's mesh located by rigid ICP against the gaussians near its given position.
3. Segmentation: every gaussian to a link or object (gaussians.segmentation), floaters dropped, the
   rest background.
4. Bundle: each body's gaussians re-expressed in its own frame through the similarity and the
   body's pose (means, rotations, log scales, SH rotated: the renderer evaluates SH with the view
   direction in the body frame); the background stays in the splat frame with splat_to_sim.
"""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gsenv.capture.inputs import CaptureError
from gsenv.capture.segmentation import BACKGROUND, Segmentation, segment
from gsenv.capture.surfaces import DEFAULT_SPACING, Surface, mesh_surface, robot_surface
from gsenv.geometry import rigid_inverse
from gsenv.scene.bundle import CameraSpec, SceneBundle, SceneObject, Similarity
from gsenv.scene.task_fit import DEFAULT_TASK_NEEDS, TaskNeeds, bundle_problems, urdf_problems
from gsenv.splat.gaussians import Gaussians

__all__ = ["ICP_START_DISTANCE", "MIN_TOL", "TOL_SIGMAS", "ICP_POINTS", "BuildReport", "initial_similarity",
           "fit_frame", "in_body_frame", "copy_urdf", "build_scene", "write_scene"]

ICP_START_DISTANCE = 0.05  # m: how far off the point pairs' similarity may be
MIN_TOL = 0.0003  # m: the segmentation's distance allowance never shrinks below this
TOL_SIGMAS = 3.0  # ... and is this many robust sigmas of the frame fit's residuals
ICP_POINTS = 20000  # gaussians (random subset) the frame fit uses


@dataclass
class BuildReport:
    similarity: Similarity
    pair_residuals_mm: list[float]
    icp_rms_mm: float
    icp_sigma_mm: float
    icp_inliers: int
    tol_mm: float
    counts: dict[str, int]
    ambiguous_share: float
    objects: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"splat_to_sim": self.similarity.to_json(), "pair_residuals_mm": self.pair_residuals_mm,
                "icp_rms_mm": self.icp_rms_mm, "icp_sigma_mm": self.icp_sigma_mm, "icp_inliers": self.icp_inliers,
                "tol_mm": self.tol_mm, "counts": self.counts, "ambiguous_share": self.ambiguous_share,
                "objects": self.objects}

    def format(self) -> str:
        s = self.similarity
        lines = [f"frame: scale {s.scale:.6g}, ICP residual {self.icp_rms_mm:.2f} mm rms "
                 f"({self.icp_sigma_mm:.2f} mm robust) over {self.icp_inliers} gaussians"]
        if self.pair_residuals_mm:
            lines.append("point pairs after ICP: " + ", ".join(f"{r:.1f}" for r in self.pair_residuals_mm) + " mm")
        for name, o in self.objects.items():
            lines.append(f"object {name}: at {o['position']} m, {o['inliers']} gaussians on its mesh, "
                         f"residual {o['rms_mm']:.2f} mm")
        lines.append(f"segmentation (allowance {self.tol_mm:.2f} mm + each gaussian's size): "
                     f"{self.ambiguous_share * 100:.2f}% of the body gaussians were ambiguous")
        for name, n in self.counts.items():
            lines.append(f"  {name:<16} {n:>8}")
        return "\n".join(lines)


def initial_similarity(pair_src: np.ndarray | None, pair_dst: np.ndarray | None) -> Similarity:
    from gsenv.alignment.similarity import fit_similarity

    if pair_src is None:
        raise CaptureError("no point pairs: the splat's frame and scale are arbitrary and gsenv has no automatic "
                           "initial guess; pick >= 3 points (4+ spread over the robot and the table) in a splat "
                           "viewer and give them with --points points.json")
    try:
        return fit_similarity(pair_src, pair_dst)
    except ValueError as exc:
        raise CaptureError(f"--points: {exc}") from None


def fit_frame(means: np.ndarray, init: Similarity, robot: Surface, seed: int = 0):
    """ICP with scale of the capture's gaussian centres [N, 3] against the posed robot surface."""
    from gsenv.capture.registration import icp_similarity

    rng = np.random.default_rng(seed)
    sub = rng.choice(len(means), min(len(means), ICP_POINTS), replace=False)
    try:
        return icp_similarity(means[sub], init, robot.points, robot.normals, max_distance=ICP_START_DISTANCE,
                              min_distance=MIN_TOL)
    except ValueError as exc:
        raise CaptureError(f"frame fit: {exc}") from None


def in_body_frame(g: Gaussians, sim: Similarity, body_pose: np.ndarray) -> Gaussians:
    """Splat-frame gaussians -> the body's frame: x_body = T^-1 (s R x + t); orientations, log scales
    and SH coefficients follow (Gaussians.transform)."""
    Ti = rigid_inverse(torch.as_tensor(body_pose, dtype=torch.float64)).numpy()
    R = Ti[:3, :3] @ sim.rotation
    t = Ti[:3, :3] @ sim.translation + Ti[:3, 3]
    g64 = g.to(dtype=torch.float64)
    return g64.transform(torch.as_tensor(R), torch.as_tensor(t), scale=float(sim.scale)).to(dtype=torch.float32)


def copy_urdf(urdf: Path, dest_dir: Path) -> Path:
    """The URDF written into the bundle with absolute mesh paths (+ its .srdf beside it, if any)."""
    root = ET.parse(urdf).getroot()
    for el in root.iter("mesh"):
        p = Path(el.get("filename"))
        el.set("filename", str(p if p.is_absolute() else (urdf.parent / p).resolve()))
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / urdf.name
    ET.ElementTree(root).write(out, encoding="unicode")
    srdf = urdf.with_suffix(".srdf")
    if srdf.is_file():
        shutil.copy2(srdf, dest_dir / srdf.name)
    return out


def build_scene(splat: Gaussians, urdf: Path, joint_config: dict[str, float], objects: dict[str, tuple],
                pair_src: np.ndarray | None, pair_dst: np.ndarray | None, object_hints: dict[str, np.ndarray],
                cameras: list[CameraSpec], instruction: str | None = None, name: str = "capture",
                eps2d: float = 0.3, spacing: float = DEFAULT_SPACING, progress: bool = True,
                needs: TaskNeeds | None = DEFAULT_TASK_NEEDS) -> tuple[SceneBundle, BuildReport, Segmentation]:
    """Build the bundle in memory (see the module doc).

    Args:
        splat: the capture's gaussians (splat frame).
        urdf: robot description (meshes checked); joint_config: {joint: position} at capture time.
        objects: {name: (mesh path, trimesh mesh)} in metres, the object's frame = the mesh's.
        pair_src, pair_dst: [P, 3] point pairs (splat, robot base) or None.
        object_hints: {name: [3]} a point on each object, splat coordinates.
        cameras: calibrated cameras (robot-base frame).
        needs: what the bundle is for (gsenv.scene.task_fit): the URDF's joints and links and an object
            for each of the task's are checked before the build, every body's gaussians and the cameras
            after it; None builds whatever the capture gives (e.g. a robot without objects).
    Returns:
        (bundle, report, segmentation) with bundle.robot_urdf the given URDF (write_scene copies it).
    Raises:
        CaptureError: no point pairs, an object without a position, a fit that finds nothing, what
            the task needs missing from the inputs or the built bundle.
    """
    from tqdm.auto import tqdm

    from gsenv.capture.objects import locate_object
    from gsenv.scene_build.rlinf_dataset import link_world_transforms
    from gsenv.sim import names

    if needs is not None:
        missing = [obj for obj in needs.objects if obj not in objects]
        problems = urdf_problems(urdf, needs, shown_as=Path(urdf).name) + (
            [f"no mesh of {', '.join(missing)}, which task {needs.task} simulates"] if missing else [])
        if problems:
            raise CaptureError("the inputs cannot make a bundle for the task: " + "; ".join(problems))
    for obj in objects:
        if obj not in object_hints:
            raise CaptureError(f"object {obj!r}: give a point on it (splat coordinates) in points.json as "
                               f"\"objects\": {{\"{obj}\": [x, y, z]}}")
    bar = tqdm(total=4, desc="scene build", unit="step", disable=not progress)
    init = initial_similarity(pair_src, pair_dst)
    robot = robot_surface(urdf, joint_config, spacing)
    means = splat.means.detach().cpu().double().numpy()
    bar.set_postfix_str("frame (ICP with scale)")
    icp = fit_frame(means, init, robot)
    sim = icp.similarity
    bar.update(1)
    y = sim.apply(means)
    bar.set_postfix_str("objects")
    from scipy.spatial import cKDTree

    near_robot = cKDTree(robot.points).query(y, distance_upper_bound=0.01)[0] < 0.01
    fits, surfaces = {}, [robot]
    for i, (obj, (_path, mesh)) in enumerate(objects.items()):
        surf = mesh_surface(obj, mesh, spacing, seed=1000 + i)
        try:
            fit = locate_object(obj, surf, y, sim.apply(object_hints[obj][None])[0], exclude=near_robot,
                                min_distance=MIN_TOL)
        except ValueError as exc:
            raise CaptureError(str(exc)) from None
        fits[obj] = fit
        surfaces.append(surf.transformed(fit.pose))
    bar.update(1)
    bar.set_postfix_str("segmentation")
    tol = max(MIN_TOL, TOL_SIGMAS * icp.sigma)
    sigma_min = splat.log_scales.detach().cpu().double().min(1).values.exp().numpy() * sim.scale
    seg = segment(y, sigma_min, Surface.concat(surfaces), tol, floater_points=means)
    bar.update(1)
    bar.set_postfix_str("bundle")
    fk = link_world_transforms(urdf, joint_config)
    links = {}
    for link in robot.names:
        m = seg.mask(link)
        if m.any():
            links[link] = in_body_frame(splat.subset(torch.as_tensor(m)), sim, fk[link])
    objs = {}
    for obj, (path, _mesh) in objects.items():
        m = seg.mask(obj)
        if not m.any():
            raise CaptureError(f"object {obj!r}: no gaussians lie on its mesh where it was located "
                               f"({np.round(fits[obj].pose[:3, 3], 3).tolist()} m): check its position in "
                               "points.json and that the mesh is in metres")
        g = in_body_frame(splat.subset(torch.as_tensor(m)), sim, fits[obj].pose)
        objs[obj] = SceneObject(obj, g, {"type": "mesh", "path": str(Path(path).resolve())})
    bg = seg.labels == BACKGROUND
    background = splat.subset(torch.as_tensor(bg)).to(dtype=torch.float32) if bg.any() else None
    bundle = SceneBundle(name=name, links=links, objects=objs, background=background, cameras=list(cameras),
                         instructions=[instruction or names.LANGUAGE_INSTRUCTION], splat_to_sim=sim,
                         robot_urdf=Path(urdf), eps2d=eps2d)
    bar.update(1)
    bar.close()
    problems = [] if needs is None else bundle_problems(bundle, needs)
    if problems:
        raise CaptureError(f"the built bundle lacks what task {needs.task} needs (nothing was written): "
                           + "; ".join(problems) + "; a body without gaussians was not found in the capture: check "
                           "--qpos, the point pairs and that the capture shows it")
    pair_res = []
    if pair_src is not None:
        pair_res = [round(float(v) * 1000, 2) for v in np.linalg.norm(sim.apply(pair_src) - pair_dst, axis=1)]
    report = BuildReport(sim, pair_res, round(icp.rms * 1000, 3), round(icp.sigma * 1000, 3), int(icp.inliers.sum()),
                         round(tol * 1000, 3), seg.counts(), round(seg.ambiguous_share, 5),
                         {k: {"position": np.round(f.pose[:3, 3], 4).tolist(), "pose": f.pose.tolist(),
                              "inliers": f.inliers, "rms_mm": round(f.rms * 1000, 3)} for k, f in fits.items()})
    return bundle, report, seg


def write_scene(bundle: SceneBundle, report: BuildReport, out: Path) -> Path:
    """Write the bundle (scene.json + PLYs, the URDF with absolute mesh paths, the object meshes) and
    build.json (the report) into out, which must be new or empty."""
    import dataclasses

    from gsenv.scene.format import write_bundle

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaptureError(f"--out {out}: exists and is not empty; choose a new directory (or empty it)")
    out.mkdir(parents=True, exist_ok=True)
    urdf = copy_urdf(Path(bundle.robot_urdf), out / "robot") if bundle.robot_urdf else None
    write_bundle(dataclasses.replace(bundle, robot_urdf=urdf), out, extra={"builder": "gsenv scene build"})
    (out / "build.json").write_text(json.dumps(report.to_json(), indent=1))
    return out
