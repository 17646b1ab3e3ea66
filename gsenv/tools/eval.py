"""`gsenv eval`: score a policy on fixed episodes; success rate (95% Wilson interval), videos, a JSON report.

B envs run at once with partial resets: an env whose episode ends (terminated = success, or truncated
at the step limit) starts the next pending episode id at once, so no env waits for the slowest. Each
env runs its policy's action chunk open-loop (as RLinf does) and asks the policy again when the chunk
is used up or a new episode starts. Episode ids are fixed (0..N-1 by default): the same ids give the
same initial states (reset(options={"episode_id": ...})), so runs are reproducible and comparable.

Cheap to import: the heavy work happens in the handler.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from gsenv.atomic import write_text_atomic
from gsenv.tools.args import add_image_size, add_names, check_device, checked_task, make_out_dir

logger = logging.getLogger(__name__)

DEFAULT_OUT = "gsenv-eval"
DEFAULT_IMAGE_SIZE = "480x640"  # what openpi's pi05_gsenv was trained on
DEFAULT_CHUNK = 5  # RLinf's num_action_chunks for GSEnv
DEFAULT_TIMEOUT_S = 30.0
REPORT_NAME = "report.json"
VIDEO_STEM = "episode_{:04d}_{}"  # episode id, "success" / "failure" / "running" (while it runs) / "unfinished"
OUTCOMES = ("success", "failure")
UNFINISHED = "unfinished"  # the video of an episode the run stopped in (a failure, Ctrl-C)
OUTPUT_NAME = re.compile(r"episode_\d{4,}_(success|failure|running|unfinished)(\.mp4)?")  # a run's video
PREVIOUS_RUN = "previous-run-{}"  # where an earlier run's outputs in the same --out are moved (its time)
RUNNING_NOTE = "the evaluation had not finished when this report was written (still running, or killed)"
WILSON_Z = 1.959963984540054  # the normal quantile of 97.5%: a two-sided 95% interval

EPILOG = f"""\
Policies (--policy):
  expert            the scripted expert (gsenv.scripted_expert_action), closed loop
  module:callable   a Python callable fn(obs, env) -> actions [B, 7] or chunks [B, T, 7] (torch or numpy)
  ws://host:port    an openpi policy server (openpi's scripts/serve_policy.py); each env sends
                    {{"observation/image": uint8 [H, W, 3], "observation/state": float32 [9],
                    "prompt": str}} and runs the first --chunk steps (first 7 dims) of the answer's
                    "actions"; one connection per env, one request in flight per env. The image is
                    the first fixed camera; with a wrist camera (--camera 3rd_view_camera,wrist_camera)
                    its image goes as "observation/wrist_image" too (openpi's LIBERO-style inputs)

Writes into DIR: {REPORT_NAME} (success rate, 95% Wilson interval, mean progress, mean episode
length, time per step, one entry per episode with its final progress: info["progress"], the task's
stages reached) and one video per episode, {VIDEO_STEM.format(3, "success")}.mp4 or
{VIDEO_STEM.format(3, "failure")}.mp4 (the env's first camera; PNG frames in a folder of that name
where no ffmpeg is available). An episode succeeds when the env terminates it (the --task's success
rule) within --max-steps steps. The report is rewritten as episodes end: "complete"
is true only once every episode ran; a run that stopped early leaves "complete": false with the
reason in "incomplete_reason" (and {VIDEO_STEM.format(3, UNFINISHED)}.mp4 for the episodes it cut off).
An earlier run's report and videos in DIR are moved into DIR/{PREVIOUS_RUN.format("YYYYmmdd-HHMMSS")}
(the time of that run's report) first, so DIR holds only this run's outputs.

Exit status: 0 when the evaluation ran every episode (whatever the success rate), 1 when it failed or
stopped early (e.g. the server did not answer, the policy raised), 2 on a bad option or an output
directory that cannot be written (checked before the first episode), 130 on Ctrl-C."""


class EvalError(Exception):
    """A problem the user can fix (bad option, unwritable output directory)."""


def wilson_interval(successes: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for the default z); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class EpisodeResult:
    episode_id: int
    success: bool
    length: int  # env steps until terminated or truncated
    video: str | None  # file (or PNG folder) name inside the output directory
    physics_restarted: bool = False  # ended because its physics worker was rebuilt
    progress: float = 0.0  # the task's progress (info["progress"], in [0, 1]) at the episode's last step


@dataclass
class EvalResult:
    policy: str
    num_envs: int
    chunk: int
    episodes: list[EpisodeResult]  # in the order of the episode ids asked for
    steps: int  # batched env steps (each steps all num_envs envs)
    seconds: float  # the whole episode loop
    policy_seconds: float  # inside policy calls
    env_seconds: float  # inside env.step and env.reset
    image_size: tuple[int, int] | None = None
    out_dir: str | None = None
    extra: dict = field(default_factory=dict)
    complete: bool = True  # False: the run stopped before every episode ended (episodes holds those that did)
    incomplete_reason: str | None = None  # why, when not complete
    planned_episode_ids: list[int] | None = None  # every id asked for (None: those of episodes)

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / max(1, len(self.episodes))

    @property
    def wilson_95(self) -> tuple[float, float]:
        return wilson_interval(self.successes, len(self.episodes))

    @property
    def mean_length(self) -> float:
        return sum(e.length for e in self.episodes) / max(1, len(self.episodes))

    @property
    def mean_progress(self) -> float:
        return sum(e.progress for e in self.episodes) / max(1, len(self.episodes))

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(1, self.steps)

    def to_json(self) -> dict:
        lo, hi = self.wilson_95
        planned = self.planned_episode_ids if self.planned_episode_ids is not None else \
            [e.episode_id for e in self.episodes]
        done = {e.episode_id for e in self.episodes}
        return {"complete": self.complete, "incomplete_reason": self.incomplete_reason,
                "episodes_planned": len(planned), "episodes_not_finished": [i for i in planned if i not in done],
                "policy": self.policy, "num_episodes": len(self.episodes), "successes": self.successes,
                "success_rate": self.success_rate, "wilson_95": [lo, hi], "mean_length": self.mean_length,
                "mean_progress": self.mean_progress,
                "num_envs": self.num_envs, "chunk": self.chunk,
                "image_size": list(self.image_size) if self.image_size else None,
                "steps": self.steps, "seconds": self.seconds, "seconds_per_step": self.seconds_per_step,
                "env_steps_per_second": self.steps * self.num_envs / max(self.seconds, 1e-9),
                "policy_seconds": self.policy_seconds, "env_seconds": self.env_seconds, **self.extra,
                "episodes": [asdict(e) for e in self.episodes]}


# ----------------------------------------------------------------------------------------- outputs
def prepare_out_dir(path: str | Path) -> tuple[Path, Path | None]:
    """Make `path` ready for one run's outputs, before any episode runs: create it, check that a file
    can be written there (a probe file, removed again), and move an earlier run's outputs (its
    report.json and episode videos) into path/previous-run-<the time of its report>/, so the folder
    never shows an earlier run's files as this run's. -> (the folder, where the earlier outputs went or
    None). EvalError when the folder cannot be created or written."""
    out = make_out_dir(path, EvalError)
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".gsenv-eval-probe-")
        try:
            os.write(fd, b"gsenv eval: can this folder be written?")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise EvalError(f"cannot write into the output directory {out} ({exc.strerror or exc}): give --out a "
                        f"folder you can write to") from None
    earlier = sorted(p for p in out.iterdir() if p.name == REPORT_NAME or OUTPUT_NAME.fullmatch(p.name))
    if not earlier:
        return out, None
    newest = max(p.stat().st_mtime for p in earlier)
    stamp = datetime.fromtimestamp(newest).strftime("%Y%m%d-%H%M%S")
    moved, n = out / PREVIOUS_RUN.format(stamp), 1
    while moved.exists():  # two earlier runs within one second
        n += 1
        moved = out / PREVIOUS_RUN.format(f"{stamp}-{n}")
    try:
        moved.mkdir()
        for p in earlier:
            p.rename(moved / p.name)
    except OSError as exc:
        raise EvalError(f"cannot move the earlier run's outputs in {out} aside into {moved}: {exc}; give --out "
                        f"another folder") from None
    logger.warning("%s held an earlier run's report or videos: moved them into %s", out, moved)
    return out, moved


class _EpisodeVideo:
    """One episode's frames, streamed under a "running" name and renamed by its outcome at the end."""

    def __init__(self, out: Path, episode_id: int, fps: float):
        from gsenv.media import FrameWriter

        self.out, self.episode_id = out, episode_id
        stem = VIDEO_STEM.format(episode_id, "running")
        self.writer = FrameWriter(out / f"{stem}.mp4", out / stem, fps)

    def append(self, frame) -> None:
        self.writer.append(frame)

    def finish(self, outcome: str) -> str:
        """Close and rename to the outcome's name ("success", "failure" or "unfinished"); -> the new name."""
        self.writer.close()
        suffix = ".mp4" if self.writer.is_mp4 else ""
        final = self.out / (VIDEO_STEM.format(self.episode_id, outcome) + suffix)
        self.writer.path.rename(final)
        return final.name


# ----------------------------------------------------------------------------------------- the loop
def checked_episode_ids(episodes: int | None, episode_ids: Sequence[int] | None) -> list[int]:
    """--episodes N (ids 0..N-1) and/or --episode-ids -> the ids to run, each once."""
    if episode_ids is None:
        if episodes is None:
            raise EvalError("give --episodes N (episode ids 0..N-1) or --episode-ids ID [ID ...]")
        if episodes < 1:
            raise EvalError(f"--episodes must be >= 1, got {episodes}")
        return list(range(episodes))
    ids = [int(i) for i in episode_ids]
    if not ids:
        raise EvalError("--episode-ids needs at least one id")
    if episodes is not None and episodes != len(ids):
        raise EvalError(f"--episodes {episodes} disagrees with the {len(ids)} ids of --episode-ids: give one of them")
    if min(ids) < 0:
        raise EvalError(f"episode ids must be >= 0, got {[i for i in ids if i < 0]}")
    if len(set(ids)) != len(ids):
        raise EvalError(f"episode ids must be distinct (each names one video), got {ids}")
    return ids


def _stop_reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C / KeyboardInterrupt) before every episode ended"
    return f"stopped by an error before every episode ended: {type(exc).__name__}: {exc}"


def evaluate(env, policy, episode_ids: Sequence[int], *, out_dir: str | Path | None = None, video: bool = True,
             progress: bool = True, extra: dict | None = None) -> EvalResult:
    """Run `policy` (gsenv.tools.policies) for one episode per id on `env` (a GSEnv made with gym.make,
    whose time limit ends episodes) and return the results.

    With out_dir, the folder is prepared first (prepare_out_dir: written to, an earlier run's outputs
    moved aside) and out_dir/report.json is rewritten as episodes end: "complete": false (with the
    reason) until the last one ends, and after a failure or Ctrl-C, which are then raised again.
    Videos go to out_dir when video is True. extra: more entries for the report."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from gsenv.sim.inputs import checked_action_chunk
    from gsenv.tools.policies import PolicyError

    base = env.unwrapped
    B, A, device = base.num_envs, int(base.single_action_space.shape[0]), base.device
    ids = [int(i) for i in episode_ids]
    if ids and max(ids) >= base.total_num_trials:
        raise EvalError(f"episode ids must lie in [0, {base.total_num_trials}) for this env (its total_num_trials), "
                        f"got {[i for i in ids if i >= base.total_num_trials]}")
    if video and out_dir is None:
        raise EvalError("videos need an output directory (out_dir)")
    out, moved = prepare_out_dir(out_dir) if out_dir is not None else (None, None)
    fps = float(base.metadata.get("render_fps", 10))
    T = int(policy.chunk)
    h, w = base.cameras.height, base.cameras.width
    extra = dict(extra or {})
    if moved is not None:
        extra["previous_run_moved_to"] = moved.name

    slot = np.full(B, -1)  # index into ids of the episode env b runs; -1: idle (no episode left)
    buf = torch.zeros(B, T, A, dtype=torch.float32, device=device)  # each env's current chunk
    pos = torch.zeros(B, dtype=torch.int64, device=device)  # next step to run in the chunk
    qlen = torch.zeros(B, dtype=torch.int64, device=device)  # steps in the chunk
    lengths = np.zeros(B, dtype=np.int64)
    videos: list[_EpisodeVideo | None] = [None] * B
    results: list[EpisodeResult | None] = [None] * len(ids)
    next_k = 0
    steps = 0
    t_policy = t_env = 0.0
    t_start = time.perf_counter()

    def result(complete: bool, reason: str | None) -> EvalResult:
        return EvalResult(policy=policy.spec, num_envs=B, chunk=T, episodes=[r for r in results if r is not None],
                          steps=steps, seconds=time.perf_counter() - t_start, policy_seconds=t_policy,
                          env_seconds=t_env, image_size=(int(h), int(w)), out_dir=str(out) if out else None,
                          extra=dict(extra), complete=complete, incomplete_reason=reason, planned_episode_ids=ids)

    def write_report(r: EvalResult) -> None:
        if out is not None:
            write_text_atomic(out / REPORT_NAME, json.dumps(r.to_json(), indent=2) + "\n")

    def start(envs: list[int]):
        """Reset `envs` into the next pending episodes (as many as are left); the rest go idle."""
        nonlocal next_k, t_env
        take = envs[:len(ids) - next_k]
        for e in envs[len(take):]:
            slot[e] = -1
        if not take:
            return None
        ks = list(range(next_k, next_k + len(take)))
        next_k += len(take)
        t0 = time.perf_counter()
        obs, _ = env.reset(seed=[ids[k] for k in ks],
                           options={"env_idx": torch.tensor(take), "episode_id": [ids[k] for k in ks]})
        t_env += time.perf_counter() - t0
        slot[take] = ks
        lengths[take] = 0
        idx = torch.tensor(take, device=device)
        pos[idx] = 0
        qlen[idx] = 0
        policy.reset(take)
        if video:
            frames = base.render().cpu().numpy()
            for e, k in zip(take, ks):
                videos[e] = _EpisodeVideo(out, ids[k], fps)
                videos[e].append(frames[e])
        return obs

    write_report(result(False, RUNNING_NOTE))
    bar = tqdm(total=len(ids), desc="gsenv eval", unit="episode", disable=not progress)
    try:
        obs = start(list(range(B)))
        while (slot >= 0).any():
            active = torch.from_numpy(slot >= 0).to(device)
            need = active & (pos >= qlen)
            if need.any():
                idx = need.nonzero().reshape(-1)
                t0 = time.perf_counter()
                chunk = policy(obs, env, env_idx=idx)
                t_policy += time.perf_counter() - t0
                try:  # every policy's output, whatever its kind, passes the env's one check of actions
                    chunk = checked_action_chunk(chunk, len(idx), A, f"the policy {policy.spec!r}")
                except (TypeError, ValueError) as exc:
                    raise PolicyError(str(exc)) from None
                if chunk.shape[1] > T:
                    raise PolicyError(f"the policy {policy.spec!r} returned a chunk of {chunk.shape[1]} steps; "
                                      f"it may return at most its chunk, {T}")
                buf[idx, :chunk.shape[1]] = chunk.to(device=device)
                qlen[idx] = chunk.shape[1]
                pos[idx] = 0
            # idle envs hold still (zero action); their steps are not counted
            action = buf[torch.arange(B, device=device), pos.clamp(max=T - 1)] * active[:, None]
            t0 = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            t_env += time.perf_counter() - t0
            steps += 1
            pos += 1
            live = np.flatnonzero(slot >= 0)
            lengths[live] += 1
            if video:
                frames = base.render().cpu().numpy()
                for e in live:
                    videos[e].append(frames[e])
            ended = (active & (terminated | truncated)).cpu().numpy()
            if ended.any():
                success = terminated.cpu().numpy()
                restarted = info["physics_restarted"].cpu().numpy()
                reached = info["progress"].float().cpu().numpy()
                finished = [int(e) for e in np.flatnonzero(ended)]
                for e in finished:
                    name = videos[e].finish(OUTCOMES[0] if success[e] else OUTCOMES[1]) if video else None
                    videos[e] = None
                    results[slot[e]] = EpisodeResult(ids[slot[e]], bool(success[e]), int(lengths[e]), name,
                                                     bool(restarted[e]), float(reached[e]))
                done = [r for r in results if r is not None]
                if len(done) < len(ids):
                    write_report(result(False, RUNNING_NOTE))
                bar.update(len(finished))
                bar.set_postfix(success=f"{sum(r.success for r in done)}/{len(done)}", steps=steps)
                new_obs = start(finished)
                obs = obs if new_obs is None else new_obs
    except BaseException as exc:  # the report says the run stopped, and why; the caller hears of it too
        partial = result(False, _stop_reason(exc))
        try:
            partial.extra["unfinished_videos"] = [v.finish(UNFINISHED) for v in videos if v is not None]
            videos = [None] * B
            write_report(partial)
        except Exception as write_exc:  # the run's own error is the one to raise
            logger.error("could not finish the partial outputs in %s: %s", out, write_exc)
        raise
    finally:
        bar.close()
        for v in videos:
            if v is not None:
                v.writer.close()
    final = result(True, None)
    write_report(final)
    return final


def run_eval(policy: str, episodes: int | None = None, episode_ids: Sequence[int] | None = None, num_envs: int = 1,
             chunk: int = DEFAULT_CHUNK, out_dir: str | Path = DEFAULT_OUT, image_size: tuple[int, int] = (480, 640),
             scene: str = "default", scene_density: float = 1.0, max_steps: int | None = None,
             device: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, video: bool = True,
             asset_root: str | None = None, progress: bool = True,
             camera: str | Sequence[str] | None = None, task=None) -> EvalResult:
    """Make the env of ``task`` (a name, MODULE:NAME or gsenv.tasks.Task; None: the default task) and the
    policy ("expert": the task's scripted expert), evaluate, writing out_dir/report.json as episodes end (and the
    videos); -> the result. The output folder is checked (and an earlier run's outputs moved aside)
    before the env is made. camera: the env's cameras (default: the scene's fixed cameras); a server
    gets the first fixed one as observation/image, the first on a link as observation/wrist_image."""
    ids = checked_episode_ids(episodes, episode_ids)
    if num_envs < 1:
        raise EvalError(f"--num-envs must be >= 1, got {num_envs}")
    if chunk < 1:
        raise EvalError(f"--chunk must be >= 1, got {chunk}")
    if max_steps is not None and max_steps < 1:
        raise EvalError(f"--max-steps must be >= 1, got {max_steps}")
    if not 0 < scene_density <= 1:
        raise EvalError(f"--scene-density must lie in (0, 1], got {scene_density}")
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise EvalError(f"--timeout must be a finite number of seconds > 0, got {timeout_s}")
    import gymnasium as gym

    from gsenv.scene.format import SceneError
    from gsenv.sim.names import DEFAULT_TOTAL_NUM_TRIALS, EPISODE_STEPS
    from gsenv.tasks import env_ids
    from gsenv.tools.policies import PolicyError, make_policy, probe_server, server_image_cameras

    task = checked_task(task, EvalError)
    check_device(device, EvalError)
    out, moved = prepare_out_dir(out_dir)  # a folder that cannot be written fails now, not after the episodes
    extra = {"task": task.name, "max_steps": max_steps or EPISODE_STEPS}
    if moved is not None:
        extra["previous_run_moved_to"] = moved.name
    if policy.strip().startswith(("ws://", "wss://")):
        probe_server(policy.strip(), timeout_s)  # a dead server fails now, not after the env's start-up
    num_envs = min(num_envs, len(ids))  # more envs than episodes would only idle
    # the initial-state table grows to the largest id asked for (entry k is the same whatever its size)
    trials = max(DEFAULT_TOTAL_NUM_TRIALS, max(ids) + 1)
    try:
        env = gym.make(env_ids(task.name)[0], num_envs=num_envs, obs_mode="rgb", image_size=image_size, device=device,
                       scene=scene, scene_density=scene_density, asset_root=asset_root, total_num_trials=trials,
                       max_episode_steps=max_steps or EPISODE_STEPS,
                       cameras=[camera] if isinstance(camera, str) else camera)
    except ValueError as exc:
        if isinstance(exc, SceneError) or camera is None:
            raise
        raise EvalError(f"--camera {camera}: {exc}") from None  # an unknown or repeated camera name
    try:
        if policy.strip().startswith(("ws://", "wss://")):
            try:
                server_image_cameras(env)  # a camera set a server cannot be given is a bad option
            except PolicyError as exc:
                raise EvalError(str(exc)) from None
        with make_policy(policy, env, chunk=chunk, timeout_s=timeout_s) as pol:
            return evaluate(env, pol, ids, out_dir=out, video=video, progress=progress, extra=extra)
    finally:
        env.close()


def checked_tasks(tasks) -> list:
    """--task values (names, MODULE:NAME, comma lists, or Task instances; None: the default task) -> the
    distinct gsenv.tasks.Task instances in order; EvalError naming a bad or repeated one."""
    if tasks is None or isinstance(tasks, str) or not isinstance(tasks, (list, tuple)):
        tasks = [tasks]
    names = [n for t in tasks for n in ([x.strip() for x in t.split(",")] if isinstance(t, str) else [t])]
    if any(n == "" for n in names):
        raise EvalError(f"--task: an empty task name in {tasks!r}; give names separated by commas")
    resolved = [checked_task(n, EvalError) for n in names]
    seen = [t.name for t in resolved]
    repeated = sorted({n for n in seen if seen.count(n) > 1})
    if repeated:
        raise EvalError(f"--task names {', '.join(repeated)} more than once: give each task once")
    return resolved


def run_eval_tasks(policy: str, tasks, out_dir: str | Path = DEFAULT_OUT, **kwargs) -> dict[str, EvalResult]:
    """run_eval for each task of ``tasks`` (see checked_tasks) in turn, each into out_dir/<task name>/ (its
    report.json and videos), and out_dir/report.json with one section per task (rewritten after each task;
    "complete" once every task ran) -> {task name: its result}. A task that stops early stops the run."""
    resolved = checked_tasks(tasks)
    out, moved = prepare_out_dir(out_dir)
    results: dict[str, EvalResult] = {}

    def write(complete: bool, reason: str | None) -> None:
        report = {"complete": complete, "incomplete_reason": reason, "policy": policy,
                  "tasks_planned": [t.name for t in resolved],
                  "tasks": {name: r.to_json() for name, r in results.items()}}
        if moved is not None:
            report["previous_run_moved_to"] = moved.name
        write_text_atomic(out / REPORT_NAME, json.dumps(report, indent=2) + "\n")

    write(False, RUNNING_NOTE)
    for task in resolved:
        try:
            results[task.name] = run_eval(policy, out_dir=out / task.name, task=task, **kwargs)
        except BaseException as exc:
            write(False, f"task {task.name}: {_stop_reason(exc)}")
            raise
        done = len(results) == len(resolved)
        write(done, None if done else RUNNING_NOTE)
    return results


def format_table(results: dict[str, EvalResult]) -> str:
    """One line per task: success (with its 95% Wilson interval), mean progress, mean episode length."""
    rows = [("task", "success (95% interval)", "progress", "length")]
    for name, r in results.items():
        lo, hi = r.wilson_95
        rows.append((name, f"{r.successes}/{len(r.episodes)} = {100 * r.success_rate:.1f}% "
                           f"({100 * lo:.1f}-{100 * hi:.1f}%)", f"{r.mean_progress:.3f}", f"{r.mean_length:.1f}"))
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


# ----------------------------------------------------------------------------------------- the CLI
def add_commands(sub) -> None:
    p = sub.add_parser("eval", help="score a policy (expert, Python callable or openpi server) on fixed episodes",
                       description="Run a policy for N fixed episodes in B envs at once (action chunks open-loop,\n"
                                   "partial resets) and report the success rate with a 95% Wilson interval, the\n"
                                   "mean episode length and the time per step; one video per episode, a JSON report.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, metavar="SPEC",
                   help='"expert", "module:callable" or "ws://host:port" (an openpi policy server)')
    from gsenv.tasks import DEFAULT_TASK, task_names

    p.add_argument("--task", action="append", default=None, metavar="NAME",
                   help=f"the task: {', '.join(task_names())}, or MODULE:NAME of a gsenv.tasks.Task of your own; "
                        f"several: repeat it or give a comma list (one table, one report section per task, each "
                        f"task's outputs in DIR/NAME/) (default: {DEFAULT_TASK})")
    p.add_argument("--episodes", type=int, default=None, metavar="N", help="run episode ids 0..N-1")
    p.add_argument("--episode-ids", type=int, nargs="+", default=None, metavar="ID",
                   help="run these episode ids instead (each once)")
    p.add_argument("--num-envs", type=int, default=1, metavar="B", help="envs run at once (default: 1)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, metavar="T",
                   help=f"steps of each action chunk run open-loop (default: {DEFAULT_CHUNK}, as RLinf; "
                        f"the expert always runs closed loop)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output directory (default: ./{DEFAULT_OUT})")
    add_image_size(p, DEFAULT_IMAGE_SIZE, what="camera image size, also the image sent to a server")
    p.add_argument("--scene", default="default", metavar="SCENE",
                   help="default, a dataset name, or a bundle or dataset directory (default: default)")
    p.add_argument("--scene-density", type=float, default=1.0, metavar="D",
                   help="gaussian density of the default scene, in (0, 1] (default: 1.0)")
    p.add_argument("--max-steps", type=int, default=None, metavar="T",
                   help="episode step limit (default: the env's, 100)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where observations live and images are rendered (default: cuda when available, else cpu)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds a policy server may take to connect or answer (default: {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--no-video", dest="video", action="store_false", help="write no videos")
    add_names(p, "--camera", "CAMERA",
              "the env's cameras (default: the scene's fixed ones); a policy server gets the first fixed one as "
              "observation/image and the first on a robot link (e.g. wrist_camera) as observation/wrist_image")
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from gsenv.scene.format import SceneError
    from gsenv.tools.policies import PolicyError

    kwargs = dict(episodes=args.episodes, episode_ids=args.episode_ids, num_envs=args.num_envs, chunk=args.chunk,
                  out_dir=args.out, image_size=args.image_size, scene=args.scene, scene_density=args.scene_density,
                  max_steps=args.max_steps, device=args.device, timeout_s=args.timeout, video=args.video,
                  camera=args.camera)
    try:
        tasks = checked_tasks(args.task)
        if len(tasks) > 1:
            results = run_eval_tasks(args.policy, tasks, **kwargs)
        else:
            result = run_eval(args.policy, task=tasks[0], **kwargs)
    except EvalError as exc:
        print(f"gsenv eval: error: {exc}", file=sys.stderr)
        return 2
    except (PolicyError, SceneError) as exc:
        print(f"gsenv eval: error: {exc}{_partial_note(args.out)}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # sys.exit() in a policy or a library it calls: the run did not finish
        print(f"gsenv eval: error: the evaluation was stopped by SystemExit({exc.code!r}) before it finished"
              f"{_partial_note(args.out)}", file=sys.stderr)
        return 1
    if len(tasks) > 1:
        print(format_table(results))
        print(f"report: {Path(args.out) / REPORT_NAME} (a section per task; each task's videos in {args.out}/NAME/)")
        return 0
    _print_result(result)
    return 0


def _partial_note(out: str) -> str:
    """Where the stopped run's partial report is (an earlier run's was moved aside before it began)."""
    report = Path(out) / REPORT_NAME
    return f" (the partial report, \"complete\": false: {report})" if report.is_file() else ""


def _print_result(r: EvalResult) -> None:
    lo, hi = r.wilson_95
    n = len(r.episodes)
    print(f"success rate: {r.successes}/{n} = {100 * r.success_rate:.1f}% (95% Wilson interval "
          f"{100 * lo:.1f}%-{100 * hi:.1f}%), policy {r.policy}")
    print(f"mean progress: {r.mean_progress:.3f}; mean episode length: {r.mean_length:.1f} steps; "
          f"{1000 * r.seconds_per_step:.0f} ms per step of "
          f"{r.num_envs} env(s) ({r.steps} steps in {r.seconds:.1f} s; policy {r.policy_seconds:.1f} s, "
          f"env {r.env_seconds:.1f} s)")
    if r.out_dir:
        videos = any(e.video for e in r.episodes)
        videos = f"; videos: {r.out_dir}/episode_NNNN_success.mp4 or _failure.mp4" if videos else ""
        print(f"report: {Path(r.out_dir) / REPORT_NAME}{videos}")
