"""Usable cores (affinity mask and cgroup CPU quota) and the host's cores shared between pools."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from gsenv.physics.cores import cgroup_cpu_limit, usable_cores
from gsenv.physics.cpu_pool import requested_num_workers
from gsenv.physics.host_share import NUM_WORKERS_ENV, claim_workers, live_claims, reserve, share

REPO = Path(__file__).resolve().parents[1]
PRINT_USABLE = "from gsenv.physics.cores import usable_cores; print(usable_cores())"


def _python(code: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, **kw)


# -- usable cores --------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_taskset_one_cpu_gives_one_core():
    cpu = min(os.sched_getaffinity(0))
    out = subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", PRINT_USABLE], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_of_the_process_and_its_ancestors(tmp_path):
    """cpu.max "QUOTA PERIOD" in cores; the smallest limit on the way to the root counts."""
    _write(tmp_path / "cgroup.controllers", "cpu io memory\n")
    _write(tmp_path / "cpu.max", "max 100000\n")
    _write(tmp_path / "kubepods" / "cpu.max", "350000 100000\n")  # 3.5 cores for the pod
    _write(tmp_path / "kubepods" / "job" / "cpu.max", "max 100000\n")
    membership = "0::/kubepods/job\n"
    assert cgroup_cpu_limit(tmp_path, membership) == pytest.approx(3.5)
    assert usable_cores(tmp_path, membership) == min(4, len(os.sched_getaffinity(0)))
    _write(tmp_path / "kubepods" / "job" / "cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit(tmp_path, membership) == pytest.approx(1.5)
    assert usable_cores(tmp_path, membership) == min(2, len(os.sched_getaffinity(0)))
    _write(tmp_path / "kubepods" / "job" / "cpu.max", "50000 100000\n")  # half a core: still one worker
    assert usable_cores(tmp_path, membership) == 1


def test_cgroup_v2_unlimited_and_container_without_namespace(tmp_path):
    _write(tmp_path / "cgroup.controllers", "cpu\n")
    _write(tmp_path / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(tmp_path, "0::/\n") is None
    assert usable_cores(tmp_path, "0::/\n") == len(os.sched_getaffinity(0))
    # a container whose mount root is its own cgroup, while /proc/self/cgroup names the host's path
    _write(tmp_path / "cpu.max", "100000 100000\n")
    assert cgroup_cpu_limit(tmp_path, "0::/docker/0123abcd\n") == pytest.approx(1.0)


def test_cgroup_v1_cfs_quota_on_a_hybrid_host(tmp_path):
    """v1 cpu controller (mounted as cpu,cpuacct) beside a v2 mount without the cpu controller."""
    _write(tmp_path / "unified" / "cgroup.controllers", "hugetlb\n")
    job = tmp_path / "cpu,cpuacct" / "slurm" / "job_7"
    _write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    _write(job / "cpu.cfs_quota_us", "200000\n")
    _write(job / "cpu.cfs_period_us", "100000\n")
    membership = "4:memory:/slurm/job_7\n3:cpu,cpuacct:/slurm/job_7\n0::/\n"
    assert cgroup_cpu_limit(tmp_path, membership) == pytest.approx(2.0)
    assert usable_cores(tmp_path, membership) == min(2, len(os.sched_getaffinity(0)))
    _write(job / "cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(tmp_path, membership) is None


def _writable_cpu_cgroup_parent() -> tuple[Path, str] | None:
    """(a directory where a child cgroup with a CPU quota can be made, "v2" or "v1"), or None."""
    if os.geteuid() != 0:
        return None
    root = Path("/sys/fs/cgroup")
    for mount in (root, root / "unified"):
        control = mount / "cgroup.subtree_control"
        if control.is_file() and "cpu" in control.read_text().split() and os.access(mount, os.W_OK):
            return mount, "v2"
    for mount in (root / "cpu", root / "cpu,cpuacct"):
        if (mount / "cpu.cfs_quota_us").is_file() and os.access(mount, os.W_OK):
            return mount, "v1"
    return None


def test_a_real_cgroup_with_a_one_cpu_quota_gives_one_core():
    found = _writable_cpu_cgroup_parent()
    if found is None:
        pytest.skip("no writable cgroup with the cpu controller here (needs root and a cgroup2 mount with cpu in "
                    "cgroup.subtree_control, or a writable v1 cpu hierarchy)")
    parent, kind = found
    group = parent / f"gsenv-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {parent}: {exc}")
    try:
        if kind == "v2":
            (group / "cpu.max").write_text("100000 100000")
        else:
            (group / "cpu.cfs_period_us").write_text("100000")
            (group / "cpu.cfs_quota_us").write_text("100000")
        code = (f"import os; open({str(group / 'cgroup.procs')!r}, 'w').write(str(os.getpid())); " + PRINT_USABLE)
        out = _python(code)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "1"
    finally:
        for _ in range(50):  # the child has exited; the kernel may take a moment to let the group go
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


# -- the host's share ------------------------------------------------------------------------------------
def test_share_rule():
    assert share(64, 16, []) == 16
    assert share(8, 16, []) == 8  # never more than envs
    assert share(64, 16, [4]) == 8  # fair share of two
    assert share(64, 16, [12]) == 4  # what is left
    assert share(64, 16, [16]) == 1  # always one, even when the others took everything
    assert share(64, 16, [2, 2, 2]) == 4


def test_environment_variable_and_explicit_count(monkeypatch):
    monkeypatch.setenv(NUM_WORKERS_ENV, "3")
    assert requested_num_workers(None, 8) == 3
    assert requested_num_workers(None, 2) == 2  # at most num_envs
    assert requested_num_workers(1, 8) == 1  # explicit wins
    monkeypatch.setenv(NUM_WORKERS_ENV, "zero")
    with pytest.raises(ValueError, match=NUM_WORKERS_ENV):
        requested_num_workers(None, 8)
    monkeypatch.setenv(NUM_WORKERS_ENV, "0")
    with pytest.raises(ValueError, match=NUM_WORKERS_ENV):
        requested_num_workers(None, 8)
    monkeypatch.delenv(NUM_WORKERS_ENV)
    assert requested_num_workers(None, 8) is None


def test_claims_of_other_groups_share_and_release(tmp_path):
    """Pools of different stepping groups (separate processes, simulated here by naming the groups) split the
    cores; a released claim frees its share."""
    a = claim_workers(64, None, usable=8, directory=tmp_path, group="a")
    b = claim_workers(64, None, usable=8, directory=tmp_path, group="b")
    assert (a.num_workers, b.num_workers) == (8, 1)
    assert sorted(e["workers"] for e in live_claims(tmp_path)) == [1, 8]
    a.release()
    c = claim_workers(64, None, usable=8, directory=tmp_path, group="c")
    assert c.num_workers == 4  # two live groups now: half, and 7 are free
    d = claim_workers(64, 2, usable=8, directory=tmp_path, group="d")
    assert (d.num_workers, d.source) == (2, "explicit")
    for x in (b, c, d):
        x.release()
        x.release()  # twice is fine
    assert live_claims(tmp_path) == []


def test_pools_of_one_group_do_not_count_each_other(tmp_path):
    """Pools of one stepping group (by default one process: its instances step one after another) each get the
    group's whole share; another group counts the group once, by its largest pool."""
    a = claim_workers(64, None, usable=8, directory=tmp_path)
    b = claim_workers(64, None, usable=8, directory=tmp_path)
    assert (a.num_workers, b.num_workers) == (8, 8)
    assert {e["group"] for e in live_claims(tmp_path)} == {str(os.getpid())}
    a.release()
    b.release()
    x1, x2 = claim_workers(64, 3, usable=8, directory=tmp_path, group="x"), \
        claim_workers(64, 2, usable=8, directory=tmp_path, group="x")
    y = claim_workers(64, None, usable=8, directory=tmp_path, group="y")
    assert (y.num_workers, y.others) == (4, [3])  # half of 8 with two groups; x counts as its 3, not 3 + 2
    r1, r2 = reserve(64, tmp_path, group="z"), reserve(64, tmp_path, group="z")
    w = claim_workers(64, None, usable=8, directory=tmp_path, group="w")
    assert w.num_workers == 1  # x 3 + y 4 settled, z's one fair share (8 // 4 = 2) set aside: 8 - 7 - 2 < 1
    for c in (x1, x2, y, r1, r2, w):
        c.release()
    assert live_claims(tmp_path) == []


HOLDER = textwrap.dedent("""
    import sys, time
    from gsenv.physics.host_share import claim_workers
    claim = claim_workers(int(sys.argv[1]), None if sys.argv[2] == "-" else int(sys.argv[2]), usable=8,
                          directory=sys.argv[3])
    print(claim.num_workers, flush=True)
    time.sleep(600)
""")


def _holder(directory: Path, num_envs: int, requested: int | None) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(num_envs), "-" if requested is None else str(requested),
                             str(directory)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    return proc, int(proc.stdout.readline())


def test_pools_in_separate_processes_share_and_a_killed_one_does_not_count(tmp_path):
    """Real processes holding claims on 8 usable cores: the second takes what the first left; after
    the first is SIGKILLed (no chance to clean up) its workers count no more."""
    procs = []
    try:
        first, w1 = _holder(tmp_path, 64, 6)
        procs.append(first)
        second, w2 = _holder(tmp_path, 64, None)
        procs.append(second)
        assert (w1, w2) == (6, 2)
        first.send_signal(signal.SIGKILL)  # left a zombie until waited: it must not count either
        while Path(f"/proc/{first.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)  # the signal is delivered asynchronously
        third, w3 = _holder(tmp_path, 64, None)
        procs.append(third)
        assert w3 == 4  # half of 8 with two live; had the dead one's 6 counted, it would have got 1
        assert sorted(e["workers"] for e in live_claims(tmp_path)) == [2, 4]
        assert len(list(tmp_path.glob("*.json"))) == 2  # the dead one's file is gone
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert live_claims(tmp_path) == []


def test_two_pools_in_one_process_each_get_the_share():
    """Real pools register their worker counts on the host; two of one process step one after another, so the
    second gets the same share as the first (not what the first left); closing frees each claim."""
    from gsenv.physics.backend import task_factory
    from gsenv.physics.cpu_pool import CpuPhysicsPool

    with CpuPhysicsPool(task_factory({}), num_envs=2, action_shape=(7,)) as a:
        assert a.claim.source == "share" and a.claim.path.is_file()
        with CpuPhysicsPool(task_factory({}), num_envs=2, action_shape=(7,)) as b:
            assert b.claim.others == a.claim.others  # the first pool (this process) is not among the others
            assert b.num_workers == a.num_workers
            assert len(b.processes) == b.num_workers
            files = [a.claim.path, b.claim.path]
            assert all(f.is_file() for f in files)
            assert {(e["pid"], e["workers"]) for e in live_claims()} >= {(os.getpid(), a.num_workers),
                                                                        (os.getpid(), b.num_workers)}
        assert not files[1].exists() and files[0].exists()
    assert not files[0].exists()


def test_instances_reserved_together_split_the_cores_evenly(tmp_path):
    """Envs made at once (each its own stepping group, as separate processes are) reserve their claims before
    any pool starts (GSEnv reserves when it is made, its pool settles after the scene has loaded): each
    settles a fair share, so 8 cores go 4 + 4, not 8 + 1, and 4 reservations get 2 each. A later pool takes
    what is left (at least one); a released reservation holds nothing."""
    first, second = reserve(64, tmp_path, group="first"), reserve(64, tmp_path, group="second")
    assert [(e["workers"], e["reserved"]) for e in live_claims(tmp_path)] == [(0, True), (0, True)]
    a = claim_workers(64, None, usable=8, directory=tmp_path, reservation=first)
    b = claim_workers(64, None, usable=8, directory=tmp_path, reservation=second)
    assert (a.num_workers, b.num_workers) == (4, 4)
    first.release()  # settled: the file is the pool's claim now, releasing the reservation leaves it
    assert sorted(e["workers"] for e in live_claims(tmp_path)) == [4, 4]
    late = claim_workers(64, None, usable=8, directory=tmp_path, group="late")
    assert late.num_workers == 1  # the cores are taken: one worker, never more
    for c in (a, b, late):
        c.release()
    four = [reserve(64, tmp_path, group=f"g{i}") for i in range(4)]
    pools = [claim_workers(64, None, usable=8, directory=tmp_path, reservation=r) for r in four]
    assert [p.num_workers for p in pools] == [2, 2, 2, 2]
    for p in pools:
        p.release()
    unused = reserve(64, tmp_path)
    unused.release()  # a pool that never started (its env failed to build): its reservation is gone
    assert live_claims(tmp_path) == []
    assert claim_workers(64, None, usable=8, directory=tmp_path).num_workers == 8


def test_an_env_that_fails_to_build_leaves_no_reservation(tmp_path):
    """GSEnv reserves its cores when it is made; a bad scene fails after that, and the reservation goes with it
    (a live process keeping a stale reservation would hold a share of the cores from every later pool)."""
    import gymnasium as gym

    import gsenv

    def mine():
        return [e for e in live_claims() if e["pid"] == os.getpid()]

    before = mine()
    with pytest.raises(ValueError):
        gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode="state", scene=str(tmp_path / "no-such-bundle"))
    assert mine() == before


def test_one_processs_instances_stepped_together_from_threads_are_told_once(caplog):
    """Two real default pools of this process step in turn: nothing said. Stepped at once from two threads
    (more workers busy than the usable cores, since each took the process's whole share): one warning that
    says to pass num_workers, and only once."""
    import threading

    import numpy as np

    from gsenv.physics import host_share
    from gsenv.physics.backend import task_factory
    from gsenv.physics.cpu_pool import CpuPhysicsPool

    host_share._busy_warned = False  # what an earlier test of this process may have said
    n = usable_cores()  # one env per core: each pool's share is every core, so two busy at once oversubscribe
    zeros = np.zeros((n, 7), np.float32)
    with CpuPhysicsPool(task_factory({}), num_envs=n, action_shape=(7,)) as a, \
            CpuPhysicsPool(task_factory({}), num_envs=n, action_shape=(7,)) as b:
        assert a.num_workers + b.num_workers > n  # each the process's whole share
        for pool in (a, b):
            pool.reset(list(range(n)), list(range(n)), [{}] * n)
        with caplog.at_level("WARNING", logger="gsenv.physics.host_share"):
            for _ in range(3):
                a.step(zeros)
                b.step(zeros)
            assert not caplog.records  # in turn: never busy together
            def together():
                start = threading.Barrier(2)

                def run(pool):
                    start.wait()
                    for _ in range(30):
                        pool.step(zeros)

                threads = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            together()
            together()  # said once, not again
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "stepping at once" in said[0] and "num_workers" in said[0], said
