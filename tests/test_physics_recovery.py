"""The CPU physics pool survives its workers: real processes, real signals (SIGKILL, SIGSTOP,
SIGSEGV), real ManiSkill. A replaced worker's envs come back rebuilt and reset, marked restarted in
the call that noticed; a Python error in a worker is the caller's exception and the pool lives on."""
from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

from gsenv.physics.backend import task_factory
from gsenv.physics.cpu_pool import CpuPhysicsPool, PhysicsWorkerError

FACTORY = task_factory({})
IDS = [3, 7, 11, 5]


def _pid_alive(pid: int) -> bool:
    """Running (not gone, not a zombie), read from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def pool():
    p = CpuPhysicsPool(FACTORY, num_envs=4, num_workers=2, timeout_s=5)
    yield p
    p.close()


def _start_episodes(pool: CpuPhysicsPool, steps: int) -> dict[str, np.ndarray]:
    """Reset every env with a fixed episode id, then step a few times; the reset's outputs."""
    first = pool.reset([0, 1, 2, 3], [0, 1, 2, 3], [{"episode_id": [k]} for k in IDS])
    for _ in range(steps):
        pool.step(np.full((4, 7), 0.1, np.float32))
    return first


def _state(out: dict) -> np.ndarray:
    """[B, D]: every carried state entry of the pool's outputs side by side."""
    keys = sorted(k for k in out if k.startswith("state/"))
    return np.hstack([out[k].reshape(len(out[k]), -1).astype(np.float32) for k in keys])


@pytest.mark.parametrize("start_method", ["server", pytest.param("subprocess", marks=pytest.mark.slow)])
def test_sigkill_mid_episode_rebuilds_exactly_that_workers_envs(caplog, start_method):
    with CpuPhysicsPool(FACTORY, num_envs=4, num_workers=2, timeout_s=5, start_method=start_method) as pool:
        _sigkill_mid_episode(pool, caplog)


def _sigkill_mid_episode(pool: CpuPhysicsPool, caplog) -> None:
    first = _start_episodes(pool, steps=3)
    victim = pool.processes[1]
    os.kill(victim.pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="gsenv.physics.cpu_pool"):
        out = pool.step(np.full((4, 7), 0.1, np.float32))
    assert out["restarted"].tolist() == [False, False, True, True]
    assert out["elapsed_steps"].tolist() == [4, 4, 0, 0]
    # the rebuilt envs start their episode ids again (a fixed initial state whatever the seed)
    np.testing.assert_array_equal(_state(out)[2:], _state(first)[2:])
    assert not _pid_alive(victim.pid) and pool.processes[1].pid != victim.pid
    assert "physics worker 1" in caplog.text and "envs 2-3" in caplog.text and "SIGKILL" in caplog.text
    out = pool.step(np.full((4, 7), 0.1, np.float32))
    assert out["restarted"].tolist() == [False] * 4
    assert out["elapsed_steps"].tolist() == [5, 5, 1, 1]
    assert pool.restart_count == 1


def test_stopped_worker_is_replaced_after_the_timeout(pool, caplog):
    _start_episodes(pool, steps=1)
    victim = pool.processes[0]
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        with caplog.at_level(logging.WARNING, logger="gsenv.physics.cpu_pool"):
            out = pool.step(np.zeros((4, 7), np.float32))
    finally:
        if _pid_alive(victim.pid):
            os.kill(victim.pid, signal.SIGKILL)
    assert out["restarted"].tolist() == [True, True, False, False]
    assert out["elapsed_steps"].tolist() == [0, 0, 2, 2]
    assert "did not answer within 5 s" in caplog.text and "physics worker 0" in caplog.text
    assert not _pid_alive(victim.pid)
    assert pool.step(np.zeros((4, 7), np.float32))["elapsed_steps"].tolist() == [1, 1, 3, 3]


def test_a_reset_that_notices_a_dead_worker_uses_the_requested_seeds(pool):
    pool.reset([0, 1, 2, 3], [0, 1, 2, 3], [{}] * 4)
    want = _state(pool.reset([2, 3], [40, 41], [{}, {}]))[2:]
    os.kill(pool.processes[1].pid, signal.SIGKILL)
    out = pool.reset([2, 3], [40, 41], [{}, {}])
    assert out["restarted"].tolist() == [False, False, True, True]
    np.testing.assert_array_equal(_state(out)[2:], want)


def test_worker_error_for_one_command_keeps_the_pool(pool):
    _start_episodes(pool, steps=1)
    pids = [p.pid for p in pool.processes]
    with pytest.raises(ValueError, match=r"physics worker 1 \(envs 2-3\) raised ValueError: .*[Ss]eed"):
        pool.reset([3], [2**32], [{}])
    out = pool.step(np.zeros((4, 7), np.float32))
    assert out["elapsed_steps"].tolist() == [2, 2, 2, 2] and not out["restarted"].any()
    assert [p.pid for p in pool.processes] == pids and pool.restart_count == 0


def test_too_many_restarts_is_a_clear_error(caplog):
    with CpuPhysicsPool(FACTORY, num_envs=2, num_workers=2, max_restarts=1, restart_window_s=600) as pool:
        pool.reset([0, 1], [0, 1], [{}, {}])
        os.kill(pool.processes[0].pid, signal.SIGSEGV)
        with caplog.at_level(logging.WARNING, logger="gsenv.physics.cpu_pool"):
            assert pool.step(np.zeros((2, 7), np.float32))["restarted"].tolist() == [True, False]
        assert "SIGSEGV" in caplog.text
        os.kill(pool.processes[1].pid, signal.SIGKILL)
        with pytest.raises(PhysicsWorkerError, match=r"(?s)physics worker 1 .*was killed by SIGKILL.*"
                                                     r"max_physics_restarts=1"):
            pool.step(np.zeros((2, 7), np.float32))
        with pytest.raises(PhysicsWorkerError, match="closed"):
            pool.step(np.zeros((2, 7), np.float32))


def test_gsenv_step_after_a_killed_worker_reports_physics_restarted(tmp_path):
    import gymnasium as gym
    import torch

    import gsenv

    env = gym.make(gsenv.registration.ENV_ID, num_envs=4, obs_mode="state", sim_backend="physx_cpu",
                   num_workers=2, scene_density=0.02, asset_root=str(tmp_path), physics_timeout_s=10)
    try:
        env.reset(seed=0)
        _, _, _, truncated, info = env.step(torch.zeros(4, 7))
        assert info["physics_restarted"].tolist() == [False] * 4 and not truncated.any()
        os.kill(env.unwrapped._physics.pool.processes[0].pid, signal.SIGKILL)
        _, _, _, truncated, info = env.step(torch.zeros(4, 7))
        assert info["physics_restarted"].dtype == torch.bool
        assert info["physics_restarted"].tolist() == [True, True, False, False]
        assert truncated.tolist() == [True, True, False, False]
        assert info["elapsed_steps"].tolist() == [0, 0, 2, 2]
        seeds = env.unwrapped.seed
        assert seeds[2:].tolist() == [2, 3]  # untouched envs keep seed + i
        assert seeds[:2].tolist() != [0, 1] and all(0 <= s < 2**31 for s in seeds[:2])  # fresh seeds, reported
        _, _, _, truncated, info = env.step(torch.zeros(4, 7))
        assert info["physics_restarted"].tolist() == [False] * 4 and not truncated.any()
        assert info["elapsed_steps"].tolist() == [1, 1, 3, 3]
    finally:
        env.close()
