"""`Backdrop`: what shows where the gaussians leave a pixel uncovered, a colour or an image; and
`read_backdrop_image`, the one reader of backdrop image files."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

MAX_BACKDROP_PIXELS = 24_000_000
"""The most pixels a backdrop image file may have (a 6000x4000 photo): renders are at most 4096 pixels
a side, so more is never needed, and a small PNG can claim a huge size (12000x12000 in 419 KB would
take gigabytes to decode). Checked from the file's header, before anything is decoded."""

# Pillow's modes of 8-bit samples, which Pillow itself turns into RGB (alpha dropped: nothing shows
# behind a backdrop); 16-bit colour PNGs open as RGB / RGBA too (Pillow keeps each sample's high byte)
_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})
_SIXTEEN_BIT_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_FIX = "save it as an 8- or 16-bit PNG or a JPEG (grey, grey + alpha, RGB or RGBA)"


def read_backdrop_image(path: str | Path, max_pixels: int = MAX_BACKDROP_PIXELS) -> np.ndarray:
    """The image file at `path` as RGB, uint8 or uint16 [h, w, 3] (its bit depth kept; `Backdrop`
    scales either to [0, 1]).

    Grey and grey + alpha become three equal channels; alpha is dropped (a backdrop is the farthest
    layer: nothing shows through it). ValueError naming the file for a file that is not a readable
    image, a pixel format other than those, or more than max_pixels pixels (checked from the header,
    before decoding).
    """
    from PIL import Image

    path = Path(path)
    try:
        with warnings.catch_warnings():  # Pillow warns about large images: the size is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                width, height = im.size
                if width * height > max_pixels:
                    raise _TooLarge(f"{width}x{height}")
                mode = im.mode
                if mode in _SIXTEEN_BIT_GREY_MODES or (mode == "I" and im.format == "PNG"):  # "I": older Pillow
                    grey = np.asarray(im).astype(np.uint16)  # PNG samples are at most 16 bits
                    return np.repeat(grey[..., None], 3, axis=-1)
                if mode not in _EIGHT_BIT_MODES:
                    raise _Unsupported(mode)
                return np.array(im.convert("RGB"), dtype=np.uint8)
    except _TooLarge as exc:
        raise ValueError(f"backdrop image {path} is {exc} pixels, more than the {max_pixels} allowed (renders need at "
                         f"most 4096 a side): downscale it") from None
    except _Unsupported as exc:
        raise ValueError(f"backdrop image {path} has pixels of Pillow mode {exc}, which is no grey or colour image "
                         f"of 8 or 16 bits: {_FIX}") from None
    except Image.DecompressionBombError as exc:  # a size Pillow refuses before ours is read
        raise ValueError(f"backdrop image {path} is too large ({exc}): downscale it") from None
    except Exception as exc:  # Pillow's errors for a broken file: OSError, SyntaxError, ValueError, ...
        text = str(exc).strip() or "no detail"
        raise ValueError(f"backdrop image {path} cannot be read ({type(exc).__name__}: {text}): is it a whole image "
                         f"file? {_FIX}") from None


class _TooLarge(Exception):
    pass


class _Unsupported(Exception):
    pass


def _as_unit_float(t: Tensor) -> Tensor:
    """uint8 / uint16 samples -> float in [0, 1] by their bit depth; floats must already lie in [0, 1]."""
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.dtype == torch.uint16:
        return t.float() / 65535.0
    if not t.is_floating_point():
        raise ValueError(f"backdrop must be uint8, uint16 or float in [0, 1], got dtype {t.dtype}")
    if t.numel() and not (t.min() >= 0 and t.max() <= 1):  # also catches NaN
        raise ValueError("backdrop floats must lie in [0, 1] (uint8 and uint16 images are scaled by their bit depth)")
    return t


class Backdrop:
    """An RGB colour or an image behind everything, on `device`, as float32 in [0, 1].

    backdrop: 3 floats in [0, 1], or an image [h, w, 3] (uint8, uint16, or float in [0, 1]: each
    scaled by its bit depth) of any size: resized (bilinear, antialiased) to each render resolution
    once and kept. Image files: read_backdrop_image.
    """

    def __init__(self, backdrop: Sequence[float] | Tensor | np.ndarray, device: torch.device) -> None:
        if isinstance(backdrop, np.ndarray):
            t = torch.from_numpy(np.array(backdrop, dtype=backdrop.dtype.newbyteorder("=")))  # a native copy
        elif isinstance(backdrop, Tensor):
            t = backdrop
        else:  # a colour as numbers, e.g. (0, 0, 0)
            try:
                t = torch.as_tensor(np.asarray(backdrop, dtype=np.float64))
            except (TypeError, ValueError):
                raise ValueError(f"backdrop must be an RGB colour [3] or an image [h, w, 3], "
                                 f"got {backdrop!r}") from None
        t = _as_unit_float(t).to(device, torch.float32)
        if t.shape == (3,):
            self._image = None
            self._rgb = t
        elif t.dim() == 3 and t.shape[-1] == 3:
            self._image = t
            self._rgb = None
        else:
            raise ValueError(f"backdrop must be an RGB colour [3] or an image [h, w, 3], got shape {list(t.shape)}")
        self._resized: dict[tuple[int, int], Tensor] = {}

    def at(self, width: int, height: int) -> Tensor:
        """[3] colour or [H, W, 3] image at the render resolution."""
        if self._image is None:
            return self._rgb
        W, H = width, height
        img = self._resized.get((W, H))
        if img is None:
            src = self._image.permute(2, 0, 1)[None]
            img = torch.nn.functional.interpolate(src, size=(H, W), mode="bilinear", align_corners=False,
                                                  antialias=True)[0].permute(1, 2, 0).contiguous()
            self._resized[(W, H)] = img
        return img
