"""Render benchmark (GPU): ms per batched render and env-frames/s, background cache on and off.

    python -m gsenv.splat.bench [--batch 1 16 64 256] [--res 224x224 640x480] [--iters 10]

The scene is a synthetic table-top with the default scene's gaussian counts (static background
336k: table, apron, floor, wall; 9 robot links x 12.2k + cube 4k + plate 16k = 130k body gaussians),
seen by upstream's calibrated third-person camera (K rescaled to each resolution).
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch

from gsenv.splat.cameras import Cameras, sapien_pose_to_viewmat, scale_intrinsics
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.renderer import SceneRenderer

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
    return Gaussians.from_activated(m, torch.randn(n, 4, generator=g), s, torch.rand(n, generator=g) * 0.5 + 0.5, colors=c)


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
    poses["cube"] = torch.cat([torch.tensor([0.4, 0.2, 0.02]) + torch.rand(B, 3, generator=g) * torch.tensor([0.1, 0.05, 0]), ident], -1)
    poses["plate"] = torch.cat([torch.tensor([0.45, 0.0, 0.01]).repeat(B, 1), ident], -1)
    return {k: v.to(device) for k, v in poses.items()}


def upstream_cameras(B: int, width: int, height: int, device) -> Cameras:
    K = scale_intrinsics(torch.tensor(UPSTREAM_K), (640, 480), (width, height))
    V = sapien_pose_to_viewmat(torch.tensor(UPSTREAM_CAM_TO_BASE))
    return Cameras.shared(K, V, width, height, B).to(device)


def benchmark(batch_sizes=(1, 16, 64, 256), resolutions=((224, 224), (640, 480)), iters: int = 10,
              device: str = "cuda", backend: str = "auto") -> list[dict]:
    bg, bodies = synthetic_tabletop()
    rows = []
    for cache in (True, False):
        r = SceneRenderer(bg, bodies, backend=backend, cache_background=cache, device=device, backdrop=(0.5, 0.5, 0.5))
        for (w, h) in resolutions:
            for B in batch_sizes:
                cams, poses = upstream_cameras(B, w, h, device), synthetic_poses(B, device)
                try:
                    for _ in range(2):
                        r.render(poses, cams)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(iters):
                        r.render(poses, cams)
                    torch.cuda.synchronize()
                    ms = (time.perf_counter() - t0) / iters * 1000
                    rows.append(dict(cache=cache, res=f"{w}x{h}", B=B, ms=ms, fps=B / ms * 1000))
                except torch.cuda.OutOfMemoryError:
                    rows.append(dict(cache=cache, res=f"{w}x{h}", B=B, ms=float("nan"), fps=float("nan")))
                    torch.cuda.empty_cache()
                logger.info("%s", rows[-1])
        del r
        torch.cuda.empty_cache()
    return rows


def table(rows: list[dict]) -> str:
    out = ["| background cache | resolution | B | ms / render | env-frames/s |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {'on' if r['cache'] else 'off'} | {r['res']} | {r['B']} | {r['ms']:.2f} | {r['fps']:,.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--res", nargs="+", default=["224x224", "640x480"])
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    res = [tuple(int(v) for v in s.split("x")) for s in a.res]
    rows = benchmark(a.batch, res, a.iters)
    print(f"device: {torch.cuda.get_device_name()}")  # noqa: T201  (CLI output)
    print(table(rows))  # noqa: T201


if __name__ == "__main__":
    main()
