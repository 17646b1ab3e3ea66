"""One process of `gsenv bench node`: builds its GSEnv instance(s), says "ready", waits for "go",
steps them for the agreed time and prints its step times.

``python -m gsenv.tools.bench.node_instance JSON`` (JSON: see gsenv.tools.bench.node.instance_spec).
Lines on stdout, each one JSON object: {"ready": ...} once built and warmed up, then {"result": ...}
after stepping; "go" and "close" arrive on stdin. Several instances in one process are stepped in
turn, as RLinf's env worker steps its pipeline stages.
"""
from __future__ import annotations

import json
import os
import sys
import time

WARMUP_STEPS = 2


def _say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    import numpy as np
    import torch

    from gsenv.env import GSEnv
    from gsenv.tools.bench.env import random_actions

    t0 = time.perf_counter()
    envs = [GSEnv(num_envs=spec["num_envs"], obs_mode=spec["obs_mode"], image_size=tuple(spec["image_size"]),
                  sim_backend=spec["sim_backend"], device=spec["device"], scene_density=spec["density"],
                  asset_root=spec["asset_root"])
            for _ in range(spec["instances"])]
    startup_s = time.perf_counter() - t0
    rng = np.random.default_rng(spec["seed"])
    low, high = envs[0].single_action_space.low, envs[0].single_action_space.high
    actions = [torch.from_numpy(random_actions(rng, low, high, spec["num_envs"])) for _ in range(8)]
    cuda = envs[0].device.type == "cuda"

    def step(env, i):
        env.step(actions[i % len(actions)])
        if cuda:
            torch.cuda.synchronize(env.device)

    for i in range(WARMUP_STEPS):
        for env in envs:
            step(env, i)
    _say({"ready": {"pid": os.getpid(), "startup_s": round(startup_s, 2), "sim_backend": envs[0].sim_backend,
                    "render_backend": envs[0].render_backend}})
    if sys.stdin.readline().strip() != "go":
        return 1
    go = time.time()
    deadline = time.perf_counter() + spec["seconds"]
    times: list[list[float]] = [[] for _ in envs]
    i = 0
    while i < spec["min_steps"] or time.perf_counter() < deadline:
        for env, t in zip(envs, times):
            s = time.perf_counter()
            step(env, i)
            t.append(time.perf_counter() - s)
        i += 1
    end = time.time()
    _say({"result": {"pid": os.getpid(), "go": go, "end": end, "steps": i, "step_s": times}})
    sys.stdin.readline()  # "close" (or EOF): the parent has looked at the processes
    for env in envs:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
