"""The preloaded worker server: ``python -m gsenv.physics.server FD MODULES``.

A clean interpreter (never the user's ``__main__``) that imports the heavy modules once (torch,
SAPIEN, ManiSkill, the task module: MODULES, comma separated), creates no GPU state and starts no
Python threads, then forks one physics worker per request. Forked workers share the imported
code and data pages with the server (copy-on-write), so each starts in well under a second and
holds little memory of its own. Linux only (fork); :mod:`gsenv.physics.launch` falls back to
one clean interpreter per worker elsewhere.

Requests on FD (a Unix socket to the main process; one reply each):
    ("spawn", {"sys_path", "config", "preload"}) + the worker's socket descriptor -> ("spawned", pid)
    ("status", pid)          -> ("status", None while running, else the exit code, -signal if killed)
    ("kill", (pid, signal))  -> ("ok", None)
When the main process goes away (EOF on FD) the server kills its workers and exits; each worker
gets SIGKILL if the server dies (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import gc
import importlib
import os
import signal
import socket
import sys
import traceback
from multiprocessing.connection import Connection, wait

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """SIGKILL this process when its parent (the single-threaded server) exits (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _preload(modules: list[str], done: set[str]) -> None:
    for name in modules:
        if name and name not in done:
            importlib.import_module(name)
            done.add(name)


class _Server:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.conn = Connection(os.dup(sock.fileno()))
        self.children: dict[int, int | None] = {}  # pid -> None while running, else exit code
        self.loaded: set[str] = set()

    def reap(self) -> None:
        for pid, code in list(self.children.items()):
            if code is None:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    self.children[pid] = -signal.SIGKILL
                    continue
                if done:
                    self.children[pid] = os.waitstatus_to_exitcode(status)

    def spawn(self, request: dict) -> int:
        fd = socket.recv_fds(self.sock, 1, 1)[1][0]
        _preload(request.get("preload", []), self.loaded)
        # objects the server made stay out of the child's garbage collections, so its pages stay shared
        gc.collect()
        gc.freeze()
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                self.conn.close()
                self.sock.close()
                _die_with_parent()
                if os.getppid() != server_pid:
                    os._exit(1)
                from gsenv.physics.worker import run_worker

                run_worker(socket.socket(fileno=fd), request["sys_path"], request["config"])
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(fd)
        self.children[pid] = None
        return pid

    def serve(self) -> None:
        while True:
            ready = wait([self.conn], timeout=1.0)
            self.reap()
            if not ready:
                continue
            try:
                cmd, payload = self.conn.recv()
            except (EOFError, OSError):
                return
            if cmd == "spawn":
                try:
                    reply = ("spawned", self.spawn(payload))
                except Exception as exc:
                    reply = ("error", f"{type(exc).__name__}: {exc}")
            elif cmd == "status":
                self.reap()
                reply = ("status", self.children.get(payload, -signal.SIGKILL))
                if reply[1] is not None:
                    self.children.pop(payload, None)
            elif cmd == "kill":
                pid, sig = payload
                if self.children.get(pid, 0) is None:
                    os.kill(pid, sig)
                reply = ("ok", None)
            else:
                reply = ("error", f"unknown server request {cmd!r}")
            self.conn.send(reply)

    def kill_all(self) -> None:
        for pid, code in self.children.items():
            if code is None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid, code in self.children.items():
            if code is None:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    sock = socket.socket(fileno=int(argv[0]))
    server = _Server(sock)
    try:
        _preload(argv[1].split(",") if len(argv) > 1 else [], server.loaded)
        server.conn.send(("up", {"pid": os.getpid(), "loaded": sorted(server.loaded)}))
        server.serve()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    finally:
        server.kill_all()


if __name__ == "__main__":
    main(sys.argv[1:])
