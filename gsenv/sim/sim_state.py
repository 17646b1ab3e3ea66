"""One CPU ManiSkill task env's whole simulation state as flat numpy arrays: :func:`capture` and :func:`restore`.

ManiSkill's ``get_state_dict`` holds every dynamic body's pose and velocity, the articulations' joint
positions and velocities and the controllers' targets (``_target_pose`` of pd_ee_target_delta_pose,
``_target_qpos`` of the target joint modes). An episode needs more to go on exactly as it would have:

- the joints' drive targets (position and velocity) PhysX holds until the next action sets them;
- which bodies PhysX has put to sleep (a sleeping cube does not move until something wakes it);
- the task's episode bookkeeping: elapsed steps, the episode's seed and id, its generator's state
  (TaskEnv's one torch generator per env), and the values its sampler drew (``episode_values``).

Keys (values without a batch dimension; the env has one env): ``actor/<name>`` float32 [13] (position,
wxyz, linear and angular velocity), ``articulation/<name>`` float32 [13 + 2 dof] (root pose and
velocity, qpos, qvel), ``asleep/<name>`` bool [] per dynamic actor and articulation,
``drive_target/<articulation>`` and ``drive_velocity/<articulation>`` float32 [active joints],
``controller/<part>/<name>`` (e.g. controller/arm/target_pose [7]), ``elapsed_steps`` int32 [],
``episode_seed`` int64 [], ``episode_id`` int64 [] (-1: sampled from the seed), ``generator`` uint8 [n]
(torch.Generator.get_state) and ``episode_value/<key>``.

:func:`restore` first moves the bodies into a fresh PhysX scene (gsenv.sim.physx_history): PhysX's
contact caches and solver warm starts are not part of any state one can read, so a run restored from a
state depends only on that state, not on what the instance simulated before. PhysX's wake counters
are not readable either: restoring wakes every body that was awake with a full counter.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gsenv.sim.physx_history import forget_physx_history

__all__ = ["capture", "restore", "layout"]

_ACTOR, _ART, _ASLEEP = "actor/", "articulation/", "asleep/"
_TARGET, _VELOCITY, _CONTROLLER, _VALUE = "drive_target/", "drive_velocity/", "controller/", "episode_value/"


def _np(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.array(value)  # a copy: ManiSkill updates some of these in place


def _one(value: Any) -> np.ndarray:
    """The single env's row of a ManiSkill [1, ...] value."""
    out = _np(value)
    return out[0] if out.ndim >= 1 and out.shape[0] == 1 else out


def _flat_tree(prefix: str, tree: dict, out: dict[str, np.ndarray]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _flat_tree(f"{prefix}{key}/", value, out)
        else:
            out[f"{prefix}{key}"] = _one(value)


def _tree(flat: dict[str, np.ndarray], prefix: str) -> dict:
    """The nested {part: {name: tensor [1, ...]}} of the keys under prefix."""
    tree: dict = {}
    for key, value in flat.items():
        if key.startswith(prefix):
            *parts, leaf = key[len(prefix):].split("/")
            node = tree
            for p in parts:
                node = node.setdefault(p, {})
            node[leaf] = torch.as_tensor(np.asarray(value))[None]
    return tree


def _dynamic_actors(env) -> dict[str, Any]:
    return {name: a for name, a in env.scene.state_dict_registry.actors.items() if a.px_body_type == "dynamic"}


def _articulations(env) -> dict[str, Any]:
    return dict(env.scene.state_dict_registry.articulations)


def _check_cpu_single(env) -> None:
    if env.scene.gpu_sim_enabled or env.num_envs != 1:
        raise RuntimeError("gsenv.sim.sim_state handles one CPU PhysX env (num_envs=1, physx_cpu), "
                           f"not num_envs={env.num_envs} on {'GPU' if env.scene.gpu_sim_enabled else 'CPU'} PhysX")


def capture(env) -> dict[str, np.ndarray]:
    """{key: array} (see the module docstring) of ``env``, a single-env CPU gsenv TaskEnv (unwrapped)."""
    _check_cpu_single(env)
    out: dict[str, np.ndarray] = {}
    for name, actor in _dynamic_actors(env).items():
        out[_ACTOR + name] = _one(actor.get_state()).astype(np.float32)
        out[_ASLEEP + name] = np.array(actor._bodies[0].is_sleeping, dtype=bool)
    for name, art in _articulations(env).items():
        out[_ART + name] = _one(art.get_state()).astype(np.float32)
        out[_ASLEEP + name] = np.array(art.root._bodies[0].sleeping, dtype=bool)
        out[_TARGET + name] = _one(art.get_drive_targets()).astype(np.float32)
        out[_VELOCITY + name] = _one(art.get_drive_velocities()).astype(np.float32)
    _flat_tree(_CONTROLLER, env.agent.get_controller_state(), out)
    out["elapsed_steps"] = _one(env.elapsed_steps).astype(np.int32)
    out["episode_seed"] = np.array(int(env._episode_seed[0]), dtype=np.int64)
    ids = env.episode_ids
    out["episode_id"] = np.array(-1 if ids is None else int(ids[0]), dtype=np.int64)
    out["generator"] = env._generators[0].get_state().numpy().copy()
    for key, value in env.episode_values.items():
        out[_VALUE + key] = _one(value)
    return out


def layout(env) -> dict[str, tuple[tuple[int, ...], str]]:
    """{key: (shape, numpy dtype name)} of what :func:`capture` returns for this env (it runs it)."""
    return {k: (tuple(v.shape), v.dtype.name) for k, v in capture(env).items()}


def restore(env, state: dict[str, np.ndarray]) -> None:
    """Put ``env`` (as :func:`capture` takes it) into ``state``, a dict :func:`capture` returned for an env
    of the same task and configuration (checked by the caller). The next step goes on as it would
    from that state in a fresh instance."""
    _check_cpu_single(env)
    forget_physx_history(env)  # a fresh scene: nothing of what this instance simulated before is kept
    actors, arts = _dynamic_actors(env), _articulations(env)
    sim = {"actors": {n: torch.as_tensor(state[_ACTOR + n])[None] for n in actors},
           "articulations": {n: torch.as_tensor(state[_ART + n])[None] for n in arts}}
    env.scene.set_sim_state(sim)
    for name, art in arts.items():
        joints = art.active_joints
        art.set_joint_drive_targets(torch.as_tensor(state[_TARGET + name])[None], joints)
        art.set_joint_drive_velocity_targets(torch.as_tensor(state[_VELOCITY + name])[None], joints)
    controller = _tree(state, _CONTROLLER)
    if controller:
        env.agent.set_controller_state(controller)
    env._elapsed_steps[0] = int(state["elapsed_steps"])
    env._episode_seed = np.array([int(state["episode_seed"])], dtype=np.int64)
    if env.episode_ids is None:
        env.episode_ids = torch.full((1,), -1, dtype=torch.int64)
    env.episode_ids[0] = int(state["episode_id"])
    env._generators[0].set_state(torch.as_tensor(state["generator"]))
    for key, value in state.items():
        if key.startswith(_VALUE):
            env.episode_values[key[len(_VALUE):]] = torch.as_tensor(np.asarray(value))[None].to(env.device)
    for name, actor in actors.items():  # setting poses and velocities woke them
        if bool(state[_ASLEEP + name]):
            actor._bodies[0].put_to_sleep()
    for name, art in arts.items():
        if bool(state[_ASLEEP + name]):
            art.root._bodies[0].put_to_sleep()
