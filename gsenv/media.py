"""Frames to pictures and videos: tiling a batch of camera images into one image, and writing frames
as an mp4 (H.264 through imageio-ffmpeg) or, where no ffmpeg is there, as numbered PNG files.

Used by the video wrapper (gsenv.wrappers.RecordVideo) and the tools (`gsenv demo`).
"""
from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["VIDEO_QUALITY", "grid_shape", "tile_frames", "ffmpeg_exe", "ffmpeg_available", "FrameWriter"]

logger = logging.getLogger(__name__)

VIDEO_QUALITY = 8  # imageio-ffmpeg's 0-10 scale


def grid_shape(n: int, nrows: int | None = None) -> tuple[int, int]:
    """(rows, cols) of the grid for n tiles: nrows rows (default floor(sqrt(n)), as ManiSkill's
    tile_images) and as many columns as needed."""
    rows = max(1, math.isqrt(n)) if nrows is None else int(nrows)
    if rows < 1:
        raise ValueError(f"nrows must be >= 1, got {nrows}")
    return rows, math.ceil(n / rows)


def tile_frames(frames: np.ndarray, nrows: int | None = None, *, gap: int = 0, fill: int = 0,
                borders: Sequence[Sequence[int] | None] | None = None, border_width: int = 2,
                even: bool = False) -> np.ndarray:
    """uint8 [B, H, W, 3] -> one uint8 image [rows*H + (rows-1)*gap, cols*W + (cols-1)*gap, 3].

    Tiles go row-major into a grid_shape(B, nrows) grid, `gap` pixels apart; gaps and empty cells are
    `fill` (0 black, 255 white). borders: one RGB colour per tile (None: no border on that tile),
    drawn `border_width` pixels wide (at most a quarter of the tile) inside the tile. even: pad the
    bottom and right with `fill` to an even height and width (H.264's yuv420p needs that).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [B, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    n, h, w, _ = frames.shape
    if borders is not None and len(borders) != n:
        raise ValueError(f"borders must give one colour (or None) per tile: {n} tiles, {len(borders)} colours")
    rows, cols = grid_shape(n, nrows)
    height, width = rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap
    if even:
        height, width = height + height % 2, width + width % 2
    canvas = np.full((height, width, 3), fill, np.uint8)
    b = min(border_width, h // 4, w // 4)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = canvas[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w]
        tile[:] = frames[i]
        colour = None if borders is None else borders[i]
        if colour is not None and b > 0:
            tile[:b], tile[-b:], tile[:, :b], tile[:, -b:] = colour, colour, colour, colour
    return canvas


def ffmpeg_exe() -> str | None:
    """The ffmpeg executable imageio-ffmpeg would use, or None when there is none."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # ImportError, RuntimeError("No ffmpeg exe could be found")
        logger.info("no ffmpeg: %s", exc)
        return None
    # IMAGEIO_FFMPEG_EXE is returned unchecked: make sure it is there
    if exe and (Path(exe).is_file() or shutil.which(exe)):
        return exe
    logger.info("no ffmpeg: %r (from imageio-ffmpeg) is not an executable", exe)
    return None


def ffmpeg_available() -> bool:
    """True when imageio can write mp4 (imageio-ffmpeg and an ffmpeg executable are there)."""
    return ffmpeg_exe() is not None


class FrameWriter:
    """Streams uint8 [H, W, 3] frames to an mp4 at `mp4_path`, or as PNG files named
    `png_name.format(index)` in the folder `frames_dir` when `prefer_mp4` is False or no ffmpeg is
    there. `path` is the mp4 or the folder, `is_mp4` says which, `frames` counts what was written.
    Files are created with the first frame. Frames of odd height or width are padded with black
    rows/columns in the mp4 (yuv420p needs even sizes); PNG frames are written as they are.
    """

    def __init__(self, mp4_path: str | Path, frames_dir: str | Path, fps: float = 10.0, *,
                 prefer_mp4: bool = True, png_name: str = "{:06d}.png", keyframe_every: int | None = None):
        """keyframe_every: a keyframe every that many frames (x264's GOP; short GOPs make random
        access cheap, as dataset loaders need), else the encoder's default."""
        self.is_mp4 = bool(prefer_mp4) and ffmpeg_available()
        self.keyframe_every = keyframe_every
        self.path = Path(mp4_path) if self.is_mp4 else Path(frames_dir)
        self.fps = float(fps)
        self.png_name = png_name
        self.frames = 0
        self._mp4 = None

    def append(self, image: np.ndarray) -> None:
        """Write one uint8 [H, W, 3] frame."""
        if self.is_mp4:
            if self._mp4 is None:
                import imageio.v2 as imageio

                self.path.parent.mkdir(parents=True, exist_ok=True)
                # macro_block_size=1: keep the frame size as it is (no rescaling to multiples of 16)
                gop = ["-g", str(self.keyframe_every)] if self.keyframe_every else []
                self._mp4 = imageio.get_writer(self.path, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                               quality=VIDEO_QUALITY, macro_block_size=1, ffmpeg_log_level="error",
                                               pixelformat="yuv420p", output_params=gop)
            h, w = image.shape[:2]
            if h % 2 or w % 2:
                image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)))
            self._mp4.append_data(image)
        else:
            import imageio.v3 as iio

            self.path.mkdir(parents=True, exist_ok=True)
            iio.imwrite(self.path / self.png_name.format(self.frames), image)
        self.frames += 1

    def close(self) -> None:
        """Finish the mp4 (nothing to do for PNG frames); closing twice is fine."""
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
