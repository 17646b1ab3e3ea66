"""The physics worker: builds its share of the pool's instances and serves reset/step commands.

A worker talks to the pool over one Unix socket (a ``multiprocessing.connection.Connection`` on it,
plus the shared-memory descriptor passed once with SCM_RIGHTS). It never imports the user's
``__main__``: it runs either as a clean interpreter, ``python -m gsenv.physics.worker FD``, or forked
from the preloaded server (:mod:`gsenv.physics.server`), which calls :func:`run_worker` directly.

Protocol (pool -> worker, then the worker's one reply):
    start                       -> ("started", describe() or {}) or ("error", report)
    ("attach", {layout, num_envs}) + descriptor -> ("ready", None)   (layout: the factory's, + the actions)
    ("reset", {env_id: (seed, options)})       -> ("ok", None) or ("error", report)
    ("step", [env_id, ...] or None)             -> ("ok", None) or ("error", report)
    ("get_state", [env_id, ...])                -> ("ok", {env_id: instance.get_state()}) or ("error", report)
    ("set_state", {env_id: (state, outputs, options)}) -> ("ok", None) or ("error", report): each instance's
        set_state(state, options), and its outputs ({key: array}, the layout's keys) written to the shared arrays
    ("close", None)                             -> the worker exits
An error report is (type name, message, traceback text); the worker keeps serving after one.
"""
from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import sys
import traceback
from multiprocessing.connection import Connection

from gsenv.physics.shared import SharedArrays, receive_fd

logger = logging.getLogger(__name__)

ACTION_KEY = "__action__"
"""The shared array the pool writes actions [B, *action_shape] into."""


def _report(exc: BaseException) -> tuple[str, str, str]:
    return type(exc).__name__, str(exc), traceback.format_exc()


def _settle(cpu: int | None) -> None:
    """Optional CPU pinning; one intra-op thread."""
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except (AttributeError, OSError) as exc:  # not Linux, or the CPU went away: run unpinned
            logger.warning("physics worker could not pin itself to CPU %d: %s", cpu, exc)
    try:
        import torch

        torch.set_num_threads(1)  # B/W instances per core; intra-op threads only fight each other
    except ImportError:
        pass


def _extend_path(sys_path: list[str]) -> None:
    for entry in sys_path:
        if entry not in sys.path:
            sys.path.append(entry)


def run_worker(sock: socket.socket, sys_path: list[str], config: bytes) -> None:
    """Serve the pool on ``sock`` until it says close or goes away.

    config: pickled {"factory": callable(env_index) -> instance, "env_ids": [int], "cpu": int | None}
    (unpickled here, after ``sys_path`` is added, so the factory's module is found).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    conn = Connection(os.dup(sock.fileno()))
    instances: dict[int, object] = {}
    shared: SharedArrays | None = None
    try:
        try:
            _extend_path(sys_path)
            cfg = pickle.loads(config)
            _settle(cfg.get("cpu"))
            factory, env_ids = cfg["factory"], list(cfg["env_ids"])
            for i in env_ids:
                instances[i] = factory(i)
            describe = getattr(instances[env_ids[0]], "describe", None)
            meta = describe() if describe else {}
        except Exception as exc:
            conn.send(("error", _report(exc)))
            return
        conn.send(("started", meta))
        while True:
            cmd, payload = conn.recv()
            if cmd == "close":
                break
            if cmd == "attach":
                if shared is not None:
                    shared.release()
                shared = SharedArrays(payload["layout"], payload["num_envs"], fd=receive_fd(sock))
                conn.send(("ready", None))
                continue
            reply = None
            try:
                if cmd == "reset":
                    for env_id, (seed, options) in payload.items():
                        _write(shared, env_id, instances[env_id].reset(seed, options))
                elif cmd == "step":
                    action = shared.arrays[ACTION_KEY]
                    for env_id in payload or env_ids:
                        _write(shared, env_id, instances[env_id].step(action[env_id]))
                elif cmd == "get_state":
                    reply = {env_id: instances[env_id].get_state() for env_id in payload}
                elif cmd == "set_state":
                    for env_id, (state, outputs, options) in payload.items():
                        instances[env_id].set_state(state, options)
                        _write(shared, env_id, outputs)
                else:
                    raise ValueError(f"unknown physics worker command {cmd!r}")
            except Exception as exc:  # one bad command: report it and keep serving
                conn.send(("error", _report(exc)))
                continue
            conn.send(("ok", reply))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the pool is gone
    finally:
        for inst in instances.values():
            try:
                inst.close()
            except Exception:  # closing is best effort while the worker exits
                pass
        if shared is not None:
            shared.release()
        conn.close()


def _write(shared: SharedArrays, env_id: int, result: dict) -> None:
    for key, value in result.items():
        shared.arrays[key][env_id] = value


def main(argv: list[str]) -> None:
    """``python -m gsenv.physics.worker FD``: FD is this worker's socket; the first message on it is
    (sys_path, config)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    first = Connection(os.dup(sock.fileno()))
    try:
        sys_path, config = first.recv()
    except EOFError:
        return
    finally:
        first.close()
    run_worker(sock, sys_path, config)


if __name__ == "__main__":
    main(sys.argv[1:])
