"""Start-up time and memory of the CPU physics pool: gym.make seconds and each worker's unique memory.

    python -m gsenv.tools.bench.startup --num-envs 64 [--num-workers 16] [--methods server,subprocess]
    python -m gsenv.tools.bench.startup --num-envs 64 --methods before --gsenv-path /tmp/before

For each worker start method (gsenv.physics.launch: ``server`` forks workers from one preloaded
server, ``subprocess`` starts one clean interpreter per worker, as every worker did before the
server) it runs gym.make(gsenv.registration.ENV_ID, obs_mode="state", sim_backend="physx_cpu") in a
fresh interpreter twice: ``cold`` (the server, if any, starts too) and ``warm`` (a second env in
the same process, the server already up). After each make it reads every physics process's
/proc/PID/smaps_rollup: RSS, PSS and USS (private clean + private dirty) in MB, and counts the
workers holding the GPU open (a CUDA context each) and the GPU memory the make added (nvidia-smi). Prints one line per
measurement and a JSON summary (--out writes it to a file).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

_PROBE_BODY = textwrap.dedent("""
    import json, os, shutil, subprocess, sys, time
    from pathlib import Path
    import gymnasium as gym
    import gsenv

    num_envs, num_workers, kwargs = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    import torch  # noqa: F401  (the user's own imports, not part of gym.make)
    imports = time.perf_counter() - t0
    def gpu_used_mb():  # the whole card's, by nvidia-smi (None without one)
        if not shutil.which("nvidia-smi"):
            return None
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True).stdout.split()
        return float(out[0]) if out else None

    envs, rows = [], []
    for phase in ("cold", "warm"):
        seen = set(physics_processes()[1])
        gpu_before = gpu_used_mb()
        t = time.perf_counter()
        env = gym.make(gsenv.registration.ENV_ID, num_envs=num_envs, obs_mode="state", sim_backend="physx_cpu",
                       num_workers=num_workers, **kwargs)
        seconds = time.perf_counter() - t
        envs.append(env)
        server, workers = physics_processes()
        mine = [w for w in workers if w not in seen]
        rows.append({"phase": phase, "gym_make_s": seconds, "workers": [memory_mb(w) for w in mine],
                     "workers_on_gpu": sum(bool(open_gpu_devices(w)) for w in mine),
                     "gpu_used_mb_added": None if gpu_before is None else gpu_used_mb() - gpu_before,
                     "server": memory_mb(server) if server else None})
    for env in envs:
        env.close()
    print("RESULT " + json.dumps({"import_torch_s": imports, "rows": rows}))
""")
# the probe runs in a fresh interpreter, possibly on an older gsenv: it carries proc.py's source itself
_PROBE = (Path(__file__).with_name("proc.py").read_text() + "\n" + _PROBE_BODY)


def _run(method: str, num_envs: int, num_workers: int | None, kwargs: dict, gsenv_path: str | None) -> dict:
    env = {**os.environ, "GSENV_WORKER_START": method}
    if gsenv_path:  # measure another checkout (e.g. the commit before the server), whose gsenv comes first
        env["PYTHONPATH"] = os.pathsep.join([gsenv_path, *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([num_envs, num_workers, kwargs])],
                          env=env, capture_output=True, text=True, cwd=gsenv_path or None)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {method} measurement failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows) if rows else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=None, help="default: about one per core")
    parser.add_argument("--methods", default="server,subprocess", help="comma-separated worker start methods")
    parser.add_argument("--scene-density", type=float, default=0.02, help="the default scene's density (images "
                        "are not rendered in obs_mode 'state'; a small scene keeps gym.make about physics)")
    parser.add_argument("--asset-root", default=None)
    parser.add_argument("--gsenv-path", default=None, help="a directory whose gsenv package to measure instead "
                        "(e.g. `git archive 1c07d88 | tar -x -C /tmp/before`; older code ignores --methods)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    kwargs = {"scene_density": args.scene_density, **({"asset_root": args.asset_root} if args.asset_root else {})}
    summary = {"num_envs": args.num_envs, "num_workers": args.num_workers, "cores": len(os.sched_getaffinity(0))
               if hasattr(os, "sched_getaffinity") else os.cpu_count(), "methods": {}}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        result = _run(method, args.num_envs, args.num_workers, kwargs, args.gsenv_path)
        summary["methods"][method] = result
        for row in result["rows"]:
            w = row["workers"]
            print(f"{method:10s} {row['phase']:4s} gym.make {row['gym_make_s']:6.1f} s  {len(w)} workers  per worker "
                  f"(median) USS {_median(w, 'uss_mb'):6.0f} MB  PSS {_median(w, 'pss_mb'):6.0f} MB  "
                  f"RSS {_median(w, 'rss_mb'):6.0f} MB  on GPU {row.get('workers_on_gpu', '?')} "
                  f"(+{row.get('gpu_used_mb_added') or 0:.0f} MB GPU)"
                  + (f"  server USS {row['server']['uss_mb']:.0f} MB RSS {row['server']['rss_mb']:.0f} MB"
                     if row["server"] else ""), flush=True)
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
