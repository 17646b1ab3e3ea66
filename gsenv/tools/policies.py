"""The policies `gsenv eval` (and the viewer) run, from a spec string: `make_policy(spec, env)`.

Specs:
    "expert"             the task's scripted expert on the env's privileged state; closed loop (T = 1).
    "module:callable"    a Python callable, imported, called as fn(obs, env) on the batched observation;
                         it returns actions [B, A] (T = 1) or chunks [B, T, A] (torch or numpy, floating);
                         the first `chunk` steps of a chunk are run. It may have reset(env_idx) / close().
    "ws://host:port"     an openpi policy server (openpi's wire format: gsenv.tools.openpi_wire), one
                         connection per env; each env's request is {"observation/image": uint8 [H, W, 3]
                         (the env's first fixed camera), "observation/wrist_image": uint8 [H, W, 3] (the
                         first camera on a robot link, only when the env has one), "observation/state":
                         float32 [9] (agent qpos), "prompt": str} (server_image_cameras); the answer
                         {"actions": float [>= chunk, >= A]} of which the first `chunk` steps and the
                         first A dims are kept (as RLinf does).

A Policy is called as ``policy(obs, env)`` -> float32 [B, T, A] on ``env.unwrapped.device``: an action
chunk, run open-loop. ``policy(obs, env, env_idx=idx)`` asks only for the envs idx (int [K]) ->
[K, T, A] (a server is asked only about those). ``reset(env_idx)`` after those envs were reset,
``close()`` at the end (also as a context manager).
"""
from __future__ import annotations

import importlib
import math
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, wait
from urllib.parse import urlparse

import numpy as np
import torch

from gsenv.sim.inputs import checked_action_chunk
from gsenv.tools.openpi_wire import Connection, OpenpiError

SPEC_FORMS = '"expert", "module:callable" or "ws://host:port"'
IMAGE_KEY, STATE_KEY, PROMPT_KEY, ACTIONS_KEY = "observation/image", "observation/state", "prompt", "actions"
# the second image of openpi's LIBERO-style inputs (openpi's LiberoInputs: observation/image is the
# third-person view, observation/wrist_image the wrist view; RLinf's pi05_gsenv reads observation/image only)
WRIST_IMAGE_KEY = "observation/wrist_image"


class PolicyError(RuntimeError):
    """A policy that cannot be made or run: bad spec, unreachable or failing server, wrong output."""


class Policy:
    """Base: `spec` names it, `chunk` is the most steps one call returns (T <= chunk)."""

    spec: str = ""
    chunk: int = 1

    def __call__(self, obs, env, env_idx: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def reset(self, env_idx: Sequence[int] | torch.Tensor) -> None:
        """The envs env_idx were just reset (a new episode starts there)."""

    def close(self) -> None:
        """Free what the policy holds (connections, threads); closing twice is fine."""

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_policy(spec: str, env, *, chunk: int = 5, timeout_s: float = 30.0) -> Policy:
    """The policy for `spec` (see the module doc) on `env` (a GSEnv, wrapped or not).

    chunk: steps of each answered chunk run open-loop (servers and callables; the expert is always 1).
    timeout_s: how long a server may take to connect or answer one batch of requests.
    Raises PolicyError for a bad spec or an unreachable server.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PolicyError(f"a policy spec is {SPEC_FORMS}, got {spec!r}")
    if not (isinstance(chunk, int) and not isinstance(chunk, bool) and chunk >= 1):
        raise PolicyError(f"chunk must be an int >= 1, got {chunk!r}")
    if not (isinstance(timeout_s, (int, float)) and not isinstance(timeout_s, bool) and math.isfinite(timeout_s)
            and timeout_s > 0):
        raise PolicyError(f"timeout_s must be a finite number of seconds > 0, got {timeout_s!r}")
    spec = spec.strip()
    if spec == "expert":
        return ExpertPolicy()
    if spec.startswith(("ws://", "wss://")):
        return ServerPolicy(spec, env, chunk=chunk, timeout_s=float(timeout_s))
    if ":" in spec:
        return CallablePolicy(spec, _import_callable(spec), chunk=chunk)
    raise PolicyError(f"unknown policy spec {spec!r}: use {SPEC_FORMS}")


# ----------------------------------------------------------------------------------------- helpers
def _rows(env_idx, num_envs: int, device) -> torch.Tensor | None:
    """env_idx -> int64 [K] on device (None: all envs)."""
    if env_idx is None:
        return None
    idx = torch.as_tensor(env_idx, dtype=torch.int64).reshape(-1)
    if idx.numel() and (idx.min() < 0 or idx.max() >= num_envs):
        raise PolicyError(f"env_idx must lie in [0, {num_envs}), got {idx.tolist()}")
    return idx.to(device)


def _action_dim(env) -> int:
    return int(env.unwrapped.single_action_space.shape[0])


def server_image_cameras(env) -> dict[str, str]:
    """{request key: env camera} of the images sent to an openpi server: the env's first fixed camera
    under observation/image (the third-person view openpi's pi05 inputs read there), its first camera on
    a robot link (the wrist) under observation/wrist_image; other cameras are not sent. The same roles
    as `gsenv collect`'s observation.image / observation.wrist_image. PolicyError for an env without a
    fixed camera: its wrist view must not be sent as the third-person image."""
    base = env.unwrapped
    names = list(base.camera_names)
    moving = tuple(base.cameras.moving) or (False,) * len(names)
    fixed = [n for n, m in zip(names, moving) if not m]
    on_link = [n for n, m in zip(names, moving) if m]
    if not fixed:
        raise PolicyError(f"an openpi policy server reads the third-person image as {IMAGE_KEY!r}, but the env's "
                          f"cameras {names} are all on robot links: add a fixed camera (e.g. --camera "
                          f"3rd_view_camera,{names[0]})")
    return {IMAGE_KEY: fixed[0], **({WRIST_IMAGE_KEY: on_link[0]} if on_link else {})}


def _import_callable(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PolicyError(f"a callable policy is given as module:callable (e.g. mypkg.policies:act), got {spec!r}")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PolicyError(f"cannot import module {module_name!r} of the policy {spec!r}: {exc} (is it on "
                          f"PYTHONPATH, or installed?)") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PolicyError(f"module {module_name!r} has no attribute {attr!r} (policy {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PolicyError(f"{spec!r} is not callable (it is of type {type(obj).__name__}): name a function "
                          f"fn(obs, env) -> actions")
    return obj


def checked_chunk(actions, num_envs: int, action_dim: int, chunk: int, who: str) -> torch.Tensor:
    """A callable's output [B, A] or [B, T, A] (sim.inputs.checked_action_chunk) -> float32 [B, min(T, chunk), A];
    PolicyError otherwise."""
    try:
        return checked_action_chunk(actions, num_envs, action_dim, who)[:, :chunk]
    except (TypeError, ValueError) as exc:
        raise PolicyError(str(exc)) from None


# ----------------------------------------------------------------------------------------- the policies
class ExpertPolicy(Policy):
    """The env's task's scripted expert (env.unwrapped.expert_action()): [B, 1, A], closed loop."""

    spec, chunk = "expert", 1

    def __call__(self, obs, env, env_idx=None) -> torch.Tensor:
        base = env.unwrapped
        actions = base.expert_action()[:, None]  # [B, 1, A]
        rows = _rows(env_idx, base.num_envs, actions.device)
        actions = actions if rows is None else actions[rows]
        return actions.to(device=base.device, dtype=torch.float32)


class CallablePolicy(Policy):
    """fn(obs, env) -> [B, A] or [B, T, A], checked; fn.reset(env_idx) / fn.close() forwarded when it has them."""

    def __init__(self, spec: str, fn, chunk: int):
        self.spec, self.fn, self.chunk = spec, fn, chunk

    def __call__(self, obs, env, env_idx=None) -> torch.Tensor:
        base = env.unwrapped
        actions = checked_chunk(self._call(self.fn, obs, env), base.num_envs, _action_dim(env), self.chunk,
                                f"the policy {self.spec!r}").to(base.device)
        rows = _rows(env_idx, base.num_envs, actions.device)
        return actions if rows is None else actions[rows]

    def reset(self, env_idx) -> None:
        if callable(getattr(self.fn, "reset", None)):
            self._call(self.fn.reset, env_idx)

    def close(self) -> None:
        if callable(getattr(self.fn, "close", None)):
            self._call(self.fn.close)

    def _call(self, fn, *args):
        """fn(*args); a SystemExit from the user's code (sys.exit(), exit()) becomes a PolicyError: it must
        not end a run as if it had finished."""
        try:
            return fn(*args)
        except SystemExit as exc:
            raise PolicyError(f"the policy {self.spec!r} raised SystemExit({exc.code!r}) (it called sys.exit() or "
                              f"exit()): a policy returns actions; raise an exception to stop") from None


def _checked_uri(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise PolicyError(f"a policy server is given as ws://host:port (e.g. ws://127.0.0.1:8000), got {uri!r}")
    return uri


def probe_server(uri: str, timeout_s: float = 30.0) -> dict:
    """Connect once to the openpi server at uri and hang up; -> its metadata. PolicyError when it is not
    reachable: lets a tool fail in a second, before it builds an env."""
    worker = _Worker("openpi-probe")
    future = worker.submit(Connection, _checked_uri(uri), timeout_s)
    worker.stop()
    done, _ = wait([future], timeout=timeout_s)
    if not done:
        future.add_done_callback(lambda f: f.exception() is None and f.result().close())
        raise PolicyError(f"the openpi policy server at {uri} did not accept a connection within {timeout_s:g} s")
    try:
        conn = future.result()
    except OpenpiError as exc:
        raise PolicyError(str(exc)) from None
    conn.close()
    return conn.metadata


class _Worker:
    """One daemon thread running one call at a time (an openpi server answers one observation at a
    time per connection). Daemon: a server that never answers must not keep the process alive."""

    def __init__(self, name: str):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self._calls.put((future, fn, args))
        return future

    def stop(self) -> None:
        self._calls.put(None)

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the waiting caller
                    future.set_exception(exc)


class ServerPolicy(Policy):
    """An openpi policy server: one connection and one worker thread per env, one request in flight per env.

    The batch's requests go out at once; the call waits at most timeout_s for all answers. After a
    timeout or a failed answer the policy is closed (a late answer would be taken for the next one).
    """

    def __init__(self, uri: str, env, *, chunk: int, timeout_s: float):
        _checked_uri(uri)
        base = env.unwrapped
        self.spec, self.uri, self.chunk, self.timeout_s = uri, uri, chunk, timeout_s
        self.num_envs, self.action_dim, self.device = base.num_envs, _action_dim(env), base.device
        self.cameras = server_image_cameras(env)  # {request key: camera}, checked before any connection
        self._closed = False
        self._workers = [_Worker(f"openpi-env{i}") for i in range(self.num_envs)]
        self._connections: list[Connection | None] = [None] * self.num_envs
        futures = [w.submit(Connection, uri, timeout_s) for w in self._workers]
        try:
            self._connections = self._gather(futures, "accept the connection of", range(self.num_envs))
        except BaseException:
            for f in futures:  # a connection that completes after we gave up is closed then
                f.add_done_callback(lambda f: f.exception() is None and f.result().close())
            self.close()
            raise
        self.client_kind = self._connections[0].kind  # "openpi_client" or "gsenv"
        self.metadata = self._connections[0].metadata

    def __call__(self, obs, env, env_idx=None) -> torch.Tensor:
        if self._closed:
            raise PolicyError(f"the policy for {self.uri} is closed (after an error, or by close()); make a new one")
        rows = _rows(env_idx, self.num_envs, "cpu")
        rows = list(range(self.num_envs)) if rows is None else rows.tolist()
        if not rows:
            return torch.zeros(0, self.chunk, self.action_dim, device=self.device)
        images, states, prompts = self._inputs(obs, env, rows)
        futures = [self._workers[i].submit(self._connections[i].infer,
                                           {**{key: im[k] for key, im in images.items()},
                                            STATE_KEY: states[k], PROMPT_KEY: prompts[k]})
                   for k, i in enumerate(rows)]
        try:
            answers = self._gather(futures, "answer the observation of", rows)
            chunks = [self._checked_answer(a, i) for a, i in zip(answers, rows)]
        except BaseException:
            self.close()
            raise
        return torch.from_numpy(np.stack(chunks)).to(self.device)  # [K, chunk, A]

    def close(self) -> None:
        self._closed = True
        for conn in self._connections:
            if conn is not None:
                conn.close()  # also ends an infer still blocked in its thread
        for w in getattr(self, "_workers", []):
            w.stop()

    # ------------------------------------------------------------------------------ internals
    def _inputs(self, obs, env, rows: list[int]):
        """openpi's inputs for the envs `rows`: {request key: images uint8 [K, H, W, 3]}, states float32 [K, 9],
        prompts [K]."""
        try:
            rgb = {key: obs["sensor_data"][camera]["rgb"] for key, camera in self.cameras.items()}
            qpos = obs["agent"]["qpos"]
        except (KeyError, TypeError):
            reads = ", ".join(f"sensor_data/{camera}/rgb" for camera in self.cameras.values())
            raise PolicyError(f"an openpi policy needs the camera images and the agent state: make the env with "
                              f"obs_mode 'rgb' (it reads {reads} and agent/qpos)") from None
        images = {key: np.ascontiguousarray(im[rows].detach().cpu().numpy(), dtype=np.uint8) for key, im in rgb.items()}
        states = np.ascontiguousarray(qpos[rows].detach().cpu().numpy(), dtype=np.float32)
        instructions = env.unwrapped.get_language_instruction()
        return images, states, [instructions[i] for i in rows]

    def _gather(self, futures: list[Future], what: str, rows) -> list:
        """Every future's result within timeout_s; PolicyError naming the server otherwise."""
        done, pending = wait(futures, timeout=self.timeout_s)
        if pending:
            late = [i for f, i in zip(futures, rows) if f in pending]
            raise PolicyError(f"the openpi policy server at {self.uri} did not {what} env(s) {late} within "
                              f"{self.timeout_s:g} s (timeout_s / --timeout): is it running, and serving a "
                              f"policy that answers one observation at a time?")
        results = []
        for f in futures:
            try:
                results.append(f.result())
            except OpenpiError as exc:
                raise PolicyError(str(exc)) from None
        return results

    def _checked_answer(self, answer, env_i: int) -> np.ndarray:
        """The server's answer for env env_i -> float32 [chunk, A] (the first chunk steps, first A dims)."""
        expected = (f'{{"{ACTIONS_KEY}": float array [>= {self.chunk}, >= {self.action_dim}]}} (at least '
                    f"--chunk {self.chunk} steps; the first {self.action_dim} dims are the env's action)")
        if not isinstance(answer, dict) or ACTIONS_KEY not in answer:
            keys = sorted(map(str, answer)) if isinstance(answer, dict) else type(answer).__name__
            raise PolicyError(f"the openpi policy server at {self.uri} answered env {env_i} with {keys}; "
                              f"expected {expected}")
        actions = answer[ACTIONS_KEY]
        if not isinstance(actions, np.ndarray):
            raise PolicyError(f"the openpi policy server at {self.uri} answered env {env_i} with actions of "
                              f"{type(actions).__name__}; expected {expected}")
        if actions.ndim != 2 or actions.shape[0] < self.chunk or actions.shape[1] < self.action_dim:
            raise PolicyError(f"the openpi policy server at {self.uri} answered env {env_i} with actions of shape "
                              f"{list(actions.shape)}; expected {expected}")
        try:  # the one check of a policy's actions, whatever the source: floating, finite
            kept = checked_action_chunk(actions[None, :self.chunk, :self.action_dim], 1, self.action_dim,
                                        f"the openpi policy server at {self.uri} (env {env_i})")
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{exc}; expected {expected}") from None
        return kept[0].numpy()
