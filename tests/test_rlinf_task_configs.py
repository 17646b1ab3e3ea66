"""An RLinf env YAML per registered task in examples/rlinf/ (issue 26): RLinf's GSEnv YAML
(tests/data/rlinf_gsenv_put_cube_on_plate.yaml, RLinf's own file) with only the id changed, each driven by
rlinf's ManiskillEnv as tests/test_rlinf_config.py drives RLinf's file. Parametrised over gsenv.tasks'
built-in names, so a new built-in task's YAML is required automatically."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gsenv.tasks import env_ids, get_task
from gsenv.tasks.registry import BUILTIN

pytest.importorskip("omegaconf", reason="the RLinf test needs omegaconf (./quickstart.sh test installs it)")

ROOT = Path(__file__).resolve().parents[1]
RLINF_FILE = Path(__file__).parent / "data" / "rlinf_gsenv_put_cube_on_plate.yaml"
TASKS = list(BUILTIN)


def yaml_for(name: str) -> Path:
    """examples/rlinf/gsenv_<snake_case name>.yaml."""
    return ROOT / "examples" / "rlinf" / f"gsenv_{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}.yaml"


@pytest.mark.parametrize("name", TASKS)
def test_yaml_is_rlinfs_with_the_tasks_id(name):
    path = yaml_for(name)
    assert path.is_file(), f"task {name} has no RLinf env YAML: write {path.relative_to(ROOT)} (RLinf's, id changed)"
    rlinf = RLINF_FILE.read_text()
    assert path.read_text() == rlinf.replace('"GSEnv-PutCubeOnPlate-v0"', f'"{env_ids(name)[1]}"')


@pytest.mark.slow
@pytest.mark.parametrize("name", TASKS)
def test_rlinf_maniskill_env_runs_the_tasks_yaml(name, tmp_path, monkeypatch):
    """rlinf 0.3.0's ManiskillEnv with the task's YAML: reset, one 5-step chunk, the task's instructions."""
    maniskill_env = pytest.importorskip("rlinf.envs.maniskill.maniskill_env",
                                        reason="the RLinf test needs `pip install --no-deps rlinf==0.3.0`")
    from omegaconf import OmegaConf

    assert "mani_skill_gs" in sys.modules  # imported by rlinf.envs.maniskill, as in RLinf
    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path / "assets"))
    root = OmegaConf.create({"runner": {"logger": {"log_path": str(tmp_path / "results")}},
                             "env": {"train": OmegaConf.load(yaml_for(name))}})
    root.env.train.init_params.control_mode = "pd_ee_target_delta_pose"  # as RLinf fills it from the policy setup
    env = maniskill_env.ManiskillEnv(root.env.train, num_envs=2, seed_offset=0, total_num_processes=1,
                                     worker_info=None)
    try:
        from gsenv.env import GSEnv

        assert isinstance(env.env.unwrapped, GSEnv) and env.env.unwrapped.task.name == name
        obs, _ = env.reset()
        assert obs["main_images"].shape == (2, 480, 640, 3) and obs["main_images"].dtype == torch.uint8
        assert obs["states"].shape == (2, 9)
        # the env's own instructions, each one of the task's phrasings (with its {fields} filled in)
        assert list(obs["task_descriptions"]) == env.env.unwrapped.get_language_instruction()
        templates = [re.compile(re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(p)) + "$")
                     for p in get_task(name).instructions]
        assert all(any(t.match(d) for t in templates) for d in obs["task_descriptions"]), obs["task_descriptions"]
        actions = np.random.default_rng(0).uniform(-0.02, 0.02, size=(2, 5, 7)).astype(np.float32)
        obs_list, rewards, terms, truncs, infos = env.chunk_step(actions)
        assert len(obs_list) == 5 and rewards.shape == (2, 5)
        assert infos[-1]["episode"]["episode_len"].tolist() == [5, 5]
    finally:
        env.env.close()
