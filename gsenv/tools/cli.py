"""The `gsenv` command line. Each command group lives in its own module with an `add_commands(sub)`."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

# Modules that add sub-commands; each must be cheap to import (heavy imports inside the handlers).
COMMAND_MODULES = [
    "gsenv.tools.doctor",
    "gsenv.tools.assets_cli",
    "gsenv.tools.scene_cli",
    "gsenv.tools.bench.cli",
    "gsenv.tools.demo",
    "gsenv.tools.eval_cli",
    "gsenv.tools.view_cli",
    "gsenv.tools.collect",
    "gsenv.tools.replay",
    "gsenv.tools.dataset_cli",
    "gsenv.tools.real_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gsenv", description="gsenv: Gaussian-splatting robot simulation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Each command reports the mistakes it knows (exit 2) itself; any
    other failure is one line here, exit 1 (the traceback with -v)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"gsenv {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"gsenv {args.command}: failed: {type(exc).__name__}: {exc} "
              f"(run `gsenv -v {args.command} ...` for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
