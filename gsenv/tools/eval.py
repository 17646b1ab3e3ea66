"""`gsenv eval`: score a policy on fixed episodes; success rate (95% Wilson interval), videos, a JSON report.

B envs run at once with partial resets: an env whose episode ends (terminated = success, or truncated
at the step limit) starts the next pending episode id at once, so no env waits for the slowest. Each
env runs its policy's action chunk open-loop (as RLinf does) and asks the policy again when the chunk
is used up or a new episode starts. Episode ids are fixed (0..N-1 by default): the same ids give the
same initial states (reset(options={"episode_id": ...})), so runs are reproducible and comparable.

Cheap to import: the heavy work happens when a run starts. The command line: gsenv.tools.eval_cli.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from gsenv.atomic import write_text_atomic
from gsenv.tools.args import check_device, checked_task, make_out_dir

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

    @classmethod
    def from_json(cls, report: dict) -> EvalResult:
        """The result a report (to_json's dict, e.g. a finished row of an interrupted suite) describes."""
        own = {"complete", "incomplete_reason", "episodes_planned", "episodes_not_finished", "policy",
               "num_episodes", "successes", "success_rate", "wilson_95", "mean_length", "mean_progress", "num_envs",
               "chunk", "image_size", "steps", "seconds", "seconds_per_step", "env_steps_per_second",
               "policy_seconds", "env_seconds", "episodes"}
        episodes = [EpisodeResult(**e) for e in report["episodes"]]
        planned = [e.episode_id for e in episodes] + list(report.get("episodes_not_finished", []))
        return cls(policy=report["policy"], num_envs=report["num_envs"], chunk=report["chunk"], episodes=episodes,
                   steps=report["steps"], seconds=report["seconds"], policy_seconds=report["policy_seconds"],
                   env_seconds=report["env_seconds"],
                   image_size=tuple(report["image_size"]) if report.get("image_size") else None,
                   extra={k: v for k, v in report.items() if k not in own}, complete=report["complete"],
                   incomplete_reason=report.get("incomplete_reason"), planned_episode_ids=planned)

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
    _probe(out)
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


def prepare_resume_dir(path: str | Path, rerun_ids: Sequence[int]) -> Path:
    """The folder of an interrupted run that now continues: it must be writable (a probe, as
    prepare_out_dir), its finished episodes' videos stay, and the videos of the episodes to run again
    (``rerun_ids``: "unfinished" or "running" ones the interruption cut off) are removed, since those
    episodes get new ones. EvalError when the folder cannot be written."""
    import shutil

    out = make_out_dir(path, EvalError)
    _probe(out)
    rerun = {int(i) for i in rerun_ids}
    for p in out.iterdir():
        m = OUTPUT_NAME.fullmatch(p.name)
        if m and int(p.name.split("_")[1]) in rerun:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return out


def _probe(out: Path) -> None:
    """EvalError unless a file can be written in `out` (a probe file, removed again)."""
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


def stop_reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C / KeyboardInterrupt) before every episode ended"
    return f"stopped by an error before every episode ended: {type(exc).__name__}: {exc}"


def evaluate(env, policy, episode_ids: Sequence[int], *, out_dir: str | Path | None = None, video: bool = True,
             progress: bool = True, extra: dict | None = None,
             done: Sequence[EpisodeResult] | None = None) -> EvalResult:
    """Run `policy` (gsenv.tools.policies) for one episode per id on `env` (a GSEnv made with gym.make,
    whose time limit ends episodes) and return the results.

    With out_dir, the folder is prepared first (prepare_out_dir: written to, an earlier run's outputs
    moved aside) and out_dir/report.json is rewritten as episodes end: "complete": false (with the
    reason) until the last one ends, and after a failure or Ctrl-C, which are then raised again.
    Videos go to out_dir when video is True. extra: more entries for the report.

    done: the episodes an interrupted run of the same ids already finished (its report's): they are
    kept as they are and not run again; out_dir keeps their videos (prepare_resume_dir)."""
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
    done_by_id = {e.episode_id: e for e in (done or ())}
    if set(done_by_id) - set(ids):
        raise EvalError(f"finished episodes {sorted(set(done_by_id) - set(ids))} are not among the ids to run")
    pending = [k for k, i in enumerate(ids) if i not in done_by_id]  # indices into ids still to run
    if out_dir is None:
        out, moved = None, None
    elif done_by_id:
        out, moved = prepare_resume_dir(out_dir, [ids[k] for k in pending]), None
    else:
        out, moved = prepare_out_dir(out_dir)
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
    results: list[EpisodeResult | None] = [done_by_id.get(i) for i in ids]
    next_p = 0  # the next index into pending
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
        nonlocal next_p, t_env
        take = envs[:len(pending) - next_p]
        for e in envs[len(take):]:
            slot[e] = -1
        if not take:
            return None
        ks = pending[next_p:next_p + len(take)]
        next_p += len(take)
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

    if done_by_id:
        extra["episodes_from_earlier_run"] = len(done_by_id)
    write_report(result(False, RUNNING_NOTE))
    if not pending:
        final = result(True, None)
        write_report(final)
        return final
    bar = tqdm(total=len(ids), initial=len(ids) - len(pending), desc="gsenv eval", unit="episode",
               disable=not progress)
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
                ended_so_far = [r for r in results if r is not None]
                if len(ended_so_far) < len(ids):
                    write_report(result(False, RUNNING_NOTE))
                bar.update(len(finished))
                bar.set_postfix(success=f"{sum(r.success for r in ended_so_far)}/{len(ended_so_far)}", steps=steps)
                new_obs = start(finished)
                obs = obs if new_obs is None else new_obs
    except BaseException as exc:  # the report says the run stopped, and why; the caller hears of it too
        partial = result(False, stop_reason(exc))
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
             camera: str | Sequence[str] | None = None, task=None, env_id: str | None = None,
             env_kwargs: dict | None = None, done: Sequence[EpisodeResult] | None = None) -> EvalResult:
    """Make the env of ``task`` (a name, MODULE:NAME or gsenv.tasks.Task; None: the default task) and the
    policy ("expert": the task's scripted expert), evaluate, writing out_dir/report.json as episodes end (and the
    videos); -> the result. The output folder is checked (and an earlier run's outputs moved aside)
    before the env is made. camera: the env's cameras (default: the scene's fixed cameras); a server
    gets the first fixed one as observation/image, the first on a link as observation/wrist_image.
    env_id, env_kwargs: make this gymnasium id (with these extra gym.make arguments) instead of the
    task's own (a suite's variant). done: an interrupted run's finished episodes (see evaluate)."""
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
    # a folder that cannot be written fails now, not after the episodes
    if done:
        finished = {e.episode_id for e in done}
        out, moved = prepare_resume_dir(out_dir, [i for i in ids if i not in finished]), None
    else:
        out, moved = prepare_out_dir(out_dir)
    extra = {"task": task.name, "max_steps": max_steps or EPISODE_STEPS}
    if env_id is not None:
        extra["env_id"] = env_id
    if moved is not None:
        extra["previous_run_moved_to"] = moved.name
    if policy.strip().startswith(("ws://", "wss://")):
        probe_server(policy.strip(), timeout_s)  # a dead server fails now, not after the env's start-up
    num_envs = min(num_envs, len(ids))  # more envs than episodes would only idle
    # the initial-state table grows to the largest id asked for (entry k is the same whatever its size)
    trials = max(DEFAULT_TOTAL_NUM_TRIALS, max(ids) + 1)
    try:
        env = gym.make(env_id or env_ids(task.name)[0], num_envs=num_envs, obs_mode="rgb", image_size=image_size,
                       device=device, scene=scene, scene_density=scene_density, asset_root=asset_root,
                       total_num_trials=trials, max_episode_steps=max_steps or EPISODE_STEPS,
                       cameras=[camera] if isinstance(camera, str) else camera, **(env_kwargs or {}))
    except ValueError as exc:
        if isinstance(exc, SceneError) or camera is None:
            raise
        raise EvalError(f"--camera {camera}: {exc}") from None  # an unknown or repeated camera name
    try:
        extra["task"] = env.unwrapped.task.name  # a suite's variant may be a task of its own
        if policy.strip().startswith(("ws://", "wss://")):
            try:
                server_image_cameras(env)  # a camera set a server cannot be given is a bad option
            except PolicyError as exc:
                raise EvalError(str(exc)) from None
        with make_policy(policy, env, chunk=chunk, timeout_s=timeout_s) as pol:
            return evaluate(env, pol, ids, out_dir=out, video=video, progress=progress, extra=extra, done=done)
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
            write(False, f"task {task.name}: {stop_reason(exc)}")
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
