"""`gsenv replay`: a collected dataset drawn again, with other cameras, image size or randomisation.

`gsenv collect` records every body's pose at every frame (``observation.environment_state``, with the
task, scene and density in info.json's feature). Replay draws those poses again with the cameras asked
for (the wrist camera added, say), at another image size or under domain randomisation, and writes a new
LeRobot v2.1 dataset with the source's actions, states, poses, task text and episode lines (each with
``replayed_from``: its source episode). Nothing is simulated again, so the new frames show exactly the
recorded motion; drawn with the source's cameras and size they equal the source's frames (on another
render backend: up to its rounding; through the codec: PSNR >= 40 dB in the tests).

Randomisation is drawn per episode from its recorded seed (as a collection with it would have drawn it),
its image noise from each frame's step (settle_steps + frame index).

The new dataset is written by the writer `gsenv collect` uses (whole episodes, committed in order, one
writer at a time): a replay that stops leaves a dataset that loads, and running the same command again
goes on from the next episode.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsenv.tools.args import add_names, check_device, parse_image_size
from gsenv.tools.collect import (
    ENCODE_THREADS,
    ENV_STATE_KEY,
    MAX_PENDING_COMMITS,
    ROBOT_TYPE,
    camera_keys,
)

logger = logging.getLogger(__name__)

REPLAYED_FROM = "replayed_from"  # each new episode line: the source episode's index
_ROW_KEYS = ("episode_index", "tasks", "length")  # the writer's own fields of an episode line


class ReplayError(ValueError):
    """Bad replay input (source, output folder or settings); the message says what to change."""


@dataclass
class ReplayResult:
    out: Path
    replayed: int
    skipped: int  # replayed by an earlier run into the same folder
    frames: int
    seconds: float


@dataclass
class Source:
    """What replay reads of the source dataset: info.json, its episode lines, the pose feature's metadata."""

    root: Path
    info: dict
    episodes: list[dict]
    bodies: list[str]
    render: dict  # task, scene, scene_density, domain_randomization as collected

    @property
    def cameras(self) -> list[str | None]:
        return [f.get("camera") for f in self.info["features"].values() if f.get("dtype") == "video"]

    @property
    def image_size(self) -> tuple[int, int]:
        shape = next(f["shape"] for f in self.info["features"].values() if f.get("dtype") == "video")
        return int(shape[0]), int(shape[1])

    @property
    def vector_keys(self) -> list[str]:
        from gsenv.lerobot_v21 import INDEX_FEATURES

        return [k for k, f in self.info["features"].items() if f.get("dtype") == "float32" and k not in INDEX_FEATURES]

    def frames(self, episode: dict) -> dict[str, np.ndarray]:
        """{vector key: float32 [T, D]} of one episode, read from its parquet file."""
        import pyarrow.parquet as pq

        from gsenv.lerobot_v21 import CHUNKS_SIZE

        index = int(episode["episode_index"])
        path = self.root / self.info["data_path"].format(episode_chunk=index // CHUNKS_SIZE, episode_index=index)
        table = pq.read_table(path, columns=self.vector_keys)
        return {k: np.stack(table.column(k).to_numpy(zero_copy_only=False)).astype(np.float32)
                for k in self.vector_keys}


def read_source(root: str | Path) -> Source:
    """The dataset at root, checked whole and holding the per-frame poses replay draws; ReplayError
    saying what is wrong (not a dataset, not whole, collected without poses) otherwise."""
    from gsenv.lerobot_v21 import LOCK_FILE, DatasetFormatError, DatasetLock, inspect, repair_hint

    root = Path(root)
    if not (root / "meta" / "info.json").is_file():
        raise ReplayError(f"{root} holds no meta/info.json: not a LeRobot dataset (give the folder gsenv collect "
                          "wrote)")
    try:  # while its writer is between commits, what is found may be half a commit
        lock = DatasetLock(root, exclusive=False) if (root / LOCK_FILE).is_file() else None
        try:
            found = inspect(root, videos="exists")
        finally:
            if lock is not None:
                lock.release()
    except DatasetFormatError as exc:
        raise ReplayError(str(exc)) from None
    if found.problems:
        raise ReplayError(f"{root} is not whole ({found.problems[0]}); {repair_hint(root)}, then replay it")
    info = found.info
    feature = info["features"].get(ENV_STATE_KEY)
    meta = feature.get("gsenv") if isinstance(feature, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("bodies"), list):
        raise ReplayError(f"{root} was collected without every body's pose per frame ({ENV_STATE_KEY} with gsenv's "
                          "body list), which replay draws: re-collect it with this gsenv (gsenv collect)")
    if not found.episodes.rows:
        raise ReplayError(f"{root} holds no episodes: nothing to replay")
    render = {k: v for k, v in meta.items() if k != "bodies"}
    return Source(root, info, found.episodes.rows, list(meta["bodies"]), render)


def _checked_out(out: Path, source: Source) -> int:
    """How many source episodes an earlier replay into ``out`` already wrote (0 for a new folder);
    ReplayError for a folder that is something else."""
    from gsenv.lerobot_v21 import DatasetFormatError, inspect

    if out.resolve() == source.root.resolve():
        raise ReplayError(f"--out {out} is the source dataset: give a new folder")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return 0
    what = f"--out {out} exists and is not an unfinished replay of {source.root}"
    if not (out / "meta" / "info.json").is_file():
        raise ReplayError(f"{what}: give a new folder")
    try:
        done = inspect(out, videos="exists").episodes.rows
    except DatasetFormatError as exc:
        raise ReplayError(f"{what} ({exc})") from None
    for i, row in enumerate(done):
        src = source.episodes[i] if i < len(source.episodes) else None
        if src is None or row.get(REPLAYED_FROM) != src["episode_index"] or row.get("length") != src["length"]:
            raise ReplayError(f"{what} (its episode {i} is not the source's episode {i}): give a new folder")
    return len(done)


@dataclass
class DrawSettings:
    """How a source dataset is drawn: cameras, (height, width), randomisation (None, a preset name or a
    dict), the scene and the task."""

    cameras: list[str]
    size: tuple[int, int]
    randomization: object
    scene: object
    task: object


def draw_settings(source: Source, *, camera=None, image_size=None, domain_randomization=None, scene=None,
                  task=None) -> DrawSettings:
    """The settings asked for, each defaulting to what ``source`` records; ReplayError for one it cannot use."""
    from gsenv.splat.cameras import image_size_hw
    from gsenv.tools.args import checked_task
    from gsenv.tools.collect import _camera_names

    try:
        size = source.image_size if image_size is None else image_size_hw(image_size)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    if size[0] % 2 or size[1] % 2:
        raise ReplayError(f"image size {size[0]}x{size[1]}: the dataset's videos (yuv420p) need an even height "
                          "and width")
    try:
        cameras = _camera_names(camera)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    if cameras is None:
        cameras = source.cameras
        if None in cameras:
            raise ReplayError(f"{source.root} does not record which camera each video holds (an older gsenv wrote "
                              "it): name them with --camera")
    randomization = source.render.get("domain_randomization") if domain_randomization is None else (
        None if domain_randomization == "none" else domain_randomization)
    if randomization == "custom":
        raise ReplayError(f"{source.root} was collected with custom domain randomisation ranges, which it does not "
                          "record: pass --domain-randomization (default or none)")
    scene = source.render.get("scene") if scene is None else scene
    if scene is None:
        raise ReplayError(f"{source.root} does not record its scene (collected with a scene object): pass --scene")
    recorded = source.render.get("task")
    try:
        task = checked_task(recorded if task is None else task, ReplayError)
    except ReplayError as exc:
        raise ReplayError(f"{exc} ({source.root} records the task {recorded!r}; a task of your own: pass "
                          "--task MODULE:NAME)") from None
    return DrawSettings(cameras, size, randomization, scene, task)


class Drawer:
    """An env that draws a source dataset's recorded poses again (nothing simulated), num_envs frames at a
    time, with the cameras, size and randomisation of ``settings``. ``keys``: {video key: camera}, the keys
    collect gives those cameras."""

    def __init__(self, source: Source, settings: DrawSettings, num_envs: int, device: str | None, **env_kwargs):
        import gymnasium as gym

        from gsenv.tasks import env_ids

        self.source, self.settings, self.num_envs = source, settings, num_envs
        try:
            self.env = gym.make(env_ids(settings.task.name)[0], num_envs=num_envs, obs_mode="none",
                                image_size=settings.size, scene=settings.scene, cameras=settings.cameras,
                                device=device, domain_randomization=settings.randomization,
                                scene_density=source.render.get("scene_density", 1.0), **env_kwargs)
        except ValueError as exc:  # the env refused a setting (an unknown camera, scene, task)
            raise ReplayError(str(exc)) from None
        u = self.env.unwrapped
        if sorted(u.get_body_poses()) != sorted(source.bodies):
            self.env.close()
            raise ReplayError(f"{source.root} records the poses of {source.bodies}, this gsenv's "
                              f"{settings.task.name} draws {sorted(u.get_body_poses())}: replay it with the gsenv "
                              "that collected it")
        self.keys = camera_keys(u.camera_names, u.cameras.moving or (False,) * len(u.camera_names))

    def draw(self, episode: dict, frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{video key: uint8 [T, H, W, 3]}: the episode's poses (``frames``, as Source.frames reads them) drawn."""
        import torch

        u, num_envs, bodies = self.env.unwrapped, self.num_envs, self.source.bodies
        poses = frames[ENV_STATE_KEY].reshape(len(frames[ENV_STATE_KEY]), len(bodies), 7)  # [T, N, 7]
        t_total = len(poses)
        if self.settings.randomization is not None:  # every env draws this episode's values, from its seed
            if "seed" not in episode:
                raise ReplayError(f"{self.source.root} episode {episode['episode_index']} records no seed, which "
                                  "randomisation is drawn from")
            self.env.reset(seed=[int(episode["seed"])] * num_envs)
        steps = np.arange(t_total) + int(episode.get("settle_steps", 0))
        out = {k: np.empty((t_total, *self.settings.size, 3), np.uint8) for k in self.keys}
        for start in range(0, t_total, num_envs):
            rows = np.minimum(np.arange(start, start + num_envs), t_total - 1)  # the last chunk repeats its end
            batch = {b: torch.from_numpy(poses[rows, n]) for n, b in enumerate(bodies)}
            rgb = u.render_body_poses(batch, torch.from_numpy(steps[rows])).cpu().numpy()  # [B, C, H, W, 3]
            n = min(num_envs, t_total - start)
            for c, k in enumerate(self.keys):
                out[k][start:start + n] = rgb[:n, c]
        return out

    def close(self) -> None:
        self.env.close()


def _checked_num_envs(num_envs) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
        raise ReplayError(f"num_envs must be a positive int, got {num_envs!r}")
    return num_envs


def drawn_frames(dataset: str | Path, episode_index: int, *, num_envs: int = 8, device: str | None = None,
                 **env_kwargs) -> dict[str, np.ndarray]:
    """{video key: uint8 [T, H, W, 3]}: one episode of a collected dataset drawn again with its own cameras,
    size, scene and randomisation, before any codec: the frames the env rendered while collecting it
    (to check what a reader decodes from the dataset's videos against)."""
    source = read_source(dataset)
    episode = next((e for e in source.episodes if int(e["episode_index"]) == episode_index), None)
    if episode is None:
        raise ReplayError(f"{source.root} has no episode {episode_index} (it holds {len(source.episodes)})")
    check_device(device, ReplayError)
    drawer = Drawer(source, draw_settings(source), _checked_num_envs(num_envs), device, **env_kwargs)
    try:
        return drawer.draw(episode, source.frames(episode))
    finally:
        drawer.close()


def replay(dataset: str | Path, out: str | Path, *, camera: str | list[str] | None = None,
           image_size: int | tuple[int, int] | None = None, domain_randomization=None, scene=None, task=None,
           num_envs: int = 8, device: str | None = None, progress: bool = True, **env_kwargs) -> ReplayResult:
    """Draw the dataset at ``dataset`` again into a new LeRobot v2.1 dataset at ``out``.

    camera: the cameras to draw, each under its key as collect names them (default: the source's).
    image_size: (height, width) or one int (default: the source's). domain_randomization: None (as
    collected), "none", "default" or a dict (gym.make's). scene: where the scene is, when the source
    recorded none or it moved (default: the recorded one). task: the task (a name, MODULE:NAME or
    gsenv.tasks.Task) when its recorded name is not a registered one (a task of your own). num_envs:
    frames drawn at once. env_kwargs go to gym.make (e.g. num_workers, asset_root). An ``out`` that
    holds an unfinished replay of the same source goes on from its next episode (one that holds all of
    it is left as it is).
    """
    from tqdm import tqdm

    from gsenv.lerobot_v21 import Episode, LeRobotV21Writer, VectorFeature, VideoFeature, claim

    source = read_source(dataset)
    num_envs = _checked_num_envs(num_envs)
    settings = draw_settings(source, camera=camera, image_size=image_size,
                             domain_randomization=domain_randomization, scene=scene, task=task)
    check_device(device, ReplayError)
    root = Path(out)
    skip = _checked_out(root, source)
    made = not root.exists()
    lock = claim(root)
    try:
        drawer = Drawer(source, settings, num_envs, device, **env_kwargs)
    except BaseException:
        lock.release()
        if made:
            shutil.rmtree(root, ignore_errors=True)  # holds only the lock file: this run made all of it
        raise
    randomization, scene, size = settings.randomization, settings.scene, settings.size
    features = {k: VideoFeature(*size, camera=name) for k, name in drawer.keys.items()}
    for k in source.vector_keys:
        f = source.info["features"][k]
        extra = {x: v for x, v in f.items() if x not in ("dtype", "shape", "names")}
        if k == ENV_STATE_KEY:  # what this dataset was drawn with
            extra["gsenv"] = {**extra["gsenv"], "scene": str(scene) if isinstance(scene, (str, Path)) else None,
                              "domain_randomization": randomization if randomization is None or
                              isinstance(randomization, str) else "custom"}
        features[k] = VectorFeature(int(f["shape"][0]), f.get("names"), extra=extra or None)
    try:
        writer = LeRobotV21Writer(root, fps=source.info["fps"], features=features, robot_type=ROBOT_TYPE, lock=lock)
    except BaseException:
        drawer.close()
        raise

    todo = source.episodes[skip:]
    t0, frames_done, pending = time.perf_counter(), 0, []
    bar = tqdm(total=len(source.episodes), initial=skip, unit="episode", disable=not progress, desc="replay")
    encoders = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="gsenv-replay-encode")
    committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gsenv-replay-commit")

    def commit(encoding: Future) -> None:  # the one commit thread: episodes commit in source order
        writer.add_episode(encoding.result())
        bar.update(1)

    try:
        for episode in todo:
            frames = source.frames(episode)
            frames.update(drawer.draw(episode, frames))
            extra = {k: v for k, v in episode.items() if k not in _ROW_KEYS}
            extra[REPLAYED_FROM] = int(episode["episode_index"])
            new = Episode(frames, task=str(episode["tasks"][0]), extra=extra)
            pending.append(committer.submit(commit, encoders.submit(writer.encode, new)))
            frames_done += new.length
            while pending and (pending[0].done() or len(pending) > MAX_PENDING_COMMITS):
                pending.pop(0).result()  # a writer error at once
    finally:
        committer.shutdown(wait=True)  # whole episodes only: what was queued is committed, also on Ctrl-C
        encoders.shutdown(wait=True)
        bar.close()
        writer.close()
        drawer.close()
    for f in pending:
        f.result()
    return ReplayResult(root, len(todo), skip, frames_done, time.perf_counter() - t0)


EPILOG = """examples:
  gsenv replay datasets/RLinf/GSEnv-PutCubeOnPlate-v0 --out ds-wrist --camera 3rd_view_camera,wrist_camera
  gsenv replay DATASET --out ds-224 --image-size 224
  gsenv replay DATASET --out ds-dr --domain-randomization default

Run it again with the same --out to go on after an interruption. exit codes: 0 done, 1 failed while
running, 2 bad input (not a dataset, collected without poses, an --out that is something else)."""


def add_commands(sub) -> None:
    p = sub.add_parser("replay", help="draw a collected dataset again: other cameras, image size, randomisation",
                       description="Draw every frame of a gsenv collect dataset again from its recorded body poses "
                                   "(no simulation) with other cameras, another image size or domain "
                                   "randomisation; write a new LeRobot v2.1 dataset with the same actions, states "
                                   "and task text.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="the dataset gsenv collect wrote")
    p.add_argument("--out", required=True, metavar="DIR", help="the new dataset's folder (must not exist, unless "
                                                                "it holds an unfinished replay of DATASET)")
    add_names(p, "--camera", "CAMERA", "cameras to draw, each under collect's key for it (default: DATASET's)")
    p.add_argument("--image-size", type=parse_image_size, default=None, metavar="HxW",
                   help="image size: one int (square) or HEIGHTxWIDTH (default: DATASET's)")
    p.add_argument("--domain-randomization", default=None, choices=("default", "none"),
                   help="draw with the default randomisation preset, or none (default: as DATASET was collected)")
    p.add_argument("--scene", default=None, help="the scene, when DATASET's recorded one moved (default: recorded)")
    p.add_argument("--task", default=None, metavar="NAME",
                   help="the task, MODULE:NAME for a task of your own (default: the one DATASET records)")
    p.add_argument("--num-envs", type=int, default=8, metavar="B", help="frames drawn at once (default: 8)")
    p.add_argument("--device", default=None, help="where images are rendered: cpu, cuda (default: cuda if available)")
    p.add_argument("--num-workers", type=int, default=1, help="physics worker processes (default: 1; replay only "
                                                             "resets, for randomisation)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    from gsenv.lerobot_v21 import DatasetFormatError

    try:
        r = replay(args.dataset, args.out, camera=args.camera, image_size=args.image_size,
                   domain_randomization=args.domain_randomization, scene=args.scene, task=args.task,
                   num_envs=args.num_envs,
                   device=args.device, progress=args.progress, num_workers=args.num_workers)
    except (ReplayError, DatasetFormatError) as exc:
        print(f"gsenv replay: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gsenv replay: interrupted; the episodes finished so far are committed in {args.out}; run the same "
              "command again to go on", file=sys.stderr)
        return 130
    done = f" (after {r.skipped} replayed before)" if r.skipped else ""
    print(f"replayed {r.replayed} episodes ({r.frames} frames) in {r.seconds:.0f} s into {r.out}{done}")
    return 0
