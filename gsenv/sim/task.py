"""PutCubeOnPlate: the physics task as a ManiSkill3 BaseEnv, registered as ``GSEnvSim-PutCubeOnPlate-v0``.

Scene (world = robot base frame, x forward, z up): a static table plane at z = 0, the FR3 at the
origin, a 4 cm 0.3 kg cube and an 18 cm 0.3 kg dish (:mod:`gsenv.sim.objects`). Physics 500 Hz,
control 10 Hz, 100-step episodes, solver as the research code (contact offset 5 mm, 25 position /
2 velocity iterations); ``sim_config`` overrides them.

State observations only (no SAPIEN cameras: images come from the gaussian renderer):
``agent``: qpos [B, 9], qvel [B, 9]; ``extra``: is_grasped [B], tcp_pose [B, 7], cube_pose [B, 7],
plate_pose [B, 7] (position + quaternion wxyz), tcp_to_cube_pos [B, 3], cube_to_plate_pos [B, 3].
obs_mode "state" flattens them in that order to [B, 46]; "state_dict" keeps the nesting. What the task
reports (these, its info scalars, its body poses) is declared once in ``record``
(:data:`gsenv.sim.record.PUT_CUBE_ON_PLATE`).

``gym.make(TASK_ID)`` checks actions at its outermost wrapper (:class:`CheckedActions`, where a direct
user's actions enter); the task itself does not: gsenv's physics backends drive it unwrapped with
actions ``GSEnv.step`` checked.

Construction keywords beyond BaseEnv's (all optional):
    robot_urdf: path of a robot URDF using the canonical names (default: FR3-named ManiSkill Panda).
    cube, plate: :class:`gsenv.sim.objects.ObjectSpec` collision geometry (default primitives).
    spawn: :class:`gsenv.sim.initial_state.SpawnConfig` (spawn ranges, yaw randomisation, noise).
    randomize_yaw: shorthand for ``spawn.randomize_yaw``.
    robot_init_qpos_noise: shorthand for ``spawn.qpos_noise`` (default 0.02 rad).
    total_num_trials: size of the fixed initial-state table indexed by options["episode_id"].
    sparse_reward_at_end: pay the sparse reward only on the episode's last step.
    episode_steps: the episode length used by sparse_reward_at_end (default 100).
    upstream_compat: the research code's behaviour (see below).

``upstream_compat=True`` changes exactly three things: no gravity compensation on the robot, no
clipping of actions to the action space, and the looser success test (cube on the plate, whether
or not it is held or moving).
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
from mani_skill.utils.registration import register_env
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SceneConfig, SimConfig

from gsenv.sim import names
from gsenv.sim.agent import MyFranka, make_agent_class
from gsenv.sim.initial_state import SpawnConfig, episode_generator, sample_batch, yaw_to_quat
from gsenv.sim.inputs import checked_actions, checked_episode_ids
from gsenv.sim.objects import ObjectSpec, build_object, build_table, default_cube_spec, default_plate_spec
from gsenv.sim.physx_history import forget_physx_history
from gsenv.sim.poses import body_poses
from gsenv.sim.record import PUT_CUBE_ON_PLATE
from gsenv.sim.rewards import DENSE_REWARD_MAX, dense_reward, dense_reward_terms

logger = logging.getLogger(__name__)

ON_PLATE_XY = 0.07
"""cube_on_plate: |cube.xy - plate.xy| < ON_PLATE_XY (m), as upstream."""
ON_PLATE_DZ = (0.0, 0.07)
"""cube_on_plate: ON_PLATE_DZ[0] <= cube.z - plate.z <= ON_PLATE_DZ[1] (m), as upstream."""
STATIC_LIN_VEL = 0.01
"""cube_static: linear speed below this (m/s)."""
STATIC_ANG_VEL = 0.2
"""cube_static: angular speed below this (rad/s)."""


@register_env(names.TASK_ID, max_episode_steps=names.EPISODE_STEPS)
class PutCubeOnPlateEnv(BaseEnv):
    """Pick up the cube and put it on the plate (Franka FR3, state observations)."""

    SUPPORTED_ROBOTS = [names.ROBOT_UID, names.ROBOT_UID_ALIAS]
    SUPPORTED_OBS_MODES = ("state", "state_dict", "none")
    SUPPORTED_REWARD_MODES = names.REWARD_MODES
    record = PUT_CUBE_ON_PLATE
    """What every reset and step reports (state entries, info scalars, body poses): gsenv.sim.record."""
    agent: MyFranka

    def __init__(
        self,
        *args,
        robot_uids: str = names.ROBOT_UID,
        control_mode: str | None = names.DEFAULT_CONTROL_MODE,
        robot_urdf: str | None = None,
        cube: ObjectSpec | None = None,
        plate: ObjectSpec | None = None,
        spawn: SpawnConfig | None = None,
        randomize_yaw: bool | None = None,
        robot_init_qpos_noise: float | None = None,
        total_num_trials: int = names.DEFAULT_TOTAL_NUM_TRIALS,
        sparse_reward_at_end: bool = False,
        episode_steps: int = names.EPISODE_STEPS,
        upstream_compat: bool = False,
        **kwargs,
    ):
        if robot_uids not in self.SUPPORTED_ROBOTS:
            raise ValueError(
                f"robot_uids must be one of {self.SUPPORTED_ROBOTS} (this task has one robot, the FR3), "
                f"got {robot_uids!r}; to use another robot description pass robot_urdf=..."
            )
        for label, spec in (("cube", cube), ("plate", plate)):
            if spec is not None and not isinstance(spec, ObjectSpec):
                raise TypeError(f"{label} must be a gsenv.sim.objects.ObjectSpec, got {type(spec).__name__}")
        if spawn is not None and not isinstance(spawn, SpawnConfig):
            raise TypeError(f"spawn must be a gsenv.sim.initial_state.SpawnConfig, got {type(spawn).__name__}")
        if not (isinstance(total_num_trials, (int, np.integer)) and total_num_trials > 0):
            raise ValueError(f"total_num_trials must be a positive int, got {total_num_trials!r}")
        self.upstream_compat = bool(upstream_compat)
        self.robot_urdf = None if robot_urdf is None else str(robot_urdf)
        self.cube_spec = cube or default_cube_spec()
        self.plate_spec = plate or default_plate_spec()
        spawn = spawn or SpawnConfig(
            cube_radius=self.cube_spec.footprint_radius, plate_radius=self.plate_spec.footprint_radius
        )
        overrides = {}
        if randomize_yaw is not None:
            overrides["randomize_yaw"] = bool(randomize_yaw)
        if robot_init_qpos_noise is not None:
            overrides["qpos_noise"] = float(robot_init_qpos_noise)
        self.spawn = dataclasses.replace(spawn, **overrides)
        self.total_num_trials = int(total_num_trials)
        self.sparse_reward_at_end = bool(sparse_reward_at_end)
        self.episode_steps = int(episode_steps)
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
        far = [10.0, 0.0, 0.0]  # spawned apart; _initialize_episode places them
        self.cube = build_object(
            self.scene, self.cube_spec, names.CUBE,
            sapien.Pose(p=[far[0], 1.0, self.cube_spec.rest_height]),
        )
        self.plate = build_object(
            self.scene, self.plate_spec, names.PLATE,
            sapien.Pose(p=[far[0], -1.0, self.plate_spec.rest_height]),
        )

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

        s = sample_batch(gens, self.spawn).to(torch.float32)  # [b, 13]
        dev = self.device
        qpos = torch.tensor(names.FR3_DEFAULT_QPOS, dtype=torch.float32).repeat(b, 1)
        qpos[:, : names.NUM_ARM_JOINTS] += s[:, 0:7]
        self.agent.reset(qpos.to(dev))
        self.agent.robot.set_pose(sapien.Pose())

        cube_p = torch.cat([s[:, 7:9], torch.full((b, 1), self.cube_spec.rest_height)], dim=1)
        plate_p = torch.cat([s[:, 10:12], torch.full((b, 1), self.plate_spec.rest_height)], dim=1)
        self.cube.set_pose(Pose.create_from_pq(cube_p.to(dev), yaw_to_quat(s[:, 9]).to(dev)))
        self.plate.set_pose(Pose.create_from_pq(plate_p.to(dev), yaw_to_quat(s[:, 12]).to(dev)))
        forget_physx_history(self)  # the episode then depends only on its initial state and actions

    # ---------------------------------------------------------------------------------------- #
    # actions
    # ---------------------------------------------------------------------------------------- #
    def _step_action(self, action):
        """Clips actions [B, A] to the action space (not with upstream_compat); they were checked where
        they entered (CheckedActions, GSEnv.step)."""
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
    # evaluation, observation, reward
    # ---------------------------------------------------------------------------------------- #
    def evaluate(self) -> dict[str, torch.Tensor]:
        """-> dict of bool [B]: cube_on_plate, is_grasped, cube_static, success."""
        cube_p, plate_p = self.cube.pose.p, self.plate.pose.p
        xy = torch.linalg.norm(cube_p[:, :2] - plate_p[:, :2], dim=1)
        dz = cube_p[:, 2] - plate_p[:, 2]
        on_plate = (xy < ON_PLATE_XY) & (dz >= ON_PLATE_DZ[0]) & (dz <= ON_PLATE_DZ[1])
        is_grasped = self.agent.is_grasping(self.cube)
        lin = torch.linalg.norm(self.cube.linear_velocity, dim=1)
        ang = torch.linalg.norm(self.cube.angular_velocity, dim=1)
        cube_static = (lin < STATIC_LIN_VEL) & (ang < STATIC_ANG_VEL)
        success = on_plate.clone() if self.upstream_compat else on_plate & ~is_grasped & cube_static
        return dict(cube_on_plate=on_plate, is_grasped=is_grasped, cube_static=cube_static, success=success)

    def _get_obs_agent(self):
        robot = self.agent.robot
        return dict(qpos=robot.get_qpos(), qvel=robot.get_qvel())

    def _get_obs_extra(self, info: dict):
        tcp, cube, plate = self.agent.tcp.pose, self.cube.pose, self.plate.pose  # each read builds tensors
        return dict(
            is_grasped=info["is_grasped"],
            tcp_pose=tcp.raw_pose,
            cube_pose=cube.raw_pose,
            plate_pose=plate.raw_pose,
            tcp_to_cube_pos=cube.p - tcp.p,
            cube_to_plate_pos=plate.p - cube.p,
        )

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

    def dense_reward_terms(self, info: dict) -> dict[str, torch.Tensor]:
        """The staged terms of the dense reward (see :mod:`gsenv.sim.rewards`), each float [B]."""
        return dense_reward_terms(
            self.agent.tcp.pose.p, self.cube.pose.p, self.plate.pose.p,
            self.cube.linear_velocity, info["is_grasped"], info["cube_on_plate"],
        )

    def compute_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        return dense_reward(self.dense_reward_terms(info), info["success"])

    def compute_normalized_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        return self.compute_dense_reward(obs, action, info) / DENSE_REWARD_MAX

    # ---------------------------------------------------------------------------------------- #
    # product-facing helpers
    # ---------------------------------------------------------------------------------------- #
    def get_language_instruction(self) -> list[str]:
        """One instruction string per env (list of B str)."""
        return [names.LANGUAGE_INSTRUCTION] * self.num_envs

    def get_body_poses(self) -> dict[str, torch.Tensor]:
        """{canonical name: float32 [B, 7]} for every robot link, the robot root and both objects."""
        return body_poses(self)

    def get_expert_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword tensors for :func:`gsenv.sim.expert.scripted_expert_action` (all [B, ...])."""
        return dict(
            tcp_pose=self.agent.tcp.pose.raw_pose,
            cube_pose=self.cube.pose.raw_pose,
            plate_pose=self.plate.pose.raw_pose,
            gripper_qpos=self.agent.robot.get_qpos()[:, names.NUM_ARM_JOINTS:],
        )


class CheckedActions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The outermost wrapper of ``gym.make(TASK_ID)``: each action is checked as it enters
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


_add_action_check(names.TASK_ID)
