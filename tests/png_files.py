"""PNG files written byte by byte (zlib + the PNG chunk layout), for what Pillow cannot write: 16-bit
colour, and huge images that take no memory to make (rows of zeros streamed through zlib)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type: grey, grey + alpha, RGB, RGBA


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, depth: int, channels: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, COLOUR_TYPE[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """uint8 or uint16 [h, w] or [h, w, 1..4] (grey, grey + alpha, RGB, RGBA) -> a PNG of that bit depth."""
    image = np.asarray(image)
    image = image[..., None] if image.ndim == 2 else image
    h, w, c = image.shape
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}[image.dtype]
    rows = image.astype(">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 per row
    Path(path).write_bytes(_png(w, h, depth, c, zlib.compress(raw)))
    return Path(path)


def write_black_png(path: str | Path, width: int, height: int) -> Path:
    """An 8-bit grey PNG of width x height zeros, made row by row (a few hundred KB for 12000x12000)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    Path(path).write_bytes(_png(width, height, 8, 1, idat))
    return Path(path)
