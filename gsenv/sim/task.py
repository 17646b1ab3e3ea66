"""The physics task as a ManiSkill3 BaseEnv, one class for every gsenv task: :class:`TaskEnv`.

A gsenv task (:class:`gsenv.tasks.Task`) declares its objects, initial states, success, reward and what it
reports; ``TaskEnv`` is the ManiSkill env around it, registered per task as ``GSEnvSim-<Name>-v0`` by
:func:`register_physics_task` (a subclass whose ``task`` is that task).

Scene (world = robot base frame, x forward, z up): a static table plane at z = 0, the FR3 at the origin,
the task's objects (:mod:`gsenv.sim.objects`). Physics 500 Hz, control 10 Hz, 100-step episodes, solver as
the research code (contact offset 5 mm, 25 position / 2 velocity iterations); ``sim_config`` overrides them.

State observations only (no SAPIEN cameras: images come from the gaussian renderer): ``agent``: qpos
[B, 9], qvel [B, 9]; ``extra``: the task's (``Task.obs_extra``). obs_mode "state" flattens them in that
order; "state_dict" keeps the nesting. What the task reports (these, its info scalars, its body poses) is
declared once in its ``record`` (:mod:`gsenv.sim.record`).

``gym.make(physics id)`` checks actions at its outermost wrapper (:class:`CheckedActions`, where a direct
user's actions enter); the task itself does not: gsenv's physics backends drive it unwrapped with
actions ``GSEnv.step`` checked.

Construction keywords beyond BaseEnv's (all optional):
    robot_urdf: path of a robot URDF using the canonical names (default: FR3-named ManiSkill Panda).
    <object name>: one per task object (e.g. ``cube=``): a :class:`gsenv.sim.objects.ObjectSpec` collision
        geometry (default: the task's ``object_specs()``).
    spawn: the task's spawn configuration (``Task.spawn_config``: ranges, yaw randomisation, noise).
    randomize_yaw: shorthand for ``spawn.randomize_yaw``.
    robot_init_qpos_noise: shorthand for ``spawn.qpos_noise`` (default 0.02 rad).
    obj_set: shorthand for ``spawn.obj_set`` ("train", "test" or "all"), for tasks whose spawn configuration
        has object splits (gsenv.tasks.put_on_receptacle); a ValueError for the others.
    total_num_trials: size of the fixed initial-state table indexed by options["episode_id"].
    sparse_reward_at_end: pay the sparse reward only on the episode's last step.
    episode_steps: the episode length used by sparse_reward_at_end (default 100).
    upstream_compat: the research code's behaviour (see below).

Reset option ``physics_values`` (gsenv.sim.dynamics.OPTION_KEY; single-env CPU PhysX): this episode's
factors on object mass and friction and on the arm's PD gains (gsenv's physics randomisation sends them).

``upstream_compat=True`` changes exactly three things: no gravity compensation on the robot, no
clipping of actions to the action space, and the task's looser success test where it has one
(PutCubeOnPlate: cube on the plate, whether or not it is held or moving).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import gymnasium as gym
import numpy as np
import sapien
import torch
from gymnasium.envs.registration import WrapperSpec
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.utils import common
from mani_skill.utils.registration import REGISTERED_ENVS, register_env
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SceneConfig, SimConfig

from gsenv.sim import dynamics, names
from gsenv.sim.agent import MyFranka, make_agent_class
from gsenv.sim.initial_state import episode_generator, yaw_to_quat
from gsenv.sim.inputs import checked_actions, checked_episode_ids
from gsenv.sim.objects import ObjectSpec, build_object, build_table
from gsenv.sim.physx_history import forget_physx_history
from gsenv.sim.poses import body_poses

__all__ = ["TaskEnv", "register_physics_task", "CheckedActions"]

logger = logging.getLogger(__name__)


class TaskEnv(BaseEnv):
    """One gsenv task (the class attribute ``task``) on the Franka FR3, state observations.

    Not registered itself: :func:`register_physics_task` registers a subclass per task."""

    SUPPORTED_ROBOTS = [names.ROBOT_UID, names.ROBOT_UID_ALIAS]
    SUPPORTED_OBS_MODES = ("state", "state_dict", "none")
    SUPPORTED_REWARD_MODES = names.REWARD_MODES
    task: Any = None
    """The gsenv.tasks.Task this env runs (set on the subclass register_physics_task makes)."""
    agent: MyFranka

    def __init__(
        self,
        *args,
        robot_uids: str = names.ROBOT_UID,
        control_mode: str | None = names.DEFAULT_CONTROL_MODE,
        robot_urdf: str | None = None,
        spawn: Any = None,
        randomize_yaw: bool | None = None,
        robot_init_qpos_noise: float | None = None,
        obj_set: str | None = None,
        total_num_trials: int = names.DEFAULT_TOTAL_NUM_TRIALS,
        sparse_reward_at_end: bool = False,
        episode_steps: int = names.EPISODE_STEPS,
        upstream_compat: bool = False,
        **kwargs,
    ):
        task = self.task
        if task is None:
            raise TypeError("TaskEnv runs a task: make it through gsenv.sim.task.register_physics_task(task)")
        if robot_uids not in self.SUPPORTED_ROBOTS:
            raise ValueError(
                f"robot_uids must be one of {self.SUPPORTED_ROBOTS} (this task has one robot, the FR3), "
                f"got {robot_uids!r}; to use another robot description pass robot_urdf=..."
            )
        self.object_specs: dict[str, ObjectSpec] = dict(task.object_specs())
        """{object name: its collision geometry}, in the task's object order."""
        for name in task.objects:
            spec = kwargs.pop(name, None)
            if spec is not None and not isinstance(spec, ObjectSpec):
                raise TypeError(f"{name} must be a gsenv.sim.objects.ObjectSpec, got {type(spec).__name__}")
            if spec is not None:
                self.object_specs[name] = spec
        default_spawn = task.spawn_config(self.object_specs)
        if spawn is not None and not isinstance(spawn, type(default_spawn)):
            raise TypeError(f"spawn must be a {type(default_spawn).__module__}.{type(default_spawn).__name__} (task "
                            f"{task.name}'s spawn configuration), got {type(spawn).__name__}")
        if not (isinstance(total_num_trials, (int, np.integer)) and total_num_trials > 0):
            raise ValueError(f"total_num_trials must be a positive int, got {total_num_trials!r}")
        self.record = task.record
        """What every reset and step reports (state entries, info scalars, body poses): gsenv.sim.record."""
        self.upstream_compat = bool(upstream_compat)
        self.robot_urdf = None if robot_urdf is None else str(robot_urdf)
        overrides = {}
        if randomize_yaw is not None:
            overrides["randomize_yaw"] = bool(randomize_yaw)
        if robot_init_qpos_noise is not None:
            overrides["qpos_noise"] = float(robot_init_qpos_noise)
        if obj_set is not None:
            if not any(f.name == "obj_set" for f in dataclasses.fields(spawn or default_spawn)):
                raise ValueError(f"task {task.name} has no object sets: obj_set={obj_set!r} applies to the "
                                 "pick-and-place family (e.g. GSEnv/PutCubeOnPlateMain-v0); leave it out")
            overrides["obj_set"] = obj_set
        self.spawn = dataclasses.replace(spawn or default_spawn, **overrides)
        self.total_num_trials = int(total_num_trials)
        self.sparse_reward_at_end = bool(sparse_reward_at_end)
        self.episode_steps = int(episode_steps)
        self.objects: dict = {}
        """{object name: ManiSkill Actor}, in the task's object order (each also an attribute, env.<name>)."""
        self.episode_values: dict[str, torch.Tensor] = {}
        """{key: [B, ...]}: what the task's sampler drew beyond the initial poses (Task.sample_initial_state)."""
        self._generators: list[torch.Generator] | None = None
        self.episode_ids: torch.Tensor | None = None
        """int64 [B]: the episode_id each env was last reset to, -1 where it was sampled from its seed."""
        self._last_state_dict: tuple[dict, dict] | None = None  # (info, the state dict built for it)
        self._action_bounds: tuple[str, torch.Tensor, torch.Tensor] | None = None  # (control mode, low, high)
        super().__init__(*args, robot_uids=robot_uids, control_mode=control_mode, **kwargs)

    # ---------------------------------------------------------------------------------------- #
    # configuration hooks
    # ---------------------------------------------------------------------------------------- #
    @property
    def _default_sim_config(self):
        return SimConfig(
            sim_freq=names.SIM_FREQ,
            control_freq=names.CONTROL_FREQ,
            scene_config=SceneConfig(
                contact_offset=0.005, solver_position_iterations=25, solver_velocity_iterations=2
            ),
        )

    @property
    def _default_sensor_configs(self):
        return []

    @property
    def _default_human_render_camera_configs(self):
        return []

    def _load_agent(self, options: dict, initial_agent_poses=None, build_separate: bool = False):
        agent_cls = make_agent_class(self.robot_urdf, balance_passive_force=not self.upstream_compat)
        self.agent = agent_cls(
            self.scene, self._control_freq, self._control_mode, initial_pose=sapien.Pose()
        )

    def _load_scene(self, options: dict):
        self.table = build_table(self.scene)
        for i, (name, spec) in enumerate(self.object_specs.items()):
            # spawned apart, far away; _initialize_episode places them
            far = sapien.Pose(p=[10.0, 1.0 - 2.0 * i, spec.rest_height])
            self.objects[name] = build_object(self.scene, spec, name, far)
            setattr(self, name, self.objects[name])

    # ---------------------------------------------------------------------------------------- #
    # randomness: one torch generator per env
    # ---------------------------------------------------------------------------------------- #
    def _set_episode_rng(self, seed, env_idx):
        super()._set_episode_rng(seed, env_idx)
        idx = common.to_numpy(env_idx).astype(np.int64).tolist()
        if self._generators is None:
            self._generators = [None] * self.num_envs
        if seed is not None or self._enhanced_determinism or any(self._generators[i] is None for i in idx):
            for i in idx:
                self._generators[i] = torch.Generator().manual_seed(int(self._episode_seed[i]))

    def _episode_ids_from_options(self, options: dict, b: int) -> list[int] | None:
        ids = options.get("episode_id")
        return None if ids is None else checked_episode_ids(ids, b, self.total_num_trials)

    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        idx = common.to_numpy(env_idx).astype(np.int64).tolist()
        b = len(idx)
        ids = self._episode_ids_from_options(options, b)
        if ids is None:
            gens = [self._generators[i] for i in idx]
        else:
            gens = [episode_generator(k) for k in ids]
        if self.episode_ids is None:
            self.episode_ids = torch.full((self.num_envs,), -1, dtype=torch.int64)
        self.episode_ids[idx] = torch.tensor(ids if ids is not None else [-1] * b, dtype=torch.int64)

        drawn = [self.task.sample_initial_state(g, self.spawn) for g in gens]
        dev = self.device
        qpos = torch.tensor(names.FR3_DEFAULT_QPOS, dtype=torch.float32).repeat(b, 1)
        if b:
            qpos[:, : names.NUM_ARM_JOINTS] += torch.stack([d["qpos_noise"] for d in drawn]).to(torch.float32)
        self.agent.reset(qpos.to(dev))
        self.agent.robot.set_pose(sapien.Pose())
        for key in (k for k in (drawn[0] if b else {}) if k != "qpos_noise" and k not in self.objects):
            values = torch.stack([torch.as_tensor(d[key]) for d in drawn]).to(dev)
            if key not in self.episode_values:
                self.episode_values[key] = torch.zeros((self.num_envs, *values.shape[1:]), dtype=values.dtype,
                                                       device=dev)
            self.episode_values[key][torch.as_tensor(idx, device=dev)] = values
        for name, actor in self.objects.items():
            xyyaw = (torch.stack([d[name] for d in drawn]) if b else torch.zeros(0, 3)).to(torch.float32)  # [b, 3]
            p = torch.cat([xyyaw[:, 0:2], torch.full((b, 1), self.object_specs[name].rest_height)], dim=1)
            actor.set_pose(Pose.create_from_pq(p.to(dev), yaw_to_quat(xyyaw[:, 2]).to(dev)))
        # this episode's drawn physics (gsenv.physics.randomization), or the base after an episode that had some
        dynamics.apply_physics_values(self, options.get(dynamics.OPTION_KEY))
        forget_physx_history(self)  # the episode then depends only on its initial state and actions

    # ---------------------------------------------------------------------------------------- #
    # actions
    # ---------------------------------------------------------------------------------------- #
    def _step_action(self, action):
        """Clips actions [B, A] to the action space (not with upstream_compat); they were checked where
        they entered (CheckedActions, GSEnv.step). First the task may change the scene (Task.before_step)."""
        self.task.before_step(self)
        if action is None or isinstance(action, dict):
            return super()._step_action(action)
        action = torch.as_tensor(action, device=self.device)
        if not self.upstream_compat:
            if self._action_bounds is None or self._action_bounds[0] != self.control_mode:
                space = self.single_action_space
                self._action_bounds = (self.control_mode, torch.as_tensor(space.low, device=self.device),
                                       torch.as_tensor(space.high, device=self.device))
            _, low, high = self._action_bounds
            action = torch.maximum(torch.minimum(action, high), low)
        return super()._step_action(action)

    # ---------------------------------------------------------------------------------------- #
    # evaluation, observation, reward: the task's
    # ---------------------------------------------------------------------------------------- #
    def evaluate(self) -> dict[str, torch.Tensor]:
        """-> dict of bool [B]: the task's info scalars (success among them)."""
        return self.task.evaluate(self)

    def _get_obs_agent(self):
        robot = self.agent.robot
        return dict(qpos=robot.get_qpos(), qvel=robot.get_qvel())

    def _get_obs_extra(self, info: dict):
        return self.task.obs_extra(self, info)

    def _get_obs_state_dict(self, info: dict):
        state = super()._get_obs_state_dict(info)
        self._last_state_dict = (info, state)
        return state

    def obs_state_dict(self, info: dict) -> dict:
        """The state-dict observation ({agent: {...}, extra: {...}}) for ``info``: the one the last
        get_obs(info) (reset/step) built when ``info`` is that very dict, else a freshly built one."""
        last = self._last_state_dict
        if last is not None and last[0] is info:
            return last[1]
        return self._get_obs_state_dict(info)

    def compute_sparse_reward(self, obs: Any, action: torch.Tensor, info: dict):
        reward = info["success"].to(torch.float32)
        if self.sparse_reward_at_end:
            reward = reward * (self.elapsed_steps >= self.episode_steps).to(torch.float32)
        return reward

    def compute_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        return self.task.dense_reward(self, info)

    def compute_normalized_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        return self.compute_dense_reward(obs, action, info) / self.task.dense_reward_max

    # ---------------------------------------------------------------------------------------- #
    # product-facing helpers
    # ---------------------------------------------------------------------------------------- #
    def get_language_instruction(self) -> list[str]:
        """One instruction string per env (list of B str): the task's phrasing for each env's episode."""
        from gsenv.tasks.base import Task, instruction_for

        ids = self.episode_ids.tolist() if self.episode_ids is not None else [-1] * self.num_envs
        seeds = common.to_numpy(self._episode_seed).tolist() if self._episode_seed is not None else [None] * len(ids)
        fills_in = type(self.task).instruction is not Task.instruction  # needs the episode's state
        state = BaseEnv._get_obs_state_dict(self, self.get_info()) if fills_in else None
        return [instruction_for(self.task, s, None if k < 0 else k, state, i)
                for i, (s, k) in enumerate(zip(seeds, ids))]

    def get_body_poses(self) -> dict[str, torch.Tensor]:
        """{canonical name: float32 [B, 7]} for every robot link, the robot root and the task's objects."""
        return body_poses(self)

    def get_expert_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword tensors for the task's scripted expert (``task.expert_action``), all [B, ...], of the
        current state."""
        return self.task.expert_inputs(BaseEnv._get_obs_state_dict(self, self.get_info()))


def register_physics_task(task) -> str:
    """Register ``task``'s physics-only ManiSkill env (a TaskEnv subclass) once -> its id, GSEnvSim-<Name>-v0."""
    from gsenv.tasks.base import checked_task, physics_id

    task = checked_task(task)
    env_id = physics_id(task.name)
    known = REGISTERED_ENVS.get(env_id)
    if known is not None:
        if type(known.cls.task) is not type(task):
            raise ValueError(f"ManiSkill id {env_id} is already registered for another task "
                             f"({type(known.cls.task).__qualname__}); give your task another name")
        return env_id
    cls = type(f"{task.name}Env", (TaskEnv,), {"task": task, "__module__": __name__,
                                               "__doc__": f"The ManiSkill env of gsenv task {task.name}."})
    register_env(env_id, max_episode_steps=task.episode_steps)(cls)
    _add_action_check(env_id)
    return env_id


class CheckedActions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The outermost wrapper of ``gym.make(physics id)``: each action is checked as it enters
    (gsenv.sim.inputs.checked_actions: shape [B, A], or [A] when B = 1; finite; one clear message)."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)

    def step(self, action):
        if action is not None and not isinstance(action, dict):
            u = self.env.unwrapped
            action = checked_actions(action, u.num_envs, u.single_action_space.shape[0], u.control_mode)
        return self.env.step(action)


def _add_action_check(env_id: str) -> None:
    spec = gym.registry[env_id]
    if not any(w.name == "CheckedActions" for w in spec.additional_wrappers):
        spec.additional_wrappers = (*spec.additional_wrappers,
                                    WrapperSpec("CheckedActions", f"{__name__}:CheckedActions", {}))
