"""`gsenv demo`: the scripted expert on the embedded default scene, as a video and pictures.

Runs one episode of the scripted pick-and-place expert in a few envs (CPU physics workers, splat
camera images), then writes into the output directory:

- ``demo.mp4``: the tiled RGB observations of all envs, one video frame per step (PNG frames in
  ``frames/`` where no ffmpeg is available);
- ``contact_sheet.png``: a grid of frames, one row per env, columns evenly spaced over the episode;
- ``splat_vs_mesh.png``: the first env's initial state, splat render (left) beside SAPIEN's render
  of the simulator's meshes (right): picture and physics should line up.

Cheap to import: the heavy work happens in the handler. Library code logs; the CLI handler prints.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gsenv.media import FrameWriter, tile_frames
from gsenv.tools.args import add_image_size, add_task, check_device, checked_task, make_out_dir

logger = logging.getLogger(__name__)

DEFAULT_NUM_ENVS = 4
DEFAULT_STEPS = 100
DEFAULT_IMAGE_SIZE = "224"
DEFAULT_OUT = "gsenv-demo"
SETTLE_STEPS = 10  # early stop: every env successful for this many consecutive steps
SHEET_COLUMNS = 8
VIDEO_FPS = 10
GAP = 2  # white pixels between tiles
BORDER = 2  # tile border: green while the env is successful, grey otherwise
SUCCESS_RGB = (40, 200, 60)
PENDING_RGB = (120, 120, 120)

VIDEO_NAME = "demo.mp4"
FRAMES_DIR = "frames"
FRAME_NAME = "frame_{:04d}.png"  # in FRAMES_DIR
SHEET_NAME = "contact_sheet.png"
SIDE_BY_SIDE_NAME = "splat_vs_mesh.png"

EPILOG = f"""\
What it does: builds the embedded default scene on first use (into the asset root: $GSENV_ASSETS
or ~/.cache/gsenv; a progress bar shows the build), starts N envs of the --task (CPU
physics in worker processes, 3D Gaussian Splatting camera images), runs its scripted expert
for one episode and writes into DIR:

  {VIDEO_NAME}            tiled RGB observations of all envs, {VIDEO_FPS} frames/s (a tile's border turns
                      green while its env is successful); where no ffmpeg is available,
                      {FRAMES_DIR}/frame_NNNN.png instead (said so on the output)
  {SHEET_NAME}   rows = envs, {SHEET_COLUMNS} columns evenly spaced over the episode
  {SIDE_BY_SIDE_NAME}   env 0's initial state: splat render | SAPIEN mesh render

The episode ends after --steps steps, or earlier once every env has been successful for
{SETTLE_STEPS} consecutive steps (--no-early-stop runs all steps). The success rate printed is the
share of envs that meet the task's success rule at the last step.

Run time: on CPU the splat images come from the pure-PyTorch rasteriser (about 1 s a step for
4 envs at 224x224 on 2 cores). With the defaults (4 envs, 224x224, full-density scene) the expert
succeeds in all envs after about 25 steps and the demo stops at about step 35: about 1-2 minutes on
2 idle CPU cores (measured 71 s, scene build included), up to about 4 minutes on busy ones;
--no-early-stop (all 100 steps) about twice that. On a CUDA GPU (gsplat) seconds. A smaller
--image-size or --num-envs is faster. The first run also builds the default scene (seconds).

Exit status: 0 when the run completed (whatever the policy's success rate), 1 when it failed,
2 on a bad option."""


class DemoError(Exception):
    """A problem the user can fix (bad option, unwritable output directory)."""


@dataclass
class DemoResult:
    num_envs: int
    steps: int
    success: list[bool]  # per env, at the last step
    success_once: list[bool]  # per env, at any step
    video: Path | None
    frames_dir: Path | None
    contact_sheet: Path
    side_by_side: Path | None
    seconds: float
    first_success_step: list[int | None] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)  # start-up, episode, pictures

    @property
    def success_rate(self) -> float:
        return sum(self.success) / max(1, self.num_envs)


# ----------------------------------------------------------------------------------------- pictures
def video_frame(frames, success: Sequence[bool] | None = None):
    """uint8 [B, H, W, 3] -> one video frame: a near-square grid (never taller than wide), white
    gaps, even height and width (video codecs need that). With `success` [B], each tile gets a green
    (success) or grey border."""
    n = len(frames)
    rows = math.ceil(n / math.ceil(math.sqrt(n)))
    borders = None if success is None else [SUCCESS_RGB if ok else PENDING_RGB for ok in success]
    return tile_frames(frames, rows, gap=GAP, fill=255, borders=borders, border_width=BORDER, even=True)


def sheet_columns(num_frames: int, columns: int = SHEET_COLUMNS) -> list[int]:
    """Indices of `columns` frames evenly spaced over num_frames, first and last included."""
    if num_frames <= columns:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (columns - 1)) for i in range(columns)})


def contact_sheet(frames, columns: int = SHEET_COLUMNS, gap: int = GAP):
    """uint8 [T, B, H, W, 3] -> one image: row b = env b, columns = frames evenly spaced over T."""
    import numpy as np

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 5:
        raise ValueError(f"frames must be [T, B, H, W, 3], got {list(frames.shape)}")
    picked = frames[sheet_columns(frames.shape[0], columns)]  # [K, B, H, W, 3]
    by_env = picked.transpose(1, 0, 2, 3, 4).reshape((-1,) + frames.shape[2:])  # [B*K, H, W, 3], env-major
    return tile_frames(by_env, frames.shape[1], gap=gap, fill=255)


# ----------------------------------------------------------------------------------------- the run
def run_demo(out_dir: str | Path = DEFAULT_OUT, num_envs: int = DEFAULT_NUM_ENVS, steps: int = DEFAULT_STEPS,
             image_size: tuple[int, int] = (224, 224), device: str | None = None, scene_density: float = 1.0,
             seed: int = 0, early_stop: bool = True, asset_root: str | None = None, num_workers: int | None = None,
             progress: bool = True, side_by_side: bool = True, task=None) -> DemoResult:
    """Run ``task``'s scripted expert (a name, MODULE:NAME or gsenv.tasks.Task; None: the default task) for
    one episode in `num_envs` envs and write the video, the contact
    sheet and the splat-vs-mesh side-by-side into `out_dir` (see the module doc)."""
    if num_envs < 1:
        raise DemoError(f"--num-envs must be >= 1, got {num_envs}")
    if steps < 1:
        raise DemoError(f"--steps must be >= 1, got {steps}")
    if not 0 < scene_density <= 1:
        raise DemoError(f"--scene-density must lie in (0, 1], got {scene_density}")
    import gymnasium as gym
    import imageio.v3 as iio
    import numpy as np
    from tqdm.auto import tqdm

    from gsenv.tasks import env_ids

    task = checked_task(task, DemoError)
    check_device(device, DemoError)
    out = make_out_dir(out_dir, DemoError)

    t0 = time.perf_counter()
    env = gym.make(env_ids(task.name)[0], num_envs=num_envs, obs_mode="rgb", image_size=image_size, device=device,
                   scene_density=scene_density, asset_root=asset_root, num_workers=num_workers,
                   max_episode_steps=steps)
    t_setup = time.perf_counter() - t0
    video = FrameWriter(out / VIDEO_NAME, out / FRAMES_DIR, VIDEO_FPS, png_name=FRAME_NAME)
    try:
        base = env.unwrapped
        camera = base.camera_names[0]
        obs, info = env.reset(seed=seed)
        initial = {k: v[0].detach().cpu().numpy() for k, v in base.get_body_poses().items() if k in task.objects}
        initial_qpos = base.agent.robot.get_qpos()[0].detach().cpu().numpy()

        def rgb(o):
            return o["sensor_data"][camera]["rgb"].detach().cpu().numpy()

        success = info["success"].detach().cpu().numpy().astype(bool)
        frames = [rgb(obs)]
        video.append(video_frame(frames[-1], success))
        success_once = success.copy()
        first_success: list[int | None] = [0 if s else None for s in success]
        settled = np.zeros(num_envs, np.int64)
        done_steps = 0
        with tqdm(total=steps, desc="gsenv demo", unit="step", disable=not progress) as bar:
            for t in range(1, steps + 1):
                action = base.expert_action()
                obs, reward, terminated, truncated, info = env.step(action)
                success = info["success"].detach().cpu().numpy().astype(bool)
                for i in np.flatnonzero(success & ~success_once):
                    first_success[i] = t
                success_once |= success
                settled = np.where(success, settled + 1, 0)
                frames.append(rgb(obs))
                video.append(video_frame(frames[-1], success))
                done_steps = t
                bar.update(1)
                bar.set_postfix(success=f"{int(success.sum())}/{num_envs}")
                if early_stop and (settled >= SETTLE_STEPS).all():
                    logger.info("every env successful for %d steps: stopping after step %d", SETTLE_STEPS, t)
                    break
        video.close()
        t_episode = time.perf_counter() - t0 - t_setup
        sheet_path = out / SHEET_NAME
        iio.imwrite(sheet_path, contact_sheet(np.stack(frames)))
        bundle = base.scene
        render_backend = base.render_backend
        render_device = base.device
    finally:
        video.close()
        env.close()

    sbs_path = None
    if side_by_side:
        from gsenv.alignment.overlay import splat_vs_mesh

        img = splat_vs_mesh(bundle, qpos=initial_qpos, object_poses=initial, camera=camera, image_size=image_size,
                            render_backend=render_backend, device=render_device, task=task)
        sbs_path = out / SIDE_BY_SIDE_NAME
        iio.imwrite(sbs_path, img)

    return DemoResult(num_envs=num_envs, steps=done_steps, success=success.tolist(),
                      success_once=success_once.tolist(), video=video.path if video.is_mp4 else None,
                      frames_dir=None if video.is_mp4 else video.path, contact_sheet=sheet_path,
                      side_by_side=sbs_path, seconds=time.perf_counter() - t0, first_success_step=first_success,
                      phase_seconds={"start-up": t_setup, "episode": t_episode,
                                     "pictures": time.perf_counter() - t0 - t_setup - t_episode})


# ----------------------------------------------------------------------------------------- the CLI
def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="run the scripted expert on the default scene; write a video and pictures",
                       description="Run the scripted pick-and-place expert for one episode in a few envs on the "
                                   "embedded default scene and write an mp4, a contact sheet and a splat-vs-mesh "
                                   "side-by-side.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task(p)
    p.add_argument("--num-envs", type=int, default=DEFAULT_NUM_ENVS, metavar="N",
                   help=f"number of parallel envs (default: {DEFAULT_NUM_ENVS})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, metavar="T",
                   help=f"episode length in steps; the episode stops earlier once every env has been "
                        f"successful for {SETTLE_STEPS} steps (default: {DEFAULT_STEPS})")
    p.add_argument("--no-early-stop", dest="early_stop", action="store_false",
                   help="run all --steps steps even when every env has succeeded")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output directory (default: ./{DEFAULT_OUT})")
    add_image_size(p, DEFAULT_IMAGE_SIZE, what="camera image size (the camera intrinsics are rescaled; the "
                                             "default is fast enough on CPU)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where observations live and images are rendered: cpu, cuda or cuda:N (default: cuda "
                        "when available, else cpu)")
    p.add_argument("--scene-density", type=float, default=1.0, metavar="D",
                   help="gaussian density of the default scene, in (0, 1]; lower is faster and coarser "
                        "(default: 1.0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial states (env i gets seed + i; default: 0)")
    p.add_argument("--no-side-by-side", dest="side_by_side", action="store_false",
                   help="skip the splat-vs-mesh picture (it needs SAPIEN's renderer in this process)")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from gsenv.scene.format import SceneError

    try:
        result = run_demo(out_dir=args.out, num_envs=args.num_envs, steps=args.steps, image_size=args.image_size,
                          device=args.device, scene_density=args.scene_density, seed=args.seed,
                          early_stop=args.early_stop, side_by_side=args.side_by_side, task=args.task)
    except DemoError as exc:
        print(f"gsenv demo: error: {exc}", file=sys.stderr)
        return 2
    except SceneError as exc:
        print(f"gsenv demo: error: {exc}", file=sys.stderr)
        return 1
    _print_result(result)
    return 0


def _print_result(r: DemoResult) -> None:
    n_ok, n_once = sum(r.success), sum(r.success_once)
    print(f"success rate: {n_ok}/{r.num_envs} envs ({100 * r.success_rate:.0f}%) successful "
          f"after {r.steps} steps ({n_once}/{r.num_envs} succeeded at some step)")
    if r.video is not None:
        print(f"video:          {r.video}")
    else:
        print("no ffmpeg found (imageio-ffmpeg): wrote PNG frames instead of an mp4 "
              "(pip install imageio-ffmpeg for the video)")
        print(f"frames:         {r.frames_dir}/frame_NNNN.png")
    print(f"contact sheet:  {r.contact_sheet}")
    if r.side_by_side is not None:
        print(f"splat vs mesh:  {r.side_by_side}")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in r.phase_seconds.items())
    print(f"took {r.seconds:.0f} s ({phases})" if phases else f"took {r.seconds:.0f} s")
