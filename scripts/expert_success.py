"""How often does each task's scripted expert succeed on the fixed episodes? (the README's Tasks table)

    python scripts/expert_success.py PutColorCubeOnPlate StackCube --episodes 128 [--num-envs 8]

Runs GSEnv (obs_mode "state_dict", CPU PhysX) with episode ids 0..N-1, B at a time, each for the task's
episode length, the expert closed loop; an episode succeeds when it terminates (success) at any step.
Prints one line per task: successes / episodes and the ids that failed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time


def measure(task: str, episodes: int, num_envs: int, asset_root: str, other_cube: bool = False) -> list[bool]:
    import gymnasium as gym
    import torch

    env = gym.make(f"GSEnv/{task}-v0", num_envs=num_envs, obs_mode="state_dict", scene_density=0.02,
                   asset_root=asset_root, num_workers=min(num_envs, 2), sim_backend="physx_cpu",
                   total_num_trials=max(episodes, 128))  # entry k is the same whatever the table's size
    u, out = env.unwrapped, []
    try:
        for start in range(0, episodes, num_envs):
            ids = [min(k, episodes - 1) for k in range(start, start + num_envs)]
            obs, _ = env.reset(seed=0, options={"episode_id": ids})
            success = torch.zeros(num_envs, dtype=torch.bool)
            for _ in range(u.task.episode_steps):
                if other_cube:  # PutColorCubeOnPlate's expert on a cube the instruction does not name
                    from gsenv.tasks.put_color_cube_on_plate import other_cube_inputs

                    action = u.task.expert_action(**other_cube_inputs(obs))
                else:
                    action = u.expert_action()
                obs, _, terminated, _, _ = env.step(action)
                success |= terminated.cpu()
                if success.all():
                    break
            out += success.tolist()[: episodes - start]
    finally:
        env.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tasks", nargs="+")
    p.add_argument("--episodes", type=int, default=128)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--assets", default=None)
    p.add_argument("--other-cube", action="store_true",
                   help="PutColorCubeOnPlate: the expert puts a cube other than the named one on the plate")
    args = p.parse_args()
    import gsenv  # noqa: F401  registers the ids

    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            t0 = time.perf_counter()
            ok = measure(task, args.episodes, args.num_envs, args.assets or tmp, args.other_cube)
            failed = [k for k, s in enumerate(ok) if not s]
            label = f"{task} (other cube)" if args.other_cube else task
            print(f"{label}: {sum(ok)}/{len(ok)} episodes (ids 0-{len(ok) - 1}) succeeded; failed ids {failed}; "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
