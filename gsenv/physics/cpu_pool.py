"""B single-env CPU physics instances in W worker processes, with batched I/O through shared memory.

ManiSkill refuses num_envs > 1 on CPU PhysX, but several independent single-env instances live
happily in one process. The pool spreads B instances over W processes (about one per core); the
main process sees batched numpy/torch arrays in env order and never loops over envs itself.

Protocol of an instance (built inside its worker by ``factory(env_index)``; see PhysicsInstance):
``reset(seed, options) -> dict[str, np.ndarray]`` and ``step(action) -> dict[str, np.ndarray]``,
always the same keys with fixed shapes/dtypes. The pool writes them into shared arrays [B, *shape].
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

ACTION_KEY = "__action__"
PIN_ENV = "GSENV_PIN_WORKERS"
"""Environment variable: "1" pins worker w to the w-th usable CPU (round robin) when the pool's
``pin_workers`` is left at None; anything else (or unset) leaves placement to the OS."""


class PhysicsInstance(Protocol):
    """One single-env physics simulation living in a worker process."""

    def reset(self, seed: int | None, options: dict) -> dict[str, np.ndarray]: ...

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    # optional: describe() -> dict, sent once to the main process (e.g. the action space)


class PhysicsWorkerError(RuntimeError):
    """A physics worker died or raised; the pool is unusable afterwards (close it and make a new one)."""


@dataclass(frozen=True)
class _Field:
    shape: tuple[int, ...]
    dtype: str


def _layout_of(result: dict[str, np.ndarray]) -> dict[str, _Field]:
    return {k: _Field(tuple(np.shape(v)), np.asarray(v).dtype.str) for k, v in result.items()}


class _SharedArrays:
    """Shared-memory arrays [B, *shape], one per key (torch shared storage, viewed as numpy).

    Built in the main process; sent to workers through their pipe (torch's reductions pass the
    shared storage, not the data).
    """

    def __init__(self, layout: dict[str, _Field], num_envs: int):
        import torch
        import torch.multiprocessing

        self.tensors = {k: torch.from_numpy(np.zeros((num_envs, *f.shape), np.dtype(f.dtype))).share_memory_()
                        for k, f in layout.items()}
        self.arrays = {k: t.numpy() for k, t in self.tensors.items()}

    def __getstate__(self) -> dict:
        return {"tensors": self.tensors}

    def __setstate__(self, state: dict) -> None:
        self.tensors = state["tensors"]
        self.arrays = {k: t.numpy() for k, t in self.tensors.items()}

    def release(self) -> None:
        self.arrays.clear()
        self.tensors.clear()


def _worker_main(conn: Connection, factory: Callable[[int], PhysicsInstance], env_ids: list[int],
                 action_field: _Field, cpu: int | None = None) -> None:
    """Worker loop: build this worker's instances, then serve reset/step/close commands."""
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
    instances: list[PhysicsInstance] = []
    shared: _SharedArrays | None = None
    try:
        instances = [factory(i) for i in env_ids]
        first = instances[0].reset(None, {})
        describe = getattr(instances[0], "describe", None)
        conn.send(("layout", (_layout_of(first), describe() if describe else {})))
        cmd, payload = conn.recv()
        shared = payload["shared"]
        conn.send(("ready", None))
        while True:
            cmd, payload = conn.recv()
            if cmd == "close":
                break
            if cmd == "reset":  # payload: {env_id: (seed, options)}
                for env_id, (seed, options) in payload.items():
                    _write(shared, env_id, instances[env_ids.index(env_id)].reset(seed, options))
            elif cmd == "step":  # payload: env ids to step (default: all of this worker's)
                action = shared.arrays[ACTION_KEY]
                for env_id in payload or env_ids:
                    _write(shared, env_id, instances[env_ids.index(env_id)].step(action[env_id]))
            conn.send(("ok", None))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    except BaseException as exc:  # report, then exit: the main process raises PhysicsWorkerError
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        except (BrokenPipeError, OSError):
            pass
    finally:
        for inst in instances:
            try:
                inst.close()
            except Exception:  # closing is best effort while the worker exits
                pass
        if shared is not None:
            shared.release()


def _write(shared: _SharedArrays, env_id: int, result: dict[str, np.ndarray]) -> None:
    for key, value in result.items():
        shared.arrays[key][env_id] = value


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in the OS's order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def default_num_workers(num_envs: int, workers_per_core: float = 1.0) -> int:
    """About ``workers_per_core`` workers per usable core (default one), never more than envs."""
    if workers_per_core <= 0:
        raise ValueError(f"workers_per_core must be > 0, got {workers_per_core}")
    return max(1, min(num_envs, round(len(usable_cpus()) * workers_per_core)))


def _pin_from_env() -> bool:
    return os.environ.get(PIN_ENV, "").strip() == "1"


def split_envs(num_envs: int, num_workers: int) -> list[list[int]]:
    """Contiguous, balanced env-index ranges, one per worker (results stay in env order)."""
    base, extra = divmod(num_envs, num_workers)
    out, start = [], 0
    for w in range(num_workers):
        n = base + (1 if w < extra else 0)
        out.append(list(range(start, start + n)))
        start += n
    return out


class CpuPhysicsPool:
    """Batched front of B single-env physics instances spread over W worker processes.

    Args:
        factory: picklable callable ``factory(env_index) -> PhysicsInstance`` run in the workers.
        num_envs: B.
        action_shape: shape of one env's action, e.g. (7,).
        num_workers: W (default: about one per core, at most B).
        timeout_s: how long one command may take before the pool gives up (a hung worker).
        pin_workers: pin worker w to usable CPU w mod #CPUs (os.sched_setaffinity). None: as the
            environment variable GSENV_PIN_WORKERS says ("1" = pin), else off. Results are the same
            either way; only speed can differ.

    After construction the first instance of each worker has been reset once with seed None (that
    fixes the output layout); reset every env before stepping it.
    """

    def __init__(self, factory: Callable[[int], PhysicsInstance], num_envs: int, action_shape: Sequence[int],
                 num_workers: int | None = None, timeout_s: float = 600.0, start_method: str = "spawn",
                 pin_workers: bool | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.num_workers = num_workers or default_num_workers(num_envs)
        if not 1 <= self.num_workers <= num_envs:
            raise ValueError(f"num_workers must be in [1, num_envs={num_envs}], got {self.num_workers}")
        self.timeout_s = timeout_s
        self.env_ids = split_envs(num_envs, self.num_workers)
        self.pin_workers = _pin_from_env() if pin_workers is None else bool(pin_workers)
        cpus = usable_cpus()
        self.worker_cpus: list[int | None] = [cpus[w % len(cpus)] if self.pin_workers else None
                                              for w in range(self.num_workers)]
        """The CPU each worker is pinned to (None: not pinned)."""
        self._owner_of = np.concatenate([np.full(len(ids), w) for w, ids in enumerate(self.env_ids)])
        self._closed = False
        self._shared: _SharedArrays | None = None
        ctx = mp.get_context(start_method)
        action_field = _Field(tuple(action_shape), np.dtype(np.float32).str)
        self._conns: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        for w, ids in enumerate(self.env_ids):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, factory, ids, action_field, self.worker_cpus[w]),
                               name=f"gsenv-physics-{w}", daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._finalizer = weakref.finalize(self, _shutdown, self._conns, self._procs, [None])
        self._starting = True
        try:
            replies = self._gather("layout", range(self.num_workers))
            layouts = [r[0] for r in replies]
            self.meta: dict = replies[0][1]
            """What the first instance's describe() returned (e.g. its spaces), {} without one."""
            layout = layouts[0]
            if any(lay != layout for lay in layouts):
                raise PhysicsWorkerError("physics instances disagree on their output shapes: "
                                         f"{layouts[0]} vs {next(l for l in layouts if l != layout)}")
            self.layout = layout
            self._shared = _SharedArrays({**layout, ACTION_KEY: action_field}, num_envs)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _shutdown, self._conns, self._procs, [self._shared])
            for conn in self._conns:
                conn.send(("attach", {"shared": self._shared}))
            self._gather("ready", range(self.num_workers))
            self._starting = False
        except BaseException:
            self.close()
            raise
        logger.info("physics pool: %d envs in %d worker processes%s", num_envs, self.num_workers,
                    " (pinned)" if self.pin_workers else "")

    # -- commands -------------------------------------------------------------------------------
    def step(self, actions: np.ndarray, env_idx: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Step envs (all, or env_idx) with actions [B, *action_shape]; returns copies of all outputs [B, ...]."""
        self._check_open()
        self._shared.arrays[ACTION_KEY][...] = actions
        if env_idx is None:
            workers = range(self.num_workers)
            for w in workers:
                self._send(w, ("step", None))
        else:
            by_worker = self._group(env_idx)
            workers = list(by_worker)
            for w, ids in by_worker.items():
                self._send(w, ("step", ids))
        self._gather("ok", workers)
        return self.read()

    def reset(
        self, env_idx: Sequence[int], seeds: Sequence[int | None], options: Sequence[dict]
    ) -> dict[str, np.ndarray]:
        """Reset the envs env_idx, each with its own seed and options; returns copies of all outputs [B, ...]."""
        self._check_open()
        if not len(env_idx) == len(seeds) == len(options):
            raise ValueError("env_idx, seeds and options must have the same length")
        payloads: dict[int, dict[int, tuple[Any, dict]]] = {}
        for i, seed, opt in zip(env_idx, seeds, options):
            i = int(i)
            if not 0 <= i < self.num_envs:
                raise ValueError(f"env index {i} out of range [0, {self.num_envs})")
            payloads.setdefault(int(self._owner_of[i]), {})[i] = (None if seed is None else int(seed), opt)
        for w, payload in payloads.items():
            self._send(w, ("reset", payload))
        self._gather("ok", list(payloads))
        return self.read()

    def read(self) -> dict[str, np.ndarray]:
        """Copies of the latest outputs, {key: [B, *shape]} in env order."""
        self._check_open()
        return {k: self._shared.arrays[k].copy() for k in self.layout}

    def close(self) -> None:
        """End every worker and free the shared memory; safe to call twice."""
        self._closed = True
        self._finalizer()

    @property
    def processes(self) -> list[mp.process.BaseProcess]:
        return list(self._procs)

    # -- plumbing ---------------------------------------------------------------------------------
    def _group(self, env_idx: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in env_idx:
            out.setdefault(int(self._owner_of[int(i)]), []).append(int(i))
        return out

    def _check_open(self) -> None:
        if self._closed:
            raise PhysicsWorkerError("the physics pool is closed; create a new environment")

    def _send(self, w: int, message: tuple) -> None:
        try:
            self._conns[w].send(message)
        except (BrokenPipeError, OSError):
            self._fail(self._death_message(w))

    def _gather(self, expected: str, workers) -> list[Any]:
        """Wait for one reply from each worker; a dead or failing worker raises PhysicsWorkerError."""
        workers = list(workers)
        replies: dict[int, Any] = {}
        pending = {self._conns[w]: w for w in workers}
        sentinels = {self._procs[w].sentinel: w for w in workers}
        while pending:
            ready = wait(list(pending) + list(sentinels), timeout=self.timeout_s)
            if not ready:
                self._fail(f"physics worker(s) {sorted(pending.values())} did not answer within {self.timeout_s:.0f} s")
            for r in ready:
                if r in pending:
                    w = pending[r]
                    try:
                        kind, payload = r.recv()
                    except (EOFError, OSError):
                        self._fail(self._death_message(w))
                    if kind == "error":
                        self._fail(f"physics worker {w} (envs {self._span(w)}) raised:\n{payload}")
                    if kind != expected:
                        self._fail(f"physics worker {w} answered {kind!r}, expected {expected!r}")
                    replies[w] = payload
                    del pending[r]
                    sentinels = {s: v for s, v in sentinels.items() if v != w}
                elif r in sentinels and sentinels[r] in pending.values():
                    w = sentinels[r]
                    if self._conns[w].poll():  # its last words (an error report) are still in the pipe
                        continue
                    self._fail(self._death_message(w))
        return [replies[w] for w in workers]

    def _span(self, w: int) -> str:
        ids = self.env_ids[w]
        return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0])

    def _death_message(self, w: int) -> str:
        proc = self._procs[w]
        proc.join(timeout=1.0)
        message = (f"physics worker {w} (pid {proc.pid}, envs {self._span(w)}) died with exit code {proc.exitcode}; "
                   "the environment cannot continue: close it and create a new one "
                   "(out of memory or a crash in the simulator are the usual causes)")
        if getattr(self, "_starting", False):
            message += (". It died while starting: workers are started with 'spawn' and import your main "
                        "module, so a script must create environments under `if __name__ == \"__main__\":`")
        return message

    def _fail(self, message: str) -> None:
        self.close()
        raise PhysicsWorkerError(message)

    def __enter__(self) -> CpuPhysicsPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shutdown(conns: list[Connection], procs: list[mp.process.BaseProcess], shared: list) -> None:
    """Ask workers to close, then terminate stragglers; free shared memory. Runs at close() or GC."""
    for conn in conns:
        try:
            conn.send(("close", None))
        except (BrokenPipeError, OSError):
            pass
    for proc in procs:
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5.0)
        if proc.is_alive():
            proc.kill()
            proc.join()
    for conn in conns:
        conn.close()
    for s in shared:
        if s is not None:
            s.release()
