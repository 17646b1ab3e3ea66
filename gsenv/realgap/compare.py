"""`compare_recording`: the scene rendered at every recorded joint configuration, from the scene's
calibrated cameras, against the real frames.

Per camera and frame: PSNR and SSIM over the whole image and over the robot's own pixels (the splat
robot's mask), and the 2-D offset of the robot's silhouette against the real image's edges; per
camera: the camera-pose correction that best explains the frames (gsenv.realgap.camera_fit). Then the
verdicts against `Thresholds`: a frame is flagged when its robot pixels agree too little (absolutely,
or far less than the recording's other frames), or its silhouette sits off the real edges; a camera
when its fitted correction is larger than a calibration should leave. Frames are judged at the
corrected cameras (so a calibration error is reported once, as the correction, not in every frame).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gsenv.atomic import write_text_atomic
from gsenv.realgap.camera_fit import CameraCorrection, Views, fit_camera_corrections
from gsenv.realgap.kinematics import robot_body_poses, scene_robot_urdf
from gsenv.realgap.metrics import psnr, silhouette_edge, silhouette_offset, ssim
from gsenv.realgap.recording import Recording, RecordingError
from gsenv.scene.bundle import SceneBundle

__all__ = ["Thresholds", "FrameResult", "CompareReport", "compare_recording"]

logger = logging.getLogger(__name__)

CONTACT_SHEET = "contact_sheet.png"
REPORT = "report.json"
SHEET_ROWS = 8  # at most this many (frame, camera) rows on the contact sheet: the flagged ones first


@dataclass(frozen=True)
class Thresholds:
    """What agreement is enough (README: "Measuring your cell against reality" says why each is what it
    is). Pixel offsets are in pixels of the camera's calibrated resolution."""

    min_robot_psnr_db: float = 20.0
    min_robot_ssim: float = 0.5
    max_outlier_drop_db: float = 6.0
    max_silhouette_offset_px: float = 3.0
    max_camera_shift_mm: float = 2.0
    max_camera_turn_deg: float = 0.2


@dataclass
class FrameResult:
    """One frame seen by one camera: agreement at the calibrated camera and (after a fit) at the
    corrected one; flags: why it is flagged (empty: it agrees)."""

    camera: str
    frame: int
    robot_pixels: int
    psnr_db: float
    ssim: float
    robot_psnr_db: float | None
    robot_ssim: float | None
    silhouette_offset_px: list[float] | None
    corrected: dict | None = None
    flags: list[str] = field(default_factory=list)

    def judged(self) -> dict:
        """The numbers the verdict uses: the corrected ones when there are."""
        return self.corrected or {"robot_psnr_db": self.robot_psnr_db, "robot_ssim": self.robot_ssim,
                                  "silhouette_offset_px": self.silhouette_offset_px}


@dataclass
class CompareReport:
    scene: str
    dataset: str
    episode: int
    image_size: tuple[int, int]
    cameras: dict[str, str]
    """{scene camera: dataset video key}."""
    thresholds: Thresholds
    frames: list[FrameResult] = field(default_factory=list)
    corrections: list[CameraCorrection] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def flagged_frames(self) -> list[FrameResult]:
        return [f for f in self.frames if f.flags]

    def summary(self) -> dict[str, dict]:
        """Per camera: median and worst robot PSNR / SSIM (as judged), mean |silhouette offset|, flagged frames."""
        out = {}
        for cam in self.cameras:
            rs = [f for f in self.frames if f.camera == cam]
            judged = [f.judged() for f in rs]
            ps = [j["robot_psnr_db"] for j in judged if j["robot_psnr_db"] is not None]
            ss = [j["robot_ssim"] for j in judged if j["robot_ssim"] is not None]
            offs = [float(np.hypot(*j["silhouette_offset_px"])) for j in judged if j["silhouette_offset_px"]]
            out[cam] = {"frames": len(rs), "flagged": [f.frame for f in rs if f.flags],
                        "median_psnr_db": _r(np.median([f.psnr_db for f in rs])),
                        "median_robot_psnr_db": _r(np.median(ps)) if ps else None,
                        "min_robot_psnr_db": _r(min(ps)) if ps else None,
                        "median_robot_ssim": _r(np.median(ss), 4) if ss else None,
                        "mean_silhouette_offset_px": _r(np.mean(offs)) if offs else None}
        return out

    def to_json(self) -> dict:
        return {"scene": self.scene, "dataset": self.dataset, "episode": self.episode,
                "image_size": list(self.image_size), "cameras": self.cameras, "passed": self.passed,
                "problems": self.problems, "thresholds": asdict(self.thresholds), "summary": self.summary(),
                "corrections": [c.to_json() for c in self.corrections],
                "frames": [asdict(f) for f in self.frames], "images": self.images}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_json(), indent=1))  # the folder made if missing
        return path

    def format_table(self) -> str:
        """Per camera: the summary and the correction (what the CLI prints)."""
        rows = [f"{'camera':<18} {'frames':>6} {'flagged':>7} {'PSNR':>6} {'robot PSNR':>10} {'robot SSIM':>10} "
                f"{'offset px':>9} {'shift mm':>8} {'turn deg':>8}"]
        fits = {c.camera: c for c in self.corrections}
        fmt = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        for cam, s in self.summary().items():
            c = fits.get(cam)
            rows.append(f"{cam:<18} {s['frames']:>6} {len(s['flagged']):>7} {fmt(s['median_psnr_db'], 1):>6} "
                        f"{fmt(s['median_robot_psnr_db'], 1):>10} {fmt(s['median_robot_ssim'], 3):>10} "
                        f"{fmt(s['mean_silhouette_offset_px'], 2):>9} {fmt(c and c.shift_mm):>8} "
                        f"{fmt(c and c.turn_deg, 3):>8}")
        return "\n".join(rows)


def _r(v, p: int = 2) -> float:
    return round(float(v), p)


def _resized(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [T, h, w, 3] -> float64 [T, H, W, 3] at size (H, W), 0-255 (area-like antialiased resize)."""
    x = torch.as_tensor(frames).permute(0, 3, 1, 2).to(torch.float64)
    if tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 255)


def _checked_sizes(recording: Recording, specs, image_size) -> tuple[int, int]:
    """The comparison size (H, W): image_size, else the real frames' (one size for every camera);
    RecordingError when a camera's frames are not of its calibrated aspect ratio."""
    sizes = {cam: f.shape[1:3] for cam, f in recording.frames.items()}
    for spec in specs:
        h, w = sizes[spec.name]
        if abs(w / h - spec.width / spec.height) > 0.01 * spec.width / spec.height:
            raise RecordingError(f"camera {spec.name!r}: the recording's frames are {w}x{h}, the scene's calibration "
                                 f"is for {spec.width}x{spec.height}, another aspect ratio: the frames are cropped or "
                                 "from another camera mode")
    if image_size is not None:
        return tuple(image_size)
    if len(set(sizes.values())) > 1:
        raise RecordingError(f"the cameras' frames have different sizes {sorted(set(sizes.values()))}: give "
                             "--image-size HxW to compare them at one size")
    return tuple(next(iter(sizes.values())))


def compare_recording(bundle: SceneBundle, recording: Recording, *, robot_urdf: str | Path | None = None,
                      image_size: tuple[int, int] | None = None, fit: bool = True, iterations: int = 15,
                      thresholds: Thresholds | None = None, render_backend: str = "auto",
                      device: str | torch.device | None = None, out_dir: str | Path | None = None,
                      dataset_name: str | None = None) -> CompareReport:
    """Compare a real recording with the scene (see the module doc).

    Args:
        bundle: the scene; recording: from read_recording with the scene's camera names.
        robot_urdf: the robot description whose forward kinematics place the links (default: the
            bundle's, or the generated FR3 one).
        image_size: (H, W) to compare at (cameras' intrinsics and the real frames rescaled); None: the
            frames' size.
        fit: fit a camera-pose correction per camera (and judge frames at it).
        iterations: at most this many Gauss-Newton iterations (one render each).
        out_dir: where to write report.json and contact_sheet.png (None: nothing written).
    """
    from gsenv.scene.camera_rig import CameraRig
    from gsenv.scene.rendering import make_renderer

    thresholds = thresholds or Thresholds()
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    names = list(recording.frames)
    try:
        specs = [bundle.any_camera(n) for n in names]
    except KeyError as exc:
        raise RecordingError(exc.args[0]) from None
    size = _checked_sizes(recording, specs, image_size)
    unknown = sorted(set(recording.object_poses) - set(bundle.objects))
    if unknown:
        raise RecordingError(f"object poses for {unknown}, which the scene does not have (it has "
                             f"{sorted(bundle.objects)})")
    # the objects without recorded poses are left out of the render (their place is unknown)
    scene = dataclasses.replace(bundle, objects={k: v for k, v in bundle.objects.items()
                                                 if k in recording.object_poses})
    renderer = make_renderer(scene, render_backend, device)
    N, C = recording.num_frames, len(names)
    rig = CameraRig(scene, names, N, device, size)
    poses = robot_body_poses(robot_urdf or scene_robot_urdf(bundle), recording.qpos)
    poses.update({k: torch.as_tensor(v, dtype=torch.float32) for k, v in recording.object_poses.items()})
    poses = {k: v.to(device) for k, v in poses.items()}
    robot = torch.tensor([b in scene.links for b in renderer.body_names])
    Ks = rig.cameras(poses).Ks[0].to("cpu", torch.float64)  # [C, 3, 3]

    def render(offsets: torch.Tensor) -> Views:
        moved = not torch.equal(offsets, torch.eye(4, dtype=offsets.dtype).expand_as(offsets))
        rig.set_offsets(offsets.to(device, torch.float32)[None].expand(N, -1, -1, -1).contiguous() if moved else None,
                        None)
        out = renderer.render(poses, rig.cameras(poses), depth=True, body_alpha=True)
        ids = out.body_ids().cpu()
        return Views(out.rgb.cpu().to(torch.float64), out.depth.cpu().to(torch.float64),
                     (ids >= 0) & robot[ids.clamp_min(0)], Ks)

    real = torch.stack([_resized(recording.frames[n], size) for n in names], 1)  # [N, C, H, W, 3]
    report = CompareReport(scene=bundle.name, dataset=dataset_name or str(recording.root), episode=recording.episode,
                           image_size=size, cameras=dict(recording.video_keys), thresholds=thresholds)
    if fit:
        report.corrections, first, last = fit_camera_corrections(render, real, names, iterations=iterations)
    else:
        first, last = render(torch.eye(4, dtype=torch.float64).repeat(C, 1, 1)), None
    real8 = real.round().to(torch.uint8).numpy()
    scales = [spec.width / size[1] for spec in specs]  # compare pixels -> calibrated pixels
    for c, cam in enumerate(names):
        for i in range(N):
            res = _frame_result(cam, int(recording.frame_index[i]), real8[i, c], first, i, c, scales[c])
            if last is not None:
                again = _frame_result(cam, res.frame, real8[i, c], last, i, c, scales[c])
                res.corrected = {k: getattr(again, k) for k in ("robot_pixels", "psnr_db", "ssim", "robot_psnr_db",
                                                                "robot_ssim", "silhouette_offset_px")}
            report.frames.append(res)
    _judge(report)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.images.append(write_contact_sheet(out / CONTACT_SHEET, report, real8, first, last, names))
        report.write_json(out / REPORT)
    return report


def _frame_result(cam: str, frame: int, real: np.ndarray, views: Views, i: int, c: int, scale: float) -> FrameResult:
    sim = views.rgb[i, c].round().clamp(0, 255).to(torch.uint8).numpy()
    mask = views.region[i, c].numpy()
    off = silhouette_offset(mask, real, sim)
    return FrameResult(camera=cam, frame=frame, robot_pixels=int(mask.sum()), psnr_db=_r(psnr(real, sim)),
                       ssim=_r(ssim(real, sim), 4),
                       robot_psnr_db=None if not mask.any() else _r(psnr(real, sim, mask)),
                       robot_ssim=None if not mask.any() else _r(ssim(real, sim, mask), 4),
                       silhouette_offset_px=None if off is None else [_r(off[0] * scale), _r(off[1] * scale)])


def _judge(report: CompareReport) -> None:
    """Flag frames and cameras against the thresholds; report.problems says each in a sentence."""
    t = report.thresholds
    for cam in report.cameras:
        rs = [f for f in report.frames if f.camera == cam]
        ps = [f.judged()["robot_psnr_db"] for f in rs if f.judged()["robot_psnr_db"] is not None]
        median = float(np.median(ps)) if len(ps) >= 3 else None  # an outlier needs company to stand out
        for f in rs:
            j = f.judged()
            if j["robot_psnr_db"] is None:
                continue  # the robot is out of view: nothing of it to judge
            if j["robot_psnr_db"] < t.min_robot_psnr_db:
                f.flags.append(f"robot PSNR {j['robot_psnr_db']:.1f} dB < {t.min_robot_psnr_db}")
            if j["robot_ssim"] < t.min_robot_ssim:
                f.flags.append(f"robot SSIM {j['robot_ssim']:.3f} < {t.min_robot_ssim}")
            if median is not None and j["robot_psnr_db"] < median - t.max_outlier_drop_db:
                f.flags.append(f"robot PSNR {j['robot_psnr_db']:.1f} dB is {median - j['robot_psnr_db']:.1f} dB below "
                               f"the recording's median {median:.1f} dB")
            off = j["silhouette_offset_px"]
            if off is not None and float(np.hypot(*off)) > t.max_silhouette_offset_px:
                f.flags.append(f"silhouette {float(np.hypot(*off)):.1f} px off the real edges "
                               f"> {t.max_silhouette_offset_px}")
        flagged = [f for f in rs if f.flags]
        if flagged:
            report.problems.append(f"camera {cam}: {len(flagged)} of {len(rs)} frames disagree: "
                                   + "; ".join(f"frame {f.frame}: {', '.join(f.flags)}" for f in flagged[:3])
                                   + (" ..." if len(flagged) > 3 else ""))
    for c in report.corrections:
        if c.shift_mm > t.max_camera_shift_mm or c.turn_deg > t.max_camera_turn_deg:
            report.problems.append(
                f"camera {c.camera}: its calibration is off by {c.shift_mm:.1f} mm and {c.turn_deg:.2f} degrees "
                f"(more than {t.max_camera_shift_mm} mm or {t.max_camera_turn_deg} degrees): the fitted offset is in "
                "report.json (corrections[].offset: corrected cam_to_base = cam_to_base @ offset)")
        if not c.converged:
            report.problems.append(f"camera {c.camera}: the camera fit did not converge in {c.iterations} iterations")


def write_contact_sheet(path: Path, report: CompareReport, real: np.ndarray, first: Views, last: Views | None,
                        names: list[str]) -> str:
    """PNG rows of real | sim | difference (x4, the sim robot's outline in green) for up to SHEET_ROWS
    (frame, camera) pairs, flagged ones first (red border); the sim at the corrected camera when fitted,
    and then the difference taken after the fitted colour gain and bias (the colour gap is in the
    report's numbers; the picture shows what is left)."""
    import imageio.v3 as iio

    from gsenv.media import tile_frames

    views = last if last is not None else first
    colour = {c.camera: (c.gain, c.bias) for c in report.corrections}
    order = sorted(range(len(report.frames)), key=lambda k: (not report.frames[k].flags, k))[:SHEET_ROWS]
    tiles, borders = [], []
    N = real.shape[0]
    for k in sorted(order, key=lambda k: (not report.frames[k].flags, report.frames[k].frame)):
        c, i = divmod(k, N)
        r = real[i, c]
        s = views.rgb[i, c].round().clamp(0, 255).to(torch.uint8).numpy()
        gain, bias = colour.get(names[c], (np.ones(3), np.zeros(3)))
        matched = views.rgb[i, c].numpy() * gain + bias
        diff = np.clip(np.abs(r - matched) * 4, 0, 255).astype(np.uint8)
        diff[silhouette_edge(views.region[i, c].numpy())] = (0, 255, 0)
        border = (255, 0, 0) if report.frames[k].flags else None
        tiles += [r, s, diff]
        borders += [border] * 3
    rows = len(tiles) // 3
    sheet = tile_frames(np.stack(tiles), nrows=rows, gap=2, fill=255, borders=borders)
    iio.imwrite(path, sheet)
    return path.name
