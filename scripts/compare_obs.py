"""Are two gsenv source trees' observations bit-identical? A check for refactors meant to change nothing.

    python scripts/compare_obs.py /work/main /path/to/other/tree [--assets DIR]

Runs the same episodes in each tree (PYTHONPATH=tree, a subprocess each): B = 2 envs on CPU PhysX,
obs modes state, state_dict and rgb at 24x32 with the embedded scene at density 0.02, seed 5, 20 fixed
random actions, a partial reset of env 1 at step 10 and a time limit of 15 steps. Compares every array
(observations, reward, terminated, truncated, info, body poses) for dtype, shape and bits, and the
observation spaces for equality. Exit code 0 when all agree, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

MODES = ("state", "state_dict", "rgb")


def dump(path: str, asset_root: str) -> None:
    import gymnasium as gym
    import torch

    import gsenv

    def tree(x):
        if isinstance(x, dict):
            return {k: tree(v) for k, v in x.items() if k != "language_instruction"}
        return x.cpu().numpy() if torch.is_tensor(x) else x

    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 2, 7)).astype(np.float32)
    out = {}
    for mode in MODES:
        env = gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode=mode, image_size=(24, 32), scene_density=0.02,
                       asset_root=asset_root, num_workers=2, sim_backend="physx_cpu", max_episode_steps=15)
        frames = [tree(env.reset(seed=5))]
        for t in range(20):
            if t == 10:
                frames.append(tree(env.unwrapped.reset(seed=[77], options={"env_idx": [1]})))
            frames.append((*tree(env.step(torch.from_numpy(actions[t]))), tree(env.unwrapped.get_body_poses())))
        out[mode] = {"frames": frames, "space": env.unwrapped.single_observation_space,
                     "batched_space": env.unwrapped.observation_space}
        env.close()
    with open(path, "wb") as f:
        pickle.dump(out, f)


def _leaves(x, prefix=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{prefix}/{k}")
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, np.asarray(x)


def compare(a: dict, b: dict) -> int:
    bad = total = 0
    for mode in MODES:
        for key in ("space", "batched_space"):
            if a[mode][key] != b[mode][key]:
                bad += 1
                print(f"{mode}: {key} differs:\n  {a[mode][key]}\n  {b[mode][key]}")
        la, lb = dict(_leaves(a[mode]["frames"])), dict(_leaves(b[mode]["frames"]))
        for k in sorted(la.keys() ^ lb.keys()):
            bad += 1
            print(f"{mode}: {k} only in {'the first' if k in la else 'the second'} tree")
        for k in la.keys() & lb.keys():
            total += 1
            x, y = la[k], lb[k]
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                bad += 1
                print(f"{mode}: {k} differs ({x.dtype} {x.shape} vs {y.dtype} {y.shape})")
    print(f"{total} arrays compared over {len(MODES)} obs modes: {bad} differences (dtype, shape, bits; spaces)")
    return bad


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trees", nargs=2, help="two gsenv source trees (each holds the gsenv package)")
    p.add_argument("--assets", default=None, help="asset root (default: a temporary folder)")
    p.add_argument("--dump", nargs=2, metavar=("OUT", "ASSETS"), help=argparse.SUPPRESS)  # the subprocess
    args = p.parse_args()
    if args.dump:
        dump(*args.dump)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        assets = args.assets or os.path.join(tmp, "assets")
        results = []
        for i, root in enumerate(args.trees):
            path = os.path.join(tmp, f"{i}.pkl")
            env = {**os.environ, "PYTHONPATH": os.path.abspath(root)}
            # cwd: a folder without a gsenv package (physics workers start with `python -m`, which puts the
            # working directory first on their path)
            subprocess.run([sys.executable, os.path.abspath(__file__), "--dump", path, assets, *args.trees], env=env,
                           check=True, cwd=tmp)
            with open(path, "rb") as f:
                results.append(pickle.load(f))
    return 1 if compare(*results) else 0


if __name__ == "__main__":
    sys.exit(main())
