"""`gsenv real compare`: how far is the scene from the real cell? A real recording (a LeRobot v2.1
dataset of the real robot) against the scene rendered at the recorded joint positions.

Exit codes: 0 the scene agrees with the recording; 1 it does not (a camera's calibration is off, or
frames disagree: each said on stderr), or the run failed; 2 bad input (unknown scene, a dataset that
cannot be read, columns or cameras that do not fit). Cheap to import: the work happens in the handler.
"""
from __future__ import annotations

import argparse
import sys

from gsenv.tools.args import parse_image_size

EPILOG = """\
The recording: one episode of a LeRobot v2.1 dataset (the format `gsenv collect` writes and LeRobot
reads), with
  joint positions  a vector feature (--state-key, default observation.state) holding the FR3's qpos:
                   by default its first 9 values (7 arm joints in rad, then the 2 finger joints in m,
                   gsenv's own layout); else --qpos-columns: 9 indices, or 7 arm + 1 gripper index,
                   each finger then being the gripper value times --gripper-scale (0.5 for a gripper
                   width in m, 0.04 for a gripper normalised to 0 closed .. 1 open)
  camera videos    one per scene camera; matched by the camera a feature names in info.json (gsenv's
                   datasets), or the key's last dotted part, or --camera VIDEO_KEY=SCENE_CAMERA
  object poses     optional: --object NAME=KEY, a vector feature of 7 values (xyz m + quaternion wxyz,
                   robot-base frame); objects without poses are left out of the render

What it does: the scene is rendered at every compared frame's joint positions (forward kinematics of
the robot's URDF, no physics), from the scene's calibrated cameras, at --image-size (the real frames
are resized to it; default their own size: on a CPU give a small size such as 120x160). Per camera
and frame: PSNR and SSIM over the whole image and over the robot's own pixels (the splat robot's
mask), and the 2-D offset (px at the camera's calibrated resolution) of the robot's silhouette from
the real image's edges. Per camera: the camera-pose correction (mm, degrees, in the camera's axes)
that best explains the frames, fitted by Gauss-Newton on the image error over the robot's pixels,
with a per-channel colour gain and bias (unless --no-fit); frames are then judged at the corrected
camera.

Verdicts (README: "Measuring your cell against reality"): a frame is flagged when its robot PSNR is
below --min-robot-psnr, its robot SSIM below --min-robot-ssim, its robot PSNR more than
--max-outlier-drop dB below the recording's median (3+ frames), or its silhouette more than
--max-offset-px off the real edges; a camera when its correction exceeds --max-shift-mm or
--max-turn-deg.

Writes DIR/report.json (every number, the corrections with the 4x4 offset: corrected cam_to_base =
cam_to_base @ offset) and DIR/contact_sheet.png (rows real | sim | difference x4 with the sim robot's
outline in green; flagged frames first, in a red border).

Exit status: 0 agrees, 1 disagrees (or the run failed), 2 bad input."""


def _mapping(text: str) -> tuple[str, str]:
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _columns(text: str) -> tuple[int, ...]:
    try:
        cols = tuple(int(c) for c in str(text).split(","))
    except ValueError:
        cols = ()
    if len(cols) not in (8, 9) or min(cols) < 0:
        raise argparse.ArgumentTypeError(f"expected 9 (or 7 arm + 1 gripper) comma-separated column indices >= 0, "
                                         f"got {text!r}")
    return cols


def add_commands(sub) -> None:
    real = sub.add_parser("real", help="real-cell tools: compare a real recording with the scene",
                          description="Real-cell tools.")
    actions = real.add_subparsers(dest="real_command", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("compare", help="compare a real recording (LeRobot dataset) with the scene",
                           description="Render the scene at a real recording's joint positions and measure how "
                                       "far it is from the real frames; fit each camera's pose correction.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="the real recording: a LeRobot v2.1 dataset folder")
    p.add_argument("--scene", default="default", help="'default' (the embedded scene), a dataset name or a scene "
                   "directory (default: default)")
    p.add_argument("--episode", type=int, default=0, help="the episode to compare (default: 0)")
    p.add_argument("--max-frames", type=int, default=20, metavar="N",
                   help="compare at most N frames, evenly spread over the episode (default: 20)")
    p.add_argument("--state-key", default="observation.state", metavar="KEY",
                   help="the vector feature with the joint positions (default: observation.state)")
    p.add_argument("--qpos-columns", type=_columns, default=None, metavar="I,I,...",
                   help="its columns holding the 7 arm joints and 2 fingers (or 1 gripper; default: the first 9)")
    p.add_argument("--gripper-scale", type=float, default=0.5, metavar="S",
                   help="with 8 columns: each finger's opening (m) = gripper value x S (default: 0.5, a width in m)")
    p.add_argument("--camera", type=_mapping, action="append", default=None, metavar="VIDEO_KEY=CAMERA",
                   help="the scene camera a video shows; repeat for several (default: matched by name)")
    p.add_argument("--object", type=_mapping, action="append", default=None, metavar="NAME=KEY",
                   help="an object's recorded pose (7 values: xyz + wxyz); repeat for several")
    p.add_argument("--image-size", type=parse_image_size, default=None, metavar="HxW",
                   help="compare at this size: one int (square) or HEIGHTxWIDTH such as 120x160 (default: the "
                        "real frames' size)")
    p.add_argument("--no-fit", action="store_true", help="do not fit camera corrections (judge the calibrated cameras)")
    p.add_argument("--iterations", type=int, default=15, metavar="K",
                   help="Gauss-Newton iterations of the camera fit at most, one render each (default: 15)")
    p.add_argument("--out", default="real-compare", metavar="DIR",
                   help="directory for report.json and contact_sheet.png (default: ./real-compare)")
    p.add_argument("--density", type=float, default=1.0,
                   help="gaussian density of the default scene (ignored for other scenes; default: 1.0)")
    p.add_argument("--render-backend", choices=("auto", "gsplat", "torch"), default="auto",
                   help="splat rasteriser: gsplat (CUDA), the pure-torch reference, or auto (default)")
    p.add_argument("--device", default=None, help="where to render (default: cuda if available, else cpu)")
    t = p.add_argument_group("thresholds")
    t.add_argument("--min-robot-psnr", type=float, default=20.0, metavar="DB", help="(default: 20)")
    t.add_argument("--min-robot-ssim", type=float, default=0.5, metavar="X", help="(default: 0.5)")
    t.add_argument("--max-outlier-drop", type=float, default=6.0, metavar="DB", help="(default: 6)")
    t.add_argument("--max-offset-px", type=float, default=3.0, metavar="PX", help="(default: 3)")
    t.add_argument("--max-shift-mm", type=float, default=2.0, metavar="MM", help="(default: 2)")
    t.add_argument("--max-turn-deg", type=float, default=0.2, metavar="DEG", help="(default: 0.2)")
    p.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gsenv.realgap import QposMapping, RecordingError, Thresholds, compare_recording, read_recording
    from gsenv.scene.format import SceneError
    from gsenv.scene.resolve import resolve_scene
    from gsenv.tools.args import check_device, make_out_dir

    try:
        if args.iterations < 1:
            raise RecordingError(f"--iterations must be >= 1, got {args.iterations}")
        if not args.gripper_scale > 0:
            raise RecordingError(f"--gripper-scale must be > 0, got {args.gripper_scale}")
        if not Path(args.dataset).is_dir():
            raise RecordingError(f"{args.dataset}: no such folder (give a LeRobot v2.1 dataset folder)")
        check_device(args.device, RecordingError)
        thresholds = Thresholds(args.min_robot_psnr, args.min_robot_ssim, args.max_outlier_drop, args.max_offset_px,
                                args.max_shift_mm, args.max_turn_deg)
        bundle = resolve_scene(args.scene, density=args.density, task=None)
        scene_cameras = [c.name for c in [*bundle.cameras, *bundle.link_cameras]]
        recording = read_recording(args.dataset, scene_cameras, episode=args.episode,
                                   qpos=QposMapping(args.state_key, args.qpos_columns, args.gripper_scale),
                                   cameras=dict(args.camera) if args.camera else None,
                                   objects=dict(args.object) if args.object else None, max_frames=args.max_frames)
        out = make_out_dir(args.out, RecordingError)
        print(f"comparing {recording.num_frames} frame(s) of episode {recording.episode} "
              f"({', '.join(f'{k} -> {c}' for c, k in recording.video_keys.items())}) with scene {bundle.name!r}")
        report = compare_recording(bundle, recording, image_size=args.image_size, fit=not args.no_fit,
                                   iterations=args.iterations, thresholds=thresholds,
                                   render_backend=args.render_backend, device=args.device, out_dir=out,
                                   dataset_name=str(args.dataset))
    except (RecordingError, SceneError) as exc:
        print(f"gsenv real compare: error: {exc}", file=sys.stderr)
        return 2
    print(report.format_table())
    print(f"report: {out / 'report.json'}; contact sheet: {out / 'contact_sheet.png'}")
    if report.passed:
        print("the scene agrees with the recording")
        return 0
    for problem in report.problems:
        print(f"gsenv real compare: {problem}", file=sys.stderr)
    return 1
