"""`repair`: make a dataset whole again without deleting anything.

The dataset keeps its listed episodes from the first up to the first one that is not whole; the files
of the episodes after it, files no listed episode accounts for, writers' unfinished files and the
metadata lines dropped (a torn last line included) are moved into ``.gsenv-quarantine/<time>/`` under
their own relative paths; then the jsonl files and info.json are rewritten to agree (each replaced
atomically).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from gsenv.atomic import write_text_atomic
from gsenv.lerobot_v21.check import describe, inspect, video_keys
from gsenv.lerobot_v21.format import (
    EPISODES,
    INFO,
    QUARANTINE,
    STATS,
    TASKS,
    DatasetFormatError,
    DatasetLock,
    Jsonl,
)


@dataclass
class RepairReport:
    """What `repair` did: the quarantine folder (None when nothing was wrong), the paths moved there
    (relative to the root), the metadata files rewritten, the listed episodes moved out, and how many
    episodes the dataset holds now."""

    quarantine: Path | None
    moved: list[Path] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    dropped_episodes: list[int] = field(default_factory=list)
    episodes: int = 0


def repair(root: str | Path) -> RepairReport:
    """Repair the dataset at ``root`` (see the module docstring), holding its writer lock. Raises
    DatasetFormatError for what it cannot repair (an unreadable info.json, a damaged line before the last)
    and DatasetBusyError while another process writes the dataset."""
    root = Path(root)
    if not (root / "meta" / INFO).is_file():
        raise DatasetFormatError(f"{root} holds no meta/{INFO}: not a LeRobot dataset gsenv can repair")
    with DatasetLock(root):
        found = inspect(root, videos="decode")
        if not found.problems and not found.leftovers:
            return RepairReport(None, episodes=found.whole)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        quarantine = root / QUARANTINE / stamp
        n = 1
        while quarantine.exists():
            n += 1
            quarantine = root / QUARANTINE / f"{stamp}-{n}"
        report = RepairReport(quarantine, dropped_episodes=list(range(found.whole, len(found.episodes.rows))),
                              episodes=found.whole)
        for rel in [*found.episode_files, *found.strays, *found.leftovers]:
            target = quarantine / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(root / rel, target)
            report.moved.append(rel)
        keep = found.whole
        episodes = found.episodes.rows[:keep]
        seen: set[int] = set()
        stats = []
        for row in found.stats.rows:
            if row.get("episode_index") in range(keep) and row["episode_index"] not in seen:
                seen.add(row["episode_index"])
                stats.append(row)
        for name, jsonl, rows in ((EPISODES, found.episodes, episodes), (STATS, found.stats, stats),
                                  (TASKS, found.tasks, found.tasks.rows)):
            if _rewrite_jsonl(root, quarantine, name, jsonl, rows):
                report.rewritten.append(f"meta/{name}")
        info = dict(found.info)
        total_frames = sum(int(e["length"]) for e in episodes)
        info.update(total_episodes=keep, total_frames=total_frames, total_tasks=len(found.tasks.rows),
                    total_videos=keep * len(video_keys(info)),
                    total_chunks=(keep + info["chunks_size"] - 1) // info["chunks_size"],
                    splits={"train": f"0:{keep}"})
        if info != found.info:
            write_text_atomic(root / "meta" / INFO, json.dumps(info, indent=4) + "\n")
            report.rewritten.append(f"meta/{INFO}")
        after = inspect(root, videos="exists")
        if after.problems:  # what repair does not touch (e.g. the codebase version)
            raise DatasetFormatError(describe(root, after.problems).split(". To fix it")[0]
                                     + f"; repair moved {len(report.moved)} files into {quarantine} and cannot "
                                       "fix the rest")
        return report


def _rewrite_jsonl(root: Path, quarantine: Path, name: str, jsonl: Jsonl, rows: list[dict]) -> bool:
    """Rewrite meta/name with rows when they differ from what it holds (or its last line is unfinished);
    the lines dropped, a torn line's bytes included, go to the quarantine's meta/name."""
    if rows == jsonl.rows and jsonl.unterminated is None:
        return False
    dropped = [json.dumps(row).encode() for row in jsonl.rows if row not in rows]
    if jsonl.torn is not None:
        dropped.append(jsonl.torn)
    if dropped:
        (quarantine / "meta").mkdir(parents=True, exist_ok=True)
        (quarantine / "meta" / name).write_bytes(b"\n".join(dropped) + b"\n")
    write_text_atomic(root / "meta" / name, "".join(json.dumps(row) + "\n" for row in rows))
    return True
