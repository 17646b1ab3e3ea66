"""Processes and their memory, read from /proc (Linux): the physics server and workers of this
process, and RSS / PSS / USS per process. Standard library only: the start-up benchmark runs this
file's source inside an older gsenv's process too."""
from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct child pids of pid (every thread's children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def descendants(pid: int) -> set[int]:
    """Every pid below pid (children, their children, ...), zombies included."""
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of pid in MB, from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["Rss"], "pss_mb": fields["Pss"],
            "uss_mb": fields["Private_Clean"] + fields["Private_Dirty"]}


def physics_processes(pid: int | None = None) -> tuple[int | None, list[int]]:
    """(the worker server's pid or None, sorted physics worker pids) below pid (default: this process):
    workers forked by gsenv's server, clean `gsenv.physics.worker` interpreters, or multiprocessing
    spawn children (gsenv before the server)."""
    server, workers = None, []
    for child in children(os.getpid() if pid is None else pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"gsenv.physics.server" in cmd:
            server = child
            workers += children(child)
        elif b"gsenv.physics.worker" in cmd or any(b"spawn_main" in c for c in cmd):
            workers.append(child)
    return server, sorted(workers)


def open_gpu_devices(pid: int) -> set[str]:
    """The NVIDIA device files (/dev/nvidia*) pid has open: non-empty once it holds a CUDA context."""
    found = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, PermissionError):
        return found
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("/dev/nvidia"):
            found.add(target)
    return found
