"""`gsenv dataset verify|repair`: is a LeRobot v2.1 dataset (e.g. from `gsenv collect`) whole, and
making it whole again without deleting anything."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """exit codes: verify: 0 whole, 1 problems found (listed, with the repair command), 2 not a dataset or
being written now; repair: 0 whole (repaired or nothing to do), 2 not a dataset, being written now, or
damage it cannot repair (a cut-short info.json, a damaged line before a jsonl file's last).

repair moves what it cannot account for (files of episodes that are not whole and of every listed episode
after them, files no listed episode has, writers' unfinished files, dropped metadata lines) into
DATASET/.gsenv-quarantine/<time>/ under their own paths and rewrites the metadata to agree; it deletes
nothing."""


def add_commands(sub) -> None:
    p = sub.add_parser("dataset", help="verify or repair a LeRobot v2.1 dataset",
                       description="Check a LeRobot v2.1 dataset (gsenv collect's) or make it whole again.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ds = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    ds.required = True
    v = ds.add_parser("verify", help="is the dataset whole (metadata, parquet files, videos decoded)",
                      epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("path", metavar="DATASET", help="the dataset folder")
    v.add_argument("--no-decode", dest="decode", action="store_false",
                   help="only find each video rather than decode it (fast)")
    v.set_defaults(func=_verify)
    r = ds.add_parser("repair", help="make the dataset whole, moving what it cannot account for into quarantine",
                      epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("path", metavar="DATASET", help="the dataset folder")
    r.set_defaults(func=_repair)


def _not_a_dataset(path: Path) -> str | None:
    if not (path / "meta" / "info.json").is_file():
        return f"{path} holds no meta/info.json: not a LeRobot dataset"
    return None


def _verify(args: argparse.Namespace) -> int:
    from gsenv.lerobot_v21 import LOCK_FILE, DatasetBusyError, DatasetFormatError, DatasetLock, inspect, repair_hint

    path = Path(args.path)
    problem = _not_a_dataset(path)
    if problem:
        print(f"gsenv dataset verify: error: {problem}", file=sys.stderr)
        return 2
    try:
        lock = DatasetLock(path, exclusive=False) if (path / LOCK_FILE).is_file() else None
    except DatasetBusyError as exc:  # its writer is between commits: what is found may be half a commit
        print(f"gsenv dataset verify: error: {exc}", file=sys.stderr)
        return 2
    try:
        found = inspect(path, videos="decode" if args.decode else "exists")
        problems = found.problems
    except DatasetFormatError as exc:  # info.json or a jsonl file cannot be read
        problems = [str(exc)]
        found = None
    finally:
        if lock is not None:
            lock.release()
    if problems:
        print(f"{path}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print(f"To fix it, {repair_hint(path)}", file=sys.stderr)
        return 1
    info = found.info
    print(f"{path}: whole: {info['total_episodes']} episodes, {info['total_frames']} frames at {info['fps']} fps"
          + (f"; {len(found.leftovers)} unfinished files of stopped writers (repair moves them out)"
             if found.leftovers else ""))
    return 0


def _repair(args: argparse.Namespace) -> int:
    from gsenv.lerobot_v21 import DatasetFormatError, repair

    path = Path(args.path)
    problem = _not_a_dataset(path)
    if problem:
        print(f"gsenv dataset repair: error: {problem}", file=sys.stderr)
        return 2
    try:
        report = repair(path)
    except DatasetFormatError as exc:
        print(f"gsenv dataset repair: error: {exc}", file=sys.stderr)
        return 2
    if report.quarantine is None:
        print(f"{path}: whole, nothing to repair ({report.episodes} episodes)")
        return 0
    print(f"{path}: repaired; it holds {report.episodes} episodes")
    if report.dropped_episodes:
        print(f"  episodes {report.dropped_episodes} moved out (the first was not whole; the rest follow it)")
    if report.rewritten:
        print(f"  rewritten: {', '.join(report.rewritten)}")
    if report.moved:
        print(f"  moved {len(report.moved)} files into {report.quarantine}:")
        for rel in report.moved:
            print(f"    {rel}")
    return 0
