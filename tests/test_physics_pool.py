"""The CPU physics worker pool, driving real single-env ManiSkill instances of the task."""
from __future__ import annotations

import os

import numpy as np
import pytest

from gsenv.physics.backend import task_factory
from gsenv.physics.cpu_pool import (
    PIN_ENV,
    CpuPhysicsPool,
    PhysicsWorkerError,
    default_num_workers,
    split_envs,
    usable_cpus,
)
from gsenv.physics.maniskill_instance import ManiSkillFactory
from gsenv.tasks.put_cube_on_plate import RECORD as PUT_CUBE_ON_PLATE

FACTORY = task_factory({})
QPOS = "state/agent/qpos"  # the robot's joints: their initial noise differs by seed, random actions move them


def _actions(rng: np.random.Generator, b: int) -> np.ndarray:
    return rng.uniform(-1, 1, size=(b, 7)).astype(np.float32)


def test_split_envs_is_contiguous_and_balanced():
    assert split_envs(5, 2) == [[0, 1, 2], [3, 4]]
    assert split_envs(3, 3) == [[0], [1], [2]]


@pytest.mark.parametrize("start_method", ["server", pytest.param("subprocess", marks=pytest.mark.slow)])
def test_pool_matches_one_process_and_keeps_env_order(start_method):
    """3 envs over 2 workers give, env by env, bit-identical results to instances stepped in-process,
    whether the workers are forked from the preloaded server or each a clean interpreter."""
    rng = np.random.default_rng(0)
    seeds = [11, 12, 13]
    actions = [_actions(rng, 3) for _ in range(4)]
    with CpuPhysicsPool(FACTORY, num_envs=3, action_shape=(7,), num_workers=2, start_method=start_method) as pool:
        assert pool.start_method == start_method
        assert pool.env_ids == [[0, 1], [2]]
        out = pool.reset([0, 1, 2], seeds, [{}, {}, {}])
        pooled = [out[QPOS]]
        for a in actions:
            pooled.append(pool.step(a)[QPOS])
        assert out[QPOS].shape[0] == 3 and out["elapsed_steps"].tolist() == [0, 0, 0]
        assert pool.read()["elapsed_steps"].tolist() == [4, 4, 4]
    local = [FACTORY(i) for i in range(3)]
    try:
        ref = [np.stack([inst.reset(s, {})[QPOS] for inst, s in zip(local, seeds)])]
        for a in actions:
            ref.append(np.stack([inst.step(a[i])[QPOS] for i, inst in enumerate(local)]))
    finally:
        for inst in local:
            inst.close()
    for got, want in zip(pooled, ref):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(ref[0][0], ref[0][1]), "different seeds should give different states"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux-only")
def test_pinned_workers_sit_on_their_cpus_and_give_the_same_results(monkeypatch):
    """GSENV_PIN_WORKERS=1 pins worker w to usable CPU w mod #CPUs (more workers than CPUs wrap
    around); the numbers are those of unpinned in-process instances."""
    monkeypatch.setenv(PIN_ENV, "1")
    cpus = usable_cpus()
    rng = np.random.default_rng(5)
    seeds = [21, 22, 23]
    actions = [_actions(rng, 3) for _ in range(3)]
    with CpuPhysicsPool(FACTORY, num_envs=3, action_shape=(7,), num_workers=3) as pool:
        assert pool.pin_workers
        assert pool.worker_cpus == [cpus[w % len(cpus)] for w in range(3)]
        for proc, cpu in zip(pool.processes, pool.worker_cpus):
            assert os.sched_getaffinity(proc.pid) == {cpu}
        pooled = [pool.reset([0, 1, 2], seeds, [{}, {}, {}])]
        pooled += [pool.step(a) for a in actions]
    local = [FACTORY(i) for i in range(3)]
    try:
        ref = [[inst.reset(s, {}) for inst, s in zip(local, seeds)]]
        ref += [[inst.step(a[i]) for i, inst in enumerate(local)] for a in actions]
    finally:
        for inst in local:
            inst.close()
    for got, want in zip(pooled, ref):
        for i in range(3):
            for key, value in want[i].items():
                np.testing.assert_array_equal(got[key][i], value, err_msg=key)


def test_default_worker_count():
    n = len(usable_cpus())
    assert default_num_workers(1000) == n
    assert default_num_workers(1000, workers_per_core=2) == 2 * n
    assert default_num_workers(1) == 1
    with pytest.raises(ValueError, match="workers_per_core"):
        default_num_workers(4, workers_per_core=0)


def test_partial_reset_touches_only_those_envs():
    with CpuPhysicsPool(FACTORY, num_envs=3, action_shape=(7,), num_workers=2) as pool:
        pool.reset([0, 1, 2], [1, 2, 3], [{}, {}, {}])
        before = pool.step(_actions(np.random.default_rng(1), 3))
        after = pool.reset([1], [99], [{}])
        assert after["elapsed_steps"].tolist() == [1, 0, 1]
        np.testing.assert_array_equal(after[QPOS][[0, 2]], before[QPOS][[0, 2]])
        assert not np.array_equal(after[QPOS][1], before[QPOS][1])


def test_close_ends_all_workers():
    pool = CpuPhysicsPool(FACTORY, num_envs=2, action_shape=(7,), num_workers=2, timeout_s=60)
    procs = pool.processes
    assert all(p.is_alive() for p in procs)
    pool.close()
    assert not any(p.is_alive() for p in procs)
    with pytest.raises(PhysicsWorkerError, match="closed"):
        pool.step(np.zeros((2, 7), np.float32))
    pool.close()


def test_dropping_the_pool_ends_workers_without_a_garbage_collection():
    """No reference cycle holds the pool: its last reference going away ends its workers at once."""
    import gc

    gc.disable()
    try:
        pool = CpuPhysicsPool(FACTORY, num_envs=1, action_shape=(7,), num_workers=1)
        procs = pool.processes
        del pool
        assert not any(p.is_alive() for p in procs)
    finally:
        gc.enable()


def test_error_inside_an_instance_is_reported():
    bad = ManiSkillFactory("NoSuchEnv-v0", PUT_CUBE_ON_PLATE)
    with pytest.raises(PhysicsWorkerError, match=r"raised while starting:\s+Traceback[\s\S]*NameNotFound: "
                                                 r"Environment .NoSuchEnv"):
        CpuPhysicsPool(bad, num_envs=1, action_shape=(7,), num_workers=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_workers"):
        CpuPhysicsPool(FACTORY, num_envs=2, action_shape=(7,), num_workers=3)
    with pytest.raises(ValueError, match=r"action_shape \(8,\) does not match the task's action space \(7,\)"):
        CpuPhysicsPool(FACTORY, num_envs=1, action_shape=(8,), num_workers=1)


def test_dropping_the_cpu_backend_ends_workers_without_a_garbage_collection():
    import gc

    import torch

    from gsenv.physics.backend import CpuPhysics

    gc.disable()
    try:
        physics = CpuPhysics(2, {}, torch.device("cpu"), num_workers=2)
        procs = physics.pool.processes
        assert all(p.is_alive() for p in procs)
        del physics
        assert not any(p.is_alive() for p in procs)
    finally:
        gc.enable()


def _environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc/PID/environ")
def test_workers_run_mkl_in_its_cpu_independent_mode_unless_told_otherwise(monkeypatch):
    """MKL_CBWR=COMPATIBLE in every worker (states restored on another CPU step the same), and a value the
    user set wins."""
    monkeypatch.delenv("MKL_CBWR", raising=False)
    with CpuPhysicsPool(FACTORY, num_envs=1, num_workers=1, action_shape=(7,)) as pool:
        assert _environ(pool.processes[0].pid).get("MKL_CBWR") == "COMPATIBLE"
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    with CpuPhysicsPool(FACTORY, num_envs=1, num_workers=1, action_shape=(7,), start_method="subprocess") as pool:
        assert _environ(pool.processes[0].pid)["MKL_CBWR"] == "AUTO"
