"""Is a dataset whole? `inspect` finds every problem and which files belong to it (what `verify`
reports, what the writer refuses to append to, and what `repair` works from)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsenv.lerobot_v21.format import (
    CODEBASE_VERSION,
    EPISODES,
    INFO,
    META_FILES,
    STAGING,
    STATS,
    TASKS,
    DatasetFormatError,
    Jsonl,
    read_info,
    read_jsonl,
    repair_hint,
)


@dataclass
class Inspection:
    """What `inspect` found in a dataset.

    whole: how many of the listed episodes, from the first, are whole (files, indices, stats line);
    problems: one sentence each, the most telling first; episode_files: the files of the listed
    episodes past ``whole`` that exist; strays: files under meta/, data/, videos/ no listed episode
    accounts for; leftovers: unfinished files of writers that stopped (staging, temporaries), which no
    loader reads. Paths are relative to the dataset's root."""

    info: dict
    episodes: Jsonl
    stats: Jsonl
    tasks: Jsonl
    whole: int = 0
    problems: list[str] = field(default_factory=list)
    episode_files: list[Path] = field(default_factory=list)
    strays: list[Path] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)


def video_keys(info: dict) -> list[str]:
    return [k for k, f in info["features"].items() if f.get("dtype") == "video"]


def episode_paths(info: dict, episode_index: int) -> list[Path]:
    """The parquet file and the videos of one episode, relative to the root."""
    chunk = episode_index // info["chunks_size"]
    paths = [Path(info["data_path"].format(episode_chunk=chunk, episode_index=episode_index))]
    paths += [Path(info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=episode_index))
              for key in video_keys(info)]
    return paths


def inspect(root: str | Path, *, videos: str = "decode") -> Inspection:
    """Check the dataset at ``root`` as LeRobot's v2.1 loader needs it: info.json's totals, jsonl files
    without a torn line, one parquet file per listed episode with ``length`` rows and the features'
    columns, contiguous global indices, timestamps frame_index / fps, known task indices, one stats line
    per episode, each video there (videos="decode": also its frame count and size), and nothing else
    under data/, videos/, meta/. Raises DatasetFormatError only when info.json or a jsonl file cannot be
    read at all."""
    if videos not in ("decode", "exists"):
        raise ValueError(f"videos must be 'decode' or 'exists', got {videos!r}")
    root = Path(root)
    info = read_info(root)
    meta = root / "meta"
    found = Inspection(info, read_jsonl(meta / EPISODES), read_jsonl(meta / STATS), read_jsonl(meta / TASKS))
    problems = found.problems
    if info["codebase_version"] != CODEBASE_VERSION:
        problems.append(f"meta/{INFO}: a LeRobot {info['codebase_version']} dataset; gsenv writes and checks "
                        f"{CODEBASE_VERSION} only")
        return found
    for name, jsonl in ((EPISODES, found.episodes), (STATS, found.stats), (TASKS, found.tasks)):
        if jsonl.unterminated is not None:
            problems.append(f"meta/{name} ends in an unfinished line (a write cut short, e.g. by a full disk): "
                            f"{jsonl.unterminated[:60]!r}")
    episodes = found.episodes.rows
    if not found.episodes.exists and info["total_episodes"]:
        problems.append(f"meta/{EPISODES} is missing (info.json counts {info['total_episodes']} episodes)")
    stats: dict[int, int] = {}
    for row in found.stats.rows:
        stats[row.get("episode_index")] = stats.get(row.get("episode_index"), 0) + 1
    tasks = {row.get("task_index") for row in found.tasks.rows}
    index = 0
    for i, episode in enumerate(episodes):
        if episode.get("episode_index") != i:
            problems.append(f"meta/{EPISODES} line {i + 1} lists episode {episode.get('episode_index')!r}; "
                            f"episodes 0..{len(episodes) - 1} in order are expected")
            break
        problem = _episode_problem(root, info, episode, index, tasks, stats.get(i, 0), videos)
        if problem:
            problems.append(f"episode {i}: {problem}")
            break
        index += int(episode["length"])
        found.whole += 1
    extra = sorted(k for k in stats if not (isinstance(k, int) and 0 <= k < len(episodes)))
    if extra:
        problems.append(f"meta/{STATS} has lines for episodes {extra} that meta/{EPISODES} does not list")
    if found.whole == len(episodes) and not problems:
        have = (info["total_episodes"], info["total_frames"], info.get("total_tasks"), info.get("total_videos"))
        want = (len(episodes), index, len(found.tasks.rows), len(episodes) * len(video_keys(info)))
        if have != want:
            problems.append(f"meta/{INFO} counts {have[0]} episodes, {have[1]} frames, {have[2]} tasks, {have[3]} "
                            f"videos; the metadata lists {want[0]}, {want[1]}, {want[2]}, {want[3]}")
    listed = {p for e in range(len(episodes)) for p in episode_paths(info, e)}
    kept = {p for e in range(found.whole) for p in episode_paths(info, e)}
    found.episode_files = sorted(p for p in listed - kept if (root / p).is_file())
    for path in sorted(_files(root)):
        rel = path.relative_to(root)
        if rel.parts[0] == STAGING or (rel.parts[0] == "meta" and rel.name.startswith(".")):
            found.leftovers.append(rel)
        elif rel.parts[0] in ("data", "videos") and rel not in listed or (
                rel.parts[0] == "meta" and (len(rel.parts) != 2 or rel.name not in META_FILES)):
            found.strays.append(rel)
            problems.append(f"{rel}: not part of the dataset (no listed episode has this file"
                            + ("; LeRobot's loader reads every parquet file under data/)" if rel.parts[0] == "data"
                               else ")"))
    return found


def _files(root: Path):
    """Every file under root's meta/, data/, videos/ and staging folder (the lock and the quarantine live
    beside them, at the root)."""
    for top in ("meta", "data", "videos", STAGING):
        if (root / top).is_dir():
            yield from (p for p in (root / top).rglob("*") if not p.is_dir())


def _episode_problem(root: Path, info: dict, episode: dict, start: int, tasks: set, stats_lines: int,
                     videos: str) -> str | None:
    """What is wrong with one listed episode (its global frame indices start at ``start``), or None."""
    import pyarrow.parquet as pq

    ep, n = episode["episode_index"], episode.get("length")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        return f"meta/{EPISODES} gives it the length {n!r}, not a positive int"
    if stats_lines != 1:
        return f"meta/{STATS} has {stats_lines} lines for it, one is expected"
    data, *video_paths = episode_paths(info, ep)
    if not (root / data).is_file():
        return f"{data} is missing"
    try:
        table = pq.read_table(root / data)
    except Exception as exc:  # pyarrow's errors for cut-short or damaged files have no common base
        return f"{data} cannot be read ({type(exc).__name__}: {exc}): the file is cut short or damaged"
    columns = [k for k, f in info["features"].items() if f.get("dtype") != "video"]
    if table.num_rows != n or sorted(table.column_names) != sorted(columns):
        return f"{data} has {table.num_rows} rows with columns {table.column_names}, expected {n} rows with {columns}"
    col = {k: table.column(k).to_numpy() for k in ("frame_index", "episode_index", "index", "task_index",
                                                    "timestamp")}
    if not (np.array_equal(col["frame_index"], np.arange(n)) and (col["episode_index"] == ep).all()
            and np.array_equal(col["index"], np.arange(start, start + n))
            and np.allclose(col["timestamp"], np.arange(n) / info["fps"], atol=1e-4)):
        return f"{data}: its frame, episode or global indices or timestamps are not consistent"
    if not set(col["task_index"].tolist()) <= tasks:
        return f"{data} uses task indices that meta/{TASKS} does not list"
    for key, path in zip(video_keys(info), video_paths):
        if not (root / path).is_file() or (root / path).stat().st_size == 0:
            return f"{path} is {'missing' if not (root / path).exists() else 'empty'}"
        if videos == "decode":
            import imageio.v3 as iio

            want = (n, *info["features"][key]["shape"])
            try:
                shape = iio.imread(root / path).shape  # [T, H, W, 3]
            except Exception as exc:  # imageio's and ffmpeg's errors for a damaged file have no common base
                return f"{path} cannot be decoded ({type(exc).__name__}): the file is cut short or damaged"
            if shape != want:
                return f"{path} holds frames {shape}, expected {want}"
    return None


def describe(root: str | Path, problems: list[str], most: int = 3) -> str:
    """Problems as one message that ends with the repair command."""
    shown = "; ".join(problems[:most]) + (f" (and {len(problems) - most} more)" if len(problems) > most else "")
    return f"{root} is not a whole dataset: {shown}. To fix it, {repair_hint(root)}"


def verify(root: str | Path, *, check_videos: bool = True) -> dict:
    """Raise DatasetFormatError naming what is wrong (see `inspect`; check_videos: decode every video
    rather than only find it) unless the dataset at ``root`` is whole; returns info.json."""
    found = inspect(root, videos="decode" if check_videos else "exists")
    if found.problems:
        raise DatasetFormatError(describe(root, found.problems))
    return found.info
