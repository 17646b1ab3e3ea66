"""Starting physics workers without the user's ``__main__``: forked from the preloaded server, or
each one a clean interpreter.

``start_worker(method, config)`` returns a :class:`WorkerHandle`: the worker's pid, its socket to
the pool (a ``Connection`` plus the raw socket for descriptor passing), and its exit status.

Methods (environment variable GSENV_WORKER_START, else ``auto``):
    server:     fork from one preloaded server per main process (:mod:`gsenv.physics.server`;
                Linux). The server is started on first use and lives until the main process exits.
    subprocess: ``python -m gsenv.physics.worker`` per worker (any OS; each imports torch, SAPIEN
                and ManiSkill itself, so slower to start and larger).
    auto:       server on Linux, else subprocess.
Both run the same worker code (:mod:`gsenv.physics.worker`) and give the same results.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

START_ENV = "GSENV_WORKER_START"
"""Environment variable: "server", "subprocess" or "auto" (the default) picks how workers start."""
METHODS = ("auto", "server", "subprocess")
SERVER_PRELOAD = ("torch", "sapien", "mani_skill.envs")
"""What the server imports before its first fork (each request may add its task module)."""


def resolve_method(method: str | None) -> str:
    """'server' or 'subprocess' for ``method`` (None: as GSENV_WORKER_START says, default auto)."""
    source = "start_method" if method is not None else START_ENV
    chosen = method if method is not None else (os.environ.get(START_ENV, "").strip() or "auto")
    if chosen not in METHODS:
        raise ValueError(f"{source} must be one of {METHODS}, got {chosen!r}")
    if chosen == "auto":
        return "server" if sys.platform.startswith("linux") and hasattr(os, "fork") else "subprocess"
    if chosen == "server" and not hasattr(os, "fork"):
        raise ValueError(f"{source}='server' needs os.fork (Linux); use 'subprocess' here")
    return chosen


WORKER_ENV = {"CUDA_VISIBLE_DEVICES": ""}
"""Set in every physics process: CPU physics needs no GPU, and a visible one is costly. ManiSkill's
reset runs under ``torch.random.fork_rng()``, which saves the RNG state of every visible CUDA device,
so each worker would initialise CUDA, and the NVIDIA driver serialises that across processes: with
16 workers on the H200 machine, gym.make(num_envs=64) took 28 s instead of 1.7 s
(docs/benchmarks.md, "Long runs")."""


WORKER_ENV_DEFAULTS = {"MKL_CBWR": "COMPATIBLE"}
"""Set in every physics process unless the environment already sets them. MKL_CBWR=COMPATIBLE: MKL
(the controllers' torch math) takes the same code path on every x86 CPU, so a state saved on one
machine steps the same on another: restored on an Intel Xeon (torch 2.11) after an AMD EPYC (torch
2.13) saved it, 19 steps bit-identical and 8.6e-7 apart after 50; without it 1.6e-3 apart at the
second step (docs/benchmarks.md, 2026-12-07)."""


def _child_env() -> dict[str, str]:
    """The main process's environment, with its sys.path as PYTHONPATH so the child finds gsenv and
    the factory's module wherever the main process found them, no visible GPU (WORKER_ENV) and
    WORKER_ENV_DEFAULTS where the environment does not set them."""
    env = {**WORKER_ENV_DEFAULTS, **os.environ, **WORKER_ENV}
    paths = [p if p else os.getcwd() for p in sys.path if isinstance(p, str)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _close_quietly(*channels) -> None:
    """Close each connection or socket; one that is already gone is no error."""
    for channel in channels:
        try:
            channel.close()
        except OSError:
            pass


def signal_name(code: int) -> str:
    """'SIGKILL' for -9 (a Popen-style return code of a killed process)."""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def describe_exit(code: int | None) -> str:
    """How a worker ended, in words: 'was killed by SIGKILL' / 'exited with code 1'."""
    if code is None:
        return "stopped answering"
    if code < 0:
        return f"was killed by {signal_name(code)}"
    return f"exited with code {code}"


class WorkerHandle:
    """One running worker as the pool sees it."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid = pid
        self.sock = sock
        self.conn = Connection(os.dup(sock.fileno()))
        self._code: int | None = None

    def poll(self) -> int | None:
        """The exit code (negative: killed by that signal), or None while it runs."""
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL it if it still runs (works on a stopped process too)."""
        raise NotImplementedError

    def wait(self, timeout: float) -> int | None:
        """Wait up to timeout seconds for it to end; its exit code, or None if it still runs."""
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return code

    def is_alive(self) -> bool:
        return self.poll() is None

    def join(self, timeout: float | None = None) -> None:
        self.wait(1e9 if timeout is None else timeout)

    def close_channel(self) -> None:
        _close_quietly(self.conn, self.sock)


class _SubprocessWorker(WorkerHandle):
    def __init__(self, proc: subprocess.Popen, sock: socket.socket):
        super().__init__(proc.pid, sock)
        self.proc = proc

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


class _ForkedWorker(WorkerHandle):
    def __init__(self, pid: int, sock: socket.socket, server: _Server):
        super().__init__(pid, sock)
        self.server = server

    def poll(self) -> int | None:
        if self._code is None:
            self._code = self.server.status(self.pid)
        return self._code

    def kill(self) -> None:
        if self.poll() is None:
            self.server.request("kill", (self.pid, signal.SIGKILL))


class ServerError(RuntimeError):
    """The preloaded worker server could not start or went away."""


class _Server:
    """The main process's side of the preloaded server (one per process, shared by its pools)."""

    def __init__(self, preload: tuple[str, ...], timeout_s: float):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen([sys.executable, "-m", "gsenv.physics.server", str(child.fileno()),
                                      ",".join(preload)], pass_fds=[child.fileno()], env=_child_env(),
                                     stdin=subprocess.DEVNULL)
        child.close()
        self.sock = parent
        self.conn = Connection(os.dup(parent.fileno()))
        self.lock = threading.Lock()
        if not self.conn.poll(timeout_s):
            self.close()
            raise ServerError(f"the physics worker server did not start within {timeout_s:.0f} s")
        try:
            kind, info = self.conn.recv()
        except (EOFError, OSError):
            code = self.proc.wait(timeout=5)
            raise ServerError(f"the physics worker server {describe_exit(code)} while importing {preload} "
                              "(its error is printed above)") from None
        self.pid = info["pid"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, cmd: str, payload, fd: int | None = None):
        with self.lock:
            try:
                self.conn.send((cmd, payload))
                if fd is not None:
                    socket.send_fds(self.sock, [b"w"], [fd])
                kind, reply = self.conn.recv()
            except (EOFError, OSError) as exc:
                raise ServerError(f"the physics worker server {describe_exit(self.proc.poll())}: {exc}") from None
        if kind == "error":
            raise ServerError(f"the physics worker server failed: {reply}")
        return reply

    def status(self, pid: int) -> int | None:
        try:
            return self.request("status", pid)
        except ServerError:  # no server, no workers: it killed them on its way out
            return -signal.SIGKILL

    def close(self) -> None:
        _close_quietly(self.conn, self.sock)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_server: _Server | None = None
_server_lock = threading.Lock()


def server(timeout_s: float = 600.0) -> _Server:
    """The running preloaded server, started on first use (or again if it died)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = _Server(SERVER_PRELOAD, timeout_s)
        return _server


def server_pid() -> int | None:
    """The pid of the running server, None before it started."""
    return _server.pid if _server is not None and _server.alive() else None


def shutdown_server() -> None:
    """End the server (it kills the workers it forked); the next pool starts a new one."""
    global _server
    with _server_lock:
        if _server is not None:
            _server.close()
            _server = None


atexit.register(shutdown_server)


def start_worker(method: str, config: bytes, preload: tuple[str, ...] = (), timeout_s: float = 600.0
                 ) -> WorkerHandle:
    """Start one worker with pickled ``config`` (see gsenv.physics.worker.run_worker).

    method: 'server' or 'subprocess' (see resolve_method); preload: modules the server imports
    before forking it (e.g. the task module); timeout_s: how long the server may take to come up.
    """
    parent, child = socket.socketpair()
    sys_path = [p if p else os.getcwd() for p in sys.path if isinstance(p, str)]
    try:
        if method == "server":
            srv = server(timeout_s)
            pid = srv.request("spawn", {"sys_path": sys_path, "config": config, "preload": list(preload)},
                              fd=child.fileno())
            handle: WorkerHandle = _ForkedWorker(pid, parent, srv)
        elif method == "subprocess":
            proc = subprocess.Popen([sys.executable, "-m", "gsenv.physics.worker", str(child.fileno())],
                                    pass_fds=[child.fileno()], env=_child_env(), stdin=subprocess.DEVNULL)
            handle = _SubprocessWorker(proc, parent)
            handle.conn.send((sys_path, config))
        else:
            raise ValueError(f"start method must be 'server' or 'subprocess', got {method!r}")
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return handle
