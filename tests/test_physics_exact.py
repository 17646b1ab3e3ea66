"""The physx_cpu pool gives exactly what a plain single-env ManiSkill run of the task gives.

The pool's instances take shortcuts for speed (inference mode, poses read straight from SAPIEN, the
state dict reused from the observation, an early "not grasping" answer); none may change a number.
Reference: ``gym.make(ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu")`` driven by the
scripted expert (so the cube is grasped, carried and released) plus noise; the pool replays the same
actions and every output must be bit-identical.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from gsenv.observations import flat_state
from gsenv.physics.backend import task_factory
from gsenv.physics.cpu_pool import CpuPhysicsPool
from gsenv.physics.outputs import PhysicsOutputs, assemble, flatten
from gsenv.sim import names
from gsenv.sim.expert import scripted_expert_action
from gsenv.sim.task import register_physics_task
from gsenv.tasks import get_task
from gsenv.tasks.put_cube_on_plate import RECORD as PUT_CUBE_ON_PLATE

ID = register_physics_task(get_task("PutCubeOnPlate"))

SEEDS = (3, 8)
STEPS = 40


def _leaves(state: dict) -> dict[str, torch.Tensor]:
    return {f"{group}/{name}": v for group, leaves in state.items() for name, v in leaves.items()}


def _record(u, obs, reward, terminated, info) -> tuple[PhysicsOutputs, np.ndarray]:
    """What a plain env shows, read through ManiSkill's own accessors (not gsenv's shortcuts), and its
    flat state observation [46]."""
    robot = u.agent.robot
    poses = {link.name: link.pose.raw_pose[0].numpy() for link in robot.get_links()}
    poses[names.ROBOT_ROOT] = robot.pose.raw_pose[0].numpy()
    poses[names.CUBE] = u.cube.pose.raw_pose[0].numpy()
    poses[names.PLATE] = u.plate.pose.raw_pose[0].numpy()
    state = {group: {name: v[0].numpy() for name, v in leaves.items()}
             for group, leaves in u.get_obs(info, unflattened=True).items()}
    return PhysicsOutputs(
        reward=np.float32(reward[0]), terminated=np.bool_(terminated[0]), elapsed_steps=np.int32(u.elapsed_steps[0]),
        info={k: info[k][0].numpy() for k in ("success", "cube_on_plate", "is_grasped", "cube_static")},
        body_poses=poses, state=state), obs[0].numpy()


def _plain_episode(seed: int) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    env = gym.make(ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu")
    u = env.unwrapped
    rng = np.random.default_rng(seed)
    try:
        obs, info = env.reset(seed=seed)
        frames = [_record(u, obs, torch.zeros(1), torch.zeros(1, dtype=torch.bool), info)]
        actions = []
        for _ in range(STEPS):
            a = scripted_expert_action(**u.get_expert_inputs())[0].numpy()
            a = a + rng.normal(0, 0.005, a.shape).astype(np.float32)  # not the expert's exact path
            a = a.astype(np.float32)
            actions.append(a)
            obs, reward, terminated, _, info = env.step(torch.from_numpy(a[None]))
            frames.append(_record(u, obs, reward, terminated, info))
    finally:
        env.close()
    return np.stack(actions), frames


@pytest.fixture(scope="module")
def plain():
    return [_plain_episode(s) for s in SEEDS]


def test_pool_is_bit_identical_to_a_plain_maniskill_run(plain):
    actions = np.stack([a for a, _ in plain], axis=1)  # [STEPS, B, 7]
    grasped = sum(bool(f.info["is_grasped"]) for _, frames in plain for f, _ in frames)
    assert grasped > 0, "the reference episodes should grasp the cube (is_grasping's full test runs)"
    b = len(SEEDS)
    with CpuPhysicsPool(task_factory({}), num_envs=b, action_shape=(7,), num_workers=2) as pool:
        got = [assemble(PUT_CUBE_ON_PLATE, pool.reset(list(range(b)), list(SEEDS), [{}] * b))]
        for t in range(STEPS):
            got.append(assemble(PUT_CUBE_ON_PLATE, pool.step(actions[t])))
    for i in range(b):
        for t, (want, want_obs) in enumerate(plain[i][1]):
            # the record as the env completes it, and the flat observation it derives from the state dict
            got_obs = flat_state(got[t].map(torch.from_numpy).state)[i].numpy()
            np.testing.assert_array_equal(got_obs, want_obs, err_msg=f"env {i} step {t} flat state observation")
            assert got_obs.dtype == want_obs.dtype
            pooled = flatten(got[t].map(lambda v: v[i]))
            for key, value in flatten(want).items():
                assert key in pooled, f"pool output lacks {key}"
                np.testing.assert_array_equal(pooled[key], value, err_msg=f"env {i} step {t} {key}")
                assert pooled[key].dtype == np.asarray(value).dtype, key
    assert set(got[0].body_poses) == set(plain[0][1][0][0].body_poses)
    assert _leaves(got[0].state).keys() == _leaves(plain[0][1][0][0].state).keys()


def test_state_dict_reuse_follows_the_info_it_was_built_for():
    """obs_state_dict(info) reuses the dict built by get_obs(info) only for that very info."""
    env = gym.make(ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu", render_backend="none")
    u = env.unwrapped
    try:
        _, info = env.reset(seed=0)
        first = u.obs_state_dict(info)
        assert first is u.obs_state_dict(info)
        _, _, _, _, info2 = env.step(torch.tensor([[0.05, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0]]))
        second = u.obs_state_dict(info2)
        assert second is not first
        assert not torch.equal(second["agent"]["qpos"], first["agent"]["qpos"])
        # an info the env never built an observation for gets a fresh one
        fresh = u.obs_state_dict(u.get_info())
        for k, v in _leaves(fresh).items():
            torch.testing.assert_close(v, _leaves(second)[k], rtol=0, atol=0)
    finally:
        env.close()
