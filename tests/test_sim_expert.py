"""Acceptance of the scripted expert on real CPU PhysX: >= 90% of 50 seeded episodes; random ~0%."""
from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import gsenv
from gsenv.sim import names
from gsenv.sim.expert import scripted_expert_action
from gsenv.sim.task import register_physics_task
from gsenv.tasks import get_task


@pytest.fixture(scope="module")
def env():
    e = gym.make(register_physics_task(get_task("PutCubeOnPlate")), render_backend="none")
    yield e
    e.close()


def _episode(env, policy, seed: int) -> bool:
    """One episode of at most 100 steps; True once info["success"] turns on."""
    env.reset(seed=seed)
    for _ in range(names.EPISODE_STEPS):
        *_, info = env.step(policy(env.unwrapped))
        if info["success"].item():
            return True
    return False


def _expert(u):
    return scripted_expert_action(**u.get_expert_inputs())


def test_expert_is_exported_lazily():
    assert gsenv.scripted_expert_action is scripted_expert_action


def test_expert_input_validation():
    ok = torch.zeros(2, 7)
    ok[:, 3] = 1
    with pytest.raises(ValueError, match=r"gripper_qpos must be a tensor of shape \[B, 2\]"):
        scripted_expert_action(ok, ok, ok, torch.zeros(2, 9))
    with pytest.raises(ValueError, match="batch size 1"):
        scripted_expert_action(ok, ok[:1], ok, torch.zeros(2, 2))


def test_expert_is_batched_and_pure():
    """Each row of a batch gets the action it would get alone; inputs are not modified."""
    g = torch.Generator().manual_seed(0)
    b = 6
    tcp = torch.cat([torch.rand(b, 3, generator=g) * 0.3 + torch.tensor([0.3, -0.1, 0.02]),
                     torch.tensor([[0.0, 1.0, 0.0, 0.0]]).repeat(b, 1)], dim=1)
    cube = torch.cat([torch.tensor([[0.4, 0.2, 0.02]]).repeat(b, 1), torch.tensor([[1.0, 0, 0, 0]]).repeat(b, 1)],
                     dim=1)
    tcp[0, :3] = cube[0, :3]  # at the grasp pose -> closes
    plate = torch.tensor([[0.45, 0.0, 0.01, 1.0, 0, 0, 0]]).repeat(b, 1)
    fingers = torch.full((b, 2), 0.04)
    fingers[1] = 0.02
    tcp[1, :3] = cube[1, :3]  # holding the cube -> carries it
    inputs = [t.clone() for t in (tcp, cube, plate, fingers)]
    batch = scripted_expert_action(tcp, cube, plate, fingers)
    assert batch.shape == (b, 7) and batch.dtype == torch.float32
    for i in range(b):
        single = scripted_expert_action(tcp[i : i + 1], cube[i : i + 1], plate[i : i + 1], fingers[i : i + 1])
        # the translation and gripper columns are elementwise (exact); the rotation goes through matmuls
        # ([B, 16] @ [16, 9] for the rotation matrix, then 3 x 3 products) whose kernel depends on B
        # (gemv for one row, gemm for six), so it may differ by float32 rounding: a few ulps of
        # unit-magnitude sums (eps 1.2e-7), times matrix_to_rotvec's factor 1/2 near the identity.
        # 1e-6 rad is 8 ulps at 1; a wrong row or branch moves an action by 1e-3 or more.
        torch.testing.assert_close(single[0], batch[i], rtol=0, atol=1e-6)
        assert torch.equal(single[0, [0, 1, 2, 6]], batch[i, [0, 1, 2, 6]])
    for before, after in zip(inputs, (tcp, cube, plate, fingers)):
        assert torch.equal(before, after)
    assert batch[0, 6] == -1 and torch.all(batch[0, :3] == 0)  # close in place
    assert batch[1, 6] == -1 and batch[1, 2] > 0  # lift while holding
    assert torch.all(batch[2:, 6] == 1)  # approach with the gripper open
    assert torch.all(batch[:, :6].abs() <= 0.1)


@pytest.mark.slow
def test_expert_succeeds_in_at_least_90_percent_of_50_seeded_episodes(env):
    results = [_episode(env, _expert, seed) for seed in range(50)]
    assert sum(results) >= 45, f"expert succeeded in {sum(results)}/50 episodes"


@pytest.mark.slow
def test_random_actions_almost_never_succeed(env):
    g = torch.Generator().manual_seed(0)
    low = torch.as_tensor(env.unwrapped.single_action_space.low)
    high = torch.as_tensor(env.unwrapped.single_action_space.high)

    def random_policy(u):
        return (low + (high - low) * torch.rand(7, generator=g))[None]

    results = [_episode(env, random_policy, 1000 + seed) for seed in range(8)]
    assert sum(results) == 0
