"""`gsenv bench node`: a node full of envs, placed as RLinf places them.

RLinf starts one env worker process per GPU listed under ``env:`` and each builds
``pipeline_stage_num`` GSEnv instances; Ray reserves no CPUs for them. This benchmark starts K
instances in K processes at once (each with default settings: the host's share of the cores,
gsenv.physics.host_share), lets them build, then steps all of them at the same moment for
``--seconds`` and reports, per K: the aggregate env-steps/s, each instance's step time p50 / p99,
its worker count, the physics worker processes alive while stepping, the CPU utilisation of the
usable CPUs and the cores the gsenv processes used. One more run puts 2 instances in one process
(stepped in turn, as RLinf's pipeline stages are).

    gsenv bench node --instances 1,2,4,8                # B=64 each, rgb 224x224 (the GPU machine)
    gsenv bench node --instances 1,2 --num-envs 2 --image-size 16 --obs-mode state --seconds 2 \\
        --device cpu --density 0.01                     # tiny, on CPU

Writes ``<out>/node.json`` and prints the table. Exit status 0 for a finished run, 1 when an
instance failed, 2 for bad options.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from gsenv.tools.args import add_image_size

logger = logging.getLogger(__name__)

DESCRIPTION = "K gsenv instances on one node, as RLinf starts them, stepping at once"
RESULT_NAME = "node.json"


class InstanceFailed(RuntimeError):
    """A benchmark process died or said something unexpected."""


def _counts(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected instance counts >= 1 such as 1,2,4,8, got {text!r}")
    return values


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--instances", type=_counts, default=[1, 2, 4, 8],
                   help="instance counts K, each run with K processes of one instance (default 1,2,4,8)")
    p.add_argument("--in-one-process", type=int, default=2, metavar="N",
                   help="also run N instances in one process, stepped in turn (default 2; 0 skips it)")
    p.add_argument("--num-envs", type=int, default=64, help="B, envs per instance (default 64)")
    add_image_size(p, "224")
    p.add_argument("--obs-mode", default="rgb", choices=["rgb", "state"],
                   help="rgb (default; physics + rendering) or state (physics only)")
    p.add_argument("--sim-backend", default="physx_cpu", choices=["physx_cpu", "auto"],
                   help="physics backend (default physx_cpu: the worker processes this measures)")
    p.add_argument("--seconds", type=float, default=20.0, help="stepping time of each run (default 20)")
    p.add_argument("--min-steps", type=int, default=3, help="at least this many steps per instance (default 3)")
    p.add_argument("--device", default=None, help="torch device of the envs (default: cuda when available)")
    p.add_argument("--density", type=float, default=1.0, help="default-scene density (default 1.0)")
    p.add_argument("--asset-root", default=None, help="where the default scene is built (default: as GSEnv)")
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds an instance may take to build")
    p.add_argument("--out", default="benchmark-results", help=f"output directory ({RESULT_NAME})")


def instance_spec(args: argparse.Namespace, instances: int, seed: int) -> dict:
    """What one benchmark process builds and how long it steps (gsenv.tools.bench.node_instance)."""
    return {"instances": instances, "num_envs": args.num_envs, "image_size": list(args.image_size),
            "obs_mode": args.obs_mode, "sim_backend": args.sim_backend, "device": args.device,
            "density": args.density, "asset_root": args.asset_root, "seconds": args.seconds,
            "min_steps": args.min_steps, "seed": seed}


# -- /proc readings (Linux) ---------------------------------------------------------------------------
def cpu_times(cpus: list[int]) -> tuple[int, int]:
    """(busy, total) jiffies of the given CPUs since boot, from /proc/stat."""
    busy = total = 0
    wanted = {f"cpu{c}" for c in cpus}
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            total += sum(values)
            busy += sum(values) - values[3] - values[4]
    return busy, total


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by pids and every process below them (live ones)."""
    from gsenv.tools.bench.proc import descendants

    ticks = os.sysconf("SC_CLK_TCK")
    seen = set(pids)
    for pid in pids:
        seen |= descendants(pid)
    total = 0
    for pid in seen:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def physics_processes_of(pids: list[int]) -> dict:
    """{"servers": n, "workers": n} of the physics processes below pids, alive now."""
    from gsenv.tools.bench.proc import alive, physics_processes

    servers = workers = 0
    for pid in pids:
        server, ws = physics_processes(pid)
        servers += server is not None and alive(server)
        workers += sum(alive(w) for w in ws)
    return {"servers": servers, "workers": workers}


# -- one run --------------------------------------------------------------------------------------------
def _read_line(proc: subprocess.Popen, deadline: float, what: str) -> dict:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InstanceFailed(f"benchmark process {proc.pid} did not report {what} in time")
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 1.0))
        if not ready:
            if proc.poll() is not None:
                raise InstanceFailed(f"benchmark process {proc.pid} exited with code {proc.returncode} before "
                                     f"{what} (its error is printed above)")
            continue
        line = proc.stdout.readline()
        if not line:
            raise InstanceFailed(f"benchmark process {proc.pid} exited with code {proc.wait()} before {what} "
                                 "(its error is printed above)")
        try:
            message = json.loads(line)
        except ValueError:
            sys.stderr.write(line)  # something the process printed: pass it on
            continue
        if what in message:
            return message[what]


def _send(procs: list[subprocess.Popen], text: str) -> None:
    for proc in procs:
        try:
            proc.stdin.write(text + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, linear between the closest ranks."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def run_case(args: argparse.Namespace, processes: int, per_process: int) -> dict:
    """processes x per_process instances, started at once, stepped at once: one row of the table."""
    from gsenv.physics.cores import usable_cores
    from gsenv.physics.cpu_pool import usable_cpus
    from gsenv.physics.host_share import live_claims

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(p or os.getcwd() for p in sys.path))}
    procs = [subprocess.Popen([sys.executable, "-m", "gsenv.tools.bench.node_instance",
                               json.dumps(instance_spec(args, per_process, seed=k))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for k in range(processes)]
    try:
        deadline = time.monotonic() + args.start_timeout
        ready = [_read_line(p, deadline, "ready") for p in procs]
        pids = [p.pid for p in procs]
        claims = [e for e in live_claims() if e["pid"] in pids]
        cpus = usable_cpus()
        busy0, total0 = cpu_times(cpus)
        tree0 = tree_cpu_seconds(pids)
        t0 = time.monotonic()
        _send(procs, "go")
        time.sleep(args.seconds / 2)
        alive_mid = physics_processes_of(pids)
        deadline = time.monotonic() + args.seconds + args.start_timeout
        results = [_read_line(p, deadline, "result") for p in procs]
        wall = time.monotonic() - t0
        busy1, total1 = cpu_times(cpus)
        tree1 = tree_cpu_seconds(pids)
        alive_end = physics_processes_of(pids)
        _send(procs, "close")
        for p in procs:
            p.wait(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    window = max(r["end"] for r in results) - min(r["go"] for r in results)
    instances = []
    for r in results:
        for times in r["step_s"]:
            instances.append({"pid": r["pid"], "steps": len(times), "p50_ms": 1e3 * percentile(times, 50),
                              "p99_ms": 1e3 * percentile(times, 99)})
    env_steps = sum(x["steps"] for x in instances) * args.num_envs
    workers_per_instance = sorted((e["workers"] for e in claims), reverse=True)
    return {"instances": processes * per_process, "processes": processes, "per_process": per_process,
            "num_envs": args.num_envs, "usable_cores": usable_cores(), "workers_per_instance": workers_per_instance,
            "worker_processes": max(alive_mid["workers"], alive_end["workers"]),
            "servers": max(alive_mid["servers"], alive_end["servers"]),
            "aggregate_env_steps_per_s": env_steps / window, "window_s": window,
            "cpu_util_pct": 100.0 * (busy1 - busy0) / max(total1 - total0, 1),
            "gsenv_cores_used": (tree1 - tree0) / wall, "startup_s": [x["startup_s"] for x in ready],
            "backends": sorted({(x["sim_backend"], x["render_backend"]) for x in ready}),
            "per_instance": instances}


# -- the table ------------------------------------------------------------------------------------------
COLUMNS = ["instances", "layout", "workers/instance", "worker procs", "env-steps/s", "step p50 ms", "step p99 ms",
           "CPU util %", "cores used"]


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f}-{hi:.1f}"


def table_rows(rows: list[dict]) -> list[list[str]]:
    """One list of cells per run, in COLUMNS' order (p50/p99: the lowest-highest over instances)."""
    out = []
    for r in rows:
        layout = f"{r['processes']} proc" if r["per_process"] == 1 else f"{r['per_process']} in 1 proc"
        out.append([str(r["instances"]), layout, ",".join(map(str, r["workers_per_instance"])) or "?",
                    f"{r['worker_processes']} (+{r['servers']} srv)", f"{r['aggregate_env_steps_per_s']:.1f}",
                    _span([x["p50_ms"] for x in r["per_instance"]]), _span([x["p99_ms"] for x in r["per_instance"]]),
                    f"{r['cpu_util_pct']:.0f}", f"{r['gsenv_cores_used']:.2f}"])
    return out


def format_table(result: dict) -> str:
    rows = [COLUMNS] + table_rows(result["rows"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [f"gsenv bench node: B={result['num_envs']} per instance, {result['obs_mode']} "
             f"{result['image_size'][0]}x{result['image_size'][1]}, {result['usable_cores']} usable cores, "
             f"device {result['device']}, {result['seconds']:g} s per run"]
    for row in rows:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    from gsenv.physics.cores import usable_cores
    from gsenv.tools.args import check_device, make_out_dir

    if args.num_envs < 1 or args.seconds <= 0 or args.min_steps < 1 or args.in_one_process < 0:
        print("gsenv bench node: --num-envs and --min-steps must be >= 1, --seconds > 0, --in-one-process >= 0",
              file=sys.stderr)
        return 2
    try:
        check_device(args.device, ValueError)
        out = make_out_dir(args.out, ValueError)
    except ValueError as exc:
        print(f"gsenv bench node: {exc}", file=sys.stderr)
        return 2
    cases = [(k, 1) for k in args.instances] + ([(1, args.in_one_process)] if args.in_one_process else [])
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "num_envs": args.num_envs,
              "image_size": list(args.image_size), "obs_mode": args.obs_mode, "sim_backend": args.sim_backend,
              "device": args.device or "default", "seconds": args.seconds, "usable_cores": usable_cores(),
              "rows": []}
    try:
        from gsenv.tools.bench.machine import machine_info

        result["machine"] = machine_info(args.device or "cpu")
    except Exception as exc:  # the numbers matter more than the machine's description
        logger.warning("machine description failed: %s", exc)
    for processes, per_process in cases:
        logger.info("bench node: %d process(es) x %d instance(s)", processes, per_process)
        try:
            result["rows"].append(run_case(args, processes, per_process))
        except InstanceFailed as exc:
            print(f"gsenv bench node: {exc}", file=sys.stderr)
            return 1
    path = out / RESULT_NAME
    path.write_text(json.dumps(result, indent=1))
    print(format_table(result))
    print(f"\nresults: {path}")
    return 0


def add_command(sub) -> None:
    """`gsenv bench node` (sub: the bench command's sub-parsers)."""
    p = sub.add_parser("node", help=DESCRIPTION, description=DESCRIPTION)
    configure(p)
    p.set_defaults(func=handle)


def main(argv: list[str] | None = None) -> int:
    """``python -m gsenv.tools.bench.node``: as `gsenv bench node`, with progress logged on stderr."""
    p = argparse.ArgumentParser(prog="python -m gsenv.tools.bench.node", description=DESCRIPTION)
    configure(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return handle(args)


if __name__ == "__main__":
    sys.exit(main())
