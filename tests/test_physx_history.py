"""Episodes depend only on their episode id and actions, not on what the instance simulated before
(gsenv.sim.physx_history). Real CPU PhysX, the closed-loop scripted expert through the grasp; every
comparison is exact (torch.equal): a reused PhysX scene that kept history departs by 1e-4 to 1e-2 rad
at the grasp, so any tolerance would hide the very thing tested."""
from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import gsenv
import gsenv.sim.task as task
from gsenv import scripted_expert_action
from gsenv.tasks import get_task

TASK_ID = task.register_physics_task(get_task("PutCubeOnPlate"))
STEPS = 30  # the expert closes the gripper on the cube at about step 23
SEQUENCE = (0, 1, 1, 2, 3, 3, 0, 2, 1)  # without forgetting, 3-4 of these depart from a fresh instance's run


def _task():
    return gym.make(TASK_ID, num_envs=1, obs_mode="state", render_backend="none")


def _episode(env, episode_id: int, seed: int) -> torch.Tensor:
    """The expert's closed-loop run of one episode: qpos [STEPS + 1, 9] then cube pose [STEPS + 1, 7]."""
    u = env.unwrapped
    env.reset(seed=seed, options={"episode_id": [episode_id]})
    qpos, cube = [u.agent.robot.get_qpos().clone()], [u.cube.pose.raw_pose.clone()]
    for _ in range(STEPS):
        env.step(scripted_expert_action(**u.get_expert_inputs()))
        qpos.append(u.agent.robot.get_qpos().clone())
        cube.append(u.cube.pose.raw_pose.clone())
    return torch.cat([torch.cat(qpos), torch.cat(cube)], dim=1)


def _fresh(episode_id: int) -> torch.Tensor:
    env = _task()
    try:
        return _episode(env, episode_id, seed=1000 + episode_id)
    finally:
        env.close()


def test_an_episode_after_another_equals_it_run_first(monkeypatch):
    fresh = _fresh(1)
    env = _task()
    try:
        _episode(env, 0, seed=5)
        assert torch.equal(_episode(env, 1, seed=6), fresh)
        monkeypatch.setattr(task, "forget_physx_history", lambda env: None)  # today's reset, for contrast
        _episode(env, 0, seed=5)
        kept = _episode(env, 1, seed=6)
    finally:
        env.close()
    assert not torch.equal(kept, fresh), "a reused scene that keeps its history should depart here"


def test_a_fresh_instance_first_episode_is_unchanged(monkeypatch):
    with_forgetting = _fresh(3)
    monkeypatch.setattr(task, "forget_physx_history", lambda env: None)
    assert torch.equal(with_forgetting, _fresh(3))


@pytest.mark.slow
def test_a_sequence_of_episodes_equals_each_run_first():
    fresh = {k: _fresh(k) for k in sorted(set(SEQUENCE))}
    env = _task()
    try:
        for i, k in enumerate(SEQUENCE):
            assert torch.equal(_episode(env, k, seed=50 + i), fresh[k]), f"episode {k} at position {i}"
    finally:
        env.close()


def _gsenv_trajectories(num_envs: int, num_workers: int, rounds: list[list[int]]) -> dict[int, torch.Tensor]:
    """{episode id: qpos [STEPS + 1, 9]} from GSEnv with the expert, ids reset ``num_envs`` at a time."""
    env = gym.make(gsenv.registration.ENV_ID, num_envs=num_envs, num_workers=num_workers, obs_mode="state_dict",
                   device="cpu", scene_density=0.02)
    out = {}
    try:
        for ids in rounds:
            obs, _ = env.reset(options={"episode_id": ids})
            qpos = [obs["agent"]["qpos"].clone()]
            for _ in range(STEPS):
                obs, *_ = env.step(scripted_expert_action(**env.unwrapped.get_expert_inputs()))
                qpos.append(obs["agent"]["qpos"].clone())
            for b, k in enumerate(ids):
                out[k] = torch.stack([q[b] for q in qpos])
    finally:
        env.close()
    return out


@pytest.mark.slow
def test_gsenv_same_episode_ids_same_trajectories_whatever_the_batch():
    one = _gsenv_trajectories(1, 1, [[k] for k in (4, 0, 1, 2, 3)])
    four = _gsenv_trajectories(4, 2, [[5, 6, 7, 4], [0, 1, 2, 3]])  # each env has simulated another episode first
    for k in range(5):
        assert torch.equal(one[k], four[k]), f"episode {k}"
