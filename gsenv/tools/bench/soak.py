"""Soak benchmark (issue 18): does memory stay flat over a long run?

    python -m gsenv.tools.bench.soak [--env-steps 100000] [--num-envs 16] [--image-size 224x224]
        [--num-workers N] [--sample-every S] [--density D] [--quick] [--check] [--out DIR]

Drives gym.make(ENV_ID, obs_mode="rgb", sim_backend="physx_cpu") with the scripted
expert, resetting the envs that finished (terminated | truncated) through partial resets, for
--env-steps env-steps (steps x B). Every --sample-every steps it records the main process's RSS, each
physics worker's RSS, PSS and USS (/proc/PID/smaps_rollup) and, with CUDA, torch.cuda.memory_allocated
and memory_reserved. Workers are found through /proc: the children of the preloaded worker server
(gsenv.physics.launch.server_pid) and this process's children running gsenv.physics.worker; the server
itself is sampled too.

Growth of a series after warm-up = mean of the last 10% of samples / mean of the 10% right after the
first 10% (the warm-up) - 1; every series within 2% is PASS. Prints a table and writes
<out>/soak.json (config, samples, summary). --check exits 1 on FAIL. --quick: 40 env-steps of 2 envs
at 24x32 on a density-0.01 scene (runs on CPU; its verdict means nothing).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from gsenv.registration import ENV_ID  # the default task's id
from gsenv.tools.args import add_image_size
from gsenv.tools.bench.proc import memory_mb, physics_processes

logger = logging.getLogger(__name__)

GROWTH_LIMIT = 0.02
WINDOW = 0.10  # warm-up, baseline and end windows: this share of the samples each
JSON_NAME = "soak.json"


def sample(step: int, num_envs: int, t0: float, cuda: bool) -> dict:
    """One memory sample after `step` steps: flat {series: MB} plus the worker pids."""
    import torch

    server, workers = physics_processes()
    row = {"step": step, "env_steps": step * num_envs, "t_s": round(time.perf_counter() - t0, 2),
           "worker_pids": workers, "main.rss_mb": memory_mb(os.getpid())["rss_mb"]}
    if server:
        row.update({f"server.{k}": v for k, v in memory_mb(server).items()})
    for i, pid in enumerate(workers):
        row.update({f"worker{i}.{k}": v for k, v in memory_mb(pid).items()})
    if cuda:
        row["cuda.allocated_mb"] = torch.cuda.memory_allocated() / 2**20
        row["cuda.reserved_mb"] = torch.cuda.memory_reserved() / 2**20
    return row


def growth(values: list[float]) -> float:
    """mean(last WINDOW) / mean(WINDOW right after the first WINDOW) - 1 (too few samples: the
    first WINDOW is the baseline)."""
    k = max(1, round(len(values) * WINDOW))
    base = values[k:2 * k] if len(values) >= 3 * k else values[:k]
    b, e = sum(base) / len(base), sum(values[-k:]) / k
    return e / b - 1 if b > 0 else (0.0 if e == 0 else math.inf)


def summarize(samples: list[dict]) -> dict:
    series = [k for k in samples[0] if k.endswith("_mb")]
    out = {}
    for name in series:
        values = [s[name] for s in samples if name in s]
        g = growth(values)
        out[name] = {"first_mb": round(values[0], 1), "last_mb": round(values[-1], 1), "growth": g,
                     "pass": g <= GROWTH_LIMIT}
    return {"series": out, "growth_limit": GROWTH_LIMIT, "samples": len(samples),
            "verdict": "PASS" if all(v["pass"] for v in out.values()) else "FAIL"}


def table(summary: dict) -> str:
    lines = [f"{'series':24s} {'first MB':>10s} {'last MB':>10s} {'growth':>9s}  verdict"]
    for name, v in summary["series"].items():
        lines.append(f"{name:24s} {v['first_mb']:10.1f} {v['last_mb']:10.1f} {v['growth']:+9.2%}  "
                     f"{'PASS' if v['pass'] else 'FAIL'}")
    lines.append(f"{summary['verdict']}: growth after warm-up within {summary['growth_limit']:.0%} "
                 f"({summary['samples']} samples)")
    return "\n".join(lines)


def soak(args: argparse.Namespace) -> dict:
    import gymnasium as gym
    import torch


    cuda = torch.cuda.is_available()
    B = args.num_envs
    steps = max(1, args.env_steps // B)
    every = args.sample_every or max(1, steps // 100)
    env = gym.make(ENV_ID, num_envs=B, obs_mode="rgb", image_size=args.image_size, sim_backend="physx_cpu",
                   device="cuda" if cuda else "cpu", num_workers=args.num_workers, scene_density=args.density)
    t0 = time.perf_counter()
    samples, resets, episodes = [], 0, 0
    try:
        env.reset(seed=0)
        samples.append(sample(0, B, t0, cuda))
        for step in range(1, steps + 1):
            action = env.unwrapped.expert_action()
            _, _, terminated, truncated, _ = env.step(action)
            done = torch.as_tensor(terminated | truncated).nonzero().flatten().cpu().numpy()
            if len(done):
                env.reset(options={"env_idx": done})
                resets, episodes = resets + 1, episodes + len(done)
            if step % every == 0 or step == steps:
                samples.append(sample(step, B, t0, cuda))
                logger.info("step %d/%d: main RSS %.0f MB", step, steps, samples[-1]["main.rss_mb"])
    finally:
        env.close()
    h, w = args.image_size
    config = dict(num_envs=B, steps=steps, env_steps=steps * B, image=f"{h}x{w}", num_workers=args.num_workers,
                  density=args.density, sample_every=every, device="cuda" if cuda else "cpu",
                  seconds=round(time.perf_counter() - t0, 1), partial_resets=resets, episodes_finished=episodes)
    return {"config": config, "summary": summarize(samples), "samples": samples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gsenv.tools.bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--env-steps", type=int, default=100_000, help="steps x B to run (default 100000)")
    p.add_argument("--num-envs", type=int, default=16, help="B (default 16)")
    add_image_size(p, "224x224")
    p.add_argument("--num-workers", type=int, default=None, help="physics workers (default: about one per core)")
    p.add_argument("--sample-every", type=int, default=None, help="steps between samples (default: ~100 samples)")
    p.add_argument("--density", type=float, default=1.0, help="default-scene density (default 1.0)")
    p.add_argument("--quick", action="store_true", help="40 env-steps, B=2, 24x32, density 0.01 (CPU smoke run)")
    p.add_argument("--check", action="store_true", help="exit 1 when the verdict is FAIL")
    p.add_argument("--out", type=Path, default=Path("soak-results"), help=f"output directory ({JSON_NAME})")
    args = p.parse_args(argv)
    if args.quick:
        args.env_steps, args.num_envs, args.image_size, args.density = 40, 2, (24, 32), 0.01
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    result = soak(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / JSON_NAME
    path.write_text(json.dumps(result, indent=1))
    print(table(result["summary"]))
    print(f"\nresults: {path}")
    return 1 if args.check and result["summary"]["verdict"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
