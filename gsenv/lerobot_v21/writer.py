"""`LeRobotV21Writer`: adds whole episodes to a LeRobot v2.1 dataset, one writer at a time.

Episodes are committed whole: the videos and the parquet file are written under the writer's own
folder in ``.staging/`` (hidden, so no loader sees them), moved into place, and only then are the
metadata lines appended and info.json replaced atomically. A commit that fails (a full disk) is taken
back: the jsonl files are cut back to where they were and the moved files removed, so the dataset stays
whole. Opening an existing dataset changes nothing in it: one that is not whole (see `check.inspect`)
is refused with the repair command.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gsenv.atomic import write_text_atomic
from gsenv.lerobot_v21.check import describe, inspect
from gsenv.lerobot_v21.format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES,
    INDEX_FEATURES,
    INFO,
    LOCK_FILE,
    STAGING,
    STATS,
    TASKS,
    VIDEO_PATH,
    DatasetFormatError,
    DatasetLock,
    VectorFeature,
    VideoFeature,
    append_jsonl,
    file_size,
    read_info,
)

KEYFRAME_EVERY = 2  # as LeRobot encodes: cheap random access for training loaders
IMAGE_STATS_FRAMES = 100  # image statistics from at most this many frames of an episode, as LeRobot samples
IMAGE_STATS_SIDE = 150  # ... each subsampled to about this many pixels on its longer side


@dataclass
class Episode:
    """One whole episode, ready to commit: ``frames[key]`` is [T, ...] for every feature of the dataset,
    ``task`` its language instruction, ``extra`` more fields for its episodes.jsonl line (e.g. the seed
    that replays it)."""

    frames: dict[str, np.ndarray]
    task: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(next(iter(self.frames.values())))


@dataclass
class EncodedEpisode:
    """An episode whose videos are encoded (files under .staging/) and statistics computed, waiting to be
    committed by :meth:`LeRobotV21Writer.add_episode`."""

    episode: Episode
    videos: dict[str, Path]
    stats: dict[str, dict]


def _stats(values: np.ndarray) -> dict:
    """min/max/mean/std over frames of values [T, D] -> lists of D, count [T]."""
    v = values.astype(np.float64)
    return {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(),
            "std": v.std(0).tolist(), "count": [int(len(v))]}


def _image_stats(frames: np.ndarray) -> dict:
    """Per-channel statistics of uint8 frames [T, H, W, 3] scaled to [0, 1], each shaped [3, 1, 1] as
    LeRobot stores them; from at most IMAGE_STATS_FRAMES frames subsampled to ~IMAGE_STATS_SIDE px."""
    t, h, w = frames.shape[:3]
    picks = np.unique(np.linspace(0, t - 1, min(t, IMAGE_STATS_FRAMES)).round().astype(int))
    step = max(1, max(h, w) // IMAGE_STATS_SIDE)
    sample = frames[picks, ::step, ::step].astype(np.float64) / 255.0  # [S, h', w', 3]
    per_channel = sample.reshape(-1, 3)

    def shaped(x: np.ndarray) -> list:
        return x.reshape(3, 1, 1).tolist()

    return {"min": shaped(per_channel.min(0)), "max": shaped(per_channel.max(0)),
            "mean": shaped(per_channel.mean(0)), "std": shaped(per_channel.std(0)), "count": [int(len(picks))]}


def claim(root: str | Path) -> DatasetLock:
    """Take the writer lock of the dataset at ``root`` (a new folder is created) and check that an
    existing dataset is whole, changing nothing in it. DatasetBusyError while another process writes it;
    DatasetFormatError, with the repair command, for a folder that is not a dataset or one that is not
    whole."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetFormatError(f"{root} is a file; give a folder for the dataset")

    def foreign() -> bool:  # files of something else: a non-empty folder without meta/info.json
        return root.is_dir() and not (root / "meta" / INFO).is_file() and any(
            p.name != LOCK_FILE for p in root.iterdir())

    if foreign():
        raise DatasetFormatError(f"{root} is not empty and holds no meta/{INFO}: give a new folder or an existing "
                                 "LeRobot dataset to append to")
    root.mkdir(parents=True, exist_ok=True)
    lock = DatasetLock(root)
    try:
        if foreign():  # another process wrote into it before we held the lock
            raise DatasetFormatError(f"{root} is not empty and holds no meta/{INFO}: give a new folder")
        if (root / "meta" / INFO).is_file():
            found = inspect(root, videos="exists")  # decoding every video would make opening slow
            if found.problems:
                raise DatasetFormatError(describe(root, found.problems) + "; nothing was changed")
    except BaseException:
        lock.release()
        raise
    return lock


class LeRobotV21Writer:
    """Creates a LeRobot v2.1 dataset at ``root``, or continues the whole one there, holding its writer
    lock until :meth:`close`.

    features: {key: VideoFeature | VectorFeature}; the index columns (timestamp, frame_index,
    episode_index, index, task_index) are added. Continuing needs the same fps and features (the same
    camera under each video key). lock: the lock of an earlier :func:`claim` of ``root``, handed over.
    """

    def __init__(self, root: str | Path, *, fps: int, features: dict[str, VideoFeature | VectorFeature],
                 robot_type: str | None = None, lock: DatasetLock | None = None):
        from gsenv.media import ffmpeg_available

        try:
            if not isinstance(fps, int) or isinstance(fps, bool) or fps <= 0:
                raise ValueError(f"fps must be a positive int, got {fps!r}")
            if any(isinstance(f, VideoFeature) for f in features.values()) and not ffmpeg_available():
                raise RuntimeError("writing the dataset's videos needs ffmpeg: pip install imageio-ffmpeg")
            self.root = Path(root)
            self.fps = fps
            self.features = dict(features)
            self.robot_type = robot_type
            self.video_keys = [k for k, f in self.features.items() if isinstance(f, VideoFeature)]
            self._specs = {**{k: f.spec(fps) for k, f in self.features.items()}, **INDEX_FEATURES}
            self._lock = lock if lock is not None else claim(self.root)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._staging = self.root / STAGING / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this writer's own
        self._broken: str | None = None
        try:
            self._open()
        except BaseException:
            self._lock.release()
            raise

    # ---------------------------------------------------------------- opening
    def _open(self) -> None:
        """Continue the dataset (claim found it whole) or start a new one; nothing existing is changed."""
        meta = self.root / "meta"
        if not (meta / INFO).is_file():
            meta.mkdir(parents=True, exist_ok=True)
            self.episodes, self.tasks, self.total_frames = [], {}, 0
            self._write_info(0, 0, 0)
            return
        info = read_info(self.root)
        if info["codebase_version"] != CODEBASE_VERSION:
            raise DatasetFormatError(f"{self.root} is a LeRobot {info['codebase_version']} dataset; "
                                     f"this writer continues {CODEBASE_VERSION} datasets only")
        self._check_same_settings(info)
        found = inspect(self.root, videos="exists")
        self.episodes = found.episodes.rows
        self.tasks = {row["task"]: row["task_index"] for row in found.tasks.rows}
        self.total_frames = sum(int(e["length"]) for e in self.episodes)

    def _check_same_settings(self, info: dict) -> None:
        theirs, ours = info["features"], self._specs
        if info["fps"] != self.fps:
            raise DatasetFormatError(f"{self.root} was collected at {info['fps']} fps, this run writes {self.fps} fps: "
                                     "give a new folder")
        if set(theirs) != set(ours):
            raise DatasetFormatError(
                f"{self.root} holds the features {sorted(set(theirs) - set(INDEX_FEATURES))}, this run writes "
                f"{sorted(set(ours) - set(INDEX_FEATURES))}: append with the same cameras, or give a new folder")
        for key in ours:
            if theirs[key] == ours[key]:
                continue
            if ours[key]["dtype"] == "video" and theirs[key].get("camera") != ours[key].get("camera"):
                held = theirs[key].get("camera")
                raise DatasetFormatError(
                    (f"{self.root}: {key} holds the camera {held!r}" if held else
                     f"{self.root}: {key} does not record which camera it holds (an older gsenv wrote it)")
                    + f", this run records {ours[key].get('camera')!r} under it: append with the same cameras, "
                      "or give a new folder")
            raise DatasetFormatError(
                f"{self.root} was collected with other settings ({key}: {theirs[key].get('dtype')} of shape "
                f"{theirs[key].get('shape')}, this run writes {ours[key]['dtype']} of shape {ours[key]['shape']}); "
                "append with the same image size and cameras, or give a new folder")

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    # ---------------------------------------------------------------- writing
    def encode(self, episode: Episode) -> EncodedEpisode:
        """Check the episode, encode its videos into this writer's staging folder and compute its feature
        statistics: the slow part of a commit. Safe to run for several episodes at once (threads)."""
        self._check(episode)
        self._staging.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        videos = {}
        for key in self.video_keys:
            videos[key] = self._staging / f"{key}-{token}.mp4"
            self._write_video(videos[key], episode.frames[key])
        stats = {key: _image_stats(episode.frames[key]) if isinstance(feature, VideoFeature)
                 else _stats(episode.frames[key]) for key, feature in self.features.items()}
        return EncodedEpisode(episode, videos, stats)

    def add_episode(self, episode: Episode | EncodedEpisode) -> int:
        """Commit one whole episode (encoding it first unless :meth:`encode` did); its episode index.
        Commits happen one at a time, in the order of the calls. A commit that fails is taken back."""
        if self._broken:
            raise RuntimeError(self._broken)
        encoded = episode if isinstance(episode, EncodedEpisode) else self.encode(episode)
        episode = encoded.episode
        index = self.num_episodes
        chunk = index // CHUNKS_SIZE
        final = [(encoded.videos[key], self.root / VIDEO_PATH.format(episode_chunk=chunk, video_key=key,
                                                                     episode_index=index))
                 for key in self.video_keys]
        task_index = self.tasks.get(episode.task)
        new_task = task_index is None
        if new_task:
            task_index = len(self.tasks)
        table = self._table(episode, index, task_index)
        tmp = self._staging / f"episode_{index:06d}.parquet"
        import pyarrow.parquet as pq

        self._staging.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp)
        final.append((tmp, self.root / DATA_PATH.format(episode_chunk=chunk, episode_index=index)))
        meta = self.root / "meta"
        sizes = {name: file_size(meta / name) for name in (TASKS, STATS, EPISODES)}
        moved: list[Path] = []
        row = {"episode_index": index, "tasks": [episode.task], "length": episode.length, **episode.extra}
        try:
            for src, dst in final:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                moved.append(dst)
            if new_task:
                append_jsonl(meta / TASKS, [{"task_index": task_index, "task": episode.task}])
            stats = {**encoded.stats, **{key: _stats(table.column(key).to_numpy().reshape(-1, 1))
                                         for key in INDEX_FEATURES}}
            append_jsonl(meta / STATS, [{"episode_index": index, "stats": stats}])
            append_jsonl(meta / EPISODES, [row])
            self._write_info(index + 1, self.total_frames + episode.length, len(self.tasks) + new_task)
        except BaseException:
            self._take_back(sizes, moved)
            raise
        if new_task:
            self.tasks[episode.task] = task_index
        self.episodes.append(row)
        self.total_frames += episode.length
        return index

    def _take_back(self, sizes: dict[str, int | None], moved: list[Path]) -> None:
        """Undo a failed commit: cut the jsonl files back to their sizes before it and remove the files it
        moved into place (this writer's own). When that fails too, the writer refuses further commits."""
        try:
            for name, size in sizes.items():
                path = self.root / "meta" / name
                if size is None:
                    path.unlink(missing_ok=True)
                elif file_size(path) != size:
                    os.truncate(path, size)
            for path in moved:
                path.unlink(missing_ok=True)
        except OSError as exc:
            self._broken = (f"a failed commit could not be taken back ({exc}); {self.root} needs a repair: "
                            f"gsenv dataset repair {self.root}")

    def close(self) -> None:
        """Remove this writer's staging folder (nothing in it is committed) and release the lock."""
        shutil.rmtree(self._staging, ignore_errors=True)
        try:
            self._staging.parent.rmdir()  # when no other writer left files there
        except OSError:
            pass
        self._lock.release()

    def _check(self, episode: Episode) -> None:
        missing = set(self.features) - set(episode.frames)
        if missing:
            raise ValueError(f"episode lacks features {sorted(missing)}")
        lengths = {k: len(v) for k, v in episode.frames.items()}
        if len(set(lengths.values())) != 1 or episode.length == 0:
            raise ValueError(f"every feature needs the same number (> 0) of frames, got {lengths}")
        for key, feature in self.features.items():
            shape = tuple(episode.frames[key].shape[1:])
            want = (feature.height, feature.width, 3) if isinstance(feature, VideoFeature) else (feature.size,)
            if shape != want:
                raise ValueError(f"feature {key!r}: frames of shape {shape}, the dataset holds {want}")

    def _write_video(self, path: Path, frames: np.ndarray) -> None:
        from gsenv.media import FrameWriter

        writer = FrameWriter(path, path.with_suffix(""), fps=self.fps, keyframe_every=KEYFRAME_EVERY)
        try:
            for frame in frames:
                writer.append(np.ascontiguousarray(frame))
        finally:
            writer.close()

    def _table(self, episode: Episode, index: int, task_index: int):
        import pyarrow as pa

        t = episode.length
        columns, fields = {}, []
        for key, feature in self.features.items():
            if isinstance(feature, VectorFeature):
                values = np.ascontiguousarray(episode.frames[key], dtype=np.float32)
                columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), feature.size)
                fields.append(pa.field(key, pa.list_(pa.float32(), feature.size)))
        frame_index = np.arange(t, dtype=np.int64)
        columns["timestamp"] = pa.array((frame_index / self.fps).astype(np.float32))
        columns["frame_index"] = pa.array(frame_index)
        columns["episode_index"] = pa.array(np.full(t, index, np.int64))
        columns["index"] = pa.array(frame_index + self.total_frames)
        columns["task_index"] = pa.array(np.full(t, task_index, np.int64))
        fields += [pa.field("timestamp", pa.float32())] + [pa.field(k, pa.int64()) for k in
                                                          ("frame_index", "episode_index", "index", "task_index")]
        schema = pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": self._hf_features()}})})
        return pa.table([columns[f.name] for f in fields], schema=schema)

    def _hf_features(self) -> dict:
        """The `datasets` library's description of the parquet columns, as LeRobot's files carry it."""
        out = {}
        for key, feature in self.features.items():
            if isinstance(feature, VectorFeature):
                out[key] = {"feature": {"dtype": "float32", "_type": "Value"}, "length": feature.size,
                            "_type": "Sequence"}
        for key, spec in INDEX_FEATURES.items():
            out[key] = {"dtype": spec["dtype"], "_type": "Value"}
        return out

    def _write_info(self, episodes: int, frames: int, tasks: int) -> None:
        n = episodes
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": n,
            "total_frames": frames,
            "total_tasks": tasks,
            "total_videos": n * len(self.video_keys),
            "total_chunks": (n + CHUNKS_SIZE - 1) // CHUNKS_SIZE if n else 0,
            "chunks_size": CHUNKS_SIZE,
            "fps": self.fps,
            "splits": {"train": f"0:{n}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.video_keys else None,
            "features": self._specs,
        }
        write_text_atomic(self.root / "meta" / INFO, json.dumps(info, indent=4) + "\n")
