"""The out-of-distribution suite in RLinf's evaluation format (issue 27): examples/rlinf/gsenv_ood_template.yaml
(the env config), maniskill_gsenv_ood_openpi_pi05_eval.yaml (the eval config) and run_gsenv_ood.sh (one RLinf
eval run per row). The rows are gsenv.tasks.ood.SUITE's; each row's id and obj_set drive rlinf's ManiskillEnv
(in the RLinf-stack venv: scripts/ci_rlinf_stack.sh)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gsenv.tasks.ood import SUITE

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "rlinf"
TEMPLATE = EXAMPLES / "gsenv_ood_template.yaml"
EVAL_YAML = EXAMPLES / "maniskill_gsenv_ood_openpi_pi05_eval.yaml"
RUNNER = EXAMPLES / "run_gsenv_ood.sh"
RLINF_ENV_YAML = Path(__file__).parent / "data" / "rlinf_gsenv_put_cube_on_plate.yaml"  # RLinf's own file


def test_the_runner_lists_every_row_of_the_suite_in_order():
    rows = re.findall(r'^  "(\S+) (train|test)"$', RUNNER.read_text(), re.M)
    assert rows == [(v.rlinf_env_id, v.make_kwargs["obj_set"]) for v in SUITE]
    assert rows[0] == ("GSEnv-PutCubeOnPlateMain-v0", "train") and {s for _, s in rows[1:]} == {"test"}


def test_the_template_is_rlinfs_gsenv_yaml_with_the_suites_settings():
    omegaconf = pytest.importorskip("omegaconf", reason="needs omegaconf (./quickstart.sh test installs it)")
    template, rlinf = omegaconf.OmegaConf.load(TEMPLATE), omegaconf.OmegaConf.load(RLINF_ENV_YAML)
    assert template.init_params.id == SUITE[0].rlinf_env_id and template.init_params.obj_set == "train"
    assert template.auto_reset is True and template.ignore_terminations is True
    assert template.use_fixed_reset_state_ids is True
    # everything else is RLinf's GSEnv env config as it is
    for key in ("id", "obj_set"):
        template.init_params.pop(key)
        rlinf.init_params.pop(key, None)
    for key in ("auto_reset", "ignore_terminations", "video_cfg"):
        template.pop(key)
        rlinf.pop(key)
    assert template == rlinf
    config = omegaconf.OmegaConf.load(EVAL_YAML)
    assert "env/gsenv_ood_template@env.eval" in config.defaults
    assert config.runner.task_type == "embodied_eval" and config.runner.only_eval is True
    assert config.rollout.model.openpi.config_name == "pi05_gsenv"


DRIVEN = ("PutCubeOnPlateMain", "PutCubeOnPlateVisionImage", "PutCubeOnPlateUnseenObjects",
          "PutCubeOnPlateMultiReceptacle", "PutCubeOnPlatePositionChangeTo")
"""The rows driven through rlinf (about 9 s each on 2 cores): the in-distribution one, a vision one (its
randomisation from the id), a test split of objects, several receptacles, a mid-episode move. Every row reaches
gym.make the same way (id and obj_set from init_params); test_the_runner_lists_every_row... checks them all."""


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v for v in SUITE if v.name in DRIVEN], ids=list(DRIVEN))
def test_rlinf_maniskill_env_runs_each_row(variant, tmp_path, monkeypatch):
    """rlinf's ManiskillEnv with the eval config's env section (template + the eval YAML's env.eval, as hydra
    merges them) and the row's id and obj_set, as run_gsenv_ood.sh overrides them: the row's task, one chunk."""
    maniskill_env = pytest.importorskip("rlinf.envs.maniskill.maniskill_env",
                                        reason="the RLinf test needs `pip install --no-deps rlinf==0.3.0`")
    from omegaconf import OmegaConf, open_dict

    assert "mani_skill_gs" in sys.modules
    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path / "assets"))
    eval_cfg = OmegaConf.merge(OmegaConf.load(TEMPLATE), OmegaConf.load(EVAL_YAML).env.eval)
    root = OmegaConf.create({"runner": {"logger": {"log_path": str(tmp_path / "results")}}, "env": {"eval": eval_cfg}})
    with open_dict(root):
        root.env.eval.init_params.id = variant.rlinf_env_id
        root.env.eval.init_params.obj_set = variant.make_kwargs["obj_set"]
        root.env.eval.init_params.control_mode = "pd_ee_target_delta_pose"  # RLinf fills it from the policy setup
        root.env.eval.init_params.scene_density = 0.02  # a sparser default scene and small images: the test
        root.env.eval.init_params.image_size = [32, 32]  # checks what RLinf passes, not the picture
        root.env.eval.video_cfg.save_video = False
    env = maniskill_env.ManiskillEnv(root.env.eval, num_envs=2, seed_offset=0, total_num_processes=1,
                                     worker_info=None)
    try:
        base = env.env.unwrapped
        assert base.task.name == variant.name
        obs, _ = env.reset()
        assert obs["main_images"].shape[0] == 2 and obs["main_images"].dtype == torch.uint8
        assert obs["states"].shape == (2, 9)
        assert list(obs["task_descriptions"]) == base.get_language_instruction()
        actions = np.random.default_rng(0).uniform(-0.02, 0.02, size=(2, 5, 7)).astype(np.float32)
        _, rewards, _, _, _ = env.chunk_step(actions)
        assert rewards.shape == (2, 5)
        randomised = base.domain_randomization_values() is not None
        assert randomised == ("domain_randomization" in variant.make_kwargs), variant.name
    finally:
        env.env.close()
