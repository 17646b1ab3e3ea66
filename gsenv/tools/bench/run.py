"""One benchmark run: load the default scene, run the chosen sections, write benchmark.json after each.

Sections a and b (render-only, the research code's strategy, the check of that baseline) are
gsenv.tools.bench.render's sweeps on the default scene; c and d are gsenv.tools.bench.env's.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from gsenv.tools.bench.config import Config

logger = logging.getLogger(__name__)


def gsplat_warmup(device: str, render_backend: str) -> float | None:
    """Seconds of the first gsplat call (it JIT-compiles the CUDA extension on a fresh machine), or
    None with another rasteriser."""
    if render_backend != "gsplat":
        return None
    import torch

    from gsenv.splat.rasterize import rasterize

    t0 = time.perf_counter()
    z = torch.zeros(1, 3, device=device)
    z[:, 2] = 1.0
    rasterize(z, torch.tensor([[1.0, 0, 0, 0]], device=device), torch.full((1, 3), 0.01, device=device),
              torch.ones(1, device=device), torch.ones(1, 3, device=device), torch.eye(4, device=device)[None],
              torch.tensor([[[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]]], device=device), 16, 16, backend="gsplat")
    torch.cuda.synchronize(device)
    s = time.perf_counter() - t0
    logger.info("gsplat first call (CUDA extension load/compile): %.1f s", s)
    return s


def _cameras_fn(bundle, device: str):
    """cameras(B, (height, width)) -> the bundle's cameras [B, C] at that size."""
    from gsenv.scene.camera_rig import bundle_cameras

    return lambda B, image_size: bundle_cameras(bundle, None, B, device, image_size=image_size)


def section_render(bundle, device: str, render_backend: str, cfg: Config) -> list[dict]:
    """Section a: render-only env-frames/s and peak memory vs B, size and background cache."""
    from gsenv.scene.rendering import make_renderer
    from gsenv.tools.bench.render import render_sweep

    return render_sweep(
        lambda cache: make_renderer(bundle, render_backend, device, cache), tuple(bundle.body_gaussians()),
        cfg.render_batches, cfg.render_sizes, _cameras_fn(bundle, device), device,
        min_time=cfg.render_min_time, max_iters=cfg.render_max_iters, budget_s=cfg.render_budget_s)


def section_research(bundle, device: str, render_backend: str, cfg: Config) -> list[dict]:
    """Section b: the research code's rendering strategy on the same scene and poses."""
    from gsenv.scene.rendering import make_renderer
    from gsenv.tools.bench.render import research_strategy_sweep

    renderer = make_renderer(bundle, render_backend, device, cache_background=False)
    return research_strategy_sweep(
        renderer, tuple(bundle.body_gaussians()), cfg.research_batches, cfg.render_sizes,
        _cameras_fn(bundle, device), device, render_backend, min_time=cfg.render_min_time,
        max_iters=max(1, min(cfg.render_max_iters, 10)), max_config_s=cfg.research_max_config_s)


def section_check(device: str, render_backend: str, cfg: Config) -> list[dict]:
    """Section b's check: our research-strategy baseline against seed_strategy_bench's maths."""
    from gsenv.tools.bench.render import check_baseline

    return check_baseline(device, render_backend, cfg.check_cases, min_time=cfg.render_min_time,
                          max_iters=max(1, min(cfg.render_max_iters, 10)))


def _scene_summary(bundle, density: float) -> dict:
    background = len(bundle.background) if bundle.background is not None else 0
    bodies = {k: len(v) for k, v in bundle.body_gaussians().items()}
    return dict(name="default", density=density, background_gaussians=background, body_gaussians=bodies,
                total_gaussians=background + sum(bodies.values()))


def run(sections: str, out: Path, device: str, cfg: Config, asset_root: str | None = None,
        workers: int | None = None, check_only: bool = False) -> dict:
    """Run `sections` (letters of SECTIONS; check_only: only the baseline check) and return the
    results; <out>/benchmark.json is rewritten after every section (partial results survive a later
    failure or time-out). workers: physics worker processes (default one per usable core, at most B;
    one with cfg.quick)."""
    import torch

    from gsenv.backends import resolve_render_backend
    from gsenv.physics.cpu_pool import usable_cpus
    from gsenv.tools.bench.env import section_end_to_end, section_physics
    from gsenv.tools.bench.machine import machine_info
    from gsenv.tools.bench.report import performance_bars, write_json

    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    render_backend = resolve_render_backend("auto", device)
    timing: dict[str, float] = {}
    # quick: one worker (each process start imports ManiSkill; that is most of a quick run's time)
    workers = workers or (1 if cfg.quick else max(1, min(len(usable_cpus()), cfg.env_batch)))
    results: dict = {"config": {**asdict(cfg), "sections": sections, "check_only": check_only,
                                "render_backend": render_backend, "workers": workers},
                     "machine": machine_info(device)}

    def save():
        results["bars"] = performance_bars(results)
        results["timing_s"] = {**timing, "total": time.perf_counter() - t_all}
        write_json(results, out)

    t = time.perf_counter()
    results["gsplat_first_call_s"] = gsplat_warmup(device, render_backend)
    timing["gsplat_warmup"] = time.perf_counter() - t
    if check_only:
        t = time.perf_counter()
        results["baseline_check"] = section_check(device, render_backend, cfg)
        timing["baseline_check"] = time.perf_counter() - t
        save()
        return results

    from gsenv.assets.root import asset_root as resolve_root
    from gsenv.scene.task_fit import objects_of_task
    from gsenv.scene_build.default import load_default_bundle
    from gsenv.tasks import DEFAULT_TASK, get_task

    t = time.perf_counter()
    # the default task's scene, as its env draws it (the embedded scene holds other tasks' objects too)
    bundle = objects_of_task(load_default_bundle(resolve_root(asset_root), cfg.density, progress=False),
                             get_task(DEFAULT_TASK).objects)
    timing["scene"] = time.perf_counter() - t
    results["scene"] = _scene_summary(bundle, cfg.density)
    logger.info("default scene (density %s): %d gaussians, loaded in %.1f s", cfg.density,
                results["scene"]["total_gaussians"], timing["scene"])
    # the env sections first: the largest render configs (B=1024, the research strategy at B=256) come
    # last, so whatever they do to the GPU the env numbers are in
    steps = [("d", "physics", lambda: section_physics(bundle, device, render_backend, workers, cfg)),
             ("c", "end_to_end", lambda: section_end_to_end(bundle, device, render_backend, workers, cfg)),
             ("a", "render", lambda: section_render(bundle, device, render_backend, cfg)),
             ("b", "baseline_check", lambda: section_check(device, render_backend, cfg)),
             ("b", "research_strategy", lambda: section_research(bundle, device, render_backend, cfg))]
    for letter, key, fn in steps:
        if letter not in sections:
            continue
        logger.info("section %s: %s", letter, key)
        t = time.perf_counter()
        results[key] = fn()
        timing[key] = time.perf_counter() - t
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        save()
    save()
    return results
