"""Writing, checking and repairing LeRobot datasets in the v2.1 format (the one openpi's pinned LeRobot
reads), without LeRobot.

The ``lerobot`` package cannot be installed beside gsenv's stack (0.3.x pins torch < 2.8 and
gymnasium < 1.0), so this writes the format itself with pyarrow and gsenv.media's mp4 writer; the
result is checked against LeRobot 0.3.3's own reader (docs/benchmarks.md says where and how).

Layout under ``root``::

    meta/info.json                 codebase_version "v2.1", fps, features, totals, path templates
    meta/tasks.jsonl               {"task_index", "task"} per line
    meta/episodes.jsonl            {"episode_index", "tasks", "length", ...extra} per line
    meta/episodes_stats.jsonl      {"episode_index", "stats": {feature: {min, max, mean, std, count}}}
    data/chunk-000/episode_000000.parquet     one row per frame
    videos/chunk-000/<video key>/episode_000000.mp4
    .gsenv-lock                    the one writer's lock (flock) and pid
    .staging/                      writers' unfinished files (no loader reads them)
    .gsenv-quarantine/<time>/      what `repair` moved out, under the same relative paths

Modules: ``format`` (layout, feature specs, strict metadata reading, whole appends, the lock),
``check`` (is a dataset whole: `inspect`, `verify`), ``writer`` (`LeRobotV21Writer`), ``repair``.
"""
from gsenv.lerobot_v21.check import Inspection, inspect, verify
from gsenv.lerobot_v21.format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    INDEX_FEATURES,
    LOCK_FILE,
    QUARANTINE,
    VIDEO_PATH,
    DatasetBusyError,
    DatasetFormatError,
    DatasetLock,
    VectorFeature,
    VideoFeature,
    read_info,
    repair_hint,
)
from gsenv.lerobot_v21.repair import RepairReport, repair
from gsenv.lerobot_v21.writer import EncodedEpisode, Episode, LeRobotV21Writer, claim

__all__ = ["CHUNKS_SIZE", "CODEBASE_VERSION", "DATA_PATH", "INDEX_FEATURES", "LOCK_FILE", "QUARANTINE", "VIDEO_PATH",
           "DatasetBusyError", "DatasetFormatError", "DatasetLock", "EncodedEpisode", "Episode", "Inspection",
           "LeRobotV21Writer", "RepairReport", "VectorFeature", "VideoFeature", "claim", "inspect", "read_info",
           "repair", "repair_hint",
           "verify"]
