"""Sections c and d: env steps per second on physx_cpu.

c (section_end_to_end): GSEnv with rgb observations, one worker per core, and the render alone on
  the same env.
d (section_physics): GSEnv with obs_mode "state" against gymnasium's AsyncVectorEnv over single-env
  ManiSkill processes of the same task at equal process counts, one env in one process, and a
  partial reset of a quarter of the envs.

Every rate times the same steps (Config.env_min_steps .. env_max_steps) after 2 warm-up steps from a
fresh reset, with small random actions. make_env, env_rates and async_baseline are also the pieces
of `python -m gsenv.tools.bench.pool`.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from gsenv.tools.bench.config import Config

logger = logging.getLogger(__name__)

WARMUP_STEPS = 2
ACTION_SETS = 8  # the random actions cycle through this many batches


def random_actions(rng: np.random.Generator, low: np.ndarray, high: np.ndarray, n: int,
                   scale: float = 0.3) -> np.ndarray:
    """float32 [n, A] small random actions: uniform in `scale` x the action box [A] around its centre."""
    mid, half = (high + low) / 2, (high - low) / 2
    return (mid + scale * half * rng.uniform(-1, 1, size=(n,) + low.shape)).astype(np.float32)


def timed_steps(step, cfg: Config) -> tuple[float, int]:
    """(seconds per step, steps) of step(i) for i = 0, 1, ...: at least cfg.env_min_steps, then on
    until cfg.env_min_time has passed or cfg.env_max_steps are done."""
    t0 = time.perf_counter()
    n = 0
    while n < cfg.env_min_steps or (n < cfg.env_max_steps and time.perf_counter() - t0 < cfg.env_min_time):
        step(n)
        n += 1
    return (time.perf_counter() - t0) / n, n


def make_env(bundle, obs_mode: str, device: str, render_backend: str, workers: int, cfg: Config,
             pin_workers: bool | None = None):
    """(GSEnv of cfg.env_batch envs on physx_cpu with `workers` worker processes, seconds it took to start)."""
    from gsenv.env import GSEnv

    t0 = time.perf_counter()
    env = GSEnv(num_envs=cfg.env_batch, obs_mode=obs_mode, scene=bundle, image_size=cfg.env_image_size,
                sim_backend="physx_cpu", render_backend=render_backend, device=device, num_workers=workers,
                pin_workers=pin_workers)
    startup = time.perf_counter() - t0
    logger.info("GSEnv %s: %d envs, %d workers, ready in %.1f s", obs_mode, cfg.env_batch, workers, startup)
    return env, startup


def env_rates(env, cfg: Config, seed: int) -> dict:
    """Steps/s of a GSEnv and the cost of a partial reset of a quarter of its envs (median of
    cfg.reset_repeats, also in step times)."""
    import torch

    rng = np.random.default_rng(seed)
    low, high = env.single_action_space.low, env.single_action_space.high
    B = env.num_envs
    actions = [torch.from_numpy(random_actions(rng, low, high, B)) for _ in range(ACTION_SETS)]
    sync = (lambda: torch.cuda.synchronize(env.device)) if env.device.type == "cuda" else (lambda: None)

    def step(i):
        env.step(actions[i % len(actions)])

    for i in range(WARMUP_STEPS):
        step(i)
    sync()
    s_per_step, n = timed_steps(lambda i: (step(i), sync()), cfg)
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
                env_steps_per_s=B / s_per_step, partial_reset_envs=len(quarter),
                partial_reset_ms=round(reset_s * 1000, 3), partial_reset_in_steps=round(reset_s / s_per_step, 3))


def section_end_to_end(bundle, device: str, render_backend: str, workers: int, cfg: Config) -> dict:
    """Section c: GSEnv rgb steps/s and what one step's rendering costs alone (same renderer, poses
    and cameras as the env's)."""
    import torch

    from gsenv.splat.view_state import ViewState
    from gsenv.tools.bench.render import time_call

    env, startup = make_env(bundle, "rgb", device, render_backend, workers, cfg)
    try:
        res = env_rates(env, cfg, seed=1)
        poses, cams, views = env.get_body_poses(), env.cameras, ViewState()
        render_ms, _ = time_call(lambda: env.renderer.render(poses, cams, views=views), device,
                                 0.0 if cfg.quick else 1.0,
                                 max_iters=2 if cfg.quick else 50)
        h, w = cfg.env_image_size
        res.update(obs_mode="rgb", image=f"{w}x{h}", workers=workers, startup_s=round(startup, 2),
                   render_only_ms=round(render_ms, 3), render_share=round(render_ms / res["step_ms"], 3))
        if device.startswith("cuda"):
            res["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    finally:
        env.close()
    return res


class SingleEnvMaker:
    """A picklable maker of one ManiSkill env of our task (numpy, unbatched: CPUGymWrapper), one
    torch thread, as in gsenv's workers (and ManiSkill's advice): the comparison is fair."""

    def __init__(self, task_kwargs: dict):
        self.task_kwargs = task_kwargs

    def __call__(self):
        import gymnasium as gym
        import torch

        torch.set_num_threads(1)
        from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper

        from gsenv.sim.task import register_physics_task
        from gsenv.tasks import get_task

        env = gym.make(register_physics_task(get_task()), num_envs=1, obs_mode="state", sim_backend="physx_cpu",
                       render_backend="none",
                       render_mode=None, max_episode_steps=10**6, **self.task_kwargs)
        return CPUGymWrapper(env, ignore_terminations=True)


def task_kwargs(bundle) -> dict:
    """The physics task's options for the bundle, as GSEnv passes them (its default modes)."""
    from gsenv.scene.resolve import task_kwargs_from_bundle

    return {"control_mode": "pd_ee_target_delta_pose", "reward_mode": "sparse", **task_kwargs_from_bundle(bundle)}


def async_baseline(bundle, processes: int, cfg: Config) -> dict:
    """Steps/s of gymnasium's AsyncVectorEnv over `processes` single-env processes of our task."""
    import gymnasium as gym

    t0 = time.perf_counter()
    venv = gym.vector.AsyncVectorEnv([SingleEnvMaker(task_kwargs(bundle)) for _ in range(processes)],
                                     context="spawn")
    try:
        venv.reset(seed=0)
        startup = time.perf_counter() - t0
        rng = np.random.default_rng(2)
        low, high = venv.single_action_space.low, venv.single_action_space.high
        actions = [random_actions(rng, low, high, processes) for _ in range(ACTION_SETS)]
        for i in range(WARMUP_STEPS):
            venv.step(actions[i])
        s, n = timed_steps(lambda i: venv.step(actions[i % len(actions)]), cfg)
    finally:
        venv.close()
    return dict(processes=processes, envs_per_process=1, steps=n, step_ms=round(s * 1000, 3),
                env_steps_per_s=processes / s, startup_s=round(startup, 2))


def single_process(bundle, cfg: Config) -> dict:
    """One single-env instance in this process, through the pool workers' own code (no IPC)."""
    import torch

    from gsenv.physics.backend import task_factory

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        inst = task_factory(task_kwargs(bundle))(0)
        try:
            inst.reset(0, {})
            rng = np.random.default_rng(3)
            space = inst.describe()
            acts = random_actions(rng, space["action_low"], space["action_high"], ACTION_SETS)
            for i in range(WARMUP_STEPS):
                inst.step(acts[i])
            t0 = time.perf_counter()
            for i in range(cfg.single_steps):
                inst.step(acts[i % ACTION_SETS])
            s = (time.perf_counter() - t0) / cfg.single_steps
        finally:
            inst.close()
    finally:
        torch.set_num_threads(threads)
    return dict(steps=cfg.single_steps, step_ms=round(s * 1000, 3), env_steps_per_s=1.0 / s)


def section_physics(bundle, device: str, render_backend: str, workers: int, cfg: Config) -> dict:
    """Section d: GSEnv physics-only against AsyncVectorEnv at equal process counts: one per core (our
    default, `workers`) and one per env (B: the plain way to hold B envs; it oversubscribes the
    cores, which balances the uneven PhysX steps)."""
    def gsenv_rates(procs: int) -> dict:
        env, startup = make_env(bundle, "state", device, render_backend, procs, cfg)
        try:
            res = env_rates(env, cfg, seed=4)
            res.update(obs_mode="state", workers=procs, startup_s=round(startup, 2))
            return res
        finally:
            env.close()

    single = single_process(bundle, cfg)
    gs, asyncv = gsenv_rates(workers), async_baseline(bundle, workers, cfg)
    if cfg.env_batch != workers:
        gs_per_env, per_env = gsenv_rates(cfg.env_batch), async_baseline(bundle, cfg.env_batch, cfg)
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
