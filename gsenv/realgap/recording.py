"""A real recording, read from a LeRobot v2.1 dataset: the robot's joint positions, its camera frames
and (optionally) the objects' poses, frame by frame.

Which columns hold what is the user's to say, with defaults for gsenv's own datasets:

- joint positions: `QposMapping` picks the FR3's qpos (7 arm joints in rad, then the 2 finger joints in
  m, the order of gsenv.sim.names.JOINT_NAMES) from one vector feature (default ``observation.state``):
  9 column indices (default: its first 9 values, gsenv's own layout), or 7 arm columns + 1 gripper
  column whose value times ``gripper_scale`` is each finger's opening (0.5 for a gripper width in m;
  0.04 for a gripper normalised to 0 closed .. 1 open);
- cameras: video key -> scene camera; by default the camera each video feature names (gsenv's datasets
  record it in info.json) or the scene camera whose name is the key's last dotted part;
- object poses: object -> a vector feature of 7 values (position m + quaternion wxyz, robot-base frame).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsenv.lerobot_v21.check import episode_paths, video_keys
from gsenv.lerobot_v21.format import EPISODES, DatasetFormatError, read_info, read_jsonl
from gsenv.sim import names

__all__ = ["RecordingError", "QposMapping", "Recording", "camera_mapping", "read_recording"]

DEFAULT_STATE_KEY = "observation.state"
LIMIT_SLACK = 0.05  # rad (or m for fingers) a recorded joint may lie past its limit (encoder noise)


class RecordingError(ValueError):
    """The recording cannot be compared as given (a bad input: `gsenv real compare` exits 2)."""


@dataclass(frozen=True)
class QposMapping:
    """Where the FR3's qpos [9] sits in a vector feature (see the module doc)."""

    state_key: str = DEFAULT_STATE_KEY
    columns: tuple[int, ...] | None = None
    gripper_scale: float = 0.5

    def qpos(self, state: np.ndarray) -> np.ndarray:
        """state [T, D] -> qpos [T, 9]; RecordingError when the columns do not fit D."""
        d = state.shape[1]
        cols = self.columns
        if cols is None:  # the first 9 values: gsenv's own layout
            if d < names.NUM_JOINTS:
                raise RecordingError(
                    f"{self.state_key} holds {d} values per frame, fewer than the FR3's 9 (7 arm joints + 2 "
                    "fingers): say which columns are the joints with --qpos-columns (7 arm + 1 gripper index, with "
                    "--gripper-scale)")
            cols = tuple(range(names.NUM_JOINTS))
        if len(cols) not in (8, 9) or any(not 0 <= c < d for c in cols):
            raise RecordingError(f"--qpos-columns {list(cols)}: give 9 indices (7 arm joints, 2 fingers) or 8 "
                                 f"(7 arm joints, 1 gripper) into {self.state_key}'s {d} values")
        q = state[:, list(cols)].astype(np.float64)
        if len(cols) == 8:
            q = np.concatenate([q[:, :7], q[:, 7:8] * self.gripper_scale, q[:, 7:8] * self.gripper_scale], 1)
        return q


def _check_qpos(q: np.ndarray, key: str) -> None:
    """RecordingError naming the first joint far outside the FR3's limits (radians expected)."""
    if not np.isfinite(q).all():
        raise RecordingError(f"{key} holds NaN or infinite joint positions")
    limits = [*names.FR3_JOINT_LIMITS, names.FINGER_LIMITS, names.FINGER_LIMITS]
    for j, (lo, hi) in enumerate(limits):
        bad = (q[:, j] < lo - LIMIT_SLACK) | (q[:, j] > hi + LIMIT_SLACK)
        if bad.any():
            t = int(np.argmax(bad))
            raise RecordingError(
                f"{names.JOINT_NAMES[j]} is {q[t, j]:.4f} in frame {t}, outside the FR3's range [{lo}, {hi}] "
                f"({'m' if j >= 7 else 'rad'}): check --qpos-columns (and --gripper-scale) against what {key} holds")


@dataclass
class Recording:
    """One episode of a real recording, at the frames chosen.

    qpos: [T, 9]; frames: {scene camera: uint8 [T, H, W, 3]}; object_poses: {object: [T, 7]};
    frame_index: [T] the frames' indices in the episode; video_keys: {scene camera: dataset key}."""

    root: Path
    episode: int
    fps: float
    frame_index: np.ndarray
    qpos: np.ndarray
    frames: dict[str, np.ndarray]
    video_keys: dict[str, str]
    object_poses: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frame_index)


def camera_mapping(info: dict, scene_cameras: Sequence[str], given: Mapping[str, str] | None) -> dict[str, str]:
    """{scene camera: video key}: the given {video key: scene camera}, else every video key whose feature
    names a scene camera (info.json's "camera") or whose last dotted part is one. RecordingError for an
    unknown key or camera, or when nothing maps."""
    keys = video_keys(info)
    if given:
        out = {}
        for key, cam in given.items():
            if key not in keys:
                raise RecordingError(f"--camera {key}={cam}: the dataset has no video {key!r}; it has {keys}")
            if cam not in scene_cameras:
                raise RecordingError(f"--camera {key}={cam}: the scene has no camera {cam!r}; it has "
                                     f"{list(scene_cameras)}")
            if cam in out:
                raise RecordingError(f"--camera maps two videos to the scene camera {cam!r}")
            out[cam] = key
        return out
    out = {}
    for key in keys:
        cam = info["features"][key].get("camera") or key.rsplit(".", 1)[-1]
        if cam in scene_cameras and cam not in out:
            out[cam] = key
    if not out:
        raise RecordingError(f"no video of the dataset ({keys}) names a camera of the scene ({list(scene_cameras)}): "
                             "map them with --camera VIDEO_KEY=SCENE_CAMERA")
    return out


def _frames(path: Path, picks: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """uint8 [len(picks), H, W, 3]: the picked frames of one episode's video."""
    import imageio.v3 as iio

    try:
        video = iio.imread(path)  # [T, H, W, 3]
    except Exception as exc:  # imageio's and ffmpeg's errors for a damaged file have no common base
        raise RecordingError(f"{path} cannot be decoded ({type(exc).__name__}: {exc})") from None
    if video.ndim != 4 or video.shape[-1] != 3 or len(video) <= int(picks.max()):
        raise RecordingError(f"{path} holds frames {list(video.shape)}; expected at least {int(picks.max()) + 1} "
                             f"frames of {list(shape)}")
    return np.ascontiguousarray(video[picks])


def read_recording(root: str | Path, scene_cameras: Sequence[str], *, episode: int = 0,
                   qpos: QposMapping | None = None, cameras: Mapping[str, str] | None = None,
                   objects: Mapping[str, str] | None = None, max_frames: int | None = 20) -> Recording:
    """Read one episode of the LeRobot v2.1 dataset at root (see the module doc).

    scene_cameras: the scene's camera names; cameras: {video key: scene camera} (default: see
    camera_mapping); objects: {object: vector feature key of its [7] pose}; max_frames: at most this
    many frames, evenly spread over the episode (None: every frame). RecordingError (a bad input)
    for anything that does not fit."""
    import pyarrow.parquet as pq

    root = Path(root)
    qpos = qpos or QposMapping()
    try:
        info = read_info(root)
        episodes = read_jsonl(root / "meta" / EPISODES).rows
    except DatasetFormatError as exc:
        raise RecordingError(str(exc)) from None
    if not isinstance(episode, int) or not 0 <= episode < len(episodes):
        raise RecordingError(f"--episode {episode}: the dataset has episodes 0..{len(episodes) - 1}")
    if max_frames is not None and max_frames < 1:
        raise RecordingError(f"--max-frames must be >= 1, got {max_frames}")
    features = info["features"]
    for key in [qpos.state_key, *(objects or {}).values()]:
        if key not in features or features[key].get("dtype") == "video":
            vectors = [k for k, f in features.items() if f.get("dtype") not in ("video", "int64")]
            raise RecordingError(f"the dataset has no vector feature {key!r}; it has {vectors}")
    cam_keys = camera_mapping(info, scene_cameras, cameras)
    data, *videos = episode_paths(info, episode)
    video_of = dict(zip(video_keys(info), videos))
    try:
        table = pq.read_table(root / data)
    except Exception as exc:  # pyarrow's errors for missing or damaged files have no common base
        raise RecordingError(f"{root / data} cannot be read ({type(exc).__name__}: {exc})") from None
    n = table.num_rows
    picks = np.arange(n) if max_frames is None or max_frames >= n else np.unique(
        np.linspace(0, n - 1, max_frames).round().astype(int))

    def column(key: str) -> np.ndarray:
        values = np.stack(table.column(key).to_numpy(zero_copy_only=False)).astype(np.float64)
        return values.reshape(n, -1)[picks]

    q = qpos.qpos(column(qpos.state_key))
    _check_qpos(q, qpos.state_key)
    poses = {}
    for obj, key in (objects or {}).items():
        p = column(key)
        if p.shape[1] != 7 or not np.isfinite(p).all():
            raise RecordingError(f"object {obj!r}: {key} must hold 7 finite values per frame (position m + "
                                 f"quaternion wxyz), it holds {p.shape[1]}")
        poses[obj] = p
    frames = {cam: _frames(root / video_of[key], picks, features[key]["shape"]) for cam, key in cam_keys.items()}
    return Recording(root, episode, float(info["fps"]), picks, q, frames, cam_keys, poses)
