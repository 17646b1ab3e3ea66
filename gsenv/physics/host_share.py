"""The cores of a host, shared between the gsenv instances on it without settings.

Every CPU-physics pool on the host (in any process, several per process too) holds a **claim**: one
small file in the registry directory (``/dev/shm/gsenv-workers-<uid>``, else the temp directory)
naming its process (pid and start time), its **stepping group** and its worker count. An env
**reserves** its claim as soon as it is made (``reserve``: the worker count still open), long before
its pool starts (after the scene is loaded, seconds later), so instances started at once (RLinf's env
workers, `gsenv bench node`) all count each other.

Pools of one stepping group are never busy at once, so they do not count each other: the group is
the process by default, because ``GSEnv.step`` returns only when its workers are done and the
instances of one process (RLinf's pipeline stages, ``gsenv bench node --in-one-process``) step one
after another. Each of them gets the whole share of its process; the host's busy workers stay within
its usable cores while the idle pool's workers wait, blocked. (A program that steps instances of one
process from several threads at once should give each ``num_workers``; ``busy`` notices it and says so
once.)

A pool settles its count under an exclusive ``flock`` of the directory's lock file:

    fair = usable // n
    default workers = max(1, min(num_envs, fair, usable - settled workers of the others
                                                - fair x reserved others))

where ``usable`` is this process's usable cores (affinity and cgroup quota, gsenv.physics.cores),
``n`` the live stepping groups including this one, a settled group's workers the most any of its
pools holds, and each other group with only reserved claims set aside a fair share. So instances
started together split the cores evenly, a pool that starts later never oversubscribes them (it
takes at most what is left, but at least one worker), and a pool already running keeps its workers
until it closes (its envs live in them: moving them would rebuild them mid-episode); closing frees
its cores for pools started after that. A claim whose process is gone (exited, SIGKILLed; a zombie
counts as gone, and a pid reused by another process does not match the recorded start time) is
ignored and removed by the next pool that looks, so nothing stale outlives a crash. No network, no
service: one directory.

Overrides, strongest first: an explicit ``num_workers``; the environment variable
``GSENV_NUM_WORKERS`` (for schedulers that place instances themselves: an int >= 1, at most
num_envs taken); then the share above. Explicit and environment counts are claimed too, so later
default pools count them.
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NUM_WORKERS_ENV", "Claim", "claim_workers", "env_num_workers", "live_claims", "registry_dir", "reserve",
           "share", "busy"]

logger = logging.getLogger(__name__)

NUM_WORKERS_ENV = "GSENV_NUM_WORKERS"
"""Environment variable: physics workers per instance when num_workers is not given (an int >= 1),
instead of the host share."""
LOCK_NAME = ".lock"
_counter = itertools.count()
_thread_lock = threading.Lock()  # flock is per open file: threads of one process take this too
_busy_lock = threading.Lock()
_busy: dict[str, dict[int, int]] = {}  # {group: {id(claim): workers}} of this process's pools busy now
_busy_warned = False


def registry_dir() -> Path:
    """Where this user's claims live: /dev/shm (a RAM disk, per container) or the temp directory."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) \
        else Path(tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return base / f"gsenv-workers-{uid}"


def process_start_time(pid: int) -> str | None:
    """The start time of pid in clock ticks since boot (/proc/PID/stat field 22), None if it is
    gone or a zombie; "" where /proc is missing but the pid exists (no reuse check there)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # zombie / dead: its workers are gone
        return None
    return fields[19]


def _alive(entry: dict) -> bool:
    started = process_start_time(int(entry["pid"]))
    return started is not None and (started == "" or started == entry.get("start_time"))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _thread_lock, open(directory / LOCK_NAME, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _live_claims(directory: Path) -> dict[Path, dict]:
    """{file: claim} of live processes; files of dead ones (or unreadable ones) are removed."""
    out = {}
    for path in directory.glob("*.json"):
        try:
            entry = json.loads(path.read_text())
            live = _alive(entry)
        except (OSError, ValueError, KeyError, TypeError):
            live, entry = False, None
        if live:
            out[path] = entry
        else:
            path.unlink(missing_ok=True)
    return out


def env_num_workers() -> int | None:
    """GSENV_NUM_WORKERS as an int >= 1, None when unset; ValueError naming it when malformed."""
    text = os.environ.get(NUM_WORKERS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{NUM_WORKERS_ENV}={text!r}: expected an int >= 1 (physics worker processes per "
                         "instance), or unset it for the host's share")
    return value


def share(num_envs: int, usable: int, others: list[int], reserved: int = 0) -> int:
    """Default workers of a new pool of num_envs envs when the other stepping groups' live pools hold
    ``others`` workers (one count per group) and ``reserved`` more groups only reserved theirs (their
    pools not started yet: each is left a fair share)."""
    fair = usable // (len(others) + reserved + 1)
    return max(1, min(num_envs, fair, usable - sum(others) - reserved * fair))


class Claim:
    """One pool's registered worker count; release() (or the process ending) gives it back."""

    def __init__(self, path: Path | None, num_workers: int, source: str, others: list[int], group: str = ""):
        self.path = path
        self.group = group
        """Its stepping group (see the module)."""
        self.num_workers = num_workers
        self.source = source
        """"explicit", "environment" or "share": where num_workers came from ("reserved": not settled yet)."""
        self.others = others
        """The worker counts of the other stepping groups' live claims when this one was taken (one per group)."""

    def release(self) -> None:
        """Remove the claim (safe to call twice, and from a finaliser)."""
        path, self.path = self.path, None
        if path is not None:
            try:
                with _locked(path.parent):
                    path.unlink(missing_ok=True)
            except OSError:
                pass


def _group_of(entry: dict) -> str:
    return str(entry.get("group", entry["pid"]))  # an older gsenv's claim: its process


def _others(claims: list[dict], group: str) -> tuple[list[int], int]:
    """(the settled workers of each other stepping group, how many other groups only reserved) of claims."""
    settled: dict[str, int] = {}
    reserved: set[str] = set()
    for e in claims:
        g = _group_of(e)
        if g == group:
            continue
        if e.get("reserved"):
            reserved.add(g)
        else:
            settled[g] = max(settled.get(g, 0), int(e["workers"]))
    return list(settled.values()), len(reserved - set(settled))


def _write_claim(path: Path, workers: int | None, num_envs: int, group: str) -> None:
    """workers None: reserved (written as 0 workers and "reserved": an older gsenv reading the registry
    counts it as a pool holding none)."""
    pid = os.getpid()
    entry = {"pid": pid, "start_time": process_start_time(pid), "group": group, "workers": workers or 0,
             "num_envs": num_envs, "reserved": workers is None}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)


def reserve(num_envs: int, directory: Path | None = None, group: str | None = None) -> Claim:
    """Announce a pool of num_envs envs that starts soon (its worker count still open): pools of other
    stepping groups that settle theirs meanwhile leave it a fair share. Pass it to claim_workers (which
    settles it), or release() it if no pool starts. group: its stepping group (default: this process).
    Without a writable registry: a claim that holds nothing."""
    directory = registry_dir() if directory is None else Path(directory)
    group = str(os.getpid()) if group is None else str(group)
    try:
        with _locked(directory):
            _live_claims(directory)  # drop the dead ones now, while holding the lock
            path = directory / f"{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:8]}.json"
            _write_claim(path, None, num_envs, group)
    except OSError:
        return Claim(None, 0, "reserved", [], group)  # claim_workers says what that means, once
    return Claim(path, 0, "reserved", [], group)


def claim_workers(num_envs: int, requested: int | None, usable: int, directory: Path | None = None,
                  reservation: Claim | None = None, group: str | None = None) -> Claim:
    """Register a pool of num_envs envs on this host and decide its worker count.

    requested: an explicit count (already checked) or None (GSENV_NUM_WORKERS, else the share).
    usable: this process's usable cores. directory: the registry (default registry_dir()).
    reservation: this pool's earlier reserve() (settled here), or None (a new claim). group: its
    stepping group, pools that are never busy at once (default: the reservation's, else this process;
    see the module).
    """
    if group is None:
        group = reservation.group if reservation is not None and reservation.group else str(os.getpid())
    group = str(group)
    fixed, source = (requested, "explicit") if requested is not None else (env_num_workers(), "environment")
    if fixed is not None:
        fixed = min(int(fixed), num_envs)
    directory = registry_dir() if directory is None else Path(directory)
    pid = os.getpid()
    try:
        with _locked(directory):
            own = None if reservation is None else reservation.path
            others, reserved = _others([e for path, e in _live_claims(directory).items() if path != own], group)
            workers = fixed if fixed is not None else share(num_envs, usable, others, reserved)
            path = own if own is not None and own.exists() else \
                directory / f"{pid}-{next(_counter)}-{uuid.uuid4().hex[:8]}.json"
            _write_claim(path, workers, num_envs, group)
            if reservation is not None:
                reservation.path = None  # the file is this claim's now: releasing the reservation leaves it
    except OSError as exc:  # no writable registry: this pool cannot see the others (speed only, not results)
        logger.warning("cannot use the worker registry %s (%s): this physics pool ignores other gsenv instances on "
                       "the host; set %s to share the cores by hand", directory, exc, NUM_WORKERS_ENV)
        others = []
        workers = fixed if fixed is not None else max(1, min(num_envs, usable))
        return Claim(None, workers, source if fixed is not None else "share", others, group)
    return Claim(path, workers, source if fixed is not None else "share", others, group)


def live_claims(directory: Path | None = None) -> list[dict]:
    """The live claims on this host ({pid, start_time, group, workers, num_envs, reserved} each; workers 0
    and reserved True until the pool settles its count), for tools."""
    directory = registry_dir() if directory is None else Path(directory)
    if not directory.is_dir():
        return []
    with _locked(directory):
        return list(_live_claims(directory).values())


@contextlib.contextmanager
def busy(claim: Claim, usable: int) -> Iterator[None]:
    """Around a command that keeps a pool's workers busy (step, reset, state). Pools of one stepping group
    took their shares on the promise that they are never busy at once; when several of them are (threads
    stepping one process's instances together) with more workers than the usable cores, say so, once."""
    global _busy_warned
    if claim.source != "share":  # an explicit or environment count: the user placed it
        yield
        return
    with _busy_lock:
        group = _busy.setdefault(claim.group, {})
        group[id(claim)] = claim.num_workers
        total, pools = sum(group.values()), len(group)
        warn = pools > 1 and total > usable and not _busy_warned
        _busy_warned = _busy_warned or warn
    if warn:
        logger.warning("%d gsenv instances of this process are stepping at once (from several threads) with %d "
                       "physics workers on %d usable cores: instances of one process are given the cores on the "
                       "understanding that they step one after another; pass num_workers to each (about %d) when "
                       "you step them together", pools, total, usable, max(1, usable // pools))
    try:
        yield
    finally:
        with _busy_lock:
            _busy.get(claim.group, {}).pop(id(claim), None)
