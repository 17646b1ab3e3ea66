"""GSEnv: the registered environment. Batched physics (ManiSkill task) + batched splat rendering.

One step, as data:
    action [B, A] (checked here) -> physics backend -> PhysicsOutputs (reward, terminated, elapsed_steps,
        info {name: [B]}, body_poses {body: [B, 7]}, state {group: {name: [B, ...]}}: the task's declared
        record, gsenv.sim.record; gsenv.physics.outputs)
    body poses + cameras [B, C] -> SceneRenderer (ONE rasterisation for all envs and cameras)
    -> rgb uint8 [B, C, H, W, 3] (+ depth) on `device` -> observation dict (ManiSkill layout) + info
"""
from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gsenv.observations import build_obs, observation_space, parse_obs_mode, sensor_params
from gsenv.physics import cpu_pool as pool
from gsenv.sim import names
from gsenv.sim.inputs import (
    checked_actions,
    checked_env_indices,
    checked_episode_ids,
    checked_reset_options,
    checked_seeds,
    checked_task_kwargs,
)

__all__ = ["RLINF_RENDER_INTERFACE", "GSEnv"]

logger = logging.getLogger(__name__)

RLINF_RENDER_INTERFACE = "gs_rlinf"


def _collided_objects(task, task_kwargs: dict) -> list[str]:
    """The task's objects with collision shapes (their specs: the task's, or the one passed by name)."""
    specs = {**task.object_specs(), **{n: task_kwargs[n] for n in task.objects if task_kwargs.get(n) is not None}}
    return [n for n in task.objects if specs[n].kind != "marker"]


class _RobotView:
    """What trainers read as ``env.unwrapped.agent.robot``: the latest joint state."""

    def __init__(self, env: GSEnv):
        self._env = weakref.ref(env)  # env.agent.robot -> env would be a cycle: workers alive until a full GC

    def get_qpos(self) -> torch.Tensor:
        """float32 [B, 9]: 7 arm joints + 2 fingers."""
        return self._env()._outputs.state["agent"]["qpos"]

    def get_qvel(self) -> torch.Tensor:
        return self._env()._outputs.state["agent"]["qvel"]


class _AgentView:
    def __init__(self, env: GSEnv):
        self.robot = _RobotView(env)


class GSEnv(gym.Env):
    """B Franka FR3 tabletop envs: ManiSkill physics, camera images from 3D Gaussian Splatting.

    A batched gym.Env in ManiSkill's style (not a gymnasium VectorEnv): ``step`` takes actions [B, 7]
    (torch or numpy) and returns batched torch tensors on ``device``; B = 1 keeps the batch dimension.

    Args:
        num_envs: B.
        task: the task: a name (gsenv.tasks.task_names(): "PutCubeOnPlate", "PickCube", or one registered
            with gsenv.register_task), "module:attr" of a gsenv.tasks.Task, or a Task instance (default:
            PutCubeOnPlate; the registered ids pass theirs).
        obs_mode: "state" (flat [B, D]), "state_dict", "rgb", "rgb+depth", "rgb+state" or "none".
        control_mode: "pd_ee_target_delta_pose" (default), "pd_ee_delta_pose", "pd_joint_pos",
            "pd_joint_delta_pos", "pd_joint_target_delta_pos".
        reward_mode: "sparse", "dense", "normalized_dense" or "none".
        sim_backend: "auto", "physx_cpu" (worker processes) or "physx_cuda".
        render_backend: "auto" (gsplat on CUDA, torch on CPU), "gsplat" or "torch".
        scene: "default" (embedded scene), a dataset name, a bundle or dataset directory, or a SceneBundle.
        cameras: names of the scene cameras to render, fixed ones and cameras on robot links such as
            the embedded scene's "wrist_camera" (default: the scene's fixed cameras).
        image_size: int or (height, width) to render at (intrinsics scaled; default: calibrated size).
        device: where observations live (default "cuda" when available, else "cpu").
        render_mode: "rgb_array" for render().
        num_workers: physx_cpu worker processes (default: GSENV_NUM_WORKERS if set, else this instance's
            share of the host's usable cores among the gsenv instances on it; README "Running many
            envs per node").
        pin_workers: pin physx_cpu worker w to usable CPU w (default: as GSENV_PIN_WORKERS says).
        physics_timeout_s, max_physics_restarts, physics_restart_window_s: physx_cpu recovery: a worker
            that dies or does not answer a step within physics_timeout_s (default 30) is replaced, its envs
            rebuilt, reset and reported truncated with info["physics_restarted"]; more than
            max_physics_restarts (default 3) within physics_restart_window_s (default 600) raise.
        scene_density: density of the embedded default scene (1.0 = full size).
        domain_randomization: None (off), "default" (the documented preset: DomainRandomization.default()),
            or a dict / gsenv.scene.randomization.DomainRandomization of
            (low, high) ranges (camera pose and focal length, image colour, object colours, backdrop),
            drawn per env at each reset from its seed or episode id; see domain_randomization_values().
        physics_randomization: None (off), "default" (the documented preset: PhysicsRandomization.default()),
            or a dict / gsenv.physics.randomization.PhysicsRandomization of (low, high) ranges: object mass and
            friction, arm PD stiffness and damping (these physx_cpu only), qpos observation noise, action
            latency in control steps; drawn per env at each reset from its seed or episode id; see
            physics_randomization_values().
        background_heights: None (the whole static background), or (low, high) m: keep only the background's
            gaussians that high above the robot base, e.g. (-0.03, 0.03) the table top; the backdrop
            (domain_randomization's backdrop_images / backdrop_color) shows where the rest was.
        cache_background: render the static background once per camera and composite (default True).
        asset_root: where datasets and built scenes live (default: $GSENV_ASSETS or the user cache).
        gs_kwargs: the research code's renderer options (RLinf passes them); "render_interface":
            "gs_rlinf" makes a state obs_mode also deliver the camera images (RLinf's GSEnv config).
        max_episode_steps: per-env truncated once elapsed_steps reaches it; None: never. The env's one time
            limit: gym.make passes None and its BatchTimeLimit wrapper sets it to gym.make's max_episode_steps.
        Other keywords go to the simulation task (gsenv.sim.inputs.TASK_KEYWORDS: sim_config,
        robot_uids, total_num_trials, upstream_compat, sparse_reward_at_end, randomize_yaw,
        robot_init_qpos_noise, ..., and one ObjectSpec per task object, named as it); an unknown one is a
        TypeError before anything starts.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        num_envs: int = 1,
        task: Any = None,
        obs_mode: str = "rgb",
        control_mode: str = names.DEFAULT_CONTROL_MODE,
        reward_mode: str = "sparse",
        sim_backend: str = "auto",
        render_backend: str = "auto",
        scene: Any = "default",
        cameras: Sequence[str] | None = None,
        image_size: int | Sequence[int] | None = None,
        device: str | torch.device | None = None,
        render_mode: str | None = None,
        num_workers: int | None = None,
        pin_workers: bool | None = None,
        physics_timeout_s: float = pool.DEFAULT_TIMEOUT_S,
        max_physics_restarts: int = pool.DEFAULT_MAX_RESTARTS,
        physics_restart_window_s: float = pool.DEFAULT_RESTART_WINDOW_S,
        scene_density: float = 1.0,
        domain_randomization: Any = None,
        physics_randomization: Any = None,
        background_heights: tuple[float, float] | None = None,
        cache_background: bool = True,
        asset_root: str | None = None,
        gs_kwargs: dict | None = None,
        max_episode_steps: int | None = names.EPISODE_STEPS,
        **task_kwargs: Any,
    ):
        from gsenv.backends import resolve_render_backend
        from gsenv.physics.backend import make_physics
        from gsenv.physics.gpu_check import checked_physics_backend
        from gsenv.physics.host_share import reserve as reserve_cores
        from gsenv.physics.limits import check_cpu_envs_fit
        from gsenv.physics.randomization import PhysicsRandomization, RandomizedPhysics
        from gsenv.scene.camera_rig import CameraRig, checked_camera_names
        from gsenv.scene.randomization import DomainRandomization, RandomizedLook
        from gsenv.scene.rendering import make_renderer
        from gsenv.scene.resolve import resolve_scene, task_kwargs_from_bundle
        from gsenv.scene.task_fit import background_within_heights, objects_of_task, task_needs
        from gsenv.splat.view_state import ViewState
        from gsenv.tasks import get_task

        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if max_episode_steps is not None and not (isinstance(max_episode_steps, int) and max_episode_steps >= 1):
            raise ValueError(f"max_episode_steps must be an int >= 1 or None, got {max_episode_steps!r}")
        self.task = get_task(task)
        """The gsenv.tasks.Task these envs run."""
        user_task_kwargs = checked_task_kwargs({"control_mode": control_mode, "reward_mode": reward_mode,
                                                **task_kwargs}, self.task.objects)
        if cameras is not None:
            checked_camera_names(cameras)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        randomization = DomainRandomization.from_any(domain_randomization)
        physics_ranges = PhysicsRandomization.from_any(physics_randomization)
        self.num_envs = int(num_envs)
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        gs_kwargs = dict(gs_kwargs or {})
        for key in gs_kwargs:
            logger.debug("gs_kwargs[%r] = %r accepted for compatibility with the research code", key, gs_kwargs[key])
        self._wants_images, self._wants_depth, _ = parse_obs_mode(obs_mode)
        if gs_kwargs.get("render_interface") == RLINF_RENDER_INTERFACE and not self._wants_images:
            # RLinf's GSEnv config asks for obs_mode "state" and reads the camera images from the obs
            self.obs_mode = "rgb"
            self._wants_images = True
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} needs CUDA, which is not available here; use device='cpu'")
        self._render_backend = resolve_render_backend(render_backend, str(self.device))
        physics_backend = checked_physics_backend(sim_backend)  # once; auto: self-checked on first use
        if physics_ranges is not None and physics_ranges.changes_physics and physics_backend != "physx_cpu":
            raise ValueError(f"physics_randomization of object mass / friction or arm PD gains is set per env in "
                             f"CPU PhysX, and this env's physics is {physics_backend}: pass sim_backend='physx_cpu' "
                             "(qpos_noise_std and action_latency work on every backend)")
        if physics_backend == "physx_cpu":
            # at most this many (None: the pool takes the host's share of the cores when it starts)
            check_cpu_envs_fit(self.num_envs, pool.checked_num_workers(num_workers, self.num_envs))

        # the cores are reserved now and settled when the pool starts, after the scene has loaded: instances
        # made at the same time (RLinf's env workers) all count each other (gsenv.physics.host_share)
        reservation = reserve_cores(self.num_envs) if physics_backend == "physx_cpu" else None
        try:
            bundle = resolve_scene(scene, asset_root=asset_root, density=scene_density, task=task_needs(self.task))
            self.scene = objects_of_task(bundle, self.task.objects)  # another task's objects are not drawn
            if background_heights is not None:
                self.scene = background_within_heights(self.scene, background_heights)
            self._rig = CameraRig(self.scene, list(cameras) if cameras else None, self.num_envs, self.device,
                                  image_size)
            self.camera_names = list(self._rig.names)
            self._renderer = make_renderer(self.scene, self._render_backend, self.device, cache_background)
            self._randomization = None if randomization is None else RandomizedLook(
                randomization, self.num_envs, len(self.camera_names), self._renderer.body_names, self._rig.width,
                self._rig.height, self.device)
            self._views = ViewState()  # what the renderer keeps between steps; told when cameras or look change
            self._cameras = None  # made from the body poses at every reset and step
            self._sensor_param = None  # made again when the cameras change (every step with a link camera)
            self._rgb: torch.Tensor | None = None
            self._frames: torch.Tensor | None = None  # render()'s frames of the current state, once made

            task_kwargs = {**task_kwargs_from_bundle(self.scene, asset_root, self.task), **user_task_kwargs}
            self._physics = make_physics(physics_backend, self.num_envs, task_kwargs, self.device, num_workers,
                                         pin_workers, physics_timeout_s, max_physics_restarts,
                                         physics_restart_window_s, task=self.task, reservation=reservation)
        except BaseException:
            if reservation is not None:
                reservation.release()
            raise
        self.sim_backend = self._physics.name
        self._physics_randomization = None if physics_ranges is None else RandomizedPhysics(
            physics_ranges, self.num_envs, _collided_objects(self.task, task_kwargs), user_task_kwargs["control_mode"],
            len(self._physics.action_low), self.device)
        self.total_num_trials = int(task_kwargs.get("total_num_trials", names.DEFAULT_TOTAL_NUM_TRIALS))
        self.max_episode_steps = max_episode_steps
        self.reconfiguration_freq = 0  # scenes are fixed: partial resets never rebuild anything
        self.agent = _AgentView(self)
        self.single_action_space = gym.spaces.Box(self._physics.action_low, self._physics.action_high, dtype=np.float32)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._seed_rng = np.random.default_rng()
        self._episode_seeds = np.zeros(self.num_envs, dtype=np.int64)
        self._instructions = [self.task.instructions[0]] * self.num_envs  # drawn per env at each reset
        self._closed = False

        self.reset(seed=0)
        self.single_observation_space = observation_space(self.obs_mode, self._physics.record, self.camera_names,
                                                          self._rig.height, self._rig.width)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        logger.info("GSEnv: %d envs, physics %s, render %s on %s, cameras %s at %dx%d", self.num_envs,
                    self.sim_backend, self._render_backend, self.device, self.camera_names,
                    self._cameras.width, self._cameras.height)

    # ------------------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        """Reset all envs, or only options["env_idx"]; options["episode_id"] (one int per reset env, in
        [0, total_num_trials)) picks fixed initial states whatever the seed. seed: an int (env i gets
        seed + i) or one int per reset env."""
        self._check_open()
        options = checked_reset_options(options)
        env_idx = checked_env_indices(options.pop("env_idx", None), self.num_envs)
        seeds = checked_seeds(seed, env_idx)
        if seeds is None:
            seeds = self._seed_rng.integers(0, 2**31 - 1, size=len(env_idx))
        elif isinstance(seed, (int, np.integer)):  # one int: it seeds later draws too
            self._seed_rng = np.random.default_rng(int(seed))
        episode_ids = options.pop("episode_id", None)
        per_env = [dict(options) for _ in env_idx]
        if episode_ids is not None:
            for opt, k in zip(per_env, checked_episode_ids(episode_ids, len(env_idx), self.total_num_trials)):
                opt["episode_id"] = [k]
        if self._physics_randomization is not None:  # drawn here, so the values travel with the reset
            self._redraw_physics(env_idx, seeds, episode_ids, per_env)
        self._outputs = self._physics.reset(env_idx, seeds, per_env)
        if self._physics_randomization is not None:
            self._physics_randomization.restart(env_idx, self._outputs.state["agent"]["qpos"])
        self._episode_seeds[env_idx] = seeds
        self._draw_instructions(env_idx, seeds, episode_ids)
        if self._randomization is not None:
            self._redraw(env_idx, seeds, episode_ids)
        self._note_restart_seeds()
        self._new_state()
        obs = self._observe()
        return obs, self._info()

    def step(self, action):
        self._check_open()
        action = checked_actions(action, self.num_envs, self.single_action_space.shape[0])
        if self._physics_randomization is not None:  # each env's action from action_latency steps ago
            action = self._physics_randomization.delay(action)
        self._outputs = self._physics.step(action)
        self._note_restart_seeds()
        self._new_state()
        obs = self._observe()
        out = self._outputs
        if self.max_episode_steps is None:
            truncated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            truncated = out.elapsed_steps >= self.max_episode_steps
        truncated = truncated | out.restarted  # a rebuilt env's episode ended with its worker
        return obs, out.reward, out.terminated, truncated, self._info()

    def get_state(self) -> dict[str, Any]:
        """Every env's whole state, to restore exactly with set_state: one dict of CPU tensors [B, ...]
        (layout: gsenv.env_state): each body's pose and velocity, the robot's joint positions,
        velocities, drive and controller targets, sleeping bodies, elapsed steps, each env's seed,
        episode id, generator state and randomisation draws, its instruction, and what it reported last
        (its observation), under a header naming the task, B and the layout. It pickles and survives
        torch.save / torch.load.

        Each env's bodies then go on in a fresh PhysX scene, as after a reset (gsenv.sim.physx_history):
        PhysX's contact caches cannot be saved, only dropped, so the run from here and any run restored
        from this state are the same, bit for bit. physx_cpu only."""
        from gsenv import env_state
        from gsenv.physics.outputs import flatten

        self._check_open()
        layout = self._state_layout()
        sim = self._physics.get_state()
        flat = flatten(self._outputs)
        state: dict[str, Any] = {
            "header": env_state.header(self.task.name, self.num_envs, layout, self._seed_rng.bit_generator.state),
            "seed": torch.from_numpy(self._episode_seeds.copy()),
            "instruction": list(self._instructions)}
        state.update({env_state.SIM + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sim.items()})
        carried = self._physics.record.carried()
        state.update({env_state.OUTPUTS + f.key: flat[f.key].detach().cpu().clone() for f in carried})
        if self._randomization is not None:
            state.update({env_state.LOOK + k: v.detach().cpu().clone() for k, v in self._randomization.values.items()})
        if self._physics_randomization is not None:
            state.update({env_state.PHYSICS + k: v for k, v in self._physics_randomization.state().items()})
        return state

    def set_state(self, state: dict[str, Any], env_idx=None):
        """Restore the envs env_idx (default: all; ints, or a bool mask [B]) to what ``state`` (from
        get_state, of an env with the same task, B and settings) holds for them; the others are left as
        they are. Stepping the same actions then gives the same observations, rewards and infos as the
        run that get_state was taken from. Returns (obs, info) of the restored state, as reset does.
        A full restore also restores the generator that draws seeds for reset(seed=None)."""
        from gsenv import env_state

        self._check_open()
        env_state.check(state, self.task.name, self.num_envs, self._state_layout())
        idx = checked_env_indices(env_idx, self.num_envs, "set_state's env_idx")
        if not len(idx):
            raise ValueError("set_state's env_idx names no env; give at least one (or None for all)")
        sim = env_state.rows(state, env_state.SIM, idx)
        ids = [int(k) for k in sim["episode_id"]]
        options = [{"episode_id": [k]} if k >= 0 else {} for k in ids]
        if self._physics_randomization is not None:  # the drawn physics comes back with the episode
            self._physics_randomization.restore(idx, env_state.rows(state, env_state.PHYSICS, idx))
            self._add_physics_options(idx, options)
        self._outputs = self._physics.set_state(idx, sim, env_state.rows(state, env_state.OUTPUTS, idx), options)
        self._episode_seeds[idx] = state["seed"][torch.as_tensor(idx)].numpy()
        for i in idx:
            self._instructions[int(i)] = state["instruction"][int(i)]
        if self._randomization is not None:
            look = env_state.rows(state, env_state.LOOK, idx)
            self._randomization.restore(idx, {k: torch.from_numpy(v) for k, v in look.items()})
            self._views.look_changed()
            if self._randomization.config.moves_cameras:
                self._rig.set_offsets(*self._randomization.camera_offsets())
                self._views.cameras_changed(idx.tolist())
                self._sensor_param = None
        if env_idx is None:
            self._seed_rng.bit_generator.state = state["header"]["seed_rng"]
        self._new_state()
        obs = self._observe()
        return obs, self._info()

    def render_body_poses(self, body_poses: dict[str, Any], elapsed_steps=None) -> torch.Tensor:
        """uint8 [B, C, H, W, 3]: every camera's image (``camera_names`` order) of the bodies at ``body_poses``
        ({body: [B, 7]} position + wxyz, every body get_body_poses names), with each env's current
        randomisation draws; elapsed_steps int [B] (default: each env's own) picks the image noise of
        that step. The simulation is neither read nor changed: recorded poses are drawn again exactly as
        the env drew them (gsenv replay)."""
        self._check_open()
        want = set(self._outputs.body_poses)
        if set(body_poses) != want:
            missing, extra = sorted(want - set(body_poses)), sorted(set(body_poses) - want)
            raise ValueError(f"body_poses must hold every body of this env ({sorted(want)}): it lacks {missing} "
                             f"and has unknown {extra}")
        poses = {k: torch.as_tensor(v).to(self.device, torch.float32) for k, v in body_poses.items()}
        for k, v in poses.items():
            if tuple(v.shape) != (self.num_envs, 7):
                raise ValueError(f"body_poses[{k!r}] must be [{self.num_envs}, 7] (position + wxyz), "
                                 f"got {list(v.shape)}")
        steps = self.elapsed_steps
        if self._randomization is not None and elapsed_steps is not None:  # only the draws' noise reads them
            steps = torch.as_tensor(elapsed_steps)
            if tuple(steps.shape) != (self.num_envs,):
                raise ValueError(f"elapsed_steps must be [{self.num_envs}] ints, got {list(steps.shape)}")
            steps = steps.to(self.elapsed_steps)
        return self._draw(poses, self._rig.cameras(poses), steps, depth=False).rgb

    def render(self) -> torch.Tensor:
        """uint8 [B, H, W, 3]: the first camera's frame of the current state (rendered at most once per step)."""
        self._check_open()
        if self._frames is None:
            self._frames = self._render_images(depth=False)[0][:, 0]
        return self._frames

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._physics.close()

    # ------------------------------------------------------------------------------ rendering parts (read-only)
    @property
    def renderer(self):
        """The SceneRenderer that draws every observation image."""
        return self._renderer

    @property
    def cameras(self):
        """Cameras [B, C] in `camera_names` order, at the observation image size, as of the last
        reset or step (link cameras follow their link; randomised cameras carry their offsets)."""
        return self._cameras

    def domain_randomization_values(self) -> dict[str, Any] | None:
        """The current episode's drawn values of every env (CPU copies; None with randomisation off):
        camera_translation [B, C, 3] m, camera_rotation [B, C, 3] degrees, focal_scale [B, C], light [B],
        tint [B, 3], brightness, contrast, saturation, hue, gamma, noise_std [B], object_color
        {body: [B, 3]}, and backdrop_index [B] (into the sorted folder) or backdrop_color [B, 3]."""
        return None if self._randomization is None else self._randomization.snapshot()

    def physics_randomization_values(self) -> dict[str, Any] | None:
        """The current episode's drawn physics values of every env (CPU copies; None with physics
        randomisation off): object_mass / object_friction {object: [B]} factors, arm_stiffness / arm_damping
        [B, 7] factors, qpos_noise_std [B] radians, action_latency [B] control steps."""
        return None if self._physics_randomization is None else self._physics_randomization.snapshot()

    @property
    def render_backend(self) -> str:
        """The splat rasteriser in use: "gsplat" or "torch"."""
        return self._render_backend

    # ------------------------------------------------------------------------------ trainer attributes
    @property
    def elapsed_steps(self) -> torch.Tensor:
        """int32 [B]: steps since each env's last reset."""
        return self._outputs.elapsed_steps

    @property
    def seed(self) -> np.ndarray:
        """int64 [B]: the seed each env was last reset with."""
        return self._episode_seeds.copy()

    def get_language_instruction(self) -> list[str]:
        """One instruction per env: the task's phrasing drawn for its episode (gsenv.tasks.base.instruction_for)."""
        return list(self._instructions)

    def evaluate(self) -> dict[str, torch.Tensor]:
        """[B] tensors: the task's info scalars (success among them), as of the last reset or step."""
        return dict(self._outputs.info)

    def get_body_poses(self) -> dict[str, torch.Tensor]:
        """{body: float32 [B, 7]} position + wxyz of every robot link and object."""
        return dict(self._outputs.body_poses)

    def get_expert_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword tensors for the task's scripted expert, ``self.task.expert_action`` (all [B, ...])."""
        return self.task.expert_inputs(self._outputs.state)

    def progress(self) -> torch.Tensor:
        """float32 [B] in [0, 1]: the share of the task's stages (task.progress_stages) each env has reached now."""
        return self.task.progress(self._outputs.state, self._outputs.info)

    def expert_action(self) -> torch.Tensor:
        """float32 [B, 7]: the task's scripted expert's action for the current state (closed loop)."""
        return self.task.expert_action(**self.get_expert_inputs())

    def open_viewer(self, host: str = "127.0.0.1", port: int = 8080, driver=None, env_index: int = 0, seed: int = 0):
        """Serve an interactive browser viewer of this env on http://host:port and return it (running;
        `.wait()` blocks, `.close()` stops it). It resets the env with `seed` and drives it from then on:
        the scripted expert, `driver` (``driver(obs, env) -> actions [B, A] or [B, T, A]``) or teleop.
        Needs the viewer extra (pip install "gsenv[viewer]"); see gsenv.viewer."""
        from gsenv.viewer import open_viewer

        return open_viewer(self, host=host, port=port, driver=driver, env_index=env_index, seed=seed)

    # ------------------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this GSEnv is closed; create a new one")

    def _draw_instructions(self, env_idx, seeds, episode_ids) -> None:
        from gsenv.tasks.base import instruction_for

        ids = [None] * len(env_idx) if episode_ids is None else [int(k) for k in episode_ids]
        for i, s, k in zip(env_idx, seeds, ids):
            self._instructions[int(i)] = instruction_for(self.task, None if s is None else int(s), k,
                                                         self._outputs.state, int(i))

    def _note_restart_seeds(self) -> None:
        """Envs rebuilt after a physics worker failed were reset with new seeds: `seed` says which."""
        for i, seed in self._physics.restart_seeds.items():
            self._draw_instructions([i], [seed], None)
            self._episode_seeds[i] = -1 if seed is None else seed
            if self._randomization is not None and seed is not None:  # a new episode: a new draw
                self._redraw([i], [seed], None)
        if self._physics_randomization is not None and self._physics.restart_seeds:
            # rebuilt with the options of their last reset: same physics draw; their latency ring starts afresh
            rebuilt = sorted(self._physics.restart_seeds)
            self._physics_randomization.restart(rebuilt, self._outputs.state["agent"]["qpos"])

    def _state_layout(self):
        """get_state's tensor layout for this env (gsenv.env_state.tensor_layout)."""
        from gsenv import env_state

        carried = {f.key: (f.shape, f.dtype) for f in self._physics.record.carried()}
        look = None if self._randomization is None else self._randomization.values
        physics = None if self._physics_randomization is None else self._physics_randomization.state()
        return env_state.tensor_layout(self._physics.state_layout, carried, look, physics)

    def _redraw(self, env_idx, seeds, episode_ids) -> None:
        """New domain-randomisation values for the envs env_idx (their seeds, or their episode ids)."""
        from gsenv.scene.randomization import draw_seed

        ids = [None] * len(env_idx) if episode_ids is None else [int(k) for k in episode_ids]
        self._randomization.redraw(env_idx, [draw_seed(s, k) for s, k in zip(seeds, ids)])
        self._views.look_changed()
        if self._randomization.config.moves_cameras:
            self._rig.set_offsets(*self._randomization.camera_offsets())
            self._views.cameras_changed(env_idx)
            self._sensor_param = None

    def _redraw_physics(self, env_idx, seeds, episode_ids, per_env: list[dict]) -> None:
        """New physics-randomisation values for the envs env_idx; their reset options get what the physics sets."""
        from gsenv.physics.randomization import physics_draw_seed

        ids = [None] * len(env_idx) if episode_ids is None else [int(k) for k in episode_ids]
        self._physics_randomization.redraw(env_idx, [physics_draw_seed(s, k) for s, k in zip(seeds, ids)])
        self._add_physics_options(env_idx, per_env)

    def _add_physics_options(self, env_idx, options: list[dict]) -> None:
        """Put each env's drawn physics values (what the simulation sets) into its reset / restore options."""
        from gsenv.sim.dynamics import OPTION_KEY

        for i, opt in zip(env_idx, options):
            values = self._physics_randomization.reset_option(int(i))
            if values is not None:
                opt[OPTION_KEY] = values

    def _new_state(self) -> None:
        """After a reset or step (and its redraws): the cameras of the new body poses, their ManiSkill
        sensor_param when they changed, and no frames rendered yet."""
        self._cameras = self._rig.cameras(self._outputs.body_poses)
        if self._sensor_param is None or any(self._rig.moving):
            self._sensor_param = sensor_params(self.camera_names, self._cameras.Ks, self._cameras.viewmats)
        self._frames = None

    def _render_images(self, depth: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self._draw(self.get_body_poses(), self._cameras, self._outputs.elapsed_steps, depth)
        return out.rgb, out.depth

    def _draw(self, poses, cameras, steps: torch.Tensor, depth: bool):
        """The renderer's output for body poses {body: [B, 7]} seen by cameras, with each env's randomisation
        draws at its elapsed step steps [B] (the image noise of that step): the one path of every image."""
        look = None if self._randomization is None else self._randomization.look(steps)
        return self._renderer.render(poses, cameras, depth=depth, look=look, views=self._views)

    def _observed(self):
        """The physics outputs as the policy observes them: with qpos noise (physics randomisation), the
        true ones otherwise (the env, the expert and agent.robot keep reading the true ones)."""
        noisy = self._physics_randomization
        if noisy is None or noisy.config.qpos_noise_std == (0.0, 0.0):
            return self._outputs
        out = self._outputs
        agent = {**out.state["agent"], "qpos": noisy.noisy_qpos(out.state["agent"]["qpos"], out.elapsed_steps)}
        return dataclasses.replace(out, state={**out.state, "agent": agent})

    def _observe(self):
        rgb = depth = None
        if self._wants_images:
            rgb, depth = self._render_images(self._wants_depth)
            self._frames = rgb[:, 0]
            self._rgb = rgb
        self._observed_outputs = self._observed()
        return build_obs(self.obs_mode, self._observed_outputs, self.camera_names, rgb, depth, self._sensor_param)

    def _info(self) -> dict:
        info = self.evaluate()
        info["elapsed_steps"] = self.elapsed_steps
        info["physics_restarted"] = self._outputs.restarted  # bool [B]: rebuilt after a worker died or hung
        info["progress"] = self.progress()
        info["language_instruction"] = self.get_language_instruction()
        if self._wants_images:  # RLinf's "raw" observation mode reads this
            moving = self._rig.moving  # RLinf's main view: the first fixed camera; wrist: the first on a link
            main = moving.index(False) if False in moving else 0
            info["extracted_obs"] = {"main_images": self._rgb[:, main],
                                     "states": self._observed_outputs.state["agent"]["qpos"],
                                     "task_descriptions": info["language_instruction"]}
            if True in moving:
                info["extracted_obs"]["wrist_images"] = self._rgb[:, moving.index(True)]
        return info

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the pool's own finaliser ends the workers
            pass
