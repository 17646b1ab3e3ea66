"""RecordVideo: tiled videos of a batched env's camera frames, one file per episode.

Each frame is ``env.render()`` (uint8 [B, H, W, 3], the frame the env already rendered for the current
state: nothing is rendered again) of the first ``max_envs`` envs, tiled into a grid, optionally with
each env's reward and success written on its tile.

Episodes: a video starts at a full reset (``reset()`` without ``options["env_idx"]``) and ends at the
next full reset, at ``close()``, or after ``max_steps_per_video`` steps (set it for training loops that
only ever reset envs partially, e.g. RLinf's auto-reset or ManiSkillVectorEnv). A partial reset adds a
frame to the running video (the reset envs' new initial state) without ending it. A video holds the
reset frame plus one frame per step (plus one per partial reset).

Files: ``<output_dir>/<name_prefix>_<k>.mp4`` (H.264, k = 0, 1, ...), or the frames as PNGs in
``<output_dir>/<name_prefix>_<k>/000000.png ...`` with ``video_format="png"`` or where no ffmpeg is
available (imageio-ffmpeg missing: logged once).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gsenv.media import FrameWriter, ffmpeg_available, tile_frames

logger = logging.getLogger(__name__)

VIDEO_FORMATS = ("mp4", "png")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def overlay_text(frame: np.ndarray, lines: Sequence[str], colors: Sequence[tuple[int, int, int]] | None = None
                 ) -> np.ndarray:
    """A copy of uint8 [H, W, 3] with the lines written at its top left (white, or colors, on a dark box)."""
    import cv2

    out = np.ascontiguousarray(frame).copy()
    h, w = out.shape[:2]
    scale = max(0.25, min(1.0, w / 640.0))
    thickness = 1 if scale < 0.6 else 2
    y = 0
    for i, line in enumerate(lines):
        (tw, th), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        y0, y = y, y + th + base + 2
        cv2.rectangle(out, (0, y0), (min(w - 1, tw + 3), min(h - 1, y)), (0, 0, 0), thickness=-1)
        color = colors[i] if colors else (255, 255, 255)
        cv2.putText(out, line, (2, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
    return out


class RecordVideo(gym.Wrapper):
    """Writes tiled videos of a batched env's ``render()`` frames, one file per episode (see the module doc).

    Args:
        env: a batched env whose ``render()`` returns uint8 [B, H, W, 3] (torch or numpy), e.g. GSEnv made
            with ``render_mode="rgb_array"``.
        output_dir: where the videos go (created).
        info_on_video: write each env's index, reward and success on its tile (success in green).
        max_steps_per_video: also end a video after this many steps (None: only full resets and close end one).
        max_envs: record only the first max_envs envs (None: all); 16 keeps 480x640 videos playable.
        nrows: tile rows (default floor(sqrt(envs recorded))).
        fps: frames per second (default: ``env.metadata["render_fps"]``, else 10).
        video_format: "mp4" or "png" (mp4 falls back to PNG frames where ffmpeg is missing).
        name_prefix: file names are ``<name_prefix>_<k>``.

    ``paths`` lists the files/folders written so far, ``frames_written`` their frame counts.
    """

    def __init__(self, env: gym.Env, output_dir: str | Path, *, info_on_video: bool = False,
                 max_steps_per_video: int | None = None, max_envs: int | None = 16, nrows: int | None = None,
                 fps: float | None = None, video_format: str = "mp4", name_prefix: str = "episode"):
        super().__init__(env)
        if video_format not in VIDEO_FORMATS:
            raise ValueError(f"video_format must be one of {VIDEO_FORMATS}, got {video_format!r}")
        if max_steps_per_video is not None and int(max_steps_per_video) < 1:
            raise ValueError(f"max_steps_per_video must be >= 1 or None, got {max_steps_per_video!r}")
        if max_envs is not None and int(max_envs) < 1:
            raise ValueError(f"max_envs must be >= 1 or None, got {max_envs!r}")
        if getattr(env.unwrapped, "render_mode", "rgb_array") != "rgb_array":
            raise ValueError("RecordVideo needs an env made with render_mode='rgb_array', "
                             f"got render_mode={env.unwrapped.render_mode!r}")
        if video_format == "mp4" and not ffmpeg_available():
            logger.warning("RecordVideo: no ffmpeg (pip install imageio-ffmpeg): writing PNG frames instead of mp4")
            video_format = "png"
        self.video_format = video_format
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.info_on_video = bool(info_on_video)
        self.max_steps_per_video = None if max_steps_per_video is None else int(max_steps_per_video)
        self.max_envs = None if max_envs is None else int(max_envs)
        self.nrows = nrows
        render_fps = (getattr(env.unwrapped, "metadata", None) or {}).get("render_fps")
        self.fps = float(fps if fps is not None else (render_fps or 10))
        self.name_prefix = name_prefix
        self.paths: list[Path] = []
        self.frames_written: list[int] = []
        self._writer: FrameWriter | None = None
        self._video_steps = 0
        self._episode = 0

    # ------------------------------------------------------------------------------ gym API
    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        partial = options is not None and options.get("env_idx") is not None
        if not partial:
            self.flush()
        self._capture(info, reward=None)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._writer is None:  # a video was cut by max_steps_per_video: the next starts here
            self._start()
        self._capture(info, reward)
        self._video_steps += 1
        if self.max_steps_per_video is not None and self._video_steps >= self.max_steps_per_video:
            self.flush()
        return obs, reward, terminated, truncated, info

    def close(self):
        self.flush()
        return self.env.close()

    # ------------------------------------------------------------------------------ frames
    def flush(self) -> Path | None:
        """End the running video (if any); returns its path."""
        if self._writer is None:
            return None
        writer, self._writer = self._writer, None
        writer.close()
        self.paths.append(writer.path)
        self.frames_written.append(writer.frames)
        logger.info("RecordVideo: wrote %s (%d frames)", writer.path, writer.frames)
        return writer.path

    def compose(self, frames, reward=None, success=None) -> np.ndarray:
        """The video frame for render() output frames [B, H, W, 3] (+ reward [B], success [B] when overlaid)."""
        frames = _to_numpy(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8:
            raise ValueError(f"render() must return uint8 frames, got {frames.dtype}")
        n = len(frames) if self.max_envs is None else min(len(frames), self.max_envs)
        frames = frames[:n]
        if self.info_on_video:
            rew = None if reward is None else _to_numpy(reward).reshape(-1)
            suc = None if success is None else _to_numpy(success).reshape(-1).astype(bool)
            tiles = []
            for i in range(n):
                lines, colors = [f"#{i}"], [(255, 255, 255)]
                if rew is not None:
                    lines.append(f"r={float(rew[i if rew.size > 1 else 0]):.2f}")
                    colors.append((255, 255, 255))
                if suc is not None:
                    ok = bool(suc[i if suc.size > 1 else 0])
                    lines.append("success" if ok else "no success")
                    colors.append((0, 255, 0) if ok else (255, 80, 80))
                tiles.append(overlay_text(frames[i], lines, colors))
            frames = np.stack(tiles)
        return tile_frames(frames, self.nrows)

    def _start(self) -> None:
        name = f"{self.name_prefix}_{self._episode}"
        self._episode += 1
        self._writer = FrameWriter(self.output_dir / f"{name}.mp4", self.output_dir / name, self.fps,
                                   prefer_mp4=self.video_format == "mp4")
        self._video_steps = 0

    def _capture(self, info: dict | None, reward) -> None:
        if self._writer is None:
            self._start()
        success = info.get("success") if isinstance(info, dict) else None
        self._writer.append(self.compose(self.env.render(), reward, success))
