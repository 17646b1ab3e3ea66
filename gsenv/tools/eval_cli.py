"""`gsenv eval`'s command line: one task, several (--task A,B) or a suite (--suite ood|FILE); the runs
themselves are gsenv.tools.eval (one task) and gsenv.tools.eval_suite (a suite).

Cheap to import: the heavy work happens in the handler.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gsenv.tools.args import add_image_size, add_names
from gsenv.tools.eval import (
    DEFAULT_CHUNK,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_OUT,
    DEFAULT_TIMEOUT_S,
    PREVIOUS_RUN,
    REPORT_NAME,
    UNFINISHED,
    VIDEO_STEM,
    EvalError,
    EvalResult,
    checked_tasks,
    format_table,
    run_eval,
    run_eval_tasks,
)

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
    p.add_argument("--suite", default=None, metavar="SUITE",
                   help="run every row of a suite instead of --task: 'ood' (the rl4vla out-of-distribution "
                        "protocol: in-distribution, then vision, semantic and execution variants) or a YAML "
                        "file listing tasks and variants; one table by category, DIR/report.json, each row's "
                        "outputs in DIR/ROW/; run again to continue an interrupted run")
    p.add_argument("--restart", action="store_true",
                   help="with --suite: start again (an earlier run's outputs moved aside) instead of continuing it")
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
    kwargs = dict(episodes=args.episodes, episode_ids=args.episode_ids, num_envs=args.num_envs, chunk=args.chunk,
                  out_dir=args.out, image_size=args.image_size, scene=args.scene, scene_density=args.scene_density,
                  max_steps=args.max_steps, device=args.device, timeout_s=args.timeout, video=args.video,
                  camera=args.camera)
    if args.suite is not None and args.task is not None:
        print("gsenv eval: error: give --suite or --task, not both (a suite names its own tasks)", file=sys.stderr)
        return 2
    if args.restart and args.suite is None:
        print("gsenv eval: error: --restart goes with --suite (a plain run always starts again)", file=sys.stderr)
        return 2

    def run() -> str:
        """Run what the options ask for -> the text to print."""
        if args.suite is not None:
            from gsenv.tools.eval_suite import format_suite_table, load_suite, run_suite

            suite = load_suite(args.suite)
            results = run_suite(args.policy, suite, restart=args.restart, **kwargs)
            return (f"{format_suite_table(suite, results)}\nreport: {Path(args.out) / REPORT_NAME} (a section per "
                    f"row; each row's outputs in {args.out}/ROW/)")
        tasks = checked_tasks(args.task)
        if len(tasks) == 1:
            return _result_text(run_eval(args.policy, task=tasks[0], **kwargs))
        results = run_eval_tasks(args.policy, tasks, **kwargs)
        return (f"{format_table(results)}\nreport: {Path(args.out) / REPORT_NAME} (a section per task; each task's "
                f"videos in {args.out}/NAME/)")

    from gsenv.scene.format import SceneError
    from gsenv.tools.policies import PolicyError

    try:
        text = run()
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
    print(text)
    return 0


def _partial_note(out: str) -> str:
    """Where the stopped run's partial report is (an earlier run's was moved aside before it began)."""
    report = Path(out) / REPORT_NAME
    return f" (the partial report, \"complete\": false: {report})" if report.is_file() else ""


def _result_text(r: EvalResult) -> str:
    lo, hi = r.wilson_95
    n = len(r.episodes)
    lines = [f"success rate: {r.successes}/{n} = {100 * r.success_rate:.1f}% (95% Wilson interval "
             f"{100 * lo:.1f}%-{100 * hi:.1f}%), policy {r.policy}",
             f"mean progress: {r.mean_progress:.3f}; mean episode length: {r.mean_length:.1f} steps; "
             f"{1000 * r.seconds_per_step:.0f} ms per step of {r.num_envs} env(s) ({r.steps} steps in "
             f"{r.seconds:.1f} s; policy {r.policy_seconds:.1f} s, env {r.env_seconds:.1f} s)"]
    if r.out_dir:
        videos = any(e.video for e in r.episodes)
        videos = f"; videos: {r.out_dir}/episode_NNNN_success.mp4 or _failure.mp4" if videos else ""
        lines.append(f"report: {Path(r.out_dir) / REPORT_NAME}{videos}")
    return "\n".join(lines)
