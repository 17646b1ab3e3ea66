"""Render benchmarks (GPU): ms per batched render and env-frames/s, background cache on and off.

    python -m gsenv.tools.bench.render [--batch 1 16 64 256] [--image-size 224x224 480x640] [--iters 10]
    python -m gsenv.tools.bench.render --views --batch 256 --image-size 224x224 [--json FILE]

`benchmark` uses a synthetic table-top with the default scene's gaussian counts (static background
336k: table, apron, floor, wall; 9 robot links x 12.2k + cube 4k + plate 16k = 130k body gaussians),
seen by upstream's calibrated third-person camera (K rescaled to each image size).

Image sizes are (height, width), as the env's image_size; result rows name them "WIDTHxHEIGHT" in
`res` (as the stored results do) and also give `width` and `height`.

The render sections of the full benchmark (`gsenv bench`, gsenv.tools.bench.run) live here too:
- `render_sweep`: any SceneRenderer (e.g. the default scene's) vs B, image size and cache, with the
  peak GPU memory of each configuration;
- `research_strategy_*`: the research code's strategy (every env's gaussians replicated into one
  world on a 5 m grid, each env's camera rasterising ALL of them, cameras in micro-batches of 4,
  packed=False), on the same renderer and poses;
- `check_baseline`: that baseline vs a verbatim transcription of ../shared/bench/seed_strategy_bench.py
  on its synthetic table-top (same input, same timing), with the ratio.
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch

from gsenv.geometry import quat_multiply
from gsenv.splat.body_transforms import bodies_in_world
from gsenv.splat.cameras import Cameras, sapien_pose_to_viewmat, scale_intrinsics
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.rasterize import rasterize
from gsenv.splat.renderer import SceneRenderer
from gsenv.splat.sh import eval_sh
from gsenv.splat.view_state import ViewState
from gsenv.tools.args import parse_image_size

logger = logging.getLogger(__name__)

UPSTREAM_K = [[604.152161, 0.0, 316.670074], [0.0, 604.267212, 243.194473], [0.0, 0.0, 1.0]]
UPSTREAM_CAM_TO_BASE = [[0.68370109, -0.50239316, 0.52929587, 0.07500001],
                        [0.33318036, 0.86018832, 0.38609201, -0.161],
                        [-0.64926404, -0.08762054, 0.75549905, 0.497], [0, 0, 0, 1]]


def _flat_patch(n: int, lo, hi, axis: int, colour, g: torch.Generator) -> Gaussians:
    """n flat gaussians on an axis-aligned rectangle (thin along `axis`)."""
    lo, hi = torch.tensor(lo), torch.tensor(hi)
    m = lo + torch.rand(n, 3, generator=g) * (hi - lo)
    area = float(torch.prod((hi - lo)[[i for i in range(3) if i != axis]]))
    s = torch.full((n, 3), math.sqrt(area / n) * 0.8)
    s[:, axis] = 5e-4
    q = torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)
    c = (torch.tensor(colour) + 0.05 * torch.randn(n, 3, generator=g)).clamp(0, 1)
    return Gaussians.from_activated(m, q, s, torch.full((n,), 0.95), colors=c)


def _blob(n: int, half, colour, g: torch.Generator, size: float) -> Gaussians:
    half = torch.tensor(half)
    m = (torch.rand(n, 3, generator=g) * 2 - 1) * half
    s = torch.full((n, 3), size) * (0.5 + torch.rand(n, 3, generator=g))
    c = (torch.tensor(colour) + 0.1 * torch.randn(n, 3, generator=g)).clamp(0, 1)
    return Gaussians.from_activated(m, torch.randn(n, 4, generator=g), s, torch.rand(n, generator=g) * 0.5 + 0.5,
                                    colors=c)


def synthetic_tabletop(scale: float = 1.0, seed: int = 0) -> tuple[Gaussians, dict[str, Gaussians]]:
    """(background in world, {body: gaussians in body frame}); counts scale with `scale`."""
    g = torch.Generator().manual_seed(seed)
    k = lambda n: max(1, int(n * scale))  # noqa: E731
    bg = Gaussians.concat([
        _flat_patch(k(200000), [-0.35, -0.85, -0.001], [1.05, 0.95, -0.001], 2, [0.66, 0.51, 0.36], g),
        _flat_patch(k(6000), [1.05, -0.85, -0.06], [1.05, 0.95, -0.001], 0, [0.36, 0.25, 0.16], g),
        _flat_patch(k(60000), [-1.5, -2.5, -0.76], [3.0, 2.5, -0.76], 2, [0.42, 0.42, 0.44], g),
        _flat_patch(k(70000), [1.9, -2.5, -0.76], [1.9, 2.5, 1.6], 0, [0.86, 0.85, 0.8], g),
    ])
    bodies = {f"link{i}": _blob(k(12200), [0.04, 0.04, 0.08], [0.9, 0.9, 0.92], g, 0.006) for i in range(9)}
    bodies["cube"] = _blob(k(4000), [0.02, 0.02, 0.02], [0.8, 0.1, 0.1], g, 0.003)
    bodies["plate"] = _blob(k(16000), [0.09, 0.09, 0.008], [0.2, 0.5, 0.9], g, 0.005)
    return bg, bodies


def synthetic_poses(B: int, device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Plausible per-env poses: an arm-like chain above the table, cube and plate on it."""
    g = torch.Generator().manual_seed(seed)
    poses = {}
    for i in range(9):
        p = torch.tensor([0.05 * i, 0.0, 0.35 + 0.04 * i]) + 0.03 * torch.randn(B, 3, generator=g)
        q = torch.nn.functional.normalize(torch.tensor([1.0, 0, 0, 0]) + 0.2 * torch.randn(B, 4, generator=g), dim=-1)
        poses[f"link{i}"] = torch.cat([p, q], -1)
    ident = torch.tensor([[1.0, 0, 0, 0]]).repeat(B, 1)
    poses["cube"] = torch.cat(
        [torch.tensor([0.4, 0.2, 0.02]) + torch.rand(B, 3, generator=g) * torch.tensor([0.1, 0.05, 0]), ident], -1
    )
    poses["plate"] = torch.cat([torch.tensor([0.45, 0.0, 0.01]).repeat(B, 1), ident], -1)
    return {k: v.to(device) for k, v in poses.items()}


def upstream_cameras(B: int, width: int, height: int, device) -> Cameras:
    K = scale_intrinsics(torch.tensor(UPSTREAM_K), (640, 480), (width, height))
    V = sapien_pose_to_viewmat(torch.tensor(UPSTREAM_CAM_TO_BASE))
    return Cameras.shared(K, V, width, height, B).to(device)


def benchmark(batch_sizes=(1, 16, 64, 256), image_sizes=((224, 224), (480, 640)), iters: int = 10,
              device: str = "cuda", backend: str = "auto") -> list[dict]:
    """ms per render and env-frames/s of the synthetic table-top (image_sizes: (height, width) each)."""
    bg, bodies = synthetic_tabletop()
    rows = []
    for cache in (True, False):
        r = SceneRenderer(bg, bodies, backend=backend, cache_background=cache, device=device, backdrop=(0.5, 0.5, 0.5))
        for (h, w) in image_sizes:
            for B in batch_sizes:
                cams, poses = upstream_cameras(B, w, h, device), synthetic_poses(B, device)
                views = ViewState()  # the same cameras every render, as an env's steps
                try:
                    for _ in range(2):
                        r.render(poses, cams, views=views)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(iters):
                        r.render(poses, cams, views=views)
                    torch.cuda.synchronize()
                    ms = (time.perf_counter() - t0) / iters * 1000
                    rows.append(dict(cache=cache, res=f"{w}x{h}", B=B, ms=ms, fps=B / ms * 1000))
                except torch.cuda.OutOfMemoryError:
                    rows.append(dict(cache=cache, res=f"{w}x{h}", B=B, ms=float("nan"), fps=float("nan")))
                    torch.cuda.empty_cache()
                logger.info("%s", rows[-1])
        r = None  # free the renderer's GPU memory before the next one
        torch.cuda.empty_cache()
    return rows


# ----------------------------------------------------------------------------------------------------
# Render sections of the full benchmark (gsenv.tools.bench.run)
# ----------------------------------------------------------------------------------------------------
REST_POSES: dict[str, list[float]] = {
    # Body poses (xyz + quaternion wxyz, world = robot base) of PutCubeOnPlate after reset(seed=0) with
    # robot_init_qpos_noise=0, read from the simulator (gsenv.physics task outputs "pose/<body>").
    # Only the render benchmark uses them, as the centre of the per-env pose variations.
    "cube": [0.4163, 0.1788, 0.02, 1.0, 0.0, 0.0, 0.0],
    "plate": [0.4453, 0.0, 0.01, 1.0, 0.0, 0.0, 0.0],
    "fr3_link0": [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    "fr3_link1": [0.0, 0.0, 0.333, 1.0, 0.0, 0.0, 0.0],
    "fr3_link2": [0.0, 0.0, 0.333, 0.7012, -0.7012, 0.0914, 0.0914],
    "fr3_link3": [0.081, 0.0, 0.6384, 0.9916, 0.0, 0.1293, 0.0],
    "fr3_link4": [0.1608, 0.0, 0.6173, 0.2066, 0.2066, 0.6762, -0.6762],
    "fr3_link5": [0.4438, 0.0, 0.345, 0.2922, 0.0, 0.9564, 0.0],
    "fr3_link6": [0.4438, 0.0, 0.345, 0.707, 0.707, 0.0119, -0.0119],
    "fr3_link7": [0.5318, 0.0, 0.342, 0.0065, 0.9237, -0.3827, -0.0156],
    "fr3_link8": [0.5282, 0.0, 0.2351, 0.0065, 0.9237, -0.3827, -0.0156],
    "fr3_hand": [0.5282, 0.0, 0.2351, 0.0, 0.9999, -0.0001, -0.0169],
    "fr3_hand_tcp": [0.5247, 0.0, 0.1317, 0.0, 0.9999, -0.0001, -0.0169],
    "fr3_leftfinger": [0.5262, -0.04, 0.1767, 0.0, 0.9999, -0.0001, -0.0169],
    "fr3_rightfinger": [0.5262, 0.04, 0.1767, 0.0, 0.9999, -0.0001, -0.0169],
    "fr3_leftfinger_pad": [0.5246, -0.04, 0.1312, 0.0, 0.9999, -0.0001, -0.0169],
    "fr3_rightfinger_pad": [0.5247, 0.04, 0.1312, 0.0, 0.9999, -0.0001, -0.0169],
}


def varied_poses(body_names, B: int, device, seed: int = 0, pos_noise: float = 0.02,
                 rot_noise: float = 0.1) -> dict[str, torch.Tensor]:
    """{body: [B, 7]}: REST_POSES with a different small random offset per env (position: +-pos_noise
    metres per axis; orientation: a random rotation of about rot_noise rad), so that envs differ."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in body_names:
        if name not in REST_POSES:
            raise ValueError(f"no rest pose for body {name!r}; known: {sorted(REST_POSES)}")
        base = torch.tensor(REST_POSES[name])
        p = base[:3] + (torch.rand(B, 3, generator=g) * 2 - 1) * pos_noise
        dq = torch.nn.functional.normalize(
            torch.cat([torch.ones(B, 1), 0.5 * rot_noise * torch.randn(B, 3, generator=g)], -1), dim=-1
        )
        q = torch.nn.functional.normalize(quat_multiply(dq, base[3:].expand(B, 4)), dim=-1)
        out[name] = torch.cat([p, q], -1).to(device)
    return out


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device, min_time: float = 0.5, max_iters: int = 50, min_iters: int = 2,
              warmup: int = 1) -> tuple[float, int]:
    """(ms per call, iterations): `warmup` untimed calls, then calls until min_time seconds have passed
    (at least min_iters, at most max_iters), synchronising the device around the timed span."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    while n < min_iters or (n < max_iters and time.perf_counter() - t0 < min_time):
        fn()
        n += 1
        if n >= min_iters and n < max_iters:
            sync(device)  # so the time check sees finished work
    sync(device)
    return (time.perf_counter() - t0) / n * 1000.0, n


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _free(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def _mem_start(device) -> int:
    """Reset the peak counter; returns the bytes allocated now (the scene, before this config)."""
    if torch.device(device).type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def _mem_peak(device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if torch.device(device).type == "cuda" else None


def _mem_fields(base: int, peak: int | None, B: int) -> dict:
    if peak is None:
        return dict(peak_mem_mb=None, mem_mb_per_env=None)
    return dict(peak_mem_mb=round(peak / 2**20, 1), mem_mb_per_env=round((peak - base) / 2**20 / B, 3))


def render_sweep(make_renderer_fn, body_names, batch_sizes, image_sizes, cameras_fn, device,
                 caches=(True, False), min_time: float = 0.5, max_iters: int = 50, budget_s: float | None = None,
                 seed: int = 0) -> list[dict]:
    """Render-only throughput and peak GPU memory of a scene.

    make_renderer_fn(cache: bool) -> SceneRenderer; image_sizes: (height, width) each;
    cameras_fn(B, (height, width)) -> Cameras [B, C].
    Per config: env-frames/s (B x C images per render), ms per render, peak memory
    (torch.cuda.max_memory_allocated, reset before each config) and its growth per env. A config
    that runs out of memory is recorded with error "out of memory"; once budget_s is spent, the rest
    are recorded as skipped.
    """
    rows = []
    t_start = time.perf_counter()
    for cache in caches:
        r = make_renderer_fn(cache)
        for (h, w) in image_sizes:
            for B in batch_sizes:
                row = dict(cache=cache, res=f"{w}x{h}", width=w, height=h, B=B)
                if budget_s is not None and time.perf_counter() - t_start > budget_s:
                    row.update(skipped=f"render budget of {budget_s:.0f} s spent")
                    rows.append(row)
                    logger.warning("render sweep: skipped %s", row)
                    continue
                try:
                    cams = cameras_fn(B, (h, w))
                    poses = varied_poses(body_names, B, device, seed)
                    views = ViewState()  # the same cameras every render, as an env's steps
                    base = _mem_start(device)
                    ms, n = time_call(lambda: r.render(poses, cams, views=views), device, min_time, max_iters)
                    C = cams.num_cameras
                    row.update(cameras=C, ms=round(ms, 3), iters=n, fps=B * C / ms * 1000.0,
                               **_mem_fields(base, _mem_peak(device), B))
                except Exception as exc:  # keep the other configs' numbers (an OOM at B=1024 is a result)
                    row.update(error="out of memory" if _is_oom(exc) else f"{type(exc).__name__}: {exc}"[:300])
                    if not _is_oom(exc):
                        logger.exception("render config %s failed", row)
                finally:
                    _free(device)
                rows.append(row)
                logger.info("render %s", row)
        r = None  # free the renderer's GPU memory before the next one
        _free(device)
    return rows


# -- the research code's strategy ---------------------------------------------------------------------
GRID_SPACING = 5.0
RENDER_BS = 4
RESEARCH_TILE_SIZE = 16  # gsplat.rasterization's default, which the research code (and its check) runs with


def grid_offsets(B: int, device, spacing: float = GRID_SPACING) -> torch.Tensor:
    """[B, 3] env origins on a square grid in the xy plane (the research code's layout)."""
    cols = math.ceil(math.sqrt(B))
    return torch.tensor([[spacing * (i % cols), spacing * (i // cols), 0.0] for i in range(B)], device=device)


def research_strategy_world(
    renderer: SceneRenderer, poses: dict[str, torch.Tensor], B: int
) -> tuple[torch.Tensor, ...]:
    """One world holding every env's gaussians (background copy + bodies at that env's poses),
    env i shifted to grid_offsets(B)[i]: (means, quats, scales, opacities, colors) [B*N, *] and the
    offsets [B, 3]. Colours are the SH DC term (the research code's RGB)."""
    dev = renderer.device
    off = grid_offsets(B, dev)
    parts = []
    if renderer.background_splats is not None:
        bg = renderer.background_splats
        cols = bg.rgb if bg.rgb is not None else eval_sh(bg.sh[:, :1], torch.ones_like(bg.means))
        parts.append((bg.means.expand(B, -1, -1), bg.quats.expand(B, -1, -1), bg.scales.expand(B, -1, -1),
                      bg.opacities.expand(B, -1), cols.expand(B, -1, -1)))
    if renderer.body_splats is not None:
        stacked = renderer.stack_poses(poses, B, dev)
        m, q, s, o, _ = bodies_in_world(renderer.body_splats, stacked, torch.eye(4, device=dev).expand(B, 1, 4, 4), 0)
        body = renderer.body_splats.splats
        cols = body.rgb if body.rgb is not None else eval_sh(body.sh[:, :1], torch.ones_like(body.means))
        parts.append((m, q, s, o, cols.expand(B, -1, -1)))
    if not parts:
        raise ValueError("the renderer has no gaussians")
    cat = [torch.cat([p[i] for p in parts], 1) for i in range(5)]
    cat[0] = cat[0] + off[:, None]
    return tuple(t.reshape((-1,) + t.shape[2:]) for t in cat) + (off,)


def research_strategy_render(world: tuple[torch.Tensor, ...], Ks: torch.Tensor, viewmats: torch.Tensor, width: int,
                             height: int, backend: str = "auto", render_bs: int = RENDER_BS,
                             near_plane: float = 0.01, eps2d: float = 0.3) -> torch.Tensor:
    """Every env's camera (Ks [B, 3, 3], viewmats [B, 4, 4] in env-local frames) rasterises the WHOLE
    world, render_bs cameras per call (packed=False): rgb [B, H, W, 3] premultiplied."""
    means, quats, scales, opac, cols, off = world
    B = off.shape[0]
    T = torch.eye(4, device=off.device).repeat(B, 1, 1)
    T[:, :3, 3] = -off
    vms = viewmats @ T  # world -> env-local -> camera
    out = []
    for k in range(0, B, render_bs):
        img, _ = rasterize(means, quats, scales, opac, cols, vms[k:k + render_bs], Ks[k:k + render_bs], width, height,
                           near_plane=near_plane, eps2d=eps2d, backend=backend, tile_size=RESEARCH_TILE_SIZE)
        out.append(img)
    return torch.cat(out, 0)


def research_strategy_sweep(renderer: SceneRenderer, body_names, batch_sizes, image_sizes, cameras_fn, device,
                            backend: str = "auto", min_time: float = 0.5, max_iters: int = 10,
                            max_config_s: float = 20.0, seed: int = 0) -> list[dict]:
    """The research code's strategy per step (build the replicated world from the poses, then every
    camera rasterises all of it) on the same scene and poses as render_sweep (first camera of each env;
    image_sizes and cameras_fn as there). A config whose time, projected from the previous B by B^2,
    exceeds max_config_s is skipped."""
    rows = []
    for (h, w) in image_sizes:
        prev = None  # (B, ms)
        for B in batch_sizes:
            row = dict(res=f"{w}x{h}", width=w, height=h, B=B)
            projected = prev[1] * (B / prev[0]) ** 2 if prev else None
            if projected is not None and projected / 1000.0 * 3 > max_config_s:
                row.update(skipped=f"projected {projected / 1000:.1f} s per step (grows with B^2)")
                rows.append(row)
                logger.warning("research strategy: skipped %s", row)
                continue
            try:
                cams = cameras_fn(B, (h, w))
                Ks, vms = cams.Ks[:, 0].float(), cams.viewmats[:, 0].float()
                poses = varied_poses(body_names, B, device, seed)
                base = _mem_start(device)

                def step():
                    world = research_strategy_world(renderer, poses, B)
                    return research_strategy_render(world, Ks, vms, w, h, backend, near_plane=renderer.near_plane,
                                                    eps2d=getattr(renderer, "eps2d", 0.3))

                ms, n = time_call(step, device, min_time, max_iters, min_iters=1)
                row.update(ms=round(ms, 3), iters=n, fps=B / ms * 1000.0, **_mem_fields(base, _mem_peak(device), B))
                prev = (B, ms)
            except Exception as exc:  # keep the other configs' numbers
                row.update(error="out of memory" if _is_oom(exc) else f"{type(exc).__name__}: {exc}"[:300])
                if not _is_oom(exc):
                    logger.exception("research strategy config %s failed", row)
                prev = (B, float("inf"))
            finally:
                _free(device)
            rows.append(row)
            logger.info("research strategy %s", row)
    return rows


# -- check against ../shared/bench/seed_strategy_bench.py --------------------------------------------------
def seed_tabletop(G: int, device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """seed_strategy_bench.tabletop: gaussians on a 1.0 x 0.8 m table top plus a 'robot' column."""
    dev = device
    torch.manual_seed(seed)
    n_tab = G * 2 // 3
    xy = torch.rand(n_tab, 2, device=dev) * torch.tensor([1.0, 0.8], device=dev) + torch.tensor([0.0, -0.4], device=dev)
    tab = torch.cat([xy, torch.zeros(n_tab, 1, device=dev)], 1)
    n_rob = G - n_tab
    th = torch.rand(n_rob, device=dev) * 2 * math.pi
    z = torch.rand(n_rob, device=dev) * 0.8
    rob = torch.stack([0.06 * torch.cos(th), 0.06 * torch.sin(th), z], 1)
    means = torch.cat([tab, rob], 0)
    quats = torch.nn.functional.normalize(torch.randn(G, 4, device=dev), dim=-1)
    scales = torch.rand(G, 3, device=dev) * 0.003 + 0.003
    opac = torch.rand(G, device=dev) * 0.3 + 0.7
    cols = torch.rand(G, 3, device=dev)
    return means, quats, scales, opac, cols


def seed_camera(W: int, H: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """seed_strategy_bench.camera: (K [3, 3], world-to-camera [4, 4])."""
    dev = device
    fx = 604.152161 * W / 640
    fy = 604.267212 * H / 480
    K = torch.tensor([[fx, 0, 316.670074 * W / 640], [0, fy, 243.194473 * H / 480], [0, 0, 1]], device=dev)
    R = torch.tensor([[0.68370109, -0.50239316, 0.52929587], [0.33318036, 0.86018832, 0.38609201],
                      [-0.64926404, -0.08762054, 0.75549905]], device=dev)
    t = torch.tensor([0.075, -0.161, 0.497], device=dev)
    R_cv = torch.stack([-R[:, 1], -R[:, 2], R[:, 0]], 1)
    c2w = torch.eye(4, device=dev)
    c2w[:3, :3] = R_cv
    c2w[:3, 3] = t
    return K, torch.linalg.inv(c2w)


def _reference_rasterization(backend: str):
    """gsplat.rasterization on CUDA (what seed_strategy_bench calls); on CPU (tests) the torch
    rasteriser behind the same call shape."""
    if backend == "gsplat":
        from gsplat import rasterization

        return rasterization

    def torch_rasterization(m, q, s, o, c, vm, K, W, H, packed=False):
        img, a = rasterize(m, q, s, o, c, vm, K, W, H, backend="torch")
        return img, a, {}

    return torch_rasterization


def seed_reference_research_fn(gs: tuple[torch.Tensor, ...], K: torch.Tensor, vm: torch.Tensor, W: int, H: int,
                               B: int, backend: str):
    """seed_strategy_bench's f_research, verbatim: the world and per-env viewmats built once, then a
    callable doing the micro-batched rasterisation."""
    rasterization = _reference_rasterization(backend)
    m, q, s, o, c = gs
    dev = m.device
    cols = math.ceil(math.sqrt(B))
    off = torch.tensor([[5.0 * (i % cols), 5.0 * (i // cols), 0.0] for i in range(B)], device=dev)
    M = (m[None] + off[:, None]).reshape(-1, 3)
    Q, S, O, Cc = q.repeat(B, 1), s.repeat(B, 1), o.repeat(B), c.repeat(B, 1)
    T = torch.eye(4, device=dev).repeat(B, 1, 1)
    T[:, :3, 3] = -off
    VM = vm[None] @ T

    def f_research():
        for k in range(0, B, 4):
            rasterization(M, Q, S, O, Cc, VM[k:k + 4], K.expand(min(4, B - k), 3, 3), W, H, packed=False)
    return f_research


def check_baseline(device, backend: str, cases=((100_000, 224, 224, 16), (100_000, 224, 224, 64)),
                   min_time: float = 0.5, max_iters: int = 10, tolerance: float = 0.2) -> list[dict]:
    """Our research-strategy baseline (research_strategy_render on a world replicated like
    research_strategy_world does) vs seed_strategy_bench's f_research on its synthetic table-top: the
    same gaussians, camera and B, both timed around the rasterisation only (the reference builds its
    world once). cases: (gaussians, height, width, B) each. ratio = ours_ms / reference_ms (reference
    timed before and after ours, averaged); ok when |ratio - 1| <= tolerance."""
    rows = []
    for (G, H, W, B) in cases:
        gs = seed_tabletop(G, device)
        K, vm = seed_camera(W, H, device)
        ref = seed_reference_research_fn(gs, K, vm, W, H, B, backend)
        off = grid_offsets(B, device)
        world = tuple(t.repeat((B,) + (1,) * (t.dim() - 1)) for t in gs)
        world = (world[0] + off.repeat_interleave(G, 0),) + world[1:] + (off,)
        Ks, vms = K.expand(B, 3, 3), vm.expand(B, 4, 4)
        ours = lambda: research_strategy_render(world, Ks, vms, W, H, backend)  # noqa: E731
        t_ref, _ = time_call(ref, device, min_time, max_iters, min_iters=1)
        t_ours, _ = time_call(ours, device, min_time, max_iters, min_iters=1)
        t_ref2, _ = time_call(ref, device, min_time, max_iters, min_iters=1)  # bracket: clocks drift
        t_ref = (t_ref + t_ref2) / 2
        ratio = t_ours / t_ref
        rows.append(dict(gaussians=G, res=f"{W}x{H}", B=B, ours_ms=round(t_ours, 3), reference_ms=round(t_ref, 3),
                         ours_fps=B / t_ours * 1000.0, reference_fps=B / t_ref * 1000.0, ratio=round(ratio, 3),
                         ok=abs(ratio - 1.0) <= tolerance))
        logger.info("baseline check %s", rows[-1])
        gs = world = ref = None  # free GPU memory before the next size
        _free(device)
    return rows


# ----------------------------------------------------------------------------------------------------
# Domain randomisation and the wrist camera (`--views`): their cost, as ratios measured in one run
# ----------------------------------------------------------------------------------------------------
EXAMPLE_RANDOMIZATION = dict(
    camera_translation=(-0.02, 0.02), camera_rotation=(-3.0, 3.0), focal_scale=(0.92, 1.08), light=(0.7, 1.3),
    tint=(0.9, 1.1), brightness=(-0.05, 0.05), contrast=(0.8, 1.2), saturation=(0.6, 1.4), hue=(-0.05, 0.05),
    gamma=(0.8, 1.25), noise_std=(0.0, 0.02), object_color=(-0.35, 0.35),
    backdrop_color=((0.1, 0.1, 0.1), (0.9, 0.9, 0.9)))
"""Every range on (the README's example): what `--views` times as "randomisation on"."""
VIEW_SETS = {"third": ("3rd_view_camera",), "third+wrist": ("3rd_view_camera", "wrist_camera")}
RANDOMIZATION_PARTS = {
    "camera": ("camera_translation", "camera_rotation", "focal_scale"),
    "image": ("light", "tint", "brightness", "contrast", "saturation", "hue", "gamma", "noise_std"),
    "object_color": ("object_color",), "backdrop": ("backdrop_color",)}
"""`--views --parts`: EXAMPLE_RANDOMIZATION split into what the renderer does with each part, each timed
alone on the third-person camera (the cost of the whole is split by stage)."""


def views_benchmark(batch: int = 256, image_size: tuple[int, int] = (224, 224), device: str = "cuda",
                    density: float = 1.0, min_time: float = 1.0, partial: int = 8,
                    asset_root: str | None = None, parts: bool = False) -> dict:
    """The default scene rendered as the env renders it (CameraRig + SceneRenderer, the background cache
    on), for the third-person camera alone and with the wrist camera, each with domain randomisation
    off and on (EXAMPLE_RANDOMIZATION). Rows: ms per render, env-steps/s (B per render) and images/s;
    ratios: randomisation's cost (1 - on/off throughput) per view set, the wrist's cost; also the time
    of a partial reset of `partial` envs with randomisation on (new draws, their backgrounds rendered
    again, one render). parts: also each of RANDOMIZATION_PARTS alone on the third-person camera
    (rows with views "third" and randomization the part's name; ratios randomization_cost_<part>)."""
    from gsenv.scene.camera_rig import CameraRig
    from gsenv.scene.randomization import DomainRandomization, RandomizedLook
    from gsenv.scene.rendering import make_renderer
    from gsenv.scene.resolve import resolve_scene
    from gsenv.scene.task_fit import objects_of_task
    from gsenv.tasks import DEFAULT_TASK, get_task

    B, (h, w) = int(batch), image_size
    bundle = objects_of_task(resolve_scene("default", asset_root=asset_root, density=density),
                             get_task(DEFAULT_TASK).objects)  # the default task's scene, as its env draws it
    renderer = make_renderer(bundle, "auto", device)
    poses = varied_poses([*renderer.body_names, "fr3_hand"], B, device)
    frame = torch.zeros(B, dtype=torch.int32, device=device)
    config = DomainRandomization.from_any(EXAMPLE_RANDOMIZATION)
    rows, fps = [], {}
    runs = []
    for views, cams in VIEW_SETS.items():  # the parts right after their baseline (less drift between them)
        runs += [(views, cams, on) for on in (False, True)]
        if parts and views == "third":
            runs += [(views, cams, part) for part in RANDOMIZATION_PARTS]
    rigs = {views: CameraRig(bundle, list(cams), B, device, (h, w)) for views, cams in VIEW_SETS.items()}
    for views, cams, on in runs:
        rig, rl = rigs[views], None
        if on:
            keys = EXAMPLE_RANDOMIZATION if on is True else RANDOMIZATION_PARTS[on]
            config = DomainRandomization.from_any({k: EXAMPLE_RANDOMIZATION[k] for k in keys})
            rl = RandomizedLook(config, B, len(cams), renderer.body_names, w, h, device)
            rl.redraw(range(B), range(B))
            rig.set_offsets(*rl.camera_offsets())
        else:
            rig.set_offsets(None, None)

        kept = ViewState()  # one per run: its cameras and look

        def step(rig=rig, rl=rl, kept=kept):
            renderer.render(poses, rig.cameras(poses), look=None if rl is None else rl.look(frame), views=kept)

        ms, n = time_call(step, device, min_time=min_time, max_iters=200, warmup=2)
        fps[(views, on)] = B / ms * 1000
        rows.append(dict(views=views, randomization=on, B=B, res=f"{w}x{h}", ms=round(ms, 3),
                         env_steps_per_s=round(B / ms * 1000, 1), images_per_s=round(B * len(cams) / ms * 1000, 1),
                         iters=n))
        logger.info("%s", rows[-1])
        if on is True and partial:
            k = min(int(partial), B)

            def reset(rig=rig, rl=rl, k=k):
                rl.redraw(range(k), [10_000 + i for i in range(k)])
                rig.set_offsets(*rl.camera_offsets())
                step()

            reset_ms, _ = time_call(reset, device, min_time=min_time, max_iters=50, warmup=1)
            rows[-1]["partial_reset_ms"] = round(reset_ms, 3)
            rows[-1]["partial_reset_envs"] = k
    ratios = {f"randomization_cost_{v}": round(1 - fps[(v, True)] / fps[(v, False)], 4) for v in VIEW_SETS}
    ratios.update({f"randomization_cost_{p}": round(1 - fps[("third", p)] / fps[("third", False)], 4)
                   for p in RANDOMIZATION_PARTS if ("third", p) in fps})
    ratios["wrist_cost"] = round(1 - fps[("third+wrist", False)] / fps[("third", False)], 4)
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "cpu"
    return {"device": name, "rows": rows, "ratios": ratios}


def views_table(result: dict) -> str:
    out = ["| views | randomisation | B | resolution | ms / render | env-steps/s | images/s | partial reset ms |",
           "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        reset = f"{r['partial_reset_ms']:.2f} ({r['partial_reset_envs']} envs)" if "partial_reset_ms" in r else "-"
        what = {True: "on", False: "off"}.get(r["randomization"], f"{r['randomization']} only")
        out.append(f"| {r['views']} | {what} | {r['B']} | {r['res']} | {r['ms']:.2f} "
                   f"| {r['env_steps_per_s']:,.0f} | {r['images_per_s']:,.0f} | {reset} |")
    out.append("")
    out += [f"- {k}: {v:.1%}" for k, v in result["ratios"].items()]
    return "\n".join(out)


def table(rows: list[dict]) -> str:
    out = ["| background cache | resolution | B | ms / render | env-frames/s |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {'on' if r['cache'] else 'off'} | {r['res']} | {r['B']} | {r['ms']:.2f} | {r['fps']:,.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--image-size", type=parse_image_size, nargs="+", default=[(224, 224), (480, 640)], metavar="HxW",
                    help="image sizes: one int (square) or HEIGHTxWIDTH each (default 224x224 480x640)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--views", action="store_true",
                    help="instead: the default scene as the env renders it, third-person vs third-person + wrist "
                         "camera, domain randomisation off vs on (ratios from one run; first --batch and "
                         "--image-size only)")
    ap.add_argument("--parts", action="store_true",
                    help="with --views: also time each part of the randomisation alone (camera, image colour, "
                         "object colour, backdrop) on the third-person camera")
    ap.add_argument("--json", default=None, metavar="FILE", help="with --views: also write the result as JSON")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gsenv.tools.bench.render times CUDA renders: run it where CUDA is available")
    logging.basicConfig(level=logging.INFO)
    if a.views:
        import json

        result = views_benchmark(a.batch[0], a.image_size[0], parts=a.parts)
        print(f"device: {result['device']}")
        print(views_table(result))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=1)
        return
    rows = benchmark(a.batch, a.image_size, a.iters)
    print(f"device: {torch.cuda.get_device_name()}")
    print(table(rows))


if __name__ == "__main__":
    main()
