"""The LeRobot v2.1 layout and the files gsenv keeps beside it: path templates, feature specs,
info.json and the metadata jsonl files read strictly (a torn last line is found, not skipped), appends
that are whole or not there, and the one-writer lock."""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
INFO = "info.json"
TASKS, EPISODES, STATS = "tasks.jsonl", "episodes.jsonl", "episodes_stats.jsonl"
META_FILES = (INFO, TASKS, EPISODES, STATS)
LOCK_FILE = ".gsenv-lock"  # flock'ed by the one writer (or repair); holds its pid
STAGING = ".staging"  # each writer's unfinished files, in a folder of its own
QUARANTINE = ".gsenv-quarantine"  # where `gsenv dataset repair` moves what it cannot account for

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


class DatasetBusyError(DatasetFormatError):
    """Another process is writing (or repairing) the dataset."""


def repair_hint(root: str | Path) -> str:
    return (f"run `gsenv dataset repair {root}` (it moves what it cannot account for into "
            f"{Path(root) / QUARANTINE}/ and deletes nothing)")


@dataclass(frozen=True)
class VideoFeature:
    """A camera stream, stored as one mp4 per episode: frames uint8 [T, H, W, 3]. camera: the env camera
    it records (kept in info.json's feature, so a dataset says what each key holds)."""

    height: int
    width: int
    camera: str | None = None

    def spec(self, fps: int) -> dict:
        spec = {"dtype": "video", "shape": [self.height, self.width, 3], "names": ["height", "width", "channel"],
                "info": {"video.height": self.height, "video.width": self.width, "video.codec": "h264",
                         "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                         "video.channels": 3, "has_audio": False}}
        if self.camera is not None:
            spec["camera"] = self.camera
        return spec


@dataclass(frozen=True)
class VectorFeature:
    """A float32 vector per frame: values [T, size]. extra: more fields for info.json's feature (what the
    values are of, e.g. the settings that made them), beside dtype, shape and names."""

    size: int
    names: list[str] | None = None
    extra: dict | None = None

    def spec(self, fps: int) -> dict:
        return {"dtype": "float32", "shape": [self.size], "names": self.names, **(self.extra or {})}


def read_info(root: str | Path) -> dict:
    """meta/info.json, or DatasetFormatError naming the file and what is wrong with it."""
    path = Path(root) / "meta" / INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetFormatError(f"{path} is missing: {root} is not a LeRobot dataset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path} is not valid JSON ({exc}): the file is cut short or damaged; restore it "
                                 "from a copy (gsenv cannot rebuild it)") from None
    required = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "chunks_size",
                "data_path", "video_path")
    missing = [k for k in required if not isinstance(info, dict) or k not in info]
    if missing:
        raise DatasetFormatError(f"{path} lacks {missing}: not a LeRobot v2.1 info.json")
    return info


@dataclass
class Jsonl:
    """A metadata jsonl file as found: its rows, whether it exists, and what its last line holds when a
    write stopped before that line's newline (``unterminated``): the line's bytes, also in ``rows`` when
    they are a whole JSON object, else in ``torn``."""

    rows: list[dict]
    exists: bool
    unterminated: bytes | None = None
    torn: bytes | None = None


def read_jsonl(path: Path) -> Jsonl:
    """Read a jsonl file strictly: an unfinished last line is reported (Jsonl.unterminated); a damaged line
    before it is DatasetFormatError (no write of gsenv's leaves one)."""
    if not path.is_file():
        return Jsonl([], False)
    lines = path.read_bytes().split(b"\n")
    last = lines.pop()  # b"" when the file ends with a newline
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            row = None
        if not isinstance(row, dict):
            raise DatasetFormatError(f"{path}: line {number} is not a JSON object ({line[:60]!r}); a line before "
                                     "the last is damaged, which no write of gsenv's leaves: restore the file from a "
                                     "copy")
        rows.append(row)
    if not last:
        return Jsonl(rows, True)
    try:
        row = json.loads(last)
    except (json.JSONDecodeError, UnicodeDecodeError):
        row = None
    if isinstance(row, dict):
        return Jsonl([*rows, row], True, unterminated=last)
    return Jsonl(rows, True, unterminated=last, torn=last)


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append rows whole or not at all: when a write fails (a full disk) the file is cut back to where it
    was, so no half line stays behind."""
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def file_size(path: Path) -> int | None:
    """The size of path in bytes, None when there is no such file."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


class DatasetLock:
    """The dataset's one-writer lock: an exclusive flock on ``root/.gsenv-lock``, which records the holder's
    pid. The kernel drops a flock when its process dies, so a killed writer never leaves a dataset locked.
    Raises DatasetBusyError at once when another process holds it."""

    def __init__(self, root: str | Path, *, exclusive: bool = True):
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            self.release()
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise DatasetBusyError(f"{Path(root)} is being written by another writer{pid}: one writer per dataset "
                                   "at a time; wait for it to finish (or stop it), or give another folder") from None
        if exclusive:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DatasetLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
