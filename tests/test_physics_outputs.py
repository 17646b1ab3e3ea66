"""The physics -> env seam: both backends carry the task's declared record and give the same PhysicsOutputs
fields, shapes, dtypes and numbers; the declaration is held against what the task reports."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from gsenv.physics.backend import BatchedPhysics, CpuPhysics
from gsenv.physics.outputs import RESTARTED_KEY, PhysicsOutputs, carried_layout, flatten, unflatten
from gsenv.sim import names
from gsenv.sim.record import Field, TaskRecord
from gsenv.sim.task import register_physics_task
from gsenv.tasks import get_task
from gsenv.tasks.put_cube_on_plate import RECORD as PUT_CUBE_ON_PLATE

ID = register_physics_task(get_task("PutCubeOnPlate"))

SEED = 4


def _layout(out: PhysicsOutputs) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in flatten(out).items()}


@pytest.fixture(scope="module")
def both():
    """(CPU pool outputs, batched-env outputs) after one reset and one step from the same seed."""
    action = torch.tensor([[0.05, 0.02, -0.05, 0.0, 0.0, 0.1, -1.0]])
    cpu = CpuPhysics(1, {}, torch.device("cpu"), num_workers=1)
    try:
        cpu_out = [cpu.reset([0], [SEED], [{}]), cpu.step(action)]
        assert cpu.pool.layout == carried_layout(PUT_CUBE_ON_PLATE)  # shared memory: the carried fields only
    finally:
        cpu.close()
    # the GPU backend's packing, driven on a CPU-PhysX env with num_envs = 1
    env = gym.make(ID, num_envs=1, sim_backend="physx_cpu", render_backend="none", obs_mode="state")
    batched = BatchedPhysics(env, "cpu", name="physx_cpu-batched")
    try:
        batched_out = [batched.reset([0], [SEED], [{}]), batched.step(action)]
    finally:
        batched.close()
    return cpu_out, batched_out


def test_both_backends_give_the_same_fields_shapes_and_dtypes(both):
    for cpu, batched in zip(*both):
        assert _layout(cpu) == _layout(batched)
        assert _layout(cpu) == {RESTARTED_KEY: ((1,), torch.bool),
                                **{f.key: ((1, *f.shape), getattr(torch, f.dtype)) for f in PUT_CUBE_ON_PLATE.fields()}}
        assert cpu.reward.dtype == torch.float32 and cpu.terminated.dtype == torch.bool
        assert cpu.elapsed_steps.dtype == torch.int32
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
    qpos = [out.state["agent"]["qpos"] for out in both[0]]
    assert not torch.equal(*qpos), "the step should move the arm"


def test_the_record_carries_each_fact_once():
    """25 carried arrays: no flat obs, no truncated; poses, info and terminated the state already holds
    are the same arrays; the differences of positions are derived from the poses."""
    record = PUT_CUBE_ON_PLATE
    carried = {f.key for f in record.carried()}
    assert len(carried) == 25 and not {"obs", "truncated", "terminated"} & carried
    assert not {"pose/cube", "pose/plate", f"pose/{names.TCP_LINK}", f"pose/{names.ROBOT_ROOT}", "info/is_grasped",
                "state/extra/tcp_to_cube_pos", "state/extra/cube_to_plate_pos"} & carried
    done = record.complete({k: np.arange(2 * int(np.prod(f.shape))).reshape(2, *f.shape).astype(f.dtype)
                            for k, f in carried_layout(record).items()})
    assert done["pose/cube"] is done["state/extra/cube_pose"] and done["terminated"] is done["info/success"]
    np.testing.assert_array_equal(done["state/extra/tcp_to_cube_pos"],
                                  done["state/extra/cube_pose"][:, :3] - done["state/extra/tcp_pose"][:, :3])


def test_a_declaration_out_of_date_with_its_task_fails_at_the_first_reset():
    stale = TaskRecord(state=PUT_CUBE_ON_PLATE.state[:-1], info=PUT_CUBE_ON_PLATE.info,
                       bodies=PUT_CUBE_ON_PLATE.bodies, terminated=PUT_CUBE_ON_PLATE.terminated)
    env = gym.make(ID, num_envs=1, sim_backend="physx_cpu", render_backend="none", obs_mode="state")
    env.unwrapped.record = stale  # this instance's declaration lacks cube_to_plate_pos
    batched = BatchedPhysics(env, "cpu", name="physx_cpu-batched")
    try:
        with pytest.raises(ValueError, match="state/extra/cube_to_plate_pos is reported but not declared"):
            batched.reset([0], [SEED], [{}])
    finally:
        batched.close()
    with pytest.raises(ValueError, match="same as 'state/extra/nope'"):
        TaskRecord(state=(), info=(Field("info/x", same_as="state/extra/nope"),), bodies=())


def test_flatten_round_trips_and_rejects_unknown_keys():
    out = PhysicsOutputs(reward=np.ones(2), terminated=np.zeros(2, bool), elapsed_steps=np.arange(2),
                         info={"success": np.array([True, False])}, body_poses={"cube": np.eye(2, 7)},
                         state={"agent": {"qpos": np.full((2, 9), 3.0)}, "extra": {"tcp_pose": np.ones((2, 7))}})
    flat = flatten(out)
    back = unflatten(flat)
    assert back.state["agent"]["qpos"][1, 8] == 3.0 and back.info["success"].tolist() == [True, False]
    assert flatten(back).keys() == flat.keys()
    assert back.map(lambda v: v[1]).body_poses["cube"].tolist() == [0, 1, 0, 0, 0, 0, 0]
    with pytest.raises(KeyError, match="not a physics output key"):
        unflatten({**flat, "bogus": np.zeros(2)})
