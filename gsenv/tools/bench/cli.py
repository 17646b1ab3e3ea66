"""`gsenv bench` (also `python -m gsenv.tools.bench` and scripts/benchmark.py): the throughput
benchmark of gsenv, in one run.

Sections (``--sections``, default all):
  a  render-only env-frames/s and peak GPU memory vs B on the default scene, 2 resolutions, cache on/off
  b  the research code's rendering strategy on the same scene and poses (B <= 256), and the check of
     that baseline against ../shared/bench/seed_strategy_bench.py's maths (``--check-baseline`` runs
     only the check)
  c  end-to-end GSEnv steps/s (physx_cpu, one worker per core, rgb observations)
  d  physics-only GSEnv steps/s (obs_mode "state"), gymnasium's AsyncVectorEnv over as many single-env
     ManiSkill processes, a single process, a partial reset of a quarter of the envs, ``lscpu``

Writes ``<out>/benchmark.json`` and ``<out>/benchmark.png`` and prints the tables last.
``--quick`` shrinks everything (tiny images, B <= 2, scene density 0.01) so that it runs on CPU with
the torch rasteriser in about a minute (the test uses it); its numbers mean nothing.

Cheap to import (the `gsenv` command line imports it): the work happens in the handler.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from gsenv.tools.bench.config import SECTIONS

logger = logging.getLogger(__name__)

DESCRIPTION = ("gsenv's throughput benchmark: render-only, the research code's rendering strategy, end-to-end "
               "and physics-only env steps")


def _parse_sections(s: str) -> str:
    s = s.replace(",", "").lower()
    bad = set(s) - set(SECTIONS)
    if bad or not s:
        raise argparse.ArgumentTypeError(f"sections are letters of {SECTIONS!r} (e.g. a,b or abcd), got {s!r}")
    return s


def configure(p: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to p."""
    p.add_argument("--out", default="benchmark-results", help="output directory (benchmark.json, benchmark.png)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU-friendly, for tests): numbers mean nothing")
    p.add_argument("--sections", type=_parse_sections, default=SECTIONS,
                   help="which sections, e.g. a,b (a render, b research strategy + check, c end-to-end, d physics)")
    p.add_argument("--device", default=None, help="torch device for rendering (default: cuda when available, else cpu)")
    p.add_argument("--check-baseline", action="store_true",
                   help="only check the research-strategy baseline against seed_strategy_bench's maths")
    p.add_argument("--workers", type=int, default=None, help="physics worker processes (default: one per core)")
    p.add_argument("--density", type=float, default=None, help="default-scene density (default 1.0; --quick: 0.01)")
    p.add_argument("--asset-root", default=None,
                   help="where the default scene is built (default: $GSENV_ASSETS or the user cache)")
    p.add_argument("--replot", metavar="JSON", default=None,
                   help="only redraw the plot and reprint the tables from an earlier benchmark.json")


def handle(args: argparse.Namespace) -> int:
    """Run the benchmark (or --replot) as the options say; prints the tables last. Exit status: 0, or
    1 when --check-baseline finds the baseline off."""
    from gsenv.tools.bench.plot import PLOT_NAME, plot
    from gsenv.tools.bench.report import tables, write_json

    if args.replot:
        src = Path(args.replot)
        if not src.is_file():
            raise SystemExit(f"--replot: no such file {src}")
        results = json.loads(src.read_text())
        used = plot(results, src.with_suffix(".png"))
        print(tables(results))
        print(f"\nplot ({used}): {src.with_suffix('.png')}")
        return 0
    import torch

    from gsenv.tools.bench.config import full_config, quick_config
    from gsenv.tools.bench.run import run

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: CUDA is not available here (use --device cpu, with --quick)")
    if not device.startswith("cuda") and not args.quick:
        logger.warning("full-size benchmark on %s: the torch rasteriser is very slow here; use --quick on CPU", device)
    cfg = quick_config() if args.quick else full_config()
    if args.density is not None:
        cfg.density = args.density
    out = Path(args.out)
    results = run(args.sections, out, device, cfg, args.asset_root, args.workers, args.check_baseline)
    try:
        results["plot"] = plot(results, out / PLOT_NAME)
    except Exception as exc:  # the numbers are what matter: keep them even when drawing fails
        logger.error("plot failed: %s: %s", type(exc).__name__, exc)
        results["plot"] = f"failed: {exc}"
    json_path = write_json(results, out)
    print(tables(results))
    print(f"\nresults: {json_path}  plot: {out / PLOT_NAME}")
    check = results.get("baseline_check") or []
    if args.check_baseline and not all(r["ok"] for r in check):
        return 1
    return 0


def add_commands(sub) -> None:
    from gsenv.tools.bench import node

    p = sub.add_parser("bench", help="throughput benchmark: render, research-code baseline, env steps, physics; "
                       "`gsenv bench node`: many instances on one node", description=DESCRIPTION)
    configure(p)
    p.set_defaults(func=handle)
    benches = p.add_subparsers(dest="bench_command", metavar="{node}",
                               help="node: K instances on one node, as RLinf places them (gsenv bench node -h)")
    node.add_command(benches)


def main(argv: list[str] | None = None, prog: str = "python -m gsenv.tools.bench") -> int:
    """The benchmark on its own (python -m gsenv.tools.bench, scripts/benchmark.py): as `gsenv bench`,
    with its progress logged at INFO level on stderr (a full run takes minutes)."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    configure(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return handle(args)
