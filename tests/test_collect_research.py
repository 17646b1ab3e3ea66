"""`gsenv collect`'s default demonstrations are the research collector's (issue 24): the gripper closed with
-0.5 (the same finger target as the research env's), 10 unrecorded settle steps after each reset, its
waypoints at speeds whose episode lengths match the research collector's (measured by
scripts/research_collector_lengths.py); `--expert-style gsenv` keeps the closed-loop expert."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import gsenv
from gsenv.sim import names
from gsenv.sim.task import register_physics_task
from gsenv.sim.waypoint_expert import RESEARCH_CLOSE, RESEARCH_SPEED, SETTLE_STEPS, Grip, Move, script_actions
from gsenv.tasks import get_task
from gsenv.tools.cli import main as cli

DENSITY = "0.05"
RESEARCH_LENGTH_MEAN = 104.6
"""The research collector's mean episode length (recorded steps) on PutCubeOnPlate:
its 47 successful episodes of seeds 0-47 (scripts/research_collector_lengths.py; README's "Demonstrations")."""
BAND = 0.20


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_minus_half_is_the_research_envs_finger_target():
    """The research FR3's gripper: PDJointPosMimicController, lower -0.01, upper 0.04, normalised actions:
    -0.5 -> -0.01 + (1 - 0.5) / 2 * 0.05 = 0.0025 m. gsenv's controller gives the same target for -0.5."""
    env = gym.make(register_physics_task(get_task("PutCubeOnPlate")), render_backend="none")
    try:
        env.reset(seed=0)
        env.step(torch.tensor([[0, 0, 0, 0, 0, 0, RESEARCH_CLOSE]], dtype=torch.float32))
        gripper = env.unwrapped.agent.controller.controllers["gripper"]
        target = gripper._target_qpos[0].cpu().numpy()
    finally:
        env.close()
    assert names.GRIPPER_TARGET_RANGE == (-0.01, 0.04)
    np.testing.assert_allclose(target, 0.0025, atol=1e-7)  # float32 arithmetic


def test_a_move_is_timed_by_the_speed_profile_and_ends_at_its_goal():
    start = np.array([0.4, 0.1, 0.3, 0.0, 1.0, 0.0, 0.0])  # TCP pointing down (wxyz)
    goal = (0.4, 0.1, 0.0)
    actions = script_actions(start, [Move(goal, (0.0, 1.0, 0.0, 0.0)), Grip(RESEARCH_CLOSE, 10)])
    moves, grips = actions[:-10], actions[-10:]
    # 0.3 m, trapezoid: 0.3 / v + v / a seconds -> int(duration / 0.1) points spread over it (mplib's sampling)
    duration = 0.3 / RESEARCH_SPEED.speed + RESEARCH_SPEED.speed / RESEARCH_SPEED.accel
    assert len(moves) == int(duration / 0.1)
    np.testing.assert_allclose(moves[:, :3].sum(0), np.array(goal) - start[:3], atol=1e-6)
    np.testing.assert_allclose(moves[0], [0, 0, 0, 0, 0, 0, 1], atol=1e-7)  # the plan starts where the TCP is
    assert np.abs(moves[:, :3]).max() <= RESEARCH_SPEED.speed * duration / (len(moves) - 1) + 1e-6
    assert np.abs(moves[:, 3:6]).max() < 1e-6 and np.all(grips == [0, 0, 0, 0, 0, 0, RESEARCH_CLOSE])


@pytest.fixture(scope="module")
def research_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("research") / "ds"
    assert cli(["collect", "--episodes", "4", "--num-envs", "2", "--image-size", "16x16", "--out", str(out),
                "--device", "cpu", "--scene-density", DENSITY, "--num-workers", "2", "--no-progress"]) == 0
    return out


def _table(dataset, index):
    table = pq.read_table(dataset / "data" / "chunk-000" / f"episode_{index:06d}.parquet")
    return (np.stack(table.column("observation.state").to_numpy(zero_copy_only=False)),
            np.stack(table.column("actions").to_numpy(zero_copy_only=False)))


@pytest.mark.slow
def test_default_demonstrations_are_research_style(research_dataset):
    episodes = _jsonl(research_dataset / "meta" / "episodes.jsonl")
    assert {e["expert_style"] for e in episodes} == {"research"}
    lengths = np.array([e["length"] for e in episodes])
    # the band: each episode and their mean within 20% of the research collector's mean length
    assert np.all(np.abs(lengths / RESEARCH_LENGTH_MEAN - 1) <= BAND), lengths
    for e in episodes:
        _, actions = _table(research_dataset, e["episode_index"])
        grips = set(np.round(actions[:, 6], 6).tolist())
        assert grips == {1.0, RESEARCH_CLOSE}, grips  # open and the research close, never -1
        closed = np.flatnonzero(actions[:, 6] == RESEARCH_CLOSE)
        assert len(closed) >= 10 + 2 * 2  # held 10 steps, then carried closed through two moves


@pytest.mark.slow
def test_the_first_recorded_state_is_after_ten_settle_steps(research_dataset):
    """Replay: reset(seed), step SETTLE_STEPS zero-motion open-gripper actions, then the recorded actions:
    the states seen match the recorded ones from the first frame on, and the episode succeeds."""
    episode = next(e for e in _jsonl(research_dataset / "meta" / "episodes.jsonl") if e["seed"] < 2)
    states, actions = _table(research_dataset, episode["episode_index"])
    env = gym.make(gsenv.registration.ENV_ID, num_envs=1, obs_mode="state_dict", device="cpu", num_workers=1,
                   scene_density=float(DENSITY), max_episode_steps=250)
    try:
        obs, _ = env.reset(seed=[episode["seed"]])
        at_reset = obs["agent"]["qpos"][0].numpy().copy()
        for _ in range(SETTLE_STEPS):
            obs, *_ = env.step(torch.tensor([[0, 0, 0, 0, 0, 0, 1.0]]))
        seen = []
        for a in actions:
            seen.append(obs["agent"]["qpos"][0].numpy().copy())
            obs, _, _, _, info = env.step(torch.as_tensor(a)[None])
    finally:
        env.close()
    # first in its fresh PhysX instance (seed < num envs): the replay repeats the same computations exactly
    np.testing.assert_array_equal(np.stack(seen), states)
    # gsenv's arm is gravity-compensated and its objects spawn at rest: settling moves nothing (measured: the
    # cube by < 1e-7 m, qpos not at all), unlike the research env's sagging arm; the steps are recorded in
    # the episode's line so a replay takes them
    np.testing.assert_allclose(states[0], at_reset, atol=1e-6)
    assert episode["settle_steps"] == SETTLE_STEPS
    assert bool(info["success"][0])


@pytest.mark.slow
def test_expert_style_gsenv_keeps_the_closed_loop_expert(tmp_path):
    out = tmp_path / "ds"
    assert cli(["collect", "--episodes", "1", "--num-envs", "1", "--image-size", "16x16", "--out", str(out),
                "--device", "cpu", "--scene-density", DENSITY, "--num-workers", "1", "--no-progress",
                "--expert-style", "gsenv"]) == 0
    (episode,) = _jsonl(out / "meta" / "episodes.jsonl")
    _, actions = _table(out, 0)
    assert episode["expert_style"] == "gsenv" and episode["length"] < 40
    assert -1.0 in actions[:, 6]


def test_research_style_on_a_task_without_a_script_is_refused(tmp_path, capsys):
    code = cli(["collect", "--episodes", "1", "--task", "PickCube", "--expert-style", "research", "--out",
                str(tmp_path / "ds")])
    assert code == 2 and "no research-style demonstration script" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
