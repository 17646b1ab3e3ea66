"""Command-line argument conventions shared by every `gsenv` command."""
from __future__ import annotations

import argparse
from pathlib import Path


def parse_image_size(text: str, min_side: int = 8, max_side: int = 4096) -> tuple[int, int]:
    """"224" -> (224, 224); "480x640" -> (480, 640): HEIGHTxWIDTH, as the env's image_size=(height, width).

    Raises argparse.ArgumentTypeError (argparse turns it into a usage error) for anything else.
    """
    parts = str(text).strip().lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2):
        raise argparse.ArgumentTypeError(
            f"image size must be one int (square) or HEIGHTxWIDTH such as 224 or 480x640, got {text!r}")
    h, w = sizes * 2 if len(sizes) == 1 else sizes
    if not (min_side <= h <= max_side and min_side <= w <= max_side):
        raise argparse.ArgumentTypeError(
            f"image size must be between {min_side} and {max_side} pixels a side, got {text!r}")
    return h, w


def add_image_size(parser: argparse.ArgumentParser, default: str, what: str = "camera image size") -> None:
    """--image-size HxW (or one int), parsed to (height, width)."""
    parser.add_argument("--image-size", type=parse_image_size, default=parse_image_size(default), metavar="HxW",
                        help=f"{what}: one int (square) or HEIGHTxWIDTH, e.g. 480x640 (default {default})")


def parse_names(text: str) -> list[str]:
    """"a,b" -> ["a", "b"]; an empty name is argparse.ArgumentTypeError."""
    names = [n.strip() for n in str(text).split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME or NAME,NAME,..., got {text!r}")
    return names


def add_names(parser: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """A flag that takes several names: repeated (--camera a --camera b) or a comma list (--camera a,b),
    in that order; None when not given."""
    parser.add_argument(flag, type=parse_names, action="extend", default=None, metavar=metavar,
                        help=f"{help}; repeat it or give a comma list")


def check_device(device: str | None, error: type[Exception]) -> None:
    """Raise error(...) when --device names CUDA and torch has none here (before anything is made or
    written); None (the default: CUDA if available) and cpu pass."""
    import torch

    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise error(f"--device {device} needs CUDA, which is not available here; use --device cpu")


def make_out_dir(path: str | Path, error: type[Exception]) -> Path:
    """The output folder `path`, created with its parents if missing; error(...) when it cannot be."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot create the output directory {out}: {exc}") from None
    return out


def add_task(parser: argparse.ArgumentParser) -> None:
    """--task NAME: a task name (gsenv.tasks.task_names()) or MODULE:NAME of a gsenv.tasks.Task of your own
    (MODULE importable, e.g. on PYTHONPATH); default: the default task. Resolve it with checked_task."""
    from gsenv.tasks import DEFAULT_TASK, task_names

    parser.add_argument("--task", default=DEFAULT_TASK, metavar="NAME",
                        help=f"the task: {', '.join(task_names())}, or MODULE:NAME of a gsenv.tasks.Task of your "
                             f"own (default: {DEFAULT_TASK})")


def checked_task(value, error: type[Exception]):
    """--task's value -> the gsenv.tasks.Task, registered (its ids GSEnv/<Name>-v0 work with gym.make);
    error(...) naming the known tasks when it is not one."""
    from gsenv.registration import register_task
    from gsenv.tasks import get_task

    try:
        task = get_task(value)
        register_task(task)
    except (TypeError, ValueError) as exc:
        raise error(f"--task {value}: {exc}") from None
    return task
