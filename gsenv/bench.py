"""`gsenv bench` (also scripts/benchmark.py): the throughput benchmark of gsenv, in one run.

Sections (``--sections``, default all):
  a  render-only env-frames/s and peak GPU memory vs B on the default scene, 2 resolutions, cache on/off
  b  the research code's rendering strategy on the same scene and poses (B <= 256), and the check of
     that baseline against ../shared/bench/seed_strategy_bench.py's maths (``--check-baseline`` runs
     only the check)
  c  end-to-end GSEnv steps/s (physx_cpu, one worker per core, rgb observations)
  d  physics-only GSEnv steps/s (obs_mode "state"), gymnasium's AsyncVectorEnv over as many single-env
     ManiSkill processes, a single process, a partial reset of a quarter of the envs, ``lscpu``

Writes ``<out>/benchmark.json`` and ``<out>/benchmark.png`` and prints the tables last.
``--quick`` shrinks everything (tiny images, B <= 2, scene density 0.01) so that it runs on CPU with
the torch rasteriser in about a minute (the test uses it); its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

SECTIONS = "abcd"
JSON_NAME = "benchmark.json"
PLOT_NAME = "benchmark.png"


@dataclass
class Config:
    """Sizes of one benchmark run."""

    density: float = 1.0
    render_batches: tuple = (1, 16, 64, 256, 1024)
    resolutions: tuple = ((224, 224), (640, 480))
    render_min_time: float = 0.5
    render_max_iters: int = 50
    render_budget_s: float = 150.0
    research_batches: tuple = (1, 16, 64, 256)
    research_max_config_s: float = 25.0
    check_cases: tuple = ((100_000, 224, 224, 16), (100_000, 224, 224, 64))
    env_batch: int = 64
    env_image: tuple = (224, 224)  # (height, width)
    # Every physics measurement times the same 60 steps after 2 warm-up steps from a fresh reset: the
    # cost of a PhysX step depends on the arm's motion and contacts, so equal steps, not equal seconds.
    env_min_time: float = 0.0
    env_max_steps: int = 60
    env_min_steps: int = 60
    single_steps: int = 60
    reset_repeats: int = 3
    quick: bool = False
    extra: dict = field(default_factory=dict)


def full_config() -> Config:
    return Config()


def quick_config() -> Config:
    return Config(density=0.01, render_batches=(1, 2), resolutions=((32, 24),), render_min_time=0.0,
                  render_max_iters=2, render_budget_s=60.0, research_batches=(1, 2), research_max_config_s=30.0,
                  check_cases=((300, 32, 24, 2),), env_batch=2, env_image=(24, 32), env_min_time=0.0,
                  env_max_steps=3, env_min_steps=3, single_steps=3, reset_repeats=1, quick=True)


# ------------------------------------------------------------------------------------------------ helpers
def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_info(device: str) -> dict:
    """CPU layout (lscpu), GPU, versions, date."""
    import torch

    info = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
            "python": platform.python_version(), "torch": torch.__version__, "usable_cores": cores(),
            "cpu_count": os.cpu_count(), "device": device}
    try:
        import gsplat

        info["gsplat"] = gsplat.__version__
    except ImportError:
        info["gsplat"] = None
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    lscpu = shutil.which("lscpu")
    if lscpu:
        text = subprocess.run([lscpu], capture_output=True, text=True, timeout=30).stdout
        fields = {}
        for line in text.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        keep = ("Model name", "CPU(s)", "On-line CPU(s) list", "Thread(s) per core", "Core(s) per socket",
                "Socket(s)", "NUMA node(s)", "CPU max MHz", "L3")
        info["lscpu"] = {k: fields[k] for k in keep if k in fields}
        info["lscpu_text"] = text
    else:
        info["lscpu"] = None
        logger.warning("lscpu not found: the core layout is not recorded")
    return info


def _rng_actions(rng, low, high, n: int, scale: float = 0.3):
    """[n, A] small random actions: uniform in scale x the action box."""
    import numpy as np

    mid, half = (high + low) / 2, (high - low) / 2
    return (mid + scale * half * rng.uniform(-1, 1, size=(n,) + low.shape)).astype(np.float32)


def _timed_steps(step, cfg: Config) -> tuple[float, int]:
    """(seconds per step, steps): steps until cfg.env_min_time passed (at least env_min_steps)."""
    t0 = time.perf_counter()
    n = 0
    while n < cfg.env_min_steps or (n < cfg.env_max_steps and time.perf_counter() - t0 < cfg.env_min_time):
        step(n)
        n += 1
    return (time.perf_counter() - t0) / n, n


# ------------------------------------------------------------------------------------------------ a, b
def _gsplat_warmup(device: str, backend: str) -> float | None:
    """Seconds of the first gsplat call (JIT-compiles the CUDA extension on a fresh machine)."""
    if backend != "gsplat":
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


def section_render(bundle, device: str, backend: str, cfg: Config) -> list[dict]:
    from gsenv.scene.rendering import bundle_cameras, make_renderer
    from gsenv.splat import bench

    body_names = tuple(bundle.body_gaussians())
    return bench.render_sweep(
        lambda cache: make_renderer(bundle, backend, device, cache), body_names, cfg.render_batches,
        cfg.resolutions, lambda B, w, h: bundle_cameras(bundle, None, w, h, B, device), device,
        min_time=cfg.render_min_time, max_iters=cfg.render_max_iters, budget_s=cfg.render_budget_s)


def section_research(bundle, device: str, backend: str, cfg: Config) -> list[dict]:
    from gsenv.scene.rendering import bundle_cameras, make_renderer
    from gsenv.splat import bench

    renderer = make_renderer(bundle, backend, device, cache_background=False)
    body_names = tuple(bundle.body_gaussians())
    return bench.research_strategy_sweep(
        renderer, body_names, cfg.research_batches, cfg.resolutions,
        lambda B, w, h: bundle_cameras(bundle, None, w, h, B, device), device, backend,
        min_time=cfg.render_min_time, max_iters=max(1, min(cfg.render_max_iters, 10)),
        max_config_s=cfg.research_max_config_s)


def section_check(device: str, backend: str, cfg: Config) -> list[dict]:
    from gsenv.splat import bench

    return bench.check_baseline(device, backend, cfg.check_cases, min_time=cfg.render_min_time,
                                max_iters=max(1, min(cfg.render_max_iters, 10)))


# ------------------------------------------------------------------------------------------------ c, d
def _make_env(bundle, obs_mode: str, device: str, backend: str, workers: int, cfg: Config):
    from gsenv.env import GSEnv

    t0 = time.perf_counter()
    env = GSEnv(num_envs=cfg.env_batch, obs_mode=obs_mode, scene=bundle, image_size=cfg.env_image,
                sim_backend="physx_cpu", render_backend=backend, device=device, num_workers=workers)
    logger.info("GSEnv %s: %d envs, %d workers, ready in %.1f s", obs_mode, cfg.env_batch, workers,
                time.perf_counter() - t0)
    return env, time.perf_counter() - t0


def _env_rates(env, cfg: Config, seed: int) -> dict:
    """Steps/s of a GSEnv and the cost of a partial reset of a quarter of its envs."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    low, high = env.single_action_space.low, env.single_action_space.high
    B = env.num_envs
    actions = [torch.from_numpy(_rng_actions(rng, low, high, B)) for _ in range(8)]
    sync = (lambda: torch.cuda.synchronize(env.device)) if env.device.type == "cuda" else (lambda: None)

    def step(i):
        obs, *_ = env.step(actions[i % len(actions)])
        return obs

    for i in range(2):  # warm-up
        step(i)
    sync()
    s_per_step, n = _timed_steps(lambda i: (step(i), sync()), cfg)
    quarter = np.arange(max(1, B // 4))
    resets = []
    for r in range(cfg.reset_repeats):
        sync()
        t0 = time.perf_counter()
        env.reset(seed=1000 + r, options={"env_idx": quarter})
        sync()
        resets.append(time.perf_counter() - t0)
        step(r)
    reset_s = float(np.median(resets))
    return dict(num_envs=B, steps=n, step_ms=round(s_per_step * 1000, 3), steps_per_s=1.0 / s_per_step,
                env_steps_per_s=B / s_per_step, partial_reset_envs=len(quarter), partial_reset_ms=round(reset_s * 1000, 3),
                partial_reset_in_steps=round(reset_s / s_per_step, 3))


def section_e2e(bundle, device: str, backend: str, workers: int, cfg: Config) -> dict:
    import torch

    env, startup = _make_env(bundle, "rgb", device, backend, workers, cfg)
    try:
        res = _env_rates(env, cfg, seed=1)
        # what one step's rendering costs alone (same renderer, poses and cameras as the env's)
        poses, cams = env.get_body_poses(), env._cameras
        from gsenv.splat.bench import time_call

        render_ms, _ = time_call(lambda: env._renderer.render(poses, cams), device, 0.0 if cfg.quick else 1.0,
                                 max_iters=50 if not cfg.quick else 2)
        res.update(obs_mode="rgb", image=f"{cfg.env_image[1]}x{cfg.env_image[0]}", workers=workers,
                   startup_s=round(startup, 2), render_only_ms=round(render_ms, 3),
                   render_share=round(render_ms / res["step_ms"], 3))
        if device.startswith("cuda"):
            res["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    finally:
        env.close()
    return res


def _single_env_fn(task_kwargs: dict):
    """A picklable maker of one ManiSkill env of our task (numpy, unbatched: CPUGymWrapper)."""
    return _SingleEnvMaker(task_kwargs)


class _SingleEnvMaker:
    def __init__(self, task_kwargs: dict):
        self.task_kwargs = task_kwargs

    def __call__(self):
        import gymnasium as gym
        import torch

        torch.set_num_threads(1)  # as in gsenv's workers (and ManiSkill's advice): the comparison is fair
        import gsenv.sim.task  # noqa: F401  (registers the task id)
        from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper

        from gsenv.sim import names

        env = gym.make(names.TASK_ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu", render_backend="none",
                       render_mode=None, max_episode_steps=10**6, **self.task_kwargs)
        return CPUGymWrapper(env, ignore_terminations=True)


def _task_kwargs(bundle) -> dict:
    from gsenv.scene.resolve import task_kwargs_from_bundle

    return {"control_mode": "pd_ee_target_delta_pose", "reward_mode": "sparse", **task_kwargs_from_bundle(bundle)}


def _async_baseline(bundle, workers: int, cfg: Config) -> dict:
    import gymnasium as gym
    import numpy as np

    t0 = time.perf_counter()
    venv = gym.vector.AsyncVectorEnv([_single_env_fn(_task_kwargs(bundle)) for _ in range(workers)],
                                     context="spawn")
    try:
        venv.reset(seed=0)
        startup = time.perf_counter() - t0
        rng = np.random.default_rng(2)
        low, high = venv.single_action_space.low, venv.single_action_space.high
        actions = [_rng_actions(rng, low, high, workers) for _ in range(8)]
        for i in range(2):
            venv.step(actions[i])
        s, n = _timed_steps(lambda i: venv.step(actions[i % len(actions)]), cfg)
    finally:
        venv.close()
    return dict(processes=workers, envs_per_process=1, steps=n, step_ms=round(s * 1000, 3),
                env_steps_per_s=workers / s, startup_s=round(startup, 2))


def _single_process(bundle, cfg: Config) -> dict:
    """One single-env instance in this process, through the pool workers' own code (no IPC)."""
    import numpy as np
    import torch

    from gsenv.physics.backend import OUTPUTS, TASK_MODULE
    from gsenv.physics.maniskill_instance import ManiSkillFactory
    from gsenv.sim import names

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        inst = ManiSkillFactory(names.TASK_ID, {**_task_kwargs(bundle), "render_backend": "none"},
                                import_module=TASK_MODULE, extra_outputs=OUTPUTS)(0)
        try:
            inst.reset(0, {})
            rng = np.random.default_rng(3)
            space = inst.describe()
            acts = _rng_actions(rng, space["action_low"], space["action_high"], 8)
            for i in range(2):
                inst.step(acts[i])
            t0 = time.perf_counter()
            for i in range(cfg.single_steps):
                inst.step(acts[i % 8])
            s = (time.perf_counter() - t0) / cfg.single_steps
        finally:
            inst.close()
    finally:
        torch.set_num_threads(threads)
    return dict(steps=cfg.single_steps, step_ms=round(s * 1000, 3), env_steps_per_s=1.0 / s)


def section_physics(bundle, device: str, backend: str, workers: int, cfg: Config) -> dict:
    """GSEnv physics-only against AsyncVectorEnv at equal process counts: one per core (our default,
    `workers`) and one per env (B: the plain way to hold B envs; it oversubscribes the cores, which
    balances the uneven PhysX steps)."""
    def gsenv_rates(procs: int) -> dict:
        env, startup = _make_env(bundle, "state", device, backend, procs, cfg)
        try:
            res = _env_rates(env, cfg, seed=4)
            res.update(obs_mode="state", workers=procs, startup_s=round(startup, 2))
            return res
        finally:
            env.close()

    single = _single_process(bundle, cfg)
    gs, asyncv = gsenv_rates(workers), _async_baseline(bundle, workers, cfg)
    if cfg.env_batch != workers:
        gs_per_env, per_env = gsenv_rates(cfg.env_batch), _async_baseline(bundle, cfg.env_batch, cfg)
    else:
        gs_per_env, per_env = gs, asyncv
    rate = lambda r: r["env_steps_per_s"]  # noqa: E731
    per_worker = rate(single)
    return dict(
        gsenv_state=gs, gsenv_state_per_env=gs_per_env, single_process=single, async_vector_env=asyncv,
        async_vector_env_per_env=per_env,
        speedup_vs_async=rate(gs) / rate(asyncv),
        speedup_vs_async_per_env=rate(gs_per_env) / rate(per_env),
        speedup_best_vs_best=max(rate(gs), rate(gs_per_env)) / max(rate(asyncv), rate(per_env)),
        parallel_efficiency=rate(gs) / (workers * per_worker),
        async_parallel_efficiency=rate(asyncv) / (workers * per_worker),
    )


# ------------------------------------------------------------------------------------------------ summary
def _find(rows, **kw):
    for r in rows or []:
        if all(r.get(k) == v for k, v in kw.items()) and r.get("fps"):
            return r
    return None


def performance_bars(results: dict) -> list[dict]:
    """The issue's performance bar, evaluated on this run's numbers (None where not measured)."""
    a, b = results.get("render"), results.get("research_strategy")
    c, d = results.get("end_to_end"), results.get("physics")
    bars = []

    def bar(name, value, target, ok):
        bars.append(dict(bar=name, value=None if value is None else round(value, 3), target=target,
                         ok=None if value is None else bool(ok)))

    r = _find(a, cache=True, res="224x224", B=256)
    bar("render 224x224 B=256 env-frames/s (cache on)", r and r["fps"], ">= 20000", r and r["fps"] >= 20000)
    r64, s64 = _find(a, cache=True, res="224x224", B=64), _find(b, res="224x224", B=64)
    ratio = r64["fps"] / s64["fps"] if r64 and s64 else None
    bar("render 224x224 B=64 vs research strategy", ratio, ">= 10x", ratio is not None and ratio >= 10)
    r = _find(a, cache=True, res="640x480", B=256)
    bar("render 640x480 B=256 env-frames/s (cache on)", r and r["fps"], ">= 5000", r and r["fps"] >= 5000)
    r = _find(a, cache=True, res="224x224", B=256)
    v = r and r.get("mem_mb_per_env")
    bar("render memory per env, 224x224 B=256 (MB)", v, "<= 40", v is not None and v <= 40)
    big = [x for x in (a or []) if x.get("B") == 1024 and x.get("res") == "224x224" and x.get("cache")]
    fits = None if not big else bool(big[0].get("fps"))
    bars.append(dict(bar="B=1024 fits on the card (224x224, cache on)", value=fits, target="fits", ok=fits))
    if c and d:
        frac = c["env_steps_per_s"] / d["gsenv_state"]["env_steps_per_s"]
        bar("end-to-end rgb / physics-only", frac, ">= 0.85", frac >= 0.85)
    if d:
        bar("physics-only / AsyncVectorEnv, one process per core each", d["speedup_vs_async"], ">= 1.2x",
            d["speedup_vs_async"] >= 1.2)
        if "speedup_best_vs_best" in d:
            v = d["speedup_best_vs_best"]
            bar("physics-only, faster pool setting / faster AsyncVectorEnv", v, ">= 1.2x", v >= 1.2)
        v = d["gsenv_state"]["partial_reset_in_steps"]
        bar("partial reset of B/4 envs (step times)", v, "<= 2", v <= 2)
    chk = results.get("baseline_check")
    if chk:
        worst = max(chk, key=lambda x: abs(x["ratio"] - 1))
        bar("baseline vs seed_strategy_bench (time ratio)", worst["ratio"], "within 20%", worst["ok"])
    return bars


def _physics_pairs(d: dict) -> list[tuple[dict, dict]]:
    """Section d's (GSEnv, AsyncVectorEnv) results at equal process counts: one per core, and one per
    env where that is a different count (results of older runs have only the first)."""
    pairs = [(d["gsenv_state"], d["async_vector_env"])]
    per_env = d.get("gsenv_state_per_env")
    if per_env and per_env["workers"] != d["gsenv_state"]["workers"]:
        pairs.append((per_env, d["async_vector_env_per_env"]))
    return pairs


def _fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:,.{nd}f}"
    return str(v)


def tables(results: dict) -> str:
    out = []
    m = results.get("machine", {})
    out.append(f"gsenv benchmark  {m.get('date', '')}  device {m.get('gpu') or m.get('device')}  "
               f"cores {m.get('usable_cores')}  torch {m.get('torch')}  gsplat {m.get('gsplat')}"
               f"{'  [QUICK: sizes too small to mean anything]' if results.get('config', {}).get('quick') else ''}")
    if m.get("lscpu"):
        out.append("lscpu: " + "; ".join(f"{k}: {v}" for k, v in m["lscpu"].items()))
    if results.get("render"):
        out += ["", "(a) render-only, default scene (env-frames/s; memory: peak MB and MB per env)",
                "| cache | resolution | B | ms / render | env-frames/s | peak MB | MB / env |", "|---|---|---|---|---|---|---|"]
        for r in results["render"]:
            note = r.get("skipped") or r.get("error")
            out.append(f"| {'on' if r['cache'] else 'off'} | {r['res']} | {r['B']} | {_fmt(r.get('ms'), 2)} | "
                       f"{_fmt(r.get('fps')) if not note else note} | {_fmt(r.get('peak_mem_mb'))} | "
                       f"{_fmt(r.get('mem_mb_per_env'), 2)} |")
    if results.get("research_strategy"):
        out += ["", "(b) research-code strategy (every camera rasterises all envs' gaussians, 4 cameras per call)",
                "| resolution | B | ms / step | env-frames/s | ours (cache on) / research | peak MB |", "|---|---|---|---|---|---|"]
        for r in results["research_strategy"]:
            note = r.get("skipped") or r.get("error")
            ours = _find(results.get("render"), cache=True, res=r["res"], B=r["B"])
            ratio = ours["fps"] / r["fps"] if ours and r.get("fps") else None
            out.append(f"| {r['res']} | {r['B']} | {_fmt(r.get('ms'), 2)} | {_fmt(r.get('fps')) if not note else note} | "
                       f"{_fmt(ratio, 1)} | {_fmt(r.get('peak_mem_mb'))} |")
    if results.get("baseline_check"):
        out += ["", "(b) baseline check vs ../shared/bench/seed_strategy_bench.py (same synthetic input)",
                "| gaussians | resolution | B | ours ms | reference ms | ratio | within 20% |", "|---|---|---|---|---|---|---|"]
        for r in results["baseline_check"]:
            out.append(f"| {r['gaussians']:,} | {r['res']} | {r['B']} | {r['ours_ms']:.2f} | {r['reference_ms']:.2f} | "
                       f"{r['ratio']:.3f} | {_fmt(r['ok'])} |")
    c, d = results.get("end_to_end"), results.get("physics")
    if c or d:
        out += ["", "(c, d) env steps (physx_cpu)", "| what | envs | workers | ms / step | env-steps/s | partial reset of B/4 (step times) |",
                "|---|---|---|---|---|---|"]
        if c:
            out.append(f"| GSEnv rgb {c['image']} (end-to-end) | {c['num_envs']} | {c['workers']} | {c['step_ms']:.1f} | "
                       f"{c['env_steps_per_s']:,.0f} | {c['partial_reset_in_steps']:.2f} |")
        if d:
            s = d["single_process"]
            for g, a in _physics_pairs(d):
                out.append(f"| GSEnv state (physics-only) | {g['num_envs']} | {g['workers']} | {g['step_ms']:.1f} | "
                           f"{g['env_steps_per_s']:,.0f} | {g['partial_reset_in_steps']:.2f} |")
                out.append(f"| gymnasium AsyncVectorEnv, 1 env/process | {a['processes']} | {a['processes']} | "
                           f"{a['step_ms']:.1f} | {a['env_steps_per_s']:,.0f} | - |")
            out.append(f"| one process, one env | 1 | 1 | {s['step_ms']:.1f} | {s['env_steps_per_s']:,.0f} | - |")
            out.append(f"parallel efficiency (one process per core): GSEnv {d['parallel_efficiency']:.2f}, "
                       f"AsyncVectorEnv {d['async_parallel_efficiency']:.2f}; GSEnv / AsyncVectorEnv at equal process "
                       f"counts: {d['speedup_vs_async']:.2f}x (one per core)"
                       + (f", {d['speedup_vs_async_per_env']:.2f}x (one per env); faster vs faster: "
                          f"{d['speedup_best_vs_best']:.2f}x" if "speedup_best_vs_best" in d else ""))
        if c:
            out.append(f"end-to-end: render alone {c['render_only_ms']:.1f} ms of a {c['step_ms']:.1f} ms step "
                       f"({c['render_share']:.0%})")
    if results.get("bars"):
        out += ["", "performance bar", "| bar | value | target | met |", "|---|---|---|---|"]
        for b in results["bars"]:
            out.append(f"| {b['bar']} | {_fmt(b['value'], 2)} | {b['target']} | {_fmt(b['ok'])} |")
    t = results.get("timing_s", {})
    if t:
        out += ["", "seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in t.items())]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ plot
def plot(results: dict, path: Path) -> str:
    """The plot (PNG). matplotlib when importable, else a plain line chart drawn with numpy (no
    labels: regenerate it elsewhere with --replot). Returns which was used."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: writing a label-free fallback plot; "
                       "rerun `scripts/benchmark.py --replot %s` where matplotlib is installed", path.with_suffix(".json"))
        _plot_fallback(results, path)
        return "fallback"
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ax = axes[0]
    for res in sorted({r["res"] for r in results.get("render") or []}):
        for cache in (True, False):
            rows = [r for r in results["render"] if r["res"] == res and r["cache"] == cache and r.get("fps")]
            if rows:
                ax.plot([r["B"] for r in rows], [r["fps"] for r in rows], "o-", label=f"gsenv {res} cache {'on' if cache else 'off'}")
        rows = [r for r in results.get("research_strategy") or [] if r["res"] == res and r.get("fps")]
        if rows:
            ax.plot([r["B"] for r in rows], [r["fps"] for r in rows], "x--", label=f"research strategy {res}")
    ax.set(xscale="log", yscale="log", xlabel="B (envs)", ylabel="env-frames/s", title="render-only, default scene")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    for res in sorted({r["res"] for r in results.get("render") or []}):
        for cache in (True, False):
            rows = [r for r in results["render"] if r["res"] == res and r["cache"] == cache and r.get("peak_mem_mb")]
            if rows:
                ax.plot([r["B"] for r in rows], [r["mem_mb_per_env"] for r in rows], "o-", label=f"{res} cache {'on' if cache else 'off'}")
    ax.axhline(40, color="r", ls=":", label="bar: 40 MB/env")
    ax.set(xscale="log", xlabel="B (envs)", ylabel="MB per env (peak growth / B)", title="render GPU memory")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[2]
    labels, vals = [], []
    d, c = results.get("physics"), results.get("end_to_end")
    if d:
        labels.append("1 process")
        vals.append(d["single_process"]["env_steps_per_s"])
        for g, a in _physics_pairs(d):
            labels += [f"AsyncVectorEnv x{a['processes']}", f"GSEnv state, {g['workers']} workers"]
            vals += [a["env_steps_per_s"], g["env_steps_per_s"]]
    if c:
        labels.append(f"GSEnv rgb {c['image']}")
        vals.append(c["env_steps_per_s"])
    if vals:
        colour = lambda k: "grey" if k == "1 process" else "tab:orange" if k.startswith("Async") else \
            "tab:blue" if "state" in k else "tab:green"  # noqa: E731
        ax.bar(labels, vals, color=[colour(k) for k in labels])
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="env-steps/s", title="physx_cpu env steps")
    ax.tick_params(axis="x", labelsize=7, labelrotation=20)
    m = results.get("machine", {})
    fig.suptitle(f"gsenv benchmark: {m.get('gpu') or m.get('device')}, {m.get('usable_cores')} cores, {m.get('date', '')[:10]}"
                 f"{' (QUICK: meaningless sizes)' if results.get('config', {}).get('quick') else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


def _plot_fallback(results: dict, path: Path) -> None:
    """A log-log line chart of render env-frames/s vs B (one colour per series) as an RGB PNG."""
    import struct
    import zlib

    import numpy as np

    W, H, pad = 640, 400, 30
    img = np.full((H, W, 3), 255, np.uint8)
    img[H - pad, pad:W - pad] = 0
    img[pad:H - pad, pad] = 0
    series = []
    for res in sorted({r["res"] for r in results.get("render") or []}):
        for cache in (True, False):
            series.append([(r["B"], r["fps"]) for r in results["render"] if r["res"] == res and r["cache"] == cache and r.get("fps")])
        series.append([(r["B"], r["fps"]) for r in results.get("research_strategy") or [] if r["res"] == res and r.get("fps")])
    pts = [p for s in series for p in s]
    if pts:
        bx = np.log10([p[0] for p in pts])
        fy = np.log10([p[1] for p in pts])
        x0, x1 = bx.min(), max(bx.max(), bx.min() + 1e-6)
        y0, y1 = fy.min(), max(fy.max(), fy.min() + 1e-6)
        colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
        for k, s in enumerate(series):
            xy = [(pad + (math.log10(b) - x0) / (x1 - x0) * (W - 2 * pad - 1),
                   H - pad - (math.log10(f) - y0) / (y1 - y0) * (H - 2 * pad - 1)) for b, f in s]
            for (xa, ya), (xb, yb) in zip(xy, xy[1:]):
                for t in np.linspace(0, 1, 400):
                    img[int(ya + t * (yb - ya)), int(xa + t * (xb - xa))] = colours[k % len(colours)]
            for x, y in xy:
                img[max(0, int(y) - 2):int(y) + 3, max(0, int(x) - 2):int(x) + 3] = colours[k % len(colours)]

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(H))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------------------ run
def run(sections: str, out: Path, device: str, cfg: Config, asset_root: str | None = None,
        workers: int | None = None, check_only: bool = False) -> dict:
    import torch

    from gsenv.backends import resolve_render_backend

    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    backend = resolve_render_backend("auto", device)
    timing: dict[str, float] = {}
    # quick: one worker (each process start imports ManiSkill; that is most of a quick run's time)
    workers = workers or (1 if cfg.quick else max(1, min(cores(), cfg.env_batch)))
    results: dict = {"config": {**{k: v for k, v in asdict(cfg).items() if k != "extra"}, "sections": sections,
                                "check_only": check_only, "render_backend": backend, "workers": workers},
                     "machine": machine_info(device)}

    def save():
        results["bars"] = performance_bars(results)
        results["timing_s"] = {**timing, "total": time.perf_counter() - t_all}
        (out / JSON_NAME).write_text(json.dumps(results, indent=1, default=float))

    t = time.perf_counter()
    results["gsplat_first_call_s"] = _gsplat_warmup(device, backend)
    timing["gsplat_warmup"] = time.perf_counter() - t
    if check_only:
        t = time.perf_counter()
        results["baseline_check"] = section_check(device, backend, cfg)
        timing["baseline_check"] = time.perf_counter() - t
        save()
        return results

    bundle = None
    if set(sections) & set(SECTIONS):
        from gsenv.assets.root import asset_root as resolve_root
        from gsenv.scene.default import load_default_bundle

        t = time.perf_counter()
        bundle = load_default_bundle(resolve_root(asset_root), cfg.density, progress=False)
        timing["scene"] = time.perf_counter() - t
        results["scene"] = dict(name="default", density=cfg.density,
                                background_gaussians=len(bundle.background) if bundle.background is not None else 0,
                                body_gaussians={k: len(v) for k, v in bundle.body_gaussians().items()})
        results["scene"]["total_gaussians"] = results["scene"]["background_gaussians"] + sum(results["scene"]["body_gaussians"].values())
        logger.info("default scene (density %s): %d gaussians, loaded in %.1f s", cfg.density,
                    results["scene"]["total_gaussians"], timing["scene"])
    # the env sections first: the largest render configs (B=1024, the research strategy at B=256) come
    # last, so whatever they do to the GPU the env numbers are in
    steps = [("d", "physics", lambda: section_physics(bundle, device, backend, workers, cfg)),
             ("c", "end_to_end", lambda: section_e2e(bundle, device, backend, workers, cfg)),
             ("a", "render", lambda: section_render(bundle, device, backend, cfg)),
             ("b", "baseline_check", lambda: section_check(device, backend, cfg)),
             ("b", "research_strategy", lambda: section_research(bundle, device, backend, cfg))]
    for letter, key, fn in steps:
        if letter not in sections:
            continue
        logger.info("section %s: %s", letter, key)
        t = time.perf_counter()
        results[key] = fn()
        timing[key] = time.perf_counter() - t
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        save()  # partial results survive a later failure or time-out
    save()
    return results


def _parse_sections(s: str) -> str:
    s = s.replace(",", "").lower()
    bad = set(s) - set(SECTIONS)
    if bad or not s:
        raise argparse.ArgumentTypeError(f"sections are letters of {SECTIONS!r} (e.g. a,b or abcd), got {s!r}")
    return s


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="benchmark-results", help="output directory (benchmark.json, benchmark.png)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU-friendly, for tests): numbers mean nothing")
    p.add_argument("--sections", type=_parse_sections, default=SECTIONS,
                   help="which sections, e.g. a,b (a render, b research strategy + check, c end-to-end, d physics)")
    p.add_argument("--device", default=None, help="torch device for rendering (default: cuda when available, else cpu)")
    p.add_argument("--check-baseline", action="store_true",
                   help="only check the research-strategy baseline against seed_strategy_bench's maths")
    p.add_argument("--workers", type=int, default=None, help="physics worker processes (default: one per core)")
    p.add_argument("--density", type=float, default=None, help="default-scene density (default 1.0; --quick: 0.01)")
    p.add_argument("--asset-root", default=None, help="where the default scene is built (default: $GSENV_ASSETS or the user cache)")
    p.add_argument("--replot", metavar="JSON", default=None,
                   help="only redraw the plot and reprint the tables from an earlier benchmark.json")


def _handle(args: argparse.Namespace) -> int:
    if args.replot:
        src = Path(args.replot)
        if not src.is_file():
            raise SystemExit(f"--replot: no such file {src}")
        results = json.loads(src.read_text())
        used = plot(results, src.with_suffix(".png"))
        print(tables(results))  # noqa: T201  (CLI output)
        print(f"\nplot ({used}): {src.with_suffix('.png')}")  # noqa: T201
        return 0
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: CUDA is not available here (use --device cpu, with --quick)")
    if not device.startswith("cuda") and not args.quick:
        logger.warning("full-size benchmark on %s: the torch rasteriser is very slow here; use --quick on CPU", device)
    cfg = quick_config() if args.quick else full_config()
    if args.density is not None:
        cfg.density = args.density
    out = Path(args.out)
    results = run(args.sections, out, device, cfg, args.asset_root, args.workers, args.check_baseline)
    try:
        results["plot"] = plot(results, out / PLOT_NAME)
    except Exception as exc:  # the numbers are what matter: keep them even when drawing fails
        logger.error("plot failed: %s: %s", type(exc).__name__, exc)
        results["plot"] = f"failed: {exc}"
    (out / JSON_NAME).write_text(json.dumps(results, indent=1, default=float))
    print(tables(results))  # noqa: T201  (CLI output: the table comes last)
    print(f"\nresults: {out / JSON_NAME}  plot: {out / PLOT_NAME}")  # noqa: T201
    check = results.get("baseline_check") or []
    if args.check_baseline and not all(r["ok"] for r in check):
        return 1
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("bench", help="throughput benchmark: render, research-code baseline, env steps, physics",
                       description=__doc__.splitlines()[0])
    _configure(p)
    p.set_defaults(func=_handle)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (default: on)")
    _configure(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return _handle(args)
