"""The physics -> env seam: both backends' packers give the same PhysicsOutputs fields, shapes and dtypes."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from gsenv.physics.backend import TASK_MODULE, BatchedPhysics, CpuPhysics
from gsenv.physics.outputs import PhysicsOutputs, flatten, unflatten
from gsenv.sim import names

SEED = 4


def _layout(out: PhysicsOutputs) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in flatten(out).items()}


@pytest.fixture(scope="module")
def both():
    """(CPU pool outputs, batched-env outputs) after one reset and one step from the same seed."""
    import importlib

    importlib.import_module(TASK_MODULE)
    action = torch.tensor([[0.05, 0.02, -0.05, 0.0, 0.0, 0.1, -1.0]])
    cpu = CpuPhysics(1, {}, torch.device("cpu"), num_workers=1)
    try:
        cpu_out = [cpu.reset([0], [SEED], [{}]), cpu.step(action)]
    finally:
        cpu.close()
    # the GPU backend's packing, driven on a CPU-PhysX env with num_envs = 1
    env = gym.make(names.TASK_ID, num_envs=1, sim_backend="physx_cpu", render_backend="none", obs_mode="state")
    batched = BatchedPhysics(env, "cpu", name="physx_cpu-batched")
    try:
        batched_out = [batched.reset([0], [SEED], [{}]), batched.step(action)]
    finally:
        batched.close()
    return cpu_out, batched_out


def test_both_backends_give_the_same_fields_shapes_and_dtypes(both):
    for cpu, batched in zip(*both):
        assert _layout(cpu) == _layout(batched)
        assert cpu.obs.shape == (1, cpu.obs.shape[1]) and cpu.obs.dtype == torch.float32
        assert cpu.reward.dtype == torch.float32 and cpu.terminated.dtype == torch.bool
        assert cpu.truncated.dtype == torch.bool and cpu.elapsed_steps.dtype == torch.int32
        assert set(cpu.info) >= {"success", "cube_on_plate", "is_grasped", "cube_static"}
        assert set(cpu.body_poses) == {*names.ROBOT_LINK_NAMES, names.ROBOT_ROOT, names.CUBE, names.PLATE}
        assert all(p.shape == (1, 7) and p.dtype == torch.float32 for p in cpu.body_poses.values())
        assert cpu.state["agent"]["qpos"].shape == (1, names.NUM_JOINTS)


def test_both_backends_give_the_same_numbers(both):
    """Same task, seed and action on CPU PhysX: the two packing paths agree exactly."""
    for t, (cpu, batched) in enumerate(zip(*both)):
        for key, value in flatten(cpu).items():
            torch.testing.assert_close(value, flatten(batched)[key], rtol=0, atol=0, msg=f"step {t} {key}")
    assert both[0][1].elapsed_steps.tolist() == [1]
    assert not torch.equal(both[0][0].obs, both[0][1].obs), "the step should move the arm"


def test_flatten_round_trips_and_rejects_unknown_keys():
    out = PhysicsOutputs(obs=np.zeros((2, 3)), reward=np.ones(2), terminated=np.zeros(2, bool),
                         truncated=np.ones(2, bool), elapsed_steps=np.arange(2),
                         info={"success": np.array([True, False])}, body_poses={"cube": np.eye(2, 7)},
                         state={"agent": {"qpos": np.full((2, 9), 3.0)}, "extra": {"tcp_pose": np.ones((2, 7))}})
    flat = flatten(out)
    back = unflatten(flat)
    assert back.state["agent"]["qpos"][1, 8] == 3.0 and back.info["success"].tolist() == [True, False]
    assert flatten(back).keys() == flat.keys()
    assert back.map(lambda v: v[1]).body_poses["cube"].tolist() == [0, 1, 0, 0, 0, 0, 0]
    with pytest.raises(KeyError, match="not a physics output key"):
        unflatten({**flat, "bogus": np.zeros(2)})
