"""`gsenv collect`: scripted-expert demonstrations as a LeRobot v2.1 dataset (SFT data for pi0 / pi0.5).

The scripted expert runs in B envs at once; an env whose episode ends is reset on its own with the
next seed (no env waits for the slowest). Only successful episodes are kept. Each frame holds the
observation an action was taken from and that action, with the research collector's keys (what RLinf's
``pi05_gsenv`` config reads through openpi):

    observation.image   video [H, W, 3]  the first fixed camera recorded (default: the scene's first)
    observation.state   float32 [9]      agent qpos: 7 arm joints + 2 fingers
    observation.environment_state  float32 [7 x bodies]  every body's pose (position + wxyz, bodies in
                                         sorted name order): what `gsenv replay` draws again
    actions             float32 [7]      the env's action in its units, as applied (clipped to its bounds)
    task                                 the episode's language instruction (the task's phrasing for it)

Every recorded camera has a key of its own (--camera takes several): the first fixed camera
``observation.image`` (the main, third-person image pi05_gsenv reads), the first camera mounted on a
robot link ``observation.wrist_image`` (openpi's LIBERO naming), any other ``observation.images.<name>``.
info.json's feature of each key records its camera ("camera"); appending with other cameras is refused.

Demonstrations (``expert_style``): "research" (the default where the task has them, PutCubeOnPlate) are
the research collector's: SETTLE_STEPS unrecorded settle steps after each reset, then the task's waypoint
script at the research planner's speeds, the gripper closed with -0.5 (gsenv.sim.waypoint_expert); the
episode ends where the script ends and is kept when it succeeded there. "gsenv" records the env's closed-loop
scripted expert from the first step until success (close -1, at most 5 cm per step). The style is recorded
in each episode's line.

Every episode's line in meta/episodes.jsonl records the seed that replays it: reset(seed=[seed]) in a
one-env GSEnv with the same scene and control mode, step the settle steps of its style (zero motion,
gripper open) and then its actions. Episodes are encoded by a
few threads while the simulation runs and committed whole, in order, by one (gsenv.lerobot_v21): Ctrl-C or a
crash leaves a dataset that loads, with the episodes finished so far. Running again on the same
folder appends (seeds continue after the largest recorded one).
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsenv.tools.args import add_image_size, add_names, add_task, check_device, checked_task

logger = logging.getLogger(__name__)

DEFAULT_REPO_ID = "RLinf/{rlinf_id}"
"""The dataset's default name: RLinf/ and the task's RLinf id, GSEnv-<Name>-v0."""
DEFAULT_IMAGE_SIZE = "480x640"
FPS = 10  # the env's control frequency
ROBOT_TYPE = "franka"
IMAGE_KEY, STATE_KEY, ACTION_KEY = "observation.image", "observation.state", "actions"
ENV_STATE_KEY = "observation.environment_state"  # LeRobot's name for the state of the world around the robot
POSE_PARTS = ("x", "y", "z", "qw", "qx", "qy", "qz")
WRIST_KEY, OTHER_IMAGE_KEY = "observation.wrist_image", "observation.images.{name}"
STATE_NAMES = [*(f"joint{i}" for i in range(1, 8)), "finger_left", "finger_right"]
ACTION_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "grip"]
ENCODING = "video encoding (thread-seconds, beside the simulation)"
ENCODE_THREADS = 4  # episodes whose videos are encoded at once (each an ffmpeg process)
MAX_PENDING_COMMITS = 12  # episodes waiting to be written before the simulation waits for them
EXPERT_STYLES = ("research", "gsenv")
RESEARCH_MAX_STEPS = 250
"""The env's time limit with research-style demonstrations (settle steps + script; research episodes: ~110)."""


class CollectError(ValueError):
    """Bad collection settings; the message says what to change."""


@dataclass
class CollectResult:
    out: Path
    kept: int
    attempts: int
    seconds: float
    total_episodes: int
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.kept / self.attempts if self.attempts else 0.0


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise CollectError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def camera_keys(names: list[str], moving: tuple[bool, ...]) -> dict[str, str]:
    """{dataset key: env camera} for cameras `names` whose `moving` flags say which are mounted on a link:
    the first fixed camera under observation.image, the first link (wrist) camera under
    observation.wrist_image, every other under observation.images.<name>."""
    keys: dict[str, str] = {}
    for name, on_link in zip(names, moving):
        key = WRIST_KEY if on_link else IMAGE_KEY
        keys[key if key not in keys else OTHER_IMAGE_KEY.format(name=name)] = name
    return keys


def pose_feature(bodies: list[str], render: dict):
    """observation.environment_state's feature: the poses of ``bodies`` (sorted), 7 floats each, with
    ``render`` (what replay needs to draw them again: task, scene, scene_density, domain_randomization)
    and the body list in info.json."""
    from gsenv.lerobot_v21 import VectorFeature

    names = [f"{body}.{part}" for body in bodies for part in POSE_PARTS]
    return VectorFeature(len(names), names, extra={"gsenv": {"bodies": list(bodies), **render}})


def flat_poses(body_poses: dict, bodies: list[str]) -> np.ndarray:
    """{body: [B, 7]} -> float32 [B, 7 x len(bodies)], bodies in the given order."""
    return np.concatenate([body_poses[b].float().cpu().numpy() for b in bodies], axis=1)


def _features(image_size: tuple[int, int], cameras: dict[str, str], poses):
    from gsenv.lerobot_v21 import VectorFeature, VideoFeature

    return {**{key: VideoFeature(*image_size, camera=name) for key, name in cameras.items()},
            STATE_KEY: VectorFeature(9, STATE_NAMES), ACTION_KEY: VectorFeature(7, ACTION_NAMES), ENV_STATE_KEY: poses}


def _render_settings(task, scene, env_kwargs: dict) -> dict:
    """What the env drew with, as info.json records it for replay (a scene given as an object: None)."""
    randomization = env_kwargs.get("domain_randomization")
    return {"task": task.name, "scene": str(scene) if isinstance(scene, (str, Path)) else None,
            "scene_density": float(env_kwargs.get("scene_density", 1.0)),
            "domain_randomization": randomization if randomization is None or isinstance(randomization, str)
            else "custom"}


def _camera_names(camera) -> list[str] | None:
    """--camera as a list of names (one str is one name), None for the default."""
    if camera is None:
        return None
    names = [camera] if isinstance(camera, str) else list(camera)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise CollectError(f"camera must name one or more cameras, got {camera!r}")
    return [n.strip() for n in names]


def expert_style_for(task, expert_style: str | None) -> str:
    """The demonstrations' style: expert_style, or (None) "research" where the task has a demonstration script
    and "gsenv" otherwise. CollectError for an unknown style or "research" on a task without a script."""
    from gsenv.tasks import has_demonstration_script

    if expert_style is None:
        return "research" if has_demonstration_script(task) else "gsenv"
    if expert_style not in EXPERT_STYLES:
        raise CollectError(f"expert style must be one of {', '.join(EXPERT_STYLES)}, got {expert_style!r}")
    if expert_style == "research" and not has_demonstration_script(task):
        raise CollectError(f"task {task.name} has no research-style demonstration script (Task.demonstration_script): "
                           "use --expert-style gsenv")
    return expert_style


def collect(out: str | Path, episodes: int, *, num_envs: int = 8, image_size: int | tuple[int, int] = (480, 640),
            scene="default", camera: str | list[str] | None = None, seed: int | None = None,
            max_attempts: int | None = None, device: str | None = None, progress: bool = True,
            task=None, expert_style: str | None = None, **env_kwargs) -> CollectResult:
    """Collect ``episodes`` successful expert episodes of ``task`` (a name, MODULE:NAME or gsenv.tasks.Task;
    None: the default task) into the LeRobot v2.1 dataset at ``out``; its scripted expert acts.

    camera: the camera or cameras to record, each under its own key (see camera_keys; default: the
    scene's first fixed camera). seed: the first attempt's seed (attempt k gets seed + k); None: 0 for a
    new dataset, one past the largest recorded seed when appending. max_attempts: give up after that many
    episodes were started (default 4 x episodes). expert_style: "research" or "gsenv" (see the module
    docstring; None: research where the task has a script). env_kwargs go to gym.make (e.g. sim_backend,
    num_workers, scene_density).
    """
    import gymnasium as gym
    import torch
    from tqdm import tqdm

    from gsenv.lerobot_v21 import Episode, LeRobotV21Writer, claim, read_info
    from gsenv.splat.cameras import image_size_hw
    from gsenv.tasks import env_ids

    episodes = _positive_int("episodes", episodes)
    num_envs = _positive_int("num_envs", num_envs)
    max_attempts = 4 * episodes if max_attempts is None else _positive_int("max_attempts", max_attempts)
    try:
        image_size = image_size_hw(image_size)
    except ValueError as exc:
        raise CollectError(str(exc)) from None
    if image_size[0] % 2 or image_size[1] % 2:
        raise CollectError(f"image size {image_size[0]}x{image_size[1]}: the dataset's videos (yuv420p) need an "
                           "even height and width")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise CollectError(f"seed must be a non-negative int, got {seed!r}")
    cameras = _camera_names(camera)
    task = checked_task(task, CollectError)
    style = expert_style_for(task, expert_style)
    check_device(device, CollectError)  # before the dataset folder is made
    root = Path(out)
    made = not root.exists()  # a folder this run makes goes again when the env cannot start
    lock = claim(root)  # one writer at a time, and only onto a whole dataset: refused before the env starts
    if (root / "meta" / "info.json").is_file() and ENV_STATE_KEY not in read_info(root)["features"]:
        lock.release()
        raise CollectError(f"{root} was collected by an older gsenv, without {ENV_STATE_KEY} (every body's pose, "
                           "which gsenv replay draws): give a new folder")
    if style == "research":
        env_kwargs.setdefault("max_episode_steps", RESEARCH_MAX_STEPS)
    try:
        env = gym.make(env_ids(task.name)[0], num_envs=num_envs, obs_mode="rgb", image_size=image_size,
                       scene=scene, cameras=cameras, device=device, **env_kwargs)
    except BaseException as exc:
        lock.release()
        if made:
            shutil.rmtree(root, ignore_errors=True)  # holds only the lock file: this run made all of it
        if isinstance(exc, ValueError):  # the env refused an argument (a bad --scene, --camera, ...)
            raise CollectError(str(exc)) from None
        raise
    u = env.unwrapped
    names = u.camera_names if cameras else u.camera_names[:1]
    keys = camera_keys(names, u.cameras.moving or (False,) * len(u.camera_names))
    bodies = sorted(u.get_body_poses())
    poses = pose_feature(bodies, _render_settings(task, scene, env_kwargs))
    try:
        writer = LeRobotV21Writer(out, fps=FPS, features=_features(image_size, keys, poses), robot_type=ROBOT_TYPE,
                                  lock=lock)
    except BaseException:
        env.close()
        raise
    if seed is None:
        seeds = [int(e["seed"]) for e in writer.episodes if "seed" in e]
        seed = max(seeds) + 1 if seeds else 0

    script = None
    if style == "research":
        from gsenv.sim.waypoint_expert import ScriptedEpisodes

        script = ScriptedEpisodes(task, num_envs)
    low = torch.as_tensor(u.single_action_space.low, device=u.device)
    high = torch.as_tensor(u.single_action_space.high, device=u.device)
    buffers: list[dict[str, list]] = [{**{k: [] for k in keys}, STATE_KEY: [], ACTION_KEY: [], ENV_STATE_KEY: []}
                                      for _ in range(num_envs)]
    env_seed = np.arange(num_envs, dtype=np.int64) + seed
    next_seed, attempts, ended, kept = seed + num_envs, num_envs, 0, 0
    phases = {"physics + render": 0.0, "expert": 0.0, "to host": 0.0, "waiting for the writer": 0.0,
              ENCODING: 0.0}
    pending: list[Future] = []
    t0 = time.perf_counter()
    bar = tqdm(total=episodes, unit="episode", disable=not progress, desc="collect")
    encoders = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="gsenv-collect-encode")
    committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gsenv-collect-commit")

    phase_lock = threading.Lock()

    def encode(episode: Episode):  # on an encoder thread
        t = time.perf_counter()
        encoded = writer.encode(episode)
        with phase_lock:
            phases[ENCODING] += time.perf_counter() - t
        return encoded

    def commit(encoding: Future) -> None:  # on the one commit thread: episodes commit in the order they ended
        writer.add_episode(encoding.result())

    def settle(block_over: int) -> None:
        """Raise a writer error at once; wait while more than block_over commits are queued."""
        while pending and (pending[0].done() or len(pending) > block_over):
            t = time.perf_counter()
            pending.pop(0).result()
            phases["waiting for the writer"] += time.perf_counter() - t

    try:
        t = time.perf_counter()
        obs, info = env.reset(seed=env_seed.tolist())
        phases["physics + render"] += time.perf_counter() - t
        active = np.ones(num_envs, dtype=bool)  # envs still running an attempt that counts
        while kept < episodes and active.any():
            t = time.perf_counter()
            if script is None:
                action, recorded = u.expert_action(), active
            else:
                action, recorded = script.actions(u.get_expert_inputs())
                action, recorded = torch.as_tensor(action, device=u.device), recorded & active
            action = torch.minimum(torch.maximum(action, low), high)
            phases["expert"] += time.perf_counter() - t
            t = time.perf_counter()
            rgb = {k: obs["sensor_data"][name]["rgb"].cpu().numpy() for k, name in keys.items()}  # [B, H, W, 3]
            qpos = obs["agent"]["qpos"].float().cpu().numpy()  # [B, 9]
            act = action.float().cpu().numpy()  # [B, 7]
            pose = flat_poses(u.get_body_poses(), bodies)  # [B, 7 x bodies]: the poses obs was drawn from
            phases["to host"] += time.perf_counter() - t
            for i in np.flatnonzero(recorded):
                b = buffers[i]
                for k in keys:
                    b[k].append(rgb[k][i])
                b[STATE_KEY].append(qpos[i])
                b[ACTION_KEY].append(act[i])
                b[ENV_STATE_KEY].append(pose[i])
            t = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            phases["physics + render"] += time.perf_counter() - t
            if script is None:
                done = (terminated | truncated).cpu().numpy() & active
            else:  # the script's end, success or not there (the research collector's check), or the time limit
                done = (script.finished() | truncated.cpu().numpy()) & active
            success = info["success"].cpu().numpy()
            instructions = info["language_instruction"]
            finished = np.flatnonzero(done)
            ended += len(finished)
            for i in finished:
                b = buffers[i]
                if success[i] and kept < episodes:
                    frames = {k: np.stack(v) for k, v in b.items()}
                    episode = Episode(frames, task=str(instructions[i]),
                                      extra={"seed": int(env_seed[i]), "expert_style": style,
                                             "settle_steps": 0 if script is None else script.settle_steps})
                    pending.append(committer.submit(commit, encoders.submit(encode, episode)))
                    kept += 1
                    bar.update(1)
                for v in b.values():
                    v.clear()
            if len(finished):
                bar.set_postfix(success=f"{kept}/{ended}", eps_per_s=f"{kept / (time.perf_counter() - t0):.2f}")
                restart = list(finished[:max(0, max_attempts - attempts)]) if kept < episodes else []
                for i in finished:
                    active[i] = False
                if restart:
                    env_seed[restart] = np.arange(next_seed, next_seed + len(restart))
                    next_seed += len(restart)
                    attempts += len(restart)
                    t = time.perf_counter()
                    obs, info = env.reset(seed=env_seed[restart].tolist(), options={"env_idx": restart})
                    phases["physics + render"] += time.perf_counter() - t
                    if script is not None:
                        script.restart(restart)
                    active[restart] = True
            settle(MAX_PENDING_COMMITS)
        settle(0)
    finally:
        bar.close()
        committer.shutdown(wait=True)  # whole episodes only: what was queued is committed, also on Ctrl-C
        encoders.shutdown(wait=True)
        writer.close()
        env.close()
    for f in pending:  # a writer error after the loop ended
        f.result()
    result = CollectResult(Path(out), kept, ended, time.perf_counter() - t0, writer.num_episodes, phases)
    if kept < episodes:
        raise CollectError(f"only {kept} of {episodes} episodes succeeded in {attempts} attempts (--max-attempts "
                           f"{max_attempts}); the {kept} kept are in {out}: raise --max-attempts to go on")
    return result


EPILOG = """examples:
  gsenv collect --episodes 100                       (the default task, into datasets/RLinf/GSEnv-<Task>-v0)
  gsenv collect --episodes 100 --task NAME          (another task: see --help's --task)
  gsenv collect --episodes 256 --num-envs 32 --image-size 480x640      (append: run again, same --out)

The dataset loads with LeRobot's v2.1 reader (openpi's pinned LeRobot) and RLinf's pi05_gsenv config.
"""


def add_commands(sub) -> None:
    p = sub.add_parser("collect", help="scripted-expert demonstrations as a LeRobot v2.1 dataset",
                       description="Run the scripted expert in B envs at once, keep the successful episodes and "
                                   "write them as a LeRobot v2.1 dataset (observation.image video, one key per "
                                   "--camera, "
                                   "observation.state [9], actions [7], every body's pose as "
                                   "observation.environment_state (for gsenv replay), the task text) at 10 fps.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, required=True, metavar="N", help="successful episodes to collect")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the dataset folder, new or an existing dataset to append to (default: datasets/REPO_ID)")
    add_task(p)
    p.add_argument("--repo-id", default=None,
                   help="the dataset's name (default: RLinf/GSEnv-<Task>-v0, the task's RLinf id)")
    p.add_argument("--num-envs", type=int, default=8, metavar="B", help="envs run at once (default: 8)")
    add_image_size(p, DEFAULT_IMAGE_SIZE, what="camera image size, as the policy will see it")
    p.add_argument("--scene", default="default", help="scene: default, a dataset name or a bundle folder")
    add_names(p, "--camera", "CAMERA",
              "cameras to record, each under its own key: the first fixed one observation.image, the first on a "
              "link (the wrist) observation.wrist_image, others observation.images.NAME (default: the scene's "
              "first fixed camera)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the first attempt; attempt k gets seed + k (default: 0, or one past the largest "
                        "recorded seed when appending)")
    p.add_argument("--max-attempts", type=int, default=None, metavar="M",
                   help="give up after M episodes were started (default: 4 x --episodes)")
    p.add_argument("--expert-style", choices=EXPERT_STYLES, default=None,
                   help="research: the research collector's demonstrations (10 unrecorded settle steps, its "
                        "waypoints and speeds, gripper closed with -0.5; ~100 steps); gsenv: the env's closed-loop "
                        "expert from the first step (close -1, <= 5 cm per step; ~23 steps) (default: research "
                        "where the task has a demonstration script, else gsenv)")
    p.add_argument("--device", default=None, help="where images are rendered: cpu, cuda (default: cuda if available)")
    p.add_argument("--num-workers", type=int, default=None, help="physics worker processes (default: one per core)")
    p.add_argument("--scene-density", type=float, default=None, help="gaussian density of the default scene")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    from gsenv.lerobot_v21 import DatasetFormatError
    from gsenv.tasks import env_ids

    try:
        task = checked_task(args.task, CollectError)
        expert_style_for(task, args.expert_style)
    except CollectError as exc:
        print(f"gsenv collect: error: {exc}", file=sys.stderr)
        return 2
    repo_id = args.repo_id or DEFAULT_REPO_ID.format(rlinf_id=env_ids(task.name)[1])
    out = args.out or str(Path("datasets") / repo_id)
    extra = {k: v for k, v in (("num_workers", args.num_workers), ("scene_density", args.scene_density))
             if v is not None}
    try:
        r = collect(out, args.episodes, num_envs=args.num_envs, image_size=args.image_size, scene=args.scene,
                    camera=args.camera, seed=args.seed, max_attempts=args.max_attempts, device=args.device,
                    progress=args.progress, task=task, expert_style=args.expert_style, **extra)
    except (CollectError, DatasetFormatError) as exc:
        print(f"gsenv collect: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gsenv collect: interrupted; the episodes finished so far are committed in {out}", file=sys.stderr)
        return 130
    minutes = r.seconds / 60
    print(f"kept {r.kept} successful episodes of {r.attempts} attempts ({100 * r.success_rate:.0f}%) in "
          f"{r.seconds:.0f} s ({r.kept / minutes:.1f} episodes/min); the dataset at {r.out} holds "
          f"{r.total_episodes} episodes")
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.phase_seconds.items()))
    return 0
