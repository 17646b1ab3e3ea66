"""`gsenv scene check`: does the splat scene line up with the simulator's geometry? `gsenv scene build`:
a bundle from one 3DGS capture of your cell (gsenv.capture), then the same checks.

Exit codes: 0 aligned; 1 a body fails (named on stderr) or the structural check finds problems;
2 bad input (unknown scene, malformed bundle or one lacking what the task needs, bad option). Cheap
to import: the work happens in the handler.
"""
from __future__ import annotations

import argparse
import sys

from gsenv.tools.args import add_image_size

EPILOG = """\
What it does: first a structural check (every robot link and object has gaussians, each body's
gaussians sit in its own frame, splat_to_sim is a proper similarity, every camera sees the robot).
Then, for N random states (joint configurations with the hand in view, random object poses), the
simulator's meshes are rendered by SAPIEN (segmentation) and the scene's gaussians by the splat
renderer at the body poses read back from the simulator, from the same calibrated camera(s).
Per body: visible pixels, mask IoU, centroid offset in pixels ("robot" = all links together).
A body is judged where it covers >= --min-pixels in either render and fails below --min-iou;
smaller bodies are reported as small / out_of_view, not failed.

Writes DIR/report.json (DIR/structure.json instead with --structure-only or when the structural
check fails) and, unless --no-images, per state and camera DIR/<state>_<camera>_blend.png (splat
over mesh, 50%), _diff.png (grey: same body; magenta: splat only; green: mesh only; yellow:
different body) and _panel.png (splat | mesh | blend | diff).

Exit status: 0 aligned, 1 a body failed (named) or structural problems, 2 bad input."""


def add_commands(sub) -> None:
    scene = sub.add_parser("scene", help="scene tools: check the alignment of splats and simulator",
                           description="Scene tools.")
    actions = scene.add_subparsers(dest="scene_command", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("check", help="check that the splat scene lines up with the simulator's geometry",
                           description="Compare the splat render of a scene with SAPIEN's render of the simulator's "
                                       "meshes, body by body, over random states.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scene", nargs="?", default="default", metavar="SCENE",
                   help="'default' (the embedded scene, built on first use), a dataset name, a scene bundle "
                        "directory (with scene.json) or a directory in the RLinf dataset layout (default: default)")
    p.add_argument("--samples", type=int, default=10, metavar="N",
                   help="number of random states to compare (default: 10)")
    add_image_size(p, "224x224", what="render size; the cameras' intrinsics are rescaled")
    p.add_argument("--out", default="scene-check", metavar="DIR",
                   help="directory for report.json and the overlay images (default: ./scene-check)")
    p.add_argument("--min-iou", type=float, default=0.85, metavar="X",
                   help="a judged body with a mask IoU below X fails (default: 0.85)")
    p.add_argument("--min-pixels", type=int, default=200, metavar="P",
                   help="judge a body only where it covers at least P pixels in the mesh or splat render "
                        "(default: 200)")
    p.add_argument("--camera", action="append", default=None, metavar="NAME",
                   help="check this bundle camera, fixed or on a robot link such as wrist_camera (repeat for "
                        "several; default: all the scene's fixed cameras)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random states (default: 0)")
    p.add_argument("--density", type=float, default=1.0,
                   help="gaussian density of the default scene (ignored for other scenes; default: 1.0)")
    p.add_argument("--render-backend", choices=("auto", "gsplat", "torch"), default="auto",
                   help="splat rasteriser, as the env's render_backend: gsplat (CUDA), the pure-torch reference, "
                        "or auto (gsplat on CUDA; default: auto)")
    p.add_argument("--mesh-renderer", choices=("auto", "sapien_cpu", "sapien_cuda"), default="auto",
                   help="SAPIEN's renderer for the simulator's meshes: sapien_cpu (lavapipe), sapien_cuda, or auto "
                        "(sapien_cuda where CUDA is available; default: auto)")
    p.add_argument("--structure-only", action="store_true",
                   help="run only the structural check (no rendering): for scenes whose PLYs are placeholders")
    p.add_argument("--no-images", action="store_true", help="write report.json only, no overlay images")
    p.set_defaults(func=_check)

    b = actions.add_parser("build", help="build a scene bundle from one 3DGS capture of your cell",
                           description="Turn one 3DGS capture of a robot cell (any frame and scale) into a scene "
                                       "bundle: frame fit, segmentation into links / objects / background, bundle, "
                                       "checks.", epilog=BUILD_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--splat", required=True, metavar="PLY", help="the capture: a standard 3DGS PLY (gsplat, "
                   "nerfstudio splatfacto, Inria 3DGS)")
    b.add_argument("--urdf", required=True, metavar="URDF", help="the robot's URDF (its meshes beside it)")
    b.add_argument("--qpos", required=True, metavar="Q", help="joint positions at capture time, comma-separated, "
                   "one per movable joint of the URDF (rad / m)")
    b.add_argument("--object", action="append", default=None, metavar="NAME=MESH",
                   help="a task object and its mesh in metres (its frame = the mesh's), e.g. cube=cube.obj; repeat")
    b.add_argument("--points", default=None, metavar="JSON", help="point pairs and object positions (see below)")
    b.add_argument("--camera", action="append", default=None, metavar="JSON",
                   help="a calibrated camera (JSON, see below); repeat for several")
    b.add_argument("--instruction", default=None, metavar="TEXT", help="the task's language instruction "
                   "(default: the task's)")
    b.add_argument("--out", required=True, metavar="DIR", help="the bundle directory to write (new or empty)")
    b.set_defaults(func=_build)


BUILD_EPILOG = """\
points.json: {"pairs": [{"splat": [x, y, z], "robot": [x, y, z]}, ...],   >= 3 (better 4+), picked in any
              "objects": {"cube": [x, y, z], "plate": [x, y, z]}}          splat viewer; robot = base frame, m
camera.json: {"name": "cam", "width": W, "height": H, "K": [[fx,0,cx],[0,fy,cy],[0,0,1]],
              "cam_to_base": 4x4 pose of the OpenCV camera (x right, y down, z forward) in the robot base}

Checked before anything is built (a bad input, exit 2): the URDF has the joints the task drives and
the links it reads (fr3_joint1..7, fr3_finger_joint1/2, fr3_link0.., as gsenv.sim.names), a mesh and a
point for each task object (cube, plate), every camera valid (integer size > 0, a pinhole K with
focal lengths > 0 and the principal point in the image, a rigid cam_to_base).

Steps: the similarity splat -> robot base from the point pairs, refined by ICP (with scale) of the
gaussians near the robot against the URDF's meshes posed at --qpos (residuals in mm); each object
located by ICP of its mesh near its given position; every gaussian to the link or object whose
surface is nearest within a distance that follows its size, isolated ones dropped as floaters, the
rest background; each body's gaussians re-expressed in its own frame (a body left without gaussians
is refused: exit 2, nothing written); the bundle written to DIR (scene.json, PLYs, the URDF, the
meshes, build.json); then `gsenv scene check`'s structure and alignment checks (10 states,
224x224), their table printed, DIR/check/report.json written.

Exit status: 0 built and aligned, 1 built but a check fails, 2 bad input."""


def _build(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gsenv.capture.inputs import CaptureError
    from gsenv.scene.format import SceneError
    from gsenv.splat.ply import PlyError

    try:
        from gsenv.capture import inputs
        from gsenv.capture.build import build_scene, write_scene
        from gsenv.splat.ply import load_ply

        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CaptureError(f"--out {out}: exists and is not empty; choose a new directory (or empty it)")
        print(f"reading {args.splat}")
        splat = load_ply(args.splat)
        urdf = inputs.read_urdf(args.urdf)
        qpos = inputs.parse_qpos(args.qpos, urdf)
        objects = {name: (path, inputs.load_object_mesh(name, path))
                   for name, path in inputs.parse_objects(args.object).items()}
        src, dst, hints = inputs.read_points(args.points)
        cameras = inputs.read_cameras(args.camera)
        if not cameras:
            raise CaptureError("give at least one --camera camera.json (a calibrated camera in the robot-base frame): "
                               "the bundle renders from it and the alignment check compares through it")
        print(f"{len(splat)} gaussians, {len(qpos)} joints, objects {sorted(objects) or 'none'}, "
              f"{0 if src is None else len(src)} point pairs, cameras {[c.name for c in cameras]}")
        bundle, report, _ = build_scene(splat, urdf, qpos, objects, src, dst, hints, cameras,
                                        instruction=args.instruction, name=out.name or "capture")
        print(report.format())
        write_scene(bundle, report, out)
        print(f"bundle written: {out}")
    except (CaptureError, PlyError, SceneError) as exc:
        print(f"gsenv scene build: error: {exc}", file=sys.stderr)
        return 2
    from gsenv.alignment.check import check_alignment
    from gsenv.alignment.structure import check_structure
    from gsenv.scene.resolve import resolve_scene

    try:
        built = resolve_scene(out)
    except SceneError as exc:  # what was written does not read back: a bug, said plainly
        print(f"gsenv scene build: the written bundle does not load: {exc}", file=sys.stderr)
        return 1
    structure = check_structure(built)
    print(structure.format())
    check_dir = out / "check"
    check_dir.mkdir(exist_ok=True)
    if not structure.passed:
        (check_dir / "structure.json").write_text(json.dumps(structure.to_json(), indent=1))
        print(f"gsenv scene build: {len(structure.problems)} structural problem(s); see {check_dir}", file=sys.stderr)
        return 1
    check = check_alignment(built, out_dir=check_dir)
    print(check.format_table())
    if not check.passed:
        print(f"gsenv scene build: misaligned bodies {check.failed_bodies}; overlays in {check_dir} "
              "(README: Bring your own cell)", file=sys.stderr)
        return 1
    print(f"aligned; report: {check_dir / 'report.json'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gsenv.scene.format import SceneError

    try:
        from gsenv.alignment.check import check_alignment
        from gsenv.alignment.structure import check_structure
        from gsenv.scene.resolve import resolve_scene

        if args.samples < 1:
            raise ValueError(f"--samples must be >= 1, got {args.samples}")
        if not 0 < args.min_iou <= 1:
            raise ValueError(f"--min-iou must lie in (0, 1], got {args.min_iou}")
        if args.min_pixels < 1:
            raise ValueError(f"--min-pixels must be >= 1, got {args.min_pixels}")
        bundle = resolve_scene(args.scene, density=args.density)
        structure = check_structure(bundle)
        print(structure.format())
        out = Path(args.out)
        if not structure.passed or args.structure_only:
            out.mkdir(parents=True, exist_ok=True)
            (out / "structure.json").write_text(json.dumps(structure.to_json(), indent=1))
            if not structure.passed:
                print(f"gsenv scene check: {len(structure.problems)} structural problem(s) in {bundle.name!r}",
                      file=sys.stderr)
                return 1
            print(f"structure OK; report: {out / 'structure.json'}")
            return 0
        report = check_alignment(bundle, samples=args.samples, image_size=args.image_size, min_iou=args.min_iou,
                                 min_pixels=args.min_pixels, seed=args.seed, cameras=args.camera,
                                 out_dir=None if args.no_images else out, render_backend=args.render_backend,
                                 mesh_renderer=None if args.mesh_renderer == "auto" else args.mesh_renderer)
        data = report.to_json()
        data["structure"] = structure.to_json()
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(data, indent=1))
    except (SceneError, ValueError) as exc:
        print(f"gsenv scene check: error: {exc}", file=sys.stderr)
        return 2
    print(report.format_table())
    print(f"report: {out / 'report.json'}")
    if report.passed:
        print(f"aligned: every judged body reaches IoU >= {args.min_iou} over {args.samples} state(s)")
        return 0
    for body in report.failed_bodies:
        worst = min((r for r in report.failures if r.body == body), key=lambda r: r.iou or 0.0)
        print(f"gsenv scene check: {body} is misaligned: IoU {worst.iou or 0.0:.3f} < {args.min_iou} "
              f"(state {worst.sample}, camera {worst.camera}, {worst.mesh_pixels} mesh / "
              f"{worst.splat_pixels} splat pixels, centroid offset {worst.centroid_offset_px or 0:.1f} px)",
              file=sys.stderr)
    return 1
