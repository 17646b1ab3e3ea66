"""The foundation: cheap import, a working CPU physics set-up, the doctor, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("module", ["gsenv", "mani_skill_gs"])
def test_import_is_cheap(tmp_path, module):
    code = (
        f"import sys, json, {module}; "
        "print(json.dumps({m: m in sys.modules for m in ('mani_skill', 'sapien', 'torch', 'gsplat')}))"
    )
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"mani_skill": False, "sapien": False, "torch": False, "gsplat": False}


def test_unknown_public_name_is_an_attribute_error():
    import gsenv

    with pytest.raises(AttributeError, match="no attribute 'NotAThing'"):
        gsenv.NotAThing  # noqa: B018


def test_maniskill_cpu_physics_steps():
    """Proves the Vulkan + SAPIEN + ManiSkill set-up: a real ManiSkill env on CPU physics steps."""
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401  (registers ManiSkill's envs)
    import torch

    env = gym.make("PickCube-v1", obs_mode="state", sim_backend="physx_cpu", render_mode=None)
    try:
        obs, _ = env.reset(seed=0)
        start = env.unwrapped.agent.robot.get_qpos().clone()
        action = torch.zeros(env.action_space.shape)
        action[..., 0] = 1.0  # push the end effector forward
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(action)
        assert obs.shape[0] == 1 and torch.isfinite(obs).all()
        assert not torch.allclose(env.unwrapped.agent.robot.get_qpos(), start), "the arm did not move"
    finally:
        env.close()


def test_doctor_reports_cpu_path(tmp_path):
    env = {**__import__("os").environ, "GSENV_ASSETS": str(tmp_path / "assets")}
    out = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "doctor"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    for row in ("Python", "torch", "CUDA", "gsplat", "ManiSkill", "SAPIEN Vulkan", "physics backend", "render backend",
                "asset root", "default scene", "dataset gsenv-assets-v0"):
        assert row in out.stdout
    if not torch.cuda.is_available():
        (jitter,) = [ln for ln in out.stdout.splitlines() if "image jitter" in ln]
        assert jitter.startswith("OK") and jitter.endswith("torch ops (no CUDA)")
    assert "the CPU path works" in out.stdout
    assert str(tmp_path / "assets") in out.stdout and "not downloaded (optional)" in out.stdout
    (root_line,) = [ln for ln in out.stdout.splitlines() if "asset root" in ln]
    assert root_line.startswith("OK") and "(not created yet)" in root_line and root_line.endswith("writable")
    assert not (tmp_path / "assets").exists(), "doctor creates nothing"


def test_cli_without_command_shows_usage():
    out = subprocess.run([sys.executable, "-m", "gsenv.tools.cli"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "usage: gsenv" in out.stderr


def test_gsplat_backend_on_cpu_is_a_clear_error():
    from gsenv.backends import resolve_render_backend

    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_render_backend("gsplat", "cpu")
    assert resolve_render_backend("auto", "cpu") == "torch"


@pytest.mark.slow
def test_regular_install_works_outside_the_source_tree(tmp_path):
    """A non-editable install (what `pip install .` builds) carries its package data and runs from elsewhere."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(repo)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert (target / "gsenv" / "assets_manifest").is_dir()
    assert (target / "mani_skill_gs" / "__init__.py").is_file()  # RLinf's import name, same distribution
    env = {**__import__("os").environ, "PYTHONPATH": str(target)}
    code = "import gsenv, sys; print(gsenv.__file__); from gsenv.tools.cli import main; sys.exit(main(['doctor']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].startswith(str(target)), "imported the source tree, not the installed copy"
