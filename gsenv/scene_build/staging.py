"""Temporary sibling folders for atomic builds: named after their owner, made with the umask's
permissions, and swept when their owner is gone.

A build writes into ``.<key>.building-<host>-<pid>-<token>`` next to its final folder and renames it
into place when complete; a forced rebuild moves the old folder aside as ``.<key>.old-<host>-<pid>-<token>``
first. A process killed in between leaves such a folder behind; :func:`remove_stale` (run at the start
of every build) removes those whose owner is gone: on this host, a pid that no longer runs (or is a
zombie); from another host (a shared cache), or in the unowned form older builders left
(``.<key>.building-XXXXXXXX``), when untouched for STALE_AFTER_S.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

logger = logging.getLogger(__name__)

STALE_AFTER_S = 6 * 3600.0
"""Age after which any staging folder is stale whatever its owner: the default scene builds in 10-30 s."""

KINDS = ("building", "old")
_OWNED = re.compile(r"^\.(?P<key>[^.]+)\.(?P<kind>building|old)-(?P<host>[A-Za-z0-9_]*)-(?P<pid>\d+)-[0-9a-f]+$")
_UNOWNED = re.compile(r"^\.(?P<key>[^.]+)\.(?P<kind>building|old)-[^-]+$")


def host_tag() -> str:
    """This host's name with everything but letters, digits and _ replaced by _ (used in folder names)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())


def new_staging_dir(parent: Path, key: str, kind: str = "building") -> Path:
    """Create and return an empty, uniquely named staging folder under `parent` owned by this process.
    os.mkdir applies the umask (mode 0o777 & ~umask), unlike tempfile.mkdtemp's fixed 0o700, so the
    finished folder is as readable as anything else this user creates (shared caches)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    while True:
        path = Path(parent) / f".{key}.{kind}-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie, dead but not yet reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): kill(0) said it exists
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether staging folder `path` has no live owner (see the module docstring); False for other names."""
    owned, unowned = _OWNED.match(path.name), _UNOWNED.match(path.name)
    if not (owned or unowned):
        return False
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_AFTER_S:
        return True
    if owned and owned["host"] == host_tag():
        return not pid_alive(int(owned["pid"]))
    return False


def remove_stale(parent: Path) -> list[Path]:
    """Remove the stale staging folders directly under `parent`; returns those removed."""
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except FileNotFoundError:
        return removed
    for path in entries:
        if path.name.startswith(".") and path.is_dir() and is_stale(path):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
                logger.info("removed the stale build folder %s (its builder is gone)", path)
    return removed
