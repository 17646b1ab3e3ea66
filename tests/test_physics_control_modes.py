"""Every control mode steps on CPU physics through gym.make: the shared action buffer takes the
task's action shape (7-D end-effector modes, 8-D joint modes)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import gsenv

MODES = {"pd_ee_target_delta_pose": 7, "pd_ee_delta_pose": 7, "pd_joint_pos": 8, "pd_joint_delta_pos": 8,
         "pd_joint_target_delta_pos": 8}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return str(tmp_path_factory.mktemp("assets"))


@pytest.mark.parametrize("mode", list(MODES))
def test_control_mode_steps_on_cpu_physics(assets, mode):
    env = gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode="state", control_mode=mode,
                   sim_backend="physx_cpu", num_workers=2, scene_density=0.02, asset_root=assets)
    try:
        u = env.unwrapped
        assert u.single_action_space.shape == (MODES[mode],)
        obs, _ = env.reset(seed=1)
        qpos0 = u.agent.robot.get_qpos().clone()
        action = np.zeros((2, MODES[mode]), np.float32)
        if mode == "pd_joint_pos":
            action[:] = qpos0[:, :MODES[mode]].numpy()  # hold the start pose...
            action[:, 0] += 0.2  # ...but turn the base joint
        else:
            action[:, 0] = 0.5
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(torch.from_numpy(action))
        assert info["elapsed_steps"].tolist() == [3, 3]
        assert info["physics_restarted"].tolist() == [False, False]
        assert not torch.equal(u.agent.robot.get_qpos(), qpos0), "the action should move the arm"
    finally:
        env.close()
