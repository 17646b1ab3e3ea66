"""`Backdrop`: what shows where the gaussians leave a pixel uncovered, a colour or an image."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class Backdrop:
    """An RGB colour or an image behind everything, on `device`, as float32 in [0, 1].

    backdrop: 3 floats in [0, 1], or an image [h, w, 3] (uint8, or float in [0, 1]) of any size:
    resized (bilinear, antialiased) to each render resolution once and kept.
    """

    def __init__(self, backdrop: Sequence[float] | Tensor | np.ndarray, device: torch.device) -> None:
        t = torch.as_tensor(np.asarray(backdrop)) if not isinstance(backdrop, Tensor) else backdrop
        if t.dtype == torch.uint8:
            t = t.float() / 255.0
        t = t.to(device, torch.float32)
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
