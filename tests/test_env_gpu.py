"""GSEnv on a CUDA machine: gsplat rendering of the full default scene, CPU physics workers."""
from __future__ import annotations

import logging
import os
import time

import gymnasium as gym
import pytest
import torch

import gsenv
from gsenv import scripted_expert_action

logger = logging.getLogger(__name__)


@pytest.mark.gpu
def test_expert_with_gsplat_rgb_224(tmp_path):
    """B=64, rgb 224x224 through gsplat, 100 steps of the scripted expert: it succeeds as on CPU
    (the CPU suite's 50-episode expert test needs >= 90%)."""
    env = gym.make(gsenv.registration.ENV_ID, num_envs=64, obs_mode="rgb", image_size=224, render_backend="gsplat",
                   device="cuda", asset_root=str(tmp_path))
    try:
        obs, _ = env.reset(seed=0)
        success_once = torch.zeros(64, dtype=torch.bool, device="cuda")
        t0 = time.perf_counter()
        for _ in range(100):
            obs, reward, terminated, truncated, info = env.step(
                scripted_expert_action(**env.unwrapped.get_expert_inputs()))
            success_once |= info["success"]
        elapsed = time.perf_counter() - t0
        rgb = obs["sensor_data"]["3rd_view_camera"]["rgb"]
        assert rgb.shape == (64, 224, 224, 3) and rgb.dtype == torch.uint8 and rgb.device.type == "cuda"
        assert rgb.float().std() > 10
        rate = success_once.float().mean().item()
        print(f"\nGPU expert: success rate {rate:.3f} over 64 envs; {64 * 100 / elapsed:.0f} env-steps/s "
              f"(physics {env.unwrapped.sim_backend}, render gsplat 224x224)")
        assert rate >= 0.9
    finally:
        env.close()


@pytest.mark.gpu
def test_cpu_physics_workers_hold_no_cuda_context(tmp_path):
    """The main process renders on CUDA; its physics workers never open the GPU (no CUDA context: no
    GPU memory each, no start-up serialised in the driver), through reset and step."""
    from gsenv.tools.bench.proc import open_gpu_devices, physics_processes

    env = gym.make(gsenv.registration.ENV_ID, num_envs=4, num_workers=2, obs_mode="rgb", image_size=32,
                   device="cuda", sim_backend="physx_cpu", asset_root=str(tmp_path))
    try:
        env.reset(seed=0)
        env.step(torch.zeros(4, 7, device="cuda"))
        assert open_gpu_devices(os.getpid()), "the main process should hold the GPU"
        server, workers = physics_processes()
        assert len(workers) == 2
        for pid in [*workers, *([server] if server else [])]:
            assert open_gpu_devices(pid) == set(), pid
    finally:
        env.close()
