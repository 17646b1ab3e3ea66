"""The alignment check: splat render vs the simulator's own meshes, body by body, pixel by pixel.

For N random states (joint configuration with the hand in view, object poses) the simulator sets
the state and renders its meshes' segmentation from each calibrated camera (SAPIEN); the splat
renderer draws the bundle's bodies at the body poses read back from the simulator, from the same
cameras, and each pixel goes to the body with the largest share of its opacity (if >= 0.5). Per
body, camera and state we measure the visible pixels in both, the mask IoU and the offset of the
mask centroids in pixels; "robot" is the union of all robot links.

Verdicts: a body is judged when it covers >= min_pixels in the mesh view or in the splat view
(a body that shows up only in the splat render is misplaced too); it fails when its IoU is below
min_iou. Bodies covering fewer pixels are reported as "small" (or "out_of_view" when they cover
none in either), never failed.

The background is left out on both sides: this compares the bodies' geometry and poses (the
simulator's table has no visual, and the splat background does not move).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gsenv.atomic import write_text_atomic
from gsenv.scene.bundle import SceneBundle

__all__ = ["ROBOT", "DEFAULT_MIN_IOU", "DEFAULT_MIN_PIXELS", "DEFAULT_IMAGE_SIZE", "STATUSES", "PoseTransform",
           "MaskStats", "mask_stats", "verdict", "BodyResult", "AlignmentReport", "check_alignment"]

logger = logging.getLogger(__name__)

ROBOT = "robot"
"""Name of the pseudo-body "every robot link together" in results."""
DEFAULT_MIN_IOU = 0.85
DEFAULT_MIN_PIXELS = 200
DEFAULT_IMAGE_SIZE = (224, 224)
"""(height, width) of the renders."""
STATUSES = ("pass", "fail", "small", "out_of_view")

PoseTransform = Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]


# ----------------------------------------------------------------------------------------- metrics
@dataclass
class MaskStats:
    mesh_pixels: int
    splat_pixels: int
    intersection: int
    union: int
    iou: float | None
    """|splat ∩ mesh| / |splat ∪ mesh|; None when both masks are empty."""
    centroid_offset_px: float | None
    """Distance between the two masks' centroids in pixels; None when either is empty."""


def mask_stats(splat: np.ndarray, mesh: np.ndarray) -> MaskStats:
    """Compare two boolean masks [H, W]."""
    splat, mesh = np.asarray(splat, bool), np.asarray(mesh, bool)
    if splat.shape != mesh.shape:
        raise ValueError(f"masks must have one shape, got {splat.shape} and {mesh.shape}")
    inter = int(np.count_nonzero(splat & mesh))
    union = int(np.count_nonzero(splat | mesh))
    ns, nm = int(splat.sum()), int(mesh.sum())
    offset = None
    if ns and nm:
        cs = np.argwhere(splat).mean(0)
        cm = np.argwhere(mesh).mean(0)
        offset = float(np.linalg.norm(cs - cm))
    return MaskStats(nm, ns, inter, union, inter / union if union else None, offset)


def verdict(stats: MaskStats, min_iou: float, min_pixels: int) -> str:
    """"pass" / "fail" for judged bodies, else "small" or "out_of_view" (see the module doc)."""
    if max(stats.mesh_pixels, stats.splat_pixels) >= min_pixels:
        return "pass" if (stats.iou or 0.0) >= min_iou else "fail"
    return "small" if stats.union else "out_of_view"


# ----------------------------------------------------------------------------------------- results
@dataclass
class BodyResult(MaskStats):
    """One body, seen from one camera, in one sampled state: its mask statistics and verdict."""

    body: str
    sample: int
    camera: str
    status: str


@dataclass
class AlignmentReport:
    """What check_alignment found: the settings, the sampled states, one BodyResult per body, camera
    and state, and the overlay image files written (names under out_dir)."""

    scene: str
    image_size: tuple[int, int]
    """(height, width) of the renders."""
    cameras: list[str]
    min_iou: float
    min_pixels: int
    seed: int
    states: list = field(default_factory=list)
    results: list[BodyResult] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[BodyResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failed_bodies(self) -> list[str]:
        return sorted({r.body for r in self.failures})

    def bodies(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.results:
            seen.setdefault(r.body, None)
        return list(seen)

    def summary(self) -> dict[str, dict]:
        """Per body over all states and cameras: counts per status, judged views, min / mean IoU of
        the judged views, pooled IoU (sum of intersections / sum of unions over all views), mean
        and max centroid offset of the judged views, and the max visible mesh pixels."""
        out = {}
        for body in self.bodies():
            rs = [r for r in self.results if r.body == body]
            judged = [r for r in rs if r.status in ("pass", "fail")]
            ious = [r.iou or 0.0 for r in judged]
            offs = [r.centroid_offset_px for r in judged if r.centroid_offset_px is not None]
            union = sum(r.union for r in rs)
            out[body] = {
                "views": len(rs),
                **{s: sum(r.status == s for r in rs) for s in STATUSES},
                "judged": len(judged),
                "min_iou": round(min(ious), 4) if ious else None,
                "mean_iou": round(float(np.mean(ious)), 4) if ious else None,
                "pooled_iou": round(sum(r.intersection for r in rs) / union, 4) if union else None,
                "mean_centroid_offset_px": round(float(np.mean(offs)), 2) if offs else None,
                "max_centroid_offset_px": round(float(np.max(offs)), 2) if offs else None,
                "max_mesh_pixels": max(r.mesh_pixels for r in rs),
                "verdict": "fail" if any(r.status == "fail" for r in rs) else
                           ("pass" if judged else ("out_of_view" if not union else "small")),
            }
        return out

    def to_json(self) -> dict:
        return {
            "scene": self.scene, "image_size": list(self.image_size), "cameras": self.cameras,
            "min_iou": self.min_iou, "min_pixels": self.min_pixels, "seed": self.seed,
            "passed": self.passed, "failed_bodies": self.failed_bodies,
            "summary": self.summary(),
            "failures": [asdict(r) for r in self.failures],
            "states": [s.to_json() for s in self.states],
            "results": [asdict(r) for r in self.results],
            "images": self.images,
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_json(), indent=1))  # the folder made if missing
        return path

    def format_table(self) -> str:
        """A per-body text table (what the CLI prints)."""
        rows = [f"{'body':<16} {'verdict':<12} {'judged':>6} {'min IoU':>8} {'pooled':>7} {'offset px':>9} "
                f"{'max px':>7}"]
        for body, s in self.summary().items():
            fmt = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
            rows.append(f"{body:<16} {s['verdict']:<12} {s['judged']:>6} {fmt(s['min_iou']):>8} "
                        f"{fmt(s['pooled_iou']):>7} {fmt(s['mean_centroid_offset_px'], 1):>9} "
                        f"{s['max_mesh_pixels']:>7}")
        return "\n".join(rows)


# ----------------------------------------------------------------------------------------- check
def check_alignment(
    bundle: SceneBundle,
    samples: int = 10,
    image_size: tuple[int, int] | None = DEFAULT_IMAGE_SIZE,
    min_iou: float = DEFAULT_MIN_IOU,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    seed: int = 0,
    cameras: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    render_backend: str = "auto",
    device: str | torch.device | None = None,
    pose_transform: PoseTransform | None = None,
    mesh_renderer: str | None = None,
    progress: bool = True,
    task=None,
) -> AlignmentReport:
    """Compare the splat render with the simulator's mesh segmentation over `samples` random states.

    Args:
        bundle: the scene (robot links and objects in their body frames, calibrated cameras).
        samples: number of random states N (>= 1).
        image_size: (height, width) of the renders; the cameras' intrinsics are rescaled to it. None:
            the cameras' calibrated size (which must then agree).
        min_iou: a judged body below this IoU fails (0 < min_iou <= 1).
        min_pixels: a body is judged where it covers at least this many pixels (mesh or splat view).
        seed: seeds the states.
        cameras: bundle camera names, fixed ones and those on robot links (a wrist camera; `gsenv scene
            check` names them all); default: the fixed cameras.
        out_dir: where to write report.json and the overlay images (per state and camera: splat |
            mesh | 50% blend | difference panel, and the blend and difference alone); None writes
            nothing.
        render_backend: the splat rasteriser, as the env's ("auto": gsplat on CUDA, torch on CPU;
            or "gsplat", "torch").
        device: where the splat renderer runs (default: CUDA if available).
        pose_transform: applied to the simulator's body poses {name: [1, 7]} before the splat render;
            for testing the check (e.g. a quaternion-order mistake) and diagnosing conventions.
        mesh_renderer: ManiSkill's render backend for SAPIEN's mesh render, e.g. "sapien_cpu"
            (lavapipe) or "sapien_cuda" (default: sapien_cuda if CUDA is available, else sapien_cpu).
        progress: show a progress bar.
        task: the gsenv task whose objects the bundle holds (a Task or its name; None: the default task).
    Returns:
        AlignmentReport (report.passed, report.failures, report.summary(), report.write_json(path)).
    """
    from tqdm.auto import tqdm

    from gsenv.alignment.mesh_view import MeshView
    from gsenv.alignment.overlay import write_overlays
    from gsenv.alignment.sampling import sample_states
    from gsenv.scene.camera_rig import CameraRig, camera_specs
    from gsenv.scene.rendering import body_renderer
    from gsenv.scene.task_fit import objects_of_task

    if not (isinstance(samples, (int, np.integer)) and samples >= 1):
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    if not 0.0 < float(min_iou) <= 1.0:
        raise ValueError(f"min_iou must lie in (0, 1], got {min_iou!r}")
    if not (isinstance(min_pixels, (int, np.integer)) and min_pixels >= 1):
        raise ValueError(f"min_pixels must be an int >= 1, got {min_pixels!r}")
    if not bundle.body_gaussians():
        raise ValueError(f"scene {bundle.name!r} has no robot links or objects to check")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    specs = camera_specs(bundle, cameras, image_size)
    names = [c.name for c in specs]
    report = AlignmentReport(bundle.name, (specs[0].height, specs[0].width), names, float(min_iou),
                             int(min_pixels), int(seed))
    rig = CameraRig(bundle, names, 1, device, image_size)  # [1, C]; link cameras from each state's poses
    out = Path(out_dir) if out_dir is not None else None
    with MeshView(bundle, specs, mesh_renderer, task=task) as view:
        renderer = body_renderer(objects_of_task(bundle, view.gsenv_task.objects), render_backend, device)
        # the hand in view of the fixed cameras (a link camera sees its link wherever it is)
        report.states = sample_states(view, [c for c in specs if not c.on_link], int(samples), seed,
                                      min_object_pixels=int(min_pixels))
        robot_links = set(view.robot_link_names) | set(bundle.links)
        bodies = list(renderer.body_names)
        for i, state in enumerate(tqdm(report.states, desc="alignment check", unit="state", disable=not progress)):
            view.set_state(state.qpos, state.object_poses)
            frames = view.render()
            poses = view.body_poses()
            if pose_transform is not None:
                poses = dict(pose_transform(poses))
            poses = {k: v.to(device) for k, v in poses.items()}
            splat = renderer.render(poses, rig.cameras(poses), body_alpha=True)
            ids = splat.body_ids().cpu().numpy()[0]  # [C, H, W]
            rgb = splat.rgb.cpu().numpy()[0]
            for c, (spec, frame) in enumerate(zip(specs, frames)):
                s_names = np.asarray(list(splat.body_names) + [""], dtype=object)[ids[c]]  # -1 -> ""
                m_names = np.asarray(list(view.body_names) + [""], dtype=object)[frame.labels]
                for body in [ROBOT] + bodies:
                    if body == ROBOT:
                        sm = np.isin(s_names, list(robot_links))
                        mm = np.isin(m_names, list(robot_links))
                    else:
                        sm, mm = s_names == body, m_names == body
                    st = mask_stats(sm, mm)
                    report.results.append(BodyResult(body=body, sample=i, camera=spec.name,
                                                     status=verdict(st, min_iou, min_pixels), **asdict(st)))
                if out is not None:
                    report.images += write_overlays(out, f"{i:02d}_{spec.name}", rgb[c], frame.rgb,
                                                    s_names != "", m_names != "", s_names == m_names)
    for r in report.failures:
        logger.info("%s fails in sample %d (%s): IoU %.3f, %d mesh / %d splat pixels", r.body, r.sample,
                    r.camera, r.iou or 0.0, r.mesh_pixels, r.splat_pixels)
    if out is not None:
        report.write_json(out / "report.json")
    return report
