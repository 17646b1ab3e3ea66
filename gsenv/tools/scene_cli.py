"""`gsenv scene check`: does the splat scene line up with the simulator's geometry?

Exit codes: 0 aligned; 1 a body fails (named on stderr) or the structural check finds problems;
2 bad input (unknown scene, malformed bundle, bad option). Cheap to import: the work happens in
the handler.
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
                   help="check this bundle camera (repeat for several; default: all the scene's cameras)")
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
