"""How many CPU cores this process may keep busy: its affinity mask and its cgroup's CPU quota.

Inside a container limited by a CPU quota (``docker --cpus 4``, a Kubernetes CPU limit) the
affinity mask still lists every host core, so counting it alone oversubscribes; the quota
(cgroup v2 ``cpu.max`` "QUOTA PERIOD", v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) says how
many cores' worth of time the group may use per period. A process is limited by its own cgroup and
every ancestor's, so the smallest limit on the way to the root counts.

Where the cgroup filesystem is mounted is ``root`` (``/sys/fs/cgroup``: v2 there, or v2 under
``unified/`` and v1 controllers in ``cpu/`` or ``cpu,cpuacct/`` on hybrid hosts). The process's
cgroup path comes from ``/proc/self/cgroup``; a path that is not under ``root`` (a container that
sees its own cgroup as the mount's root without a cgroup namespace) is walked up until it is, so
the container's own limit is still found.
"""
from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath

__all__ = ["affinity_cpus", "cgroup_cpu_limit", "usable_cores"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def affinity_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask), in the OS's order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError, OSError):
        return None


def _v2_limit(directory: Path) -> float | None:
    """cores of ``cpu.max`` ("max 100000" or "400000 100000") in directory, None: none there or unlimited."""
    text = _read(directory / "cpu.max")
    if not text:
        return None
    parts = text.split()
    if parts[0] == "max":
        return None
    period = float(parts[1]) if len(parts) > 1 else 100000.0
    return float(parts[0]) / period if period > 0 else None


def _v1_limit(directory: Path) -> float | None:
    """cores of ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in directory; -1 (or none) is unlimited."""
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    q, p = int(quota), int(period)
    return q / p if q > 0 and p > 0 else None


def _chain(mount: Path, cgroup_path: str) -> list[Path]:
    """The directories of cgroup_path and of each ancestor that exist under mount (deepest first)."""
    out = []
    path = PurePosixPath(cgroup_path if cgroup_path.startswith("/") else "/" + cgroup_path)
    for part in [path, *path.parents]:
        directory = mount / str(part).lstrip("/")
        if directory.is_dir():
            out.append(directory)
    return out


def _memberships(proc_self_cgroup: str) -> tuple[str | None, str | None]:
    """(the v2 cgroup path, the v1 cpu controller's path) from /proc/self/cgroup's text."""
    v2 = v1_cpu = None
    for line in proc_self_cgroup.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1_cpu = path
    return v2, v1_cpu


def cgroup_cpu_limit(root: Path | str = CGROUP_ROOT, proc_self_cgroup: str | None = None) -> float | None:
    """The CPU quota of this process's cgroup and its ancestors, in cores (e.g. 1.5), or None when
    there is none (unlimited, no cgroup filesystem, not Linux).

    root: where the cgroup filesystem is mounted; proc_self_cgroup: the text of /proc/self/cgroup
    (default: read it). Both can point at a directory tree made for a test.
    """
    root = Path(root)
    if proc_self_cgroup is None:
        proc_self_cgroup = _read(PROC_SELF_CGROUP) or ""
    v2_path, v1_path = _memberships(proc_self_cgroup)
    limits: list[float] = []
    if v2_path is not None:
        for mount in (root, root / "unified"):
            if (mount / "cgroup.controllers").is_file():
                limits += [x for d in _chain(mount, v2_path) if (x := _v2_limit(d)) is not None]
                break
    if v1_path is not None and root.is_dir():
        for mount in sorted(root.iterdir()):
            if mount.is_dir() and "cpu" in mount.name.split(","):
                limits += [x for d in _chain(mount, v1_path) if (x := _v1_limit(d)) is not None]
                break
    return min(limits) if limits else None


def usable_cores(root: Path | str = CGROUP_ROOT, proc_self_cgroup: str | None = None) -> int:
    """How many cores this process can keep busy: min(#CPUs in its affinity mask, the cgroup CPU
    quota rounded up), at least 1."""
    n = len(affinity_cpus())
    limit = cgroup_cpu_limit(root, proc_self_cgroup)
    if limit is not None:
        n = min(n, math.ceil(limit - 1e-9))  # 4.0 cores of quota is 4, 1.5 is 2
    return max(1, n)
