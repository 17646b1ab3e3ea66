"""The frames of the shown env's episode, kept for scrubbing back through it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One state of the shown env.

    step: env steps since the episode's reset (0 = the reset state).
    poses: {body name: float32 [7]} position + wxyz in the world frame.
    images: uint8 [C, H, W, 3], one per camera (the env's `camera_names` order).
    viewmats: float32 [C, 4, 4] world-to-camera (OpenCV axes) of those cameras: a wrist camera moves.
    reward, success: as the env reported them for that step (0 / False for the reset state).
    """

    step: int
    poses: dict[str, np.ndarray]
    images: np.ndarray
    viewmats: np.ndarray
    reward: float = 0.0
    success: bool = False


class EpisodeFrames:
    """Frames of one episode, oldest first; at most `max_frames` (the oldest are dropped beyond)."""

    def __init__(self, max_frames: int = 1000):
        if not (isinstance(max_frames, int) and max_frames >= 1):
            raise ValueError(f"max_frames must be an int >= 1, got {max_frames!r}")
        self.max_frames = max_frames
        self._frames: list[Frame] = []

    def start(self, frame: Frame) -> None:
        """A new episode, beginning with its reset state."""
        self._frames = [frame]

    def add(self, frame: Frame) -> None:
        self._frames.append(frame)
        del self._frames[:-self.max_frames]

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> Frame:
        return self._frames[i]

    @property
    def latest(self) -> Frame:
        return self._frames[-1]
