"""RLinf's own env class (rlinf==0.3.0, ManiskillEnv) drives GSEnv from RLinf's GSEnv config."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("omegaconf", reason="the RLinf test needs omegaconf (./quickstart.sh test installs it)")
maniskill_env = pytest.importorskip("rlinf.envs.maniskill.maniskill_env",
                                    reason="the RLinf test needs `pip install --no-deps rlinf==0.3.0`")

CONFIG = Path(__file__).parent / "data" / "rlinf_gsenv_env.yaml"


@pytest.mark.slow
def test_rlinf_maniskill_env_drives_gsenv(tmp_path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONFIG)
    assert cfg.init_params.id == "gsenv:GSEnv-PutCubeOnPlate-v0"
    # RLinf's init_params unchanged, plus two gsenv keys that keep the CPU run short:
    # a light default scene in a temporary asset root (images stay 480x640, torch backend)
    cfg.init_params.scene_density = 0.01
    cfg.init_params.asset_root = str(tmp_path)
    env = maniskill_env.ManiskillEnv(cfg, num_envs=2, seed_offset=0, total_num_processes=1, worker_info=None)
    try:
        assert env.total_num_group_envs == 128  # read from our total_num_trials, not RLinf's fallback
        obs, info = env.reset()
        assert obs["main_images"].shape == (2, 480, 640, 3) and obs["main_images"].dtype == torch.uint8
        assert obs["states"].shape == (2, 9) and obs["states"].dtype == torch.float32
        assert obs["task_descriptions"] == ["pick up the cube and put it on the plate"] * 2
        # RLinf's fixed reset states: the same ids give the same initial state
        first_states = obs["states"].clone()
        rng = np.random.default_rng(0)
        for chunk in range(2):
            actions = rng.uniform(-0.02, 0.02, size=(2, 5, 7)).astype(np.float32)
            obs_list, rewards, terms, truncs, infos = env.chunk_step(actions)
            assert len(obs_list) == 5 and rewards.shape == (2, 5) and terms.shape == (2, 5)
            episode = infos[-1]["episode"]
            assert episode["episode_len"].tolist() == [5 * (chunk + 1)] * 2
            assert episode["success_once"].dtype == torch.bool and episode["return"].shape == (2,)
        assert not torch.equal(obs_list[-1]["states"], first_states), "the arm moved"
        image = env.render(infos[-1], rewards[:, -1])  # RLinf's video path
        assert image.dtype == np.uint8 and image.ndim == 3
        obs_again, _ = env.reset()
        assert torch.equal(obs_again["states"], first_states)
        # partial reset, as RLinf's auto-reset does it: only env 1 starts over
        env.step(np.zeros((2, 7), np.float32), auto_reset=False)
        env.env.reset(options={"env_idx": torch.tensor([1]), "episode_id": env.reset_state_ids[[1]]})
        assert env.elapsed_steps.tolist() == [1, 0]
    finally:
        env.env.close()
