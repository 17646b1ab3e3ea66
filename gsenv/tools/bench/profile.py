"""Where a batched render's time goes (CUDA): the body layer's stages timed one by one.

    python -m gsenv.tools.bench.profile [--batch 256] [--image-size 224x224] [--density 1.0] [--tile 8] [--kernels]

On the embedded default scene (background cached, as the env renders), one camera per env, the
benchmark's varied poses. Stages, each timed alone with CUDA events (ms per render), through the
renderer's public stages:
  cull       which clusters of body gaussians some camera sees (SceneRenderer.visible_bodies)
  project    gsplat's fully_fused_projection, body by body with the pose folded into the view matrix
  sort       isect_tiles (tile hits + radix sort) and isect_offset_encode
  raster     rasterize_to_pixels (features + depth, alpha blending per tile)
  composite  the rest of SceneRenderer.render: the depth-tested "over" with the cached background, uint8
plus the whole render, the kept gaussians per env, the tile hits per image, and what moving the
bodies' gaussians to the world frame would cost instead (the torch backend's way). `--kernels` adds
torch.profiler's table of the CUDA kernels of one render.
"""
from __future__ import annotations

import argparse

import torch

from gsenv.geometry import pose_to_matrix
from gsenv.splat.body_transforms import bodies_in_world, body_features
from gsenv.splat.rasterize import DEFAULT_TILE_SIZE, TILE_SIZES
from gsenv.splat.view_state import ViewState
from gsenv.tools.args import parse_image_size


def _timed(fn, iters: int) -> tuple[float, object]:
    """(ms per call, the last result) of a CUDA function after one warm-up call."""
    out = fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        out = fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters, out


def stage_times(renderer, poses: dict, cameras, iters: int = 20) -> dict:
    """ms per render of each stage (see the module doc) and the counts behind them."""
    B, C, W, H = cameras.batch_size, cameras.num_cameras, cameras.width, cameras.height
    Ks, vms = cameras.Ks.float(), cameras.viewmats.float()
    r, tile = renderer, renderer.tile_size
    views = ViewState()  # the same cameras every render, as an env's steps
    total, _ = _timed(lambda: r.render(poses, cameras, views=views), iters)
    stacked = r.stack_poses(poses, B, cameras.device)
    t_cull, kept = _timed(lambda: r.visible_bodies(stacked, cameras), iters)
    if kept is None:
        raise SystemExit("no camera sees any body at these poses: nothing to profile")
    rigid = kept.rigid()
    feats = body_features(kept, stacked, vms, 0)
    project = lambda: rigid.project(pose_to_matrix(stacked), Ks, vms, W, H, near_plane=r.near_plane,  # noqa: E731
                                    far_plane=r.far_plane, eps2d=r.eps2d)
    t_project, projected = _timed(project, iters)
    t_sort, order = _timed(lambda: rigid.sort(projected, W, H, tile), iters)
    buffer = rigid.feature_buffer(feats, B * C)  # kept across renders, as the renderer's ViewState does
    t_blend, _ = _timed(lambda: rigid.blend(projected, order, buffer, W, H, tile), iters)
    t_world, _ = _timed(lambda: bodies_in_world(kept, stacked, vms, 0), iters)
    staged = t_cull + t_project + t_sort + t_blend
    return {
        "B": B, "C": C, "width": W, "height": H, "tile_size": tile,
        "gaussians_per_env": len(kept.splats), "tile_hits_per_image": order[1].numel() / (B * C),
        "render_ms": total, "cull_ms": t_cull, "project_ms": t_project, "sort_ms": t_sort, "raster_ms": t_blend,
        "composite_ms": max(total - staged, 0.0), "world_transform_ms": t_world,
        "env_frames_per_s": B * 1000.0 / total,
    }


def kernel_table(renderer, poses: dict, cameras, rows: int = 25) -> str:
    """torch.profiler's CUDA kernel table of one render (after a warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    views = ViewState()
    renderer.render(poses, cameras, views=views)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        renderer.render(poses, cameras, views=views)
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows)


def format_stages(s: dict) -> str:
    parts = " | ".join(f"{k} {s[k + '_ms']:.2f}" for k in ("cull", "project", "sort", "raster", "composite"))
    return (f"B={s['B']} {s['width']}x{s['height']} tile {s['tile_size']}: render {s['render_ms']:.2f} ms "
            f"({s['env_frames_per_s']:,.0f} env-frames/s) = {parts} ms; {s['gaussians_per_env']:,} gaussians/env, "
            f"{s['tile_hits_per_image']:,.0f} tile hits/image (moving the bodies to the world instead: "
            f"{s['world_transform_ms']:.2f} ms)")


def main() -> None:
    from gsenv.assets.root import asset_root
    from gsenv.scene.camera_rig import bundle_cameras
    from gsenv.scene.rendering import make_renderer
    from gsenv.scene.task_fit import objects_of_task
    from gsenv.scene_build.default import load_default_bundle
    from gsenv.tasks import DEFAULT_TASK, get_task
    from gsenv.tools.bench.render import varied_poses

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[256])
    ap.add_argument("--image-size", type=parse_image_size, nargs="+", default=[(224, 224)], metavar="HxW",
                    help="image sizes: one int (square) or HEIGHTxWIDTH each (default 224x224)")
    ap.add_argument("--density", type=float, default=1.0)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--tile", type=int, nargs="+", default=[DEFAULT_TILE_SIZE], choices=TILE_SIZES,
                    help=f"gsplat tile sizes to profile (default {DEFAULT_TILE_SIZE}, the renderer's)")
    ap.add_argument("--kernels", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gsenv.tools.bench.profile times CUDA kernels: run it where CUDA is available")
    bundle = objects_of_task(load_default_bundle(asset_root(None), density=args.density),
                             get_task(DEFAULT_TASK).objects)  # the default task's scene, as its env draws it
    renderer = make_renderer(bundle, backend="gsplat", device="cuda")
    for image_size, tile in ((s, t) for s in args.image_size for t in args.tile):
        renderer.tile_size = tile
        for B in args.batch:
            cams = bundle_cameras(bundle, None, B, "cuda", image_size=image_size)
            poses = varied_poses(renderer.body_names, B, "cuda")
            print(format_stages(stage_times(renderer, poses, cams, args.iters)), flush=True)
            if args.kernels:
                print(kernel_table(renderer, poses, cams))


if __name__ == "__main__":
    main()
