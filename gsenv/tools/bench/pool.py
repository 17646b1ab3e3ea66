"""Physics-only GSEnv steps/s for several worker counts and pinning, against AsyncVectorEnv.

The measurement is the benchmark's section d (gsenv.tools.bench.env: GSEnv with obs_mode "state",
random actions, gymnasium's AsyncVectorEnv over single-env processes as the baseline), run for each
pool setting in turn, repeated round-robin so that drift hits every setting alike::

    python -m gsenv.tools.bench.pool --batch 64 --workers 16,32,64 --pin 0,1 --repeats 2 --out pool.json

``--workers`` counts GSEnv's worker processes (``--pin 1``: GSEnv(pin_workers=True)); AsyncVectorEnv
runs with each of ``--async-procs`` process counts (default: one per usable core and one per env, as
the benchmark does; the ratio is to the faster). Prints one line per run and a summary (median
env-steps/s, ratio of medians).
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 16,32,64, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gsenv.tools.bench.pool", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="B, envs of GSEnv (default 64)")
    p.add_argument("--workers", type=_ints, default=None, help="GSEnv worker counts, e.g. 16,32,64 (default: #cores)")
    p.add_argument("--pin", type=_ints, default=[0], help="0 and/or 1: pin workers to CPUs (default 0)")
    p.add_argument("--async-procs", type=_ints, default=None,
                   help="AsyncVectorEnv process counts (default: #cores (at most B) and B)")
    p.add_argument("--repeats", type=int, default=2, help="rounds over all settings (default 2)")
    p.add_argument("--min-time", type=float, default=5.0, help="seconds of stepping per run (default 5)")
    p.add_argument("--max-steps", type=int, default=300, help="at most this many timed steps per run")
    p.add_argument("--density", type=float, default=0.01, help="default-scene density (physics ignores it)")
    p.add_argument("--device", default=None, help="GSEnv device (default: cuda when available)")
    p.add_argument("--no-async", action="store_true", help="skip the AsyncVectorEnv baseline")
    p.add_argument("--out", default=None, help="write all runs as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    import torch

    from gsenv.assets.root import asset_root
    from gsenv.physics.cpu_pool import usable_cpus
    from gsenv.scene_build.default import load_default_bundle
    from gsenv.tools.bench.config import Config
    from gsenv.tools.bench.env import async_baseline, env_rates, make_env

    cores = len(usable_cpus())
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    workers = args.workers or [min(cores, args.batch)]
    async_procs = args.async_procs or sorted({max(1, min(cores, args.batch)), args.batch})
    cfg = Config(env_batch=args.batch, env_min_time=args.min_time, env_max_steps=args.max_steps,
                 env_min_steps=5, density=args.density, reset_repeats=1)
    bundle = load_default_bundle(asset_root(None), args.density, progress=False)
    settings = [(w, bool(pin)) for w in workers for pin in args.pin]
    runs: list[dict] = []
    for r in range(args.repeats):
        for w, pin in settings:
            env, startup = make_env(bundle, "state", device, "torch", w, cfg, pin_workers=pin)
            try:
                res = env_rates(env, cfg, seed=4)
            finally:
                env.close()
            row = dict(kind="gsenv", repeat=r, workers=w, pin=pin, env_steps_per_s=res["env_steps_per_s"],
                       step_ms=res["step_ms"], steps=res["steps"], startup_s=round(startup, 1))
            runs.append(row)
            print(json.dumps(row), flush=True)
        for procs in [] if args.no_async else async_procs:
            a = async_baseline(bundle, procs, cfg)
            row = dict(kind="async", repeat=r, workers=procs, pin=False, env_steps_per_s=a["env_steps_per_s"],
                       step_ms=a["step_ms"], steps=a["steps"])
            runs.append(row)
            print(json.dumps(row), flush=True)

    lines = [f"B={args.batch}, {cores} usable cores, device {device}; median env-steps/s over {args.repeats} round(s)"]
    async_medians = {}
    for procs in [] if args.no_async else async_procs:
        vals = [x["env_steps_per_s"] for x in runs if x["kind"] == "async" and x["workers"] == procs]
        async_medians[procs] = statistics.median(vals)
        lines.append(f"  AsyncVectorEnv {procs:3d} processes: {async_medians[procs]:8.1f}   "
                     f"(runs: {', '.join(f'{v:.0f}' for v in vals)})")
    base_med = max(async_medians.values()) if async_medians else None
    summary = []
    for w, pin in settings:
        vals = [x["env_steps_per_s"] for x in runs if x["kind"] == "gsenv" and x["workers"] == w and x["pin"] == pin]
        med = statistics.median(vals)
        ratio = med / base_med if base_med else None
        summary.append(dict(workers=w, pin=pin, median_env_steps_per_s=med, ratio_vs_async=ratio))
        lines.append(f"  GSEnv {w:3d} workers{' pinned' if pin else '       '}: {med:8.1f}" +
                     (f"   x{ratio:.3f} vs the faster AsyncVectorEnv" if ratio else "") +
                     f"   (runs: {', '.join(f'{v:.0f}' for v in vals)})")
    print("\n".join(lines))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(dict(
            date=time.strftime("%Y-%m-%dT%H:%M:%S"), batch=args.batch, cores=cores, device=device,
            async_procs=async_procs, runs=runs, summary=summary, async_medians=async_medians,
            async_best_median=base_med), indent=1))
    return 0


if __name__ == "__main__":  # physics workers start with 'spawn' and import this module: nothing may run then
    sys.exit(main())
