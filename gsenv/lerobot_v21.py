"""Writing LeRobot datasets in the v2.1 format (the one openpi's pinned LeRobot reads), without LeRobot.

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

Episodes are committed whole: the video and the parquet file are written under ``.staging/``
(hidden, so no loader sees them), moved into place, and only then are the metadata lines appended
and info.json replaced atomically. Opening an existing dataset continues its indices and removes
what an interrupted commit left behind (files of episodes that the metadata does not list).
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

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
KEYFRAME_EVERY = 2  # as LeRobot encodes: cheap random access for training loaders
IMAGE_STATS_FRAMES = 100  # image statistics from at most this many frames of an episode, as LeRobot samples
IMAGE_STATS_SIDE = 150  # ... each subsampled to about this many pixels on its longer side

# The per-frame bookkeeping columns every LeRobot dataset has.
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


class DatasetFormatError(ValueError):
    """An existing folder is not a LeRobot v2.1 dataset this writer can continue."""


@dataclass(frozen=True)
class VideoFeature:
    """A camera stream, stored as one mp4 per episode: frames uint8 [T, H, W, 3]."""

    height: int
    width: int

    def spec(self, fps: int) -> dict:
        return {"dtype": "video", "shape": [self.height, self.width, 3], "names": ["height", "width", "channel"],
                "info": {"video.height": self.height, "video.width": self.width, "video.codec": "h264",
                         "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                         "video.channels": 3, "has_audio": False}}


@dataclass(frozen=True)
class VectorFeature:
    """A float32 vector per frame: values [T, size]."""

    size: int
    names: list[str] | None = None

    def spec(self, fps: int) -> dict:
        return {"dtype": "float32", "shape": [self.size], "names": self.names}


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


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


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


class LeRobotV21Writer:
    """Creates a LeRobot v2.1 dataset at ``root``, or continues the one there.

    features: {key: VideoFeature | VectorFeature}; the index columns (timestamp, frame_index,
    episode_index, index, task_index) are added. Continuing needs the same fps and features.
    """

    def __init__(self, root: str | Path, *, fps: int, features: dict[str, VideoFeature | VectorFeature],
                 robot_type: str | None = None):
        from gsenv.media import ffmpeg_available

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
        self._open()

    # ---------------------------------------------------------------- opening
    def _open(self) -> None:
        meta = self.root / "meta"
        info_path = meta / "info.json"
        if self.root.exists() and not self.root.is_dir():
            raise DatasetFormatError(f"{self.root} is a file; give a folder for the dataset")
        if self.root.is_dir() and any(self.root.iterdir()) and not info_path.is_file():
            raise DatasetFormatError(f"{self.root} is not empty and holds no meta/info.json: give a new folder "
                                     "or an existing LeRobot dataset to append to")
        meta.mkdir(parents=True, exist_ok=True)
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            if info.get("codebase_version") != CODEBASE_VERSION:
                raise DatasetFormatError(f"{self.root} is a LeRobot {info.get('codebase_version')} dataset; "
                                         f"this writer continues {CODEBASE_VERSION} datasets only")
            if info.get("fps") != self.fps or info.get("features") != self._specs:
                raise DatasetFormatError(
                    f"{self.root} was collected with other settings (fps {info.get('fps')}, features "
                    f"{sorted(info.get('features', {}))} with their shapes); append with the same "
                    "image size and cameras, or give a new folder")
        self.episodes = _read_jsonl(meta / "episodes.jsonl")
        self.tasks = {row["task"]: row["task_index"] for row in _read_jsonl(meta / "tasks.jsonl")}
        self.total_frames = sum(int(e["length"]) for e in self.episodes)
        self._drop_uncommitted()
        self._write_info()

    def _drop_uncommitted(self) -> None:
        """Remove what an interrupted commit left: staging files, files of episodes the metadata lacks,
        and stats lines past the last committed episode."""
        shutil.rmtree(self.root / ".staging", ignore_errors=True)
        n = len(self.episodes)
        for path in list((self.root / "data").glob("chunk-*/episode_*.parquet")) + list(
                (self.root / "videos").glob("chunk-*/*/episode_*.mp4")):
            if int(path.stem.split("_")[-1]) >= n:
                path.unlink()
        stats_path = self.root / "meta" / "episodes_stats.jsonl"
        stats = _read_jsonl(stats_path)
        if len(stats) != n:
            kept = [s for s in stats if s["episode_index"] < n]
            write_text_atomic(stats_path, "".join(json.dumps(s) + "\n" for s in kept))

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    # ---------------------------------------------------------------- writing
    def encode(self, episode: Episode) -> EncodedEpisode:
        """Check the episode, encode its videos into .staging/ and compute its feature statistics: the
        slow part of a commit. Safe to run for several episodes at once (threads)."""
        self._check(episode)
        staging = self.root / ".staging"
        staging.mkdir(exist_ok=True)
        token = uuid.uuid4().hex
        videos = {}
        for key in self.video_keys:
            videos[key] = staging / f"{key}-{token}.mp4"
            self._write_video(videos[key], episode.frames[key])
        stats = {key: _image_stats(episode.frames[key]) if isinstance(feature, VideoFeature)
                 else _stats(episode.frames[key]) for key, feature in self.features.items()}
        return EncodedEpisode(episode, videos, stats)

    def add_episode(self, episode: Episode | EncodedEpisode) -> int:
        """Commit one whole episode (encoding it first unless :meth:`encode` did); its episode index.
        Commits happen one at a time, in the order of the calls."""
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
        tmp = self.root / ".staging" / f"episode_{index:06d}.parquet"
        import pyarrow.parquet as pq

        tmp.parent.mkdir(exist_ok=True)
        pq.write_table(table, tmp)
        final.append((tmp, self.root / DATA_PATH.format(episode_chunk=chunk, episode_index=index)))
        for src, dst in final:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        meta = self.root / "meta"
        if new_task:
            _append_jsonl(meta / "tasks.jsonl", [{"task_index": task_index, "task": episode.task}])
            self.tasks[episode.task] = task_index
        stats = {**encoded.stats, **{key: _stats(table.column(key).to_numpy().reshape(-1, 1))
                                     for key in INDEX_FEATURES}}
        _append_jsonl(meta / "episodes_stats.jsonl", [{"episode_index": index, "stats": stats}])
        row = {"episode_index": index, "tasks": [episode.task], "length": episode.length, **episode.extra}
        _append_jsonl(meta / "episodes.jsonl", [row])
        self.episodes.append(row)
        self.total_frames += episode.length
        self._write_info()
        return index

    def close(self) -> None:
        """Remove the staging folder (nothing in it is committed)."""
        shutil.rmtree(self.root / ".staging", ignore_errors=True)

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

    def _write_info(self) -> None:
        n = self.num_episodes
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": n,
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "total_videos": n * len(self.video_keys),
            "total_chunks": (n + CHUNKS_SIZE - 1) // CHUNKS_SIZE if n else 0,
            "chunks_size": CHUNKS_SIZE,
            "fps": self.fps,
            "splits": {"train": f"0:{n}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.video_keys else None,
            "features": self._specs,
        }
        write_text_atomic(self.root / "meta" / "info.json", json.dumps(info, indent=4) + "\n")


def verify(root: str | Path, *, check_videos: bool = True) -> dict:
    """Check that the dataset at ``root`` is whole and consistent, as LeRobot's v2.1 loader needs it:
    info.json's totals, one parquet file per listed episode with ``length`` rows and the features'
    columns, contiguous global indices, timestamps frame_index / fps, known task indices, one stats line
    per episode, and (check_videos) each video's frame count and size. Raises DatasetFormatError naming
    the first problem; returns info.json."""
    import imageio.v3 as iio
    import pyarrow.parquet as pq

    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetFormatError(f"{root}: no meta/info.json")
    info = json.loads(info_path.read_text())
    episodes = _read_jsonl(root / "meta" / "episodes.jsonl")
    tasks = {row["task_index"] for row in _read_jsonl(root / "meta" / "tasks.jsonl")}
    stats = _read_jsonl(root / "meta" / "episodes_stats.jsonl")
    if [e["episode_index"] for e in episodes] != list(range(len(episodes))):
        raise DatasetFormatError(f"{root}: episodes.jsonl does not list episodes 0..{len(episodes) - 1} in order")
    total = sum(int(e["length"]) for e in episodes)
    if (info["total_episodes"], info["total_frames"], len(stats)) != (len(episodes), total, len(episodes)):
        raise DatasetFormatError(f"{root}: info.json says {info['total_episodes']} episodes / {info['total_frames']} "
                                 f"frames, the metadata lists {len(episodes)} / {total} ({len(stats)} stats lines)")
    video_keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    columns = [k for k, f in info["features"].items() if f["dtype"] != "video"]
    parquet_files = sorted((root / "data").glob("chunk-*/*.parquet"))
    if len(parquet_files) != len(episodes):
        raise DatasetFormatError(f"{root}: {len(parquet_files)} parquet files for {len(episodes)} episodes")
    index = 0
    for e in episodes:
        ep, n = e["episode_index"], int(e["length"])
        chunk = ep // info["chunks_size"]
        table = pq.read_table(root / info["data_path"].format(episode_chunk=chunk, episode_index=ep))
        if table.num_rows != n or sorted(table.column_names) != sorted(columns):
            raise DatasetFormatError(f"{root}: episode {ep}: {table.num_rows} rows with columns {table.column_names}, "
                                     f"expected {n} rows with {columns}")
        data = {k: table.column(k).to_numpy() for k in ("frame_index", "episode_index", "index", "task_index",
                                                         "timestamp")}
        if not (np.array_equal(data["frame_index"], np.arange(n)) and (data["episode_index"] == ep).all()
                and np.array_equal(data["index"], np.arange(index, index + n))
                and np.allclose(data["timestamp"], np.arange(n) / info["fps"], atol=1e-4)
                and set(data["task_index"].tolist()) <= tasks):
            raise DatasetFormatError(f"{root}: episode {ep}: frame/episode/global indices, timestamps or task "
                                     "indices are not consistent")
        index += n
        for key in video_keys if check_videos else []:
            path = root / info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=ep)
            if not path.is_file():
                raise DatasetFormatError(f"{root}: episode {ep}: no video {path}")
            frames = iio.imread(path)  # [T, H, W, 3]
            if frames.shape != (n, *info["features"][key]["shape"]):
                raise DatasetFormatError(f"{root}: episode {ep}: video {key} holds frames {frames.shape}, expected "
                                         f"{(n, *info['features'][key]['shape'])}")
    return info

