"""RLinf's GSEnv config exactly as RLinf ships it, through the import RLinf makes (`mani_skill_gs`).

tests/data/rlinf_gsenv_put_cube_on_plate.yaml is RLinf's
examples/embodiment/config/env/gsenv_put_cube_on_plate.yaml byte for byte (the same at tag v0.3 and
at a3816b596, sha256 below): `id: "GSEnv-PutCubeOnPlate-v0"`, no `gsenv:` prefix. RLinf composes it
under `env.train` of its Hydra config (gsenv_ppo_openpi_pi05.yaml) and fills `control_mode` from the
policy setup; the test does the same two things and nothing else to the file.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("omegaconf", reason="the RLinf test needs omegaconf (./quickstart.sh test installs it)")

CONFIG = Path(__file__).parent / "data" / "rlinf_gsenv_put_cube_on_plate.yaml"
SHA256 = "4cb40b616ece68690efad771bc84fec7267b0181c1b5e9cca2336cce0149a466"


def _rlinf_cfg(log_path: str):
    """cfg.env.train as RLinf builds it: the env YAML under env.train, runner.logger.log_path set, and
    control_mode from rlinf.config's get_robot_control_mode("panda-ee-target-dpos")."""
    from omegaconf import OmegaConf

    root = OmegaConf.create({"runner": {"logger": {"log_path": log_path}}, "env": {"train": OmegaConf.load(CONFIG)}})
    root.env.train.init_params.control_mode = "pd_ee_target_delta_pose"
    return root.env.train


def test_config_is_rlinfs_file_unchanged():
    assert hashlib.sha256(CONFIG.read_bytes()).hexdigest() == SHA256
    cfg = _rlinf_cfg("/tmp")
    assert cfg.init_params.id == "GSEnv-PutCubeOnPlate-v0"


def test_rlinf_import_registers_the_id_as_gsenv(tmp_path):
    """What rlinf/envs/maniskill/__init__.py does (import mani_skill_gs, ImportError ignored), in a
    fresh interpreter: the id exists and is gsenv's, and nothing heavy was imported."""
    code = (
        "import importlib, sys, gymnasium as gym\n"
        "importlib.import_module('mani_skill_gs')\n"
        "spec = gym.spec('GSEnv-PutCubeOnPlate-v0')\n"
        "print(spec.entry_point, gym.spec('GSEnv/PutCubeOnPlate-v0').entry_point)\n"
        "print(sorted(m for m in ('torch', 'sapien', 'mani_skill', 'gsplat') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["gsenv.env:GSEnv gsenv.env:GSEnv", "[]"]
    assert out.stderr == ""  # no resolution line: nobody else claims the id


@pytest.mark.slow
def test_rlinf_maniskill_env_runs_rlinfs_config(tmp_path, monkeypatch):
    """rlinf 0.3.0's ManiskillEnv with the shipped config: reset with RLinf's fixed reset states,
    one 5-step chunk, RLinf's video frame. The asset root comes from GSENV_ASSETS, as a user's would
    (the default scene at its default density, built there on first use)."""
    maniskill_env = pytest.importorskip("rlinf.envs.maniskill.maniskill_env",
                                        reason="the RLinf test needs `pip install --no-deps rlinf==0.3.0`")
    assert "mani_skill_gs" in sys.modules  # imported by rlinf.envs.maniskill, as in RLinf
    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path / "assets"))
    cfg = _rlinf_cfg(str(tmp_path / "results"))
    env = maniskill_env.ManiskillEnv(cfg, num_envs=2, seed_offset=0, total_num_processes=1, worker_info=None)
    try:
        from gsenv.env import GSEnv

        assert isinstance(env.env.unwrapped, GSEnv)
        assert env.total_num_group_envs == 128
        obs, _ = env.reset()
        assert obs["main_images"].shape == (2, 480, 640, 3) and obs["main_images"].dtype == torch.uint8
        assert obs["states"].shape == (2, 9) and obs["task_descriptions"] == [
            "pick up the cube and put it on the plate"] * 2
        actions = np.random.default_rng(0).uniform(-0.02, 0.02, size=(2, 5, 7)).astype(np.float32)
        obs_list, rewards, terms, truncs, infos = env.chunk_step(actions)
        assert len(obs_list) == 5 and rewards.shape == (2, 5)
        assert infos[-1]["episode"]["episode_len"].tolist() == [5, 5]
        image = env.render(infos[-1], rewards[:, -1])
        assert image.dtype == np.uint8 and image.ndim == 3
    finally:
        env.env.close()


def _fresh_python(code: str, cwd, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120, env=env)


def test_an_id_registered_before_gsenv_is_kept_and_named_in_one_line(tmp_path):
    """The research package registers the id with a factory function; imported first, it keeps the
    id, and importing mani_skill_gs (or gsenv) says so in one log line."""
    code = (
        "import gymnasium as gym\n"
        "def _factory(**kwargs): pass\n"
        "gym.register(id='GSEnv-PutCubeOnPlate-v0', entry_point=_factory)\n"
        "import mani_skill_gs\n"
        "print(gym.spec('GSEnv-PutCubeOnPlate-v0').entry_point is _factory, "
        "gym.spec('GSEnv/PutCubeOnPlate-v0').entry_point)\n"
    )
    out = _fresh_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "gsenv.env:GSEnv"]
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("GSEnv-PutCubeOnPlate-v0 resolves to __main__._factory")
    assert "'GSEnv/PutCubeOnPlate-v0'" in lines[0]


def test_research_package_installed_beside_is_named_in_one_line(tmp_path):
    """Both distributions installed (the research package's metadata present), gsenv's module
    imported: the id is gsenv's, and one line says so."""
    site = tmp_path / "site"
    dist = site / "mani_skill_gs-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mani_skill_gs\nVersion: 0.0.1\n")
    code = "import gymnasium as gym, mani_skill_gs; print(gym.spec('GSEnv-PutCubeOnPlate-v0').entry_point)"
    out = _fresh_python(code, tmp_path, pythonpath=str(site))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gsenv.env:GSEnv"
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "resolves to gsenv" in lines[0] and "mani_skill_gs 0.0.1" in lines[0], out.stderr
