"""B single-env CPU physics instances in W worker processes, with batched I/O through shared memory.

ManiSkill refuses num_envs > 1 on CPU PhysX, but several independent single-env instances live
happily in one process. The pool spreads B instances over W processes (about one per core); the
main process sees batched numpy arrays in env order and never loops over envs itself.

Protocol of an instance (built inside its worker by ``factory(env_index)``; see PhysicsInstance):
``reset(seed, options) -> dict[str, np.ndarray]`` and ``step(action) -> dict[str, np.ndarray]``,
always the keys, shapes and dtypes the factory declares (``factory.layout()``, known before any
worker starts). The pool lays its shared arrays [B, *shape] out from that declaration.
Workers start without the user's ``__main__`` (gsenv.physics.launch) and run gsenv.physics.worker.

Recovery: a worker that dies (exit, signal) or does not answer a command within ``timeout_s`` is
killed and replaced; its envs are rebuilt and reset (the options they were last reset with, so an
``episode_id`` is kept; fresh seeds), and the command that noticed returns normally with
``"restarted"`` (bool [B], the pool's own key) True for exactly those envs. More than
``max_restarts`` replacements within ``restart_window_s`` raise PhysicsWorkerError. A Python error
inside a worker for one command reaches the caller as ValueError / TypeError / RuntimeError and the
pool stays usable.
"""
from __future__ import annotations

import collections
import logging
import os
import pickle
import time
import weakref
from collections.abc import Sequence
from multiprocessing.connection import wait
from typing import Any, Protocol

import numpy as np

from gsenv.physics.cores import affinity_cpus, usable_cores
from gsenv.physics.host_share import NUM_WORKERS_ENV, Claim, busy, claim_workers, env_num_workers
from gsenv.physics.launch import ServerError, WorkerHandle, describe_exit, resolve_method, start_worker
from gsenv.physics.outputs import RESTARTED_KEY
from gsenv.physics.shared import Field, SharedArrays
from gsenv.physics.worker import ACTION_KEY

__all__ = ["PIN_ENV", "MANY_WORKERS_ENV", "MAX_WORKERS_PER_CORE", "DEFAULT_TIMEOUT_S", "DEFAULT_MAX_RESTARTS",
           "DEFAULT_RESTART_WINDOW_S", "PhysicsFactory", "PhysicsInstance", "PhysicsWorkerError", "usable_cpus",
           "default_num_workers", "requested_num_workers", "checked_num_workers", "split_envs", "CpuPhysicsPool"]

logger = logging.getLogger(__name__)

PIN_ENV = "GSENV_PIN_WORKERS"
"""Environment variable: "1" pins worker w to the w-th usable CPU (round robin) when the pool's
``pin_workers`` is left at None; anything else (or unset) leaves placement to the OS."""
MANY_WORKERS_ENV = "GSENV_ALLOW_MANY_WORKERS"
"""Environment variable: "1" lifts the cap of MAX_WORKERS_PER_CORE workers per usable core (as
``allow_many_workers=True`` does)."""
MAX_WORKERS_PER_CORE = 4
DEFAULT_TIMEOUT_S = 30.0
"""A worker that does not answer a reset/step within this many seconds is replaced."""
DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_WINDOW_S = 600.0
"""More than DEFAULT_MAX_RESTARTS replacements within this many seconds end the pool."""


class PhysicsFactory(Protocol):
    """Picklable: builds one instance in a worker, and declares what every instance returns."""

    def __call__(self, env_index: int) -> PhysicsInstance: ...

    def layout(self) -> dict[str, Field]: ...


class PhysicsInstance(Protocol):
    """One single-env physics simulation living in a worker process."""

    def reset(self, seed: int | None, options: dict) -> dict[str, np.ndarray]: ...

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    # optional: describe() -> dict, sent once to the main process (e.g. the action space's
    # "action_low" / "action_high", which also fix the action buffer's shape)


class PhysicsWorkerError(RuntimeError):
    """The physics pool cannot continue (a worker failed to start, or restarted too often); close
    it and make a new one."""


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask), in the OS's order (pinning goes round them)."""
    return affinity_cpus()


def default_num_workers(num_envs: int, workers_per_core: float = 1.0) -> int:
    """About ``workers_per_core`` workers per usable core (affinity and cgroup CPU quota; default
    one), never more than envs. A lone instance's default; pools share the host's cores
    (gsenv.physics.host_share)."""
    if workers_per_core <= 0:
        raise ValueError(f"workers_per_core must be > 0, got {workers_per_core}")
    return max(1, min(num_envs, round(usable_cores() * workers_per_core)))


def _checked_count(w: int, num_envs: int, allow_many_workers: bool, source: str) -> int:
    cores = usable_cores()
    cap = MAX_WORKERS_PER_CORE * cores
    allowed = allow_many_workers or os.environ.get(MANY_WORKERS_ENV, "").strip() == "1"
    if w > cap and not allowed:
        raise ValueError(f"{source}={w} is more than {MAX_WORKERS_PER_CORE} per usable CPU core "
                         f"({cores} cores here, so at most {cap}); each worker is a process of "
                         f"several hundred MB. Use fewer, or pass allow_many_workers=True (or set "
                         f"{MANY_WORKERS_ENV}=1) to go beyond it")
    return w


def requested_num_workers(num_workers: Any, num_envs: int, allow_many_workers: bool = False) -> int | None:
    """The worker count asked for: num_workers (an int in [1, B]), else GSENV_NUM_WORKERS (at most B
    taken), both at most MAX_WORKERS_PER_CORE per usable core unless allow_many_workers (or
    GSENV_ALLOW_MANY_WORKERS=1); None when neither is given (the pool takes the host's share)."""
    if num_workers is None:
        from_env = env_num_workers()
        if from_env is None:
            return None
        return _checked_count(min(from_env, num_envs), num_envs, allow_many_workers, NUM_WORKERS_ENV)
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)):
        raise ValueError(f"num_workers must be an int (or None for the host's share), got {num_workers!r}")
    w = int(num_workers)
    if not 1 <= w <= num_envs:
        raise ValueError(f"num_workers must be in [1, num_envs={num_envs}] (or None for the host's share), "
                         f"got {w}")
    return _checked_count(w, num_envs, allow_many_workers, "num_workers")


def checked_num_workers(num_workers: Any, num_envs: int, allow_many_workers: bool = False) -> int:
    """W for B = num_envs as requested_num_workers says; when nothing is asked for, the most the
    host's share can give (default_num_workers: about one per usable core), e.g. for a memory check."""
    w = requested_num_workers(num_workers, num_envs, allow_many_workers)
    return default_num_workers(num_envs) if w is None else w


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


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class CpuPhysicsPool:
    """Batched front of B single-env physics instances spread over W worker processes.

    Args:
        factory: a PhysicsFactory: picklable ``factory(env_index) -> PhysicsInstance`` run in the workers
            (it must be importable by module name: workers never import the user's ``__main__``), and
            ``factory.layout()``, the {key: Field} every instance's reset/step returns.
        num_envs: B.
        action_shape: shape of one env's action, e.g. (7,); None: from the instance's describe()
            ("action_low"), which must then be there.
        num_workers: W: 1..B, at most MAX_WORKERS_PER_CORE per usable core unless allow_many_workers or
            GSENV_ALLOW_MANY_WORKERS=1. None: GSENV_NUM_WORKERS if set, else this pool's share of the
            host's usable cores among the gsenv pools running on it (gsenv.physics.host_share). Every
            pool's count is registered on the host until it closes.
        timeout_s: how long one reset/step may take before its worker counts as hung (killed and
            replaced). A SIGSTOPped worker is noticed after this long.
        start_timeout_s: the same for starting a worker (building its instances is slower).
        max_restarts / restart_window_s: more than max_restarts worker replacements within
            restart_window_s seconds raise PhysicsWorkerError.
        start_method: "auto", "server" or "subprocess" (gsenv.physics.launch; None: as the
            environment variable GSENV_WORKER_START says, default auto).
        pin_workers: pin worker w to usable CPU w mod #CPUs (os.sched_setaffinity). None: as the
            environment variable GSENV_PIN_WORKERS says ("1" = pin), else off. Results are the same
            either way; only speed can differ.
        reservation: the claim reserved for this pool earlier (gsenv.physics.host_share.reserve, as
            GSEnv does when it is made), settled here; None: a new claim.

    Reset every env before stepping it.
    """

    def __init__(self, factory: PhysicsFactory, num_envs: int,
                 action_shape: Sequence[int] | None = None, num_workers: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, start_timeout_s: float = 600.0,
                 max_restarts: int = DEFAULT_MAX_RESTARTS, restart_window_s: float = DEFAULT_RESTART_WINDOW_S,
                 start_method: str | None = None, pin_workers: bool | None = None, allow_many_workers: bool = False,
                 reservation: Claim | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, (int, np.integer)) or max_restarts < 0:
            raise ValueError(f"max_physics_restarts must be an int >= 0, got {max_restarts!r}")
        self.num_envs = int(num_envs)
        requested = requested_num_workers(num_workers, self.num_envs, allow_many_workers)
        self.timeout_s = _positive("physics_timeout_s", timeout_s)
        self.start_timeout_s = _positive("start_timeout_s", start_timeout_s)
        self.restart_window_s = _positive("physics_restart_window_s", restart_window_s)
        self.max_restarts = int(max_restarts)
        self.start_method = resolve_method(start_method)
        self._factory = factory
        self.layout: dict[str, Field] = dict(factory.layout())
        """{key: Field} of the instances' outputs (reset/step return these keys [B, ...] and "restarted")."""
        self._preload = tuple(m for m in [getattr(factory, "import_module", None)] if isinstance(m, str))
        self.pin_workers = _pin_from_env() if pin_workers is None else bool(pin_workers)
        self._usable = usable_cores()
        self.claim: Claim = claim_workers(self.num_envs, requested, self._usable, reservation=reservation)
        """This pool's registration on the host (num_workers, source, the others' counts); freed at close."""
        self.num_workers = self.claim.num_workers
        self._closed = False
        self._workers: list[WorkerHandle | None] = [None] * self.num_workers
        self._shared_box: list[SharedArrays | None] = [None]
        # the finaliser holds only these containers, never self: dropping the pool ends its workers
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._shared_box, self.claim)
        self._note_share(self.claim)
        self.env_ids = split_envs(self.num_envs, self.num_workers)
        cpus = usable_cpus()
        self.worker_cpus: list[int | None] = [cpus[w % len(cpus)] if self.pin_workers else None
                                              for w in range(self.num_workers)]
        """The CPU each worker is pinned to (None: not pinned)."""
        self._owner_of = np.concatenate([np.full(len(ids), w) for w, ids in enumerate(self.env_ids)])
        self._options: list[dict] = [{} for _ in range(self.num_envs)]
        """The options each env was last reset with (a rebuilt env is reset with them again)."""
        self._restarts: collections.deque[float] = collections.deque()
        self._seed_rng = np.random.default_rng()
        self.restart_count = 0
        """How many workers were replaced over the pool's life."""
        self.restart_seeds: dict[int, int | None] = {}
        """{env: seed} of the envs the last reset/step rebuilt after a worker failed (empty otherwise)."""
        try:
            for w in range(self.num_workers):
                self._workers[w] = self._launch(w)
            self.meta: dict = self._start_gather(range(self.num_workers))[0]
            """What the first instance's describe() returned (e.g. its spaces), {} without one."""
            self.action_shape = self._action_shape(action_shape)
            self._shared_box[0] = SharedArrays(self._shared_layout(), self.num_envs)
            self._attach(range(self.num_workers))
        except BaseException:
            self.close()
            raise
        logger.info("physics pool: %d envs in %d worker processes (%s start)%s", self.num_envs, self.num_workers,
                    self.start_method, " (pinned)" if self.pin_workers else "")

    # -- commands -------------------------------------------------------------------------------
    def step(self, actions: np.ndarray, env_idx: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Step envs (all, or env_idx) with actions float32 [B, *action_shape] (checked where they entered:
        gsenv.sim.inputs.checked_actions); returns copies of all outputs [B, ...].

        Envs whose worker had to be replaced come back reset, with outputs["restarted"] True."""
        self._check_open()
        self._shared.arrays[ACTION_KEY][...] = actions
        if env_idx is None:
            commands = {w: ("step", None) for w in range(self.num_workers)}
        else:
            commands = {w: ("step", ids) for w, ids in self._group(env_idx).items()}
        return self._run(commands, {})

    def reset(
        self, env_idx: Sequence[int], seeds: Sequence[int | None], options: Sequence[dict]
    ) -> dict[str, np.ndarray]:
        """Reset the envs env_idx, each with its own seed and options; returns copies of all outputs [B, ...]."""
        self._check_open()
        if not len(env_idx) == len(seeds) == len(options):
            raise ValueError("env_idx, seeds and options must have the same length")
        payloads: dict[int, dict[int, tuple[Any, dict]]] = {}
        requested: dict[int, tuple[Any, dict]] = {}
        for i, seed, opt in zip(env_idx, seeds, options):
            i = int(i)
            if not 0 <= i < self.num_envs:
                raise ValueError(f"env index {i} out of range [0, {self.num_envs})")
            requested[i] = (None if seed is None else int(seed), dict(opt))
            payloads.setdefault(int(self._owner_of[i]), {})[i] = requested[i]
        return self._run({w: ("reset", p) for w, p in payloads.items()}, requested)

    def get_state(self, env_idx: Sequence[int] | None = None) -> list[dict[str, np.ndarray]]:
        """Each env's (all, or env_idx, in that order) whole simulation state: what its instance's
        get_state() returns ({key: array}, the same keys for every env). Outputs are unchanged.

        A worker that dies or hangs meanwhile is replaced (its envs rebuilt and reset), and this raises
        PhysicsWorkerError: those envs' states are gone."""
        self._check_open()
        ids = list(range(self.num_envs)) if env_idx is None else [int(i) for i in env_idx]
        replies = self._command({w: ("get_state", group) for w, group in self._group(ids).items()}, "get_state")
        states = {i: s for reply in replies.values() for i, s in reply.items()}
        return [states[i] for i in ids]

    def set_state(self, env_idx: Sequence[int], states: Sequence[dict], outputs: Sequence[dict],
                  options: Sequence[dict]) -> dict[str, np.ndarray]:
        """Put the envs env_idx into states (from get_state) with their outputs ({key: array} of the
        layout, what the envs reported then, written as their latest outputs); options: each env's
        episode options (its episode id, its drawn physics values): the instance sets its physics values
        from them, and its worker, should it have to be replaced, resets it with them. Returns copies of all
        outputs [B, ...]; raises PhysicsWorkerError if a worker died or hung meanwhile."""
        self._check_open()
        if not len(env_idx) == len(states) == len(outputs) == len(options):
            raise ValueError("env_idx, states, outputs and options must have the same length")
        payloads: dict[int, dict[int, tuple[dict, dict, dict]]] = {}
        for i, state, out, opt in zip(env_idx, states, outputs, options):
            payloads.setdefault(int(self._owner_of[self._checked_index(i)]), {})[int(i)] = (state, out, dict(opt))
        self._command({w: ("set_state", p) for w, p in payloads.items()}, "set_state")
        for i, opt in zip(env_idx, options):
            self._options[int(i)] = dict(opt)
        return {**self.read(), RESTARTED_KEY: np.zeros(self.num_envs, dtype=bool)}

    def _command(self, commands: dict[int, tuple], what: str) -> dict[int, Any]:
        """Send commands {w: message}, return the replies {w: payload}; a worker that failed is replaced
        (its envs reset) and the command raises PhysicsWorkerError, an error inside one is re-raised."""
        replies: dict[int, Any] = {}
        out = self._run(commands, {}, replies)
        if out[RESTARTED_KEY].any():
            lost = [int(i) for i in np.flatnonzero(out[RESTARTED_KEY])]
            raise PhysicsWorkerError(f"a physics worker died or hung during {what}; it was replaced and its envs "
                                     f"{lost} were rebuilt and reset (with new seeds): call {what} again")
        return replies

    def read(self) -> dict[str, np.ndarray]:
        """Copies of the latest outputs, {key: [B, *shape]} in env order (the layout's keys)."""
        self._check_open()
        return {k: self._shared.arrays[k].copy() for k in self.layout}

    def close(self) -> None:
        """End every worker and free the shared memory; safe to call twice."""
        self._closed = True
        self._finalizer()

    @property
    def processes(self) -> list[WorkerHandle]:
        """The current worker of each slot (pid, is_alive(), join())."""
        return [h for h in self._workers if h is not None]

    # -- one command, with recovery ---------------------------------------------------------------
    def _run(self, commands: dict[int, tuple], requested: dict[int, tuple[Any, dict]],
             replies: dict[int, Any] | None = None) -> dict[str, np.ndarray]:
        """Send commands {w: message} and collect the replies (into `replies` when given), with recovery."""
        self.restart_seeds = {}
        try:
            failed: dict[int, str | None] = {}
            with busy(self.claim, self._usable):
                for w, message in commands.items():
                    try:
                        self._workers[w].conn.send(message)
                    except (BrokenPipeError, ConnectionResetError, OSError):
                        failed[w] = None
                answers, more_failed, errors = self._collect([w for w in commands if w not in failed],
                                                             self.timeout_s)
            if replies is not None:
                replies.update(answers)
            failed.update(more_failed)
            for w in errors:  # the command failed, the worker lives: its envs keep what they had
                requested = {i: r for i, r in requested.items() if int(self._owner_of[i]) != w}
            for i, (_, opt) in requested.items():
                self._options[i] = opt
            restarted = self._recover(failed, requested) if failed else []
        except KeyboardInterrupt:  # replies are now out of step with commands: nothing to resume
            self.close()
            raise
        out = self.read()
        out[RESTARTED_KEY] = np.zeros(self.num_envs, dtype=bool)
        out[RESTARTED_KEY][restarted] = True
        if errors:
            raise self._command_error(errors)
        return out

    def _collect(self, workers: Sequence[int], timeout: float, expected: str = "ok"
                 ) -> tuple[dict[int, Any], dict[int, str | None], dict[int, tuple[str, str, str]]]:
        """One reply from each worker within timeout: (replies, failed {w: cause or None if it died},
        errors {w: (type, message, traceback)})."""
        replies: dict[int, Any] = {}
        failed: dict[int, str | None] = {}
        errors: dict[int, tuple[str, str, str]] = {}
        pending = {self._workers[w].conn: w for w in workers}
        deadline = time.monotonic() + timeout
        while pending:
            remaining = deadline - time.monotonic()
            ready = wait(list(pending), timeout=max(remaining, 0)) if remaining > 0 else []
            if not ready:
                for w in pending.values():
                    failed[w] = f"did not answer within {timeout:g} s"
                break
            for conn in ready:
                w = pending.pop(conn)
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    failed[w] = None
                    continue
                if kind == "error":
                    errors[w] = payload
                elif kind != expected:
                    failed[w] = f"answered {kind!r} instead of {expected!r}"
                else:
                    replies[w] = payload
        return replies, failed, errors

    def _recover(self, failed: dict[int, str | None], requested: dict[int, tuple[Any, dict]]) -> list[int]:
        """Replace the failed workers, rebuild and reset their envs; the env ids rebuilt."""
        for w, cause in sorted(failed.items()):
            handle = self._workers[w]
            handle.kill()
            code = handle.wait(10.0)
            handle.close_channel()
            cause = cause or describe_exit(code)
            now = time.monotonic()
            while self._restarts and now - self._restarts[0] > self.restart_window_s:
                self._restarts.popleft()
            if len(self._restarts) >= self.max_restarts:
                self._fail(f"physics worker {w} (pid {handle.pid}, envs {self._span(w)}) {cause}, and "
                           f"{len(self._restarts)} workers were already replaced within the last "
                           f"{self.restart_window_s:g} s (max_physics_restarts={self.max_restarts}). Something keeps "
                           "killing or hanging the simulator: look for the out-of-memory killer (dmesg), lower "
                           "num_envs or num_workers, or raise max_physics_restarts / physics_restart_window_s "
                           "(or physics_timeout_s if steps are just slow). Close this environment and create a "
                           "new one")
            self._restarts.append(now)
            self.restart_count += 1
            logger.warning("physics worker %d (pid %d, envs %s) %s; replacing it and resetting envs %s "
                           "(restart %d of at most %d per %g s)", w, handle.pid, self._span(w), cause,
                           self.env_ids[w], len(self._restarts), self.max_restarts, self.restart_window_s)
            self._workers[w] = None
        workers = sorted(failed)
        try:
            for w in workers:
                self._workers[w] = self._launch(w)
            self._start_gather(workers)
            self._attach(workers)
            resets: dict[int, dict[int, tuple[Any, dict]]] = {}
            for w in workers:
                for i in self.env_ids[w]:
                    seed, opt = requested.get(i, (int(self._seed_rng.integers(0, 2**31 - 1)), self._options[i]))
                    resets.setdefault(w, {})[i] = (seed, opt)
                    self.restart_seeds[i] = seed
                self._workers[w].conn.send(("reset", resets[w]))
            _, dead, errors = self._collect(workers, self.timeout_s)
        except (PhysicsWorkerError, ServerError, OSError) as exc:
            self._fail(f"could not replace physics worker(s) {workers}: {exc}")
        if dead or errors:
            self._fail(f"replacement physics worker(s) {sorted({*dead, *errors})} failed their first reset: "
                       f"{dead or errors}")
        return [i for w in workers for i in self.env_ids[w]]

    # -- starting workers ---------------------------------------------------------------------------
    def _launch(self, w: int) -> WorkerHandle:
        config = pickle.dumps({"factory": self._factory, "env_ids": self.env_ids[w],
                               "cpu": self.worker_cpus[w]})
        return start_worker(self.start_method, config, self._preload, self.start_timeout_s)

    def _start_gather(self, workers: Sequence[int]) -> list[Any]:
        replies, failed, errors = self._collect(workers, self.start_timeout_s, expected="started")
        for w, (_, _, tb) in sorted(errors.items()):
            raise PhysicsWorkerError(f"physics worker {w} (envs {self._span(w)}) raised while starting:\n{tb}")
        for w, cause in sorted(failed.items()):
            handle = self._workers[w]
            handle.kill()
            raise PhysicsWorkerError(f"physics worker {w} (pid {handle.pid}, envs {self._span(w)}) "
                                     f"{cause or describe_exit(handle.wait(5.0))} while starting (building its "
                                     "simulator instances); out of memory or a crash in the simulator are the usual "
                                     "causes")
        return [replies[w] for w in workers]

    def _attach(self, workers: Sequence[int]) -> None:
        message = ("attach", {"layout": self._shared_layout(), "num_envs": self.num_envs})
        for w in workers:
            handle = self._workers[w]
            handle.conn.send(message)
            self._shared.send_fd(handle.sock)
        _, failed, errors = self._collect(workers, self.start_timeout_s, expected="ready")
        if failed or errors:
            raise PhysicsWorkerError(f"physics worker(s) {sorted({*failed, *errors})} could not map the shared "
                                     f"memory: {failed or errors}")

    def _action_shape(self, action_shape: Sequence[int] | None) -> tuple[int, ...]:
        described = self.meta.get("action_low")
        if action_shape is None:
            if described is None:
                raise ValueError("action_shape is needed: the physics instance's describe() gives no 'action_low'")
            return tuple(np.shape(described))
        shape = tuple(int(n) for n in action_shape)
        if described is not None and shape != tuple(np.shape(described)):
            raise ValueError(f"action_shape {shape} does not match the task's action space "
                             f"{tuple(np.shape(described))}; leave it None to take the task's")
        return shape

    def _shared_layout(self) -> dict[str, Field]:
        return {**self.layout, ACTION_KEY: Field(self.action_shape, "float32")}

    # -- plumbing ---------------------------------------------------------------------------------
    def _note_share(self, claim: Claim) -> None:
        if claim.source != "share" or not claim.others:
            return
        cores, held = usable_cores(), sum(claim.others)
        log = logger.warning if held + claim.num_workers > cores else logger.info
        log("physics pool: %d other gsenv pool(s) on this host hold %d workers of %d usable cores; this one "
            "takes %d%s", len(claim.others), held, cores, claim.num_workers,
            " (the cores are oversubscribed: pools started earlier keep their workers; close them or set "
            f"{NUM_WORKERS_ENV} in every instance to split the cores evenly)" if held + claim.num_workers > cores
            else "")

    @property
    def _shared(self) -> SharedArrays:
        return self._shared_box[0]

    def _checked_index(self, i: Any) -> int:
        if not 0 <= int(i) < self.num_envs:
            raise ValueError(f"env index {int(i)} out of range [0, {self.num_envs})")
        return int(i)

    def _group(self, env_idx: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in env_idx:
            out.setdefault(int(self._owner_of[self._checked_index(i)]), []).append(int(i))
        return out

    def _check_open(self) -> None:
        if self._closed:
            raise PhysicsWorkerError("the physics pool is closed; create a new environment")

    def _span(self, w: int) -> str:
        ids = self.env_ids[w]
        return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0])

    def _command_error(self, errors: dict[int, tuple[str, str, str]]) -> Exception:
        w = min(errors)
        kind, message, tb = errors[w]
        cls = {"ValueError": ValueError, "TypeError": TypeError}.get(kind, RuntimeError)
        return cls(f"physics worker {w} (envs {self._span(w)}) raised {kind}: {message}\n"
                   f"(the worker keeps running; its traceback:)\n{tb}")

    def _fail(self, message: str) -> None:
        self.close()
        raise PhysicsWorkerError(message)

    def __enter__(self) -> CpuPhysicsPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shutdown(workers: list[WorkerHandle | None], shared_box: list[SharedArrays | None], claim: Claim) -> None:
    """Ask workers to close, then kill stragglers; free shared memory and the host's cores. Runs at
    close(), on the pool's last reference going away, or at exit."""
    handles = [h for h in workers if h is not None]
    for h in handles:
        try:
            h.conn.send(("close", None))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
    deadline = time.monotonic() + 5.0
    for h in handles:
        if h.wait(max(deadline - time.monotonic(), 0.0)) is None:
            h.kill()
            h.wait(5.0)
        h.close_channel()
    workers[:] = [None] * len(workers)
    if shared_box[0] is not None:
        shared_box[0].release()
        shared_box[0] = None
    claim.release()
