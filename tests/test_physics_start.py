"""How physics workers start and end: never through the user's __main__ (a script without a
``__main__`` guard, ``python -c``), both start methods, no processes left after Ctrl-C, and worker
counts checked before any process starts. Real subprocesses and signals; process trees from /proc."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gsenv.physics.backend import task_factory
from gsenv.physics.cpu_pool import MANY_WORKERS_ENV, MAX_WORKERS_PER_CORE, CpuPhysicsPool, usable_cpus
from gsenv.physics.launch import START_ENV
from gsenv.tools.bench.proc import alive, descendants

UNGUARDED = textwrap.dedent("""
    import numpy as np
    from gsenv.physics.backend import task_factory
    from gsenv.physics.cpu_pool import CpuPhysicsPool

    pool = CpuPhysicsPool(task_factory({}), num_envs=2, num_workers=2)
    pool.reset([0, 1], [3, 4], [{}, {}])
    for _ in range(3):
        out = pool.step(np.zeros((2, 7), np.float32))
    print("ELAPSED", out["elapsed_steps"].tolist(), pool.start_method)
""")


def _run(args: list[str], method: str, cwd: Path) -> str:
    env = {**os.environ, START_ENV: method}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("method", ["server", "subprocess"])
def test_a_script_without_a_main_guard_steps_the_pool(tmp_path, method):
    script = tmp_path / "train.py"
    script.write_text(UNGUARDED)
    assert f"ELAPSED [3, 3] {method}" in _run([str(script)], method, tmp_path)


@pytest.mark.slow
def test_python_dash_c_steps_the_pool(tmp_path):
    assert "ELAPSED [3, 3] server" in _run(["-c", UNGUARDED], "server", tmp_path)


STEPPING = textwrap.dedent("""
    import sys
    import numpy as np
    from gsenv.physics.backend import task_factory
    from gsenv.physics.cpu_pool import CpuPhysicsPool

    pool = CpuPhysicsPool(task_factory({}), num_envs=2, num_workers=2)
    pool.reset([0, 1], [3, 4], [{}, {}])
    print("READY", flush=True)
    while True:
        pool.step(np.zeros((2, 7), np.float32))
""")


def _stepping_script(tmp_path: Path, method: str) -> tuple[subprocess.Popen, set[int]]:
    """A script stepping a pool in a loop, in its own process group; (process, its process tree)."""
    script = tmp_path / "loop.py"
    script.write_text(STEPPING)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env={**os.environ, START_ENV: method},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read()[-3000:]
    tree = descendants(proc.pid)
    assert len(tree) >= 2, "the two workers (and the server) should be running"
    time.sleep(0.5)  # well inside the stepping loop
    return proc, tree


def _all_gone(tree: set[int]) -> list[int]:
    deadline = time.monotonic() + 30
    while any(alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in tree if alive(p)]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads process trees from /proc")
@pytest.mark.slow
@pytest.mark.parametrize("method", ["server", "subprocess"])
def test_ctrl_c_while_stepping_leaves_no_processes(tmp_path, method):
    proc, tree = _stepping_script(tmp_path, method)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
        proc.wait(timeout=60)
        assert "KeyboardInterrupt" in proc.stderr.read()
        assert _all_gone(tree) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads process trees from /proc")
@pytest.mark.slow
@pytest.mark.parametrize("method", ["server", "subprocess"])
def test_a_killed_main_process_leaves_no_processes(tmp_path, method):
    proc, tree = _stepping_script(tmp_path, method)
    os.kill(proc.pid, signal.SIGKILL)  # no finalisers run: the server and workers notice on their own
    proc.wait(timeout=60)
    try:
        assert _all_gone(tree) == []
    finally:
        for p in tree:
            if alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.parametrize("num_workers", [0, -1, 3, True, 2.0, "2"])
def test_bad_worker_counts_are_rejected_before_any_process_starts(num_workers):
    before = descendants(os.getpid())
    with pytest.raises(ValueError, match="num_workers"):
        CpuPhysicsPool(task_factory({}), num_envs=2, num_workers=num_workers)
    assert descendants(os.getpid()) <= before


def test_worker_count_is_capped_by_cores_unless_allowed(monkeypatch):
    cap = MAX_WORKERS_PER_CORE * len(usable_cpus())
    monkeypatch.delenv(MANY_WORKERS_ENV, raising=False)
    before = descendants(os.getpid())
    with pytest.raises(ValueError, match=rf"at most {cap}\b.*allow_many_workers=True.*{MANY_WORKERS_ENV}=1"):
        CpuPhysicsPool(task_factory({}), num_envs=cap + 1, num_workers=cap + 1)
    assert descendants(os.getpid()) <= before


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="reads process environments from /proc")
@pytest.mark.parametrize("method", ["server", pytest.param("subprocess", marks=pytest.mark.slow)])
def test_workers_see_no_gpu_even_when_the_main_process_does(monkeypatch, method):
    # ManiSkill's reset saves every visible CUDA device's RNG state, so a visible GPU would give each
    # worker a CUDA context (GPU memory, and start-up serialised in the driver)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with CpuPhysicsPool(task_factory({}), num_envs=2, num_workers=2, start_method=method) as pool:
        for handle in pool.processes:
            assert _environ(handle.pid).get("CUDA_VISIBLE_DEVICES") == "", handle.pid
