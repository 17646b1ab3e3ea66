"""What a fresh env shows right after an episode's reset: the reference collected and replayed frames are
checked against."""
from __future__ import annotations

import gymnasium as gym
import torch

import gsenv


def rendered_at_reset(seed: int, cameras: list[str], image_size, density: float) -> dict[str, torch.Tensor]:
    """{camera: uint8 [H, W, 3]}: each camera's image in a fresh one-env GSEnv on the CPU (one physics worker,
    the default scene at ``density``) right after ``reset(seed=[seed])``."""
    env = gym.make(gsenv.registration.ENV_ID, num_envs=1, obs_mode="rgb", image_size=image_size, device="cpu",
                   num_workers=1, scene_density=float(density), cameras=list(cameras))
    try:
        obs, _ = env.reset(seed=[seed])
        return {c: obs["sensor_data"][c]["rgb"][0] for c in cameras}
    finally:
        env.close()
