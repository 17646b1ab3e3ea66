"""The task seam on real CPU PhysX: every built-in task's scripted expert succeeds on fixed episodes, a
task defined only here (tests/tasks/touch_cube.py) runs through gym.make, `gsenv collect` and `gsenv eval`
without any change to gsenv, and the registry's errors say what to do."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import gsenv
from gsenv.sim import names
from gsenv.tasks import get_task, task_names

TASKS_DIR = str(Path(__file__).resolve().parent / "tasks")
DENSITY = 0.02
EPISODE_IDS = [0, 1, 2]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


@pytest.fixture(scope="module")
def touch_cube():
    sys.path.insert(0, TASKS_DIR)  # the physics workers inherit this process's sys.path
    from touch_cube import TouchCube

    yield TouchCube()
    sys.path.remove(TASKS_DIR)


def _expert_episodes(env, ids, steps=100):
    """Run the task's expert on fixed episodes -> (success [B] bool, the largest progress [B], last info)."""
    u = env.unwrapped
    _, info = env.reset(seed=0, options={"episode_id": ids})
    success = torch.zeros(len(ids), dtype=torch.bool)
    best = info["progress"].clone()
    for _ in range(steps):
        _, _, terminated, _, info = env.step(u.expert_action())
        success |= terminated
        best = torch.maximum(best, info["progress"])
        if success.all():
            break
    return success, best, info


@pytest.mark.slow
@pytest.mark.parametrize("name", ["PutCubeOnPlate", "PickCube"])
def test_each_builtin_task_is_solved_by_its_expert(name, assets):
    env = gym.make(f"GSEnv/{name}-v0", num_envs=len(EPISODE_IDS), obs_mode="state", reward_mode="dense",
                   scene_density=DENSITY, asset_root=str(assets), num_workers=2, sim_backend="physx_cpu")
    u = env.unwrapped
    task = get_task(name)
    try:
        assert u.task is task and set(u.get_body_poses()) == {*names.ROBOT_LINK_NAMES, names.ROBOT_ROOT,
                                                              *task.objects}
        assert set(u.scene.objects) == set(task.objects)  # the scene draws what the physics simulates
        success, best, info = _expert_episodes(env, EPISODE_IDS)
        assert success.all(), success
        assert torch.equal(best, torch.ones(len(EPISODE_IDS)))  # every stage reached, progress 1 at success
        assert all(s in task.instructions for s in info["language_instruction"])
        _, reward, *_ = env.step(u.expert_action())
        assert (reward <= task.dense_reward_max).all()
    finally:
        env.close()


@pytest.mark.slow
def test_pick_cube_success_means_lifted_held_and_grasped(assets):
    from gsenv.tasks.pick_cube import LIFT_Z

    env = gym.make("GSEnv/PickCube-v0", num_envs=2, obs_mode="state_dict", reward_mode="normalized_dense",
                   scene_density=DENSITY, asset_root=str(assets), num_workers=2, sim_backend="physx_cpu")
    u = env.unwrapped
    try:
        obs, info = env.reset(seed=3)
        assert "plate" not in u.get_body_poses() and "plate_pose" not in obs["extra"]
        assert not info["success"].any() and (info["progress"] < 1).all()
        for _ in range(100):
            obs, reward, terminated, _, info = env.step(u.expert_action())
            cube_z = obs["extra"]["cube_pose"][:, 2]
            # the rule, from the observation: success only with the cube 10 cm up, in the hand
            assert not (terminated & ((cube_z < LIFT_Z) | ~obs["extra"]["is_grasped"])).any()
            if terminated.all():
                break
        assert terminated.all()
        assert torch.equal(reward, torch.ones(2))  # normalized dense: 1 exactly where it succeeds
        # the random policy does not lift it
        env.reset(seed=3)
        rng = np.random.default_rng(0)
        for _ in range(30):
            _, _, terminated, _, _ = env.step(torch.from_numpy(rng.uniform(-1, 1, (2, 7)).astype(np.float32)))
            assert not terminated.any()
    finally:
        env.close()


@pytest.mark.slow
def test_a_task_defined_only_in_tests_runs_through_gym_make(touch_cube, assets):
    ids = gsenv.register_task(touch_cube)
    assert ids == ("GSEnv/TouchCube-v0", "GSEnv-TouchCube-v0") and "TouchCube" in task_names()
    assert gsenv.register_task(touch_cube) == ids  # again: a no-op
    env = gym.make(ids[1], num_envs=2, obs_mode="state", scene_density=DENSITY, asset_root=str(assets),
                   num_workers=2, sim_backend="physx_cpu")
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == (2, 2 * names.NUM_JOINTS + 14)  # qpos, qvel, tcp_pose, cube_pose
        assert set(info) >= {"success", "progress", "language_instruction"}
        success, best, _ = _expert_episodes(env, [0, 1], steps=40)
        assert success.all() and torch.equal(best, torch.ones(2))
    finally:
        env.close()


def test_registry_errors_say_what_to_do(touch_cube):
    with pytest.raises(ValueError, match="unknown task 'PickCub': the known tasks are PutCubeOnPlate, PickCube"):
        get_task("PickCub")
    with pytest.raises(ValueError, match="cannot load it"):
        get_task("no_such_module:Task")
    with pytest.raises(TypeError, match=r"give a task instance, e\.g\. TouchCube\(\)"):
        gsenv.register_task(type(touch_cube))

    class Clash(type(touch_cube)):
        name = "PickCube"

    with pytest.raises(ValueError, match="a task named 'PickCube' is already registered"):
        gsenv.register_task(Clash())

    class Nameless(type(touch_cube)):
        name = "touch cube"

    with pytest.raises(ValueError, match="name must be CamelCase"):
        gsenv.register_task(Nameless())
    with pytest.raises(TypeError, match="unknown keyword argument"):
        gym.make("GSEnv/PickCube-v0", plate=None)  # PickCube has no plate: no such keyword


def _gsenv(*args, assets, timeout=900):
    env = {**os.environ, "GSENV_ASSETS": str(assets),
           "PYTHONPATH": os.pathsep.join(filter(None, [TASKS_DIR, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "gsenv.tools.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_gsenv_collect_and_eval_run_a_task_of_your_own(tmp_path, assets):
    out = tmp_path / "ds"
    proc = _gsenv("collect", "--task", "touch_cube:TouchCube", "--episodes", 2, "--num-envs", 2, "--image-size",
                  "32x32", "--out", out, "--device", "cpu", "--scene-density", DENSITY, "--num-workers", 2,
                  "--no-progress", assets=assets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    episodes = [json.loads(line) for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2
    tasks = {json.loads(line)["task"] for line in (out / "meta" / "tasks.jsonl").read_text().splitlines()}
    assert tasks <= {"touch the cube", "put your fingertips on the cube"} and tasks  # each episode's instruction
    assert all(set(e["tasks"]) <= tasks for e in episodes)

    # replay finds the task by its recorded name only when it is registered: a task of your own is named
    proc = _gsenv("replay", out, "--out", tmp_path / "r1", "--device", "cpu", "--no-progress", assets=assets)
    assert proc.returncode == 2 and "pass --task MODULE:NAME" in proc.stderr, proc.stderr[-3000:]
    proc = _gsenv("replay", out, "--out", tmp_path / "r2", "--task", "touch_cube:TouchCube", "--camera",
                  "3rd_view_camera,wrist_camera", "--device", "cpu", "--num-envs", 4, "--no-progress", assets=assets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from gsenv.lerobot_v21 import verify

    replayed = verify(tmp_path / "r2")
    assert replayed["total_episodes"] == 2 and "observation.wrist_image" in replayed["features"]

    proc = _gsenv("eval", "--task", "touch_cube:TouchCube", "--policy", "expert", "--episodes", 2, "--num-envs", 2,
                  "--image-size", "32x32", "--scene-density", DENSITY, "--device", "cpu", "--no-video",
                  "--out", tmp_path / "eval", assets=assets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["task"] == "TouchCube" and report["successes"] == 2, report

    proc = _gsenv("eval", "--task", "NoSuchTask", "--policy", "expert", "--episodes", 1, "--out", tmp_path / "e2",
                  assets=assets)
    assert proc.returncode == 2 and "the known tasks are PutCubeOnPlate, PickCube" in proc.stderr, proc.stderr
