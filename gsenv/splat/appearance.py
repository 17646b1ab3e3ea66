"""`Look`: per-env appearance applied inside one batched render (domain randomisation's render side).

What the renderer does with a Look (every field optional; None leaves that part as it is):
- body_color_shift [B, NB, 3]: added to the colour of every gaussian of that body in that env
  (a shift of its DC term, in colour units), clamped at 0 as SH evaluation is;
- backdrop [B, 3] colour or [B, H, W, 3] image (at the render size): what shows behind everything;
- image `ImageJitter`: per-env image-space colour on the composited float image, before uint8.

The jitter is cheap on purpose: light, tint, brightness, contrast, saturation and hue are one affine
map per image (a 3x3 matrix and an offset, contrast about the image's mean grey), then gamma and sensor
noise. The noise of a frame is one of NOISE_FRAMES fixed noise images, picked by a hash of (env key,
frame): the same key and frame give the same noise whatever the other envs do, without a generator
per env on the step path, for one gather and one multiply-add (a hash per pixel would take some
twenty elementwise passes over the images).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gsenv.splat.compositing import to_uint8

logger = logging.getLogger(__name__)

# Rec. 601 luma: the grey of saturation and contrast.
LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ; hue turns rotate the (I, Q) plane.
_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))


@dataclass
class ImageJitter:
    """Per-env image-space colour, tensors on the render device.

    gain [B, 3] (light scale x tint), brightness [B] (added), contrast [B] (about the mean grey),
    color_matrix [B, 3, 3] (saturation and hue), gamma [B] or None (x ** gamma), noise_std [B] or None
    (Gaussian, in [0, 1] image units), noise_key [B] int32 (per episode), frame [B] int32 (the step:
    the noise changes every frame), noise_bank [K, C, H, W, 3] (noise_bank()) the noise images a
    frame picks from.
    """

    gain: Tensor
    brightness: Tensor
    contrast: Tensor
    color_matrix: Tensor
    gamma: Tensor | None = None
    noise_std: Tensor | None = None
    noise_key: Tensor | None = None
    frame: Tensor | None = None
    noise_bank: Tensor | None = None


@dataclass
class Look:
    """Per-env appearance for a render of B envs (see the module doc). A caller that keeps a ViewState
    calls its look_changed() whenever body_color_shift or backdrop change."""

    body_color_shift: Tensor | None = None
    backdrop: Tensor | None = None
    image: ImageJitter | None = None


def saturation_hue_matrix(saturation: Tensor, hue: Tensor) -> Tensor:
    """[B, 3, 3] colour matrices: saturation [B] (0 grey, 1 unchanged) then a hue rotation of hue [B]
    turns (of the YIQ chroma plane; 0 unchanged)."""
    dev, f = saturation.device, torch.float32
    luma = torch.tensor(LUMA, device=dev, dtype=f)
    eye = torch.eye(3, device=dev, dtype=f)
    s = saturation.to(f)[:, None, None]
    sat = s * eye + (1 - s) * luma.expand(3, 3)  # [B, 3, 3]: each output channel mixes towards grey
    yiq = torch.tensor(_YIQ, device=dev, dtype=f)
    ang = hue.to(f) * (2 * math.pi)
    c, sn = torch.cos(ang), torch.sin(ang)
    rot = torch.zeros(len(ang), 3, 3, device=dev, dtype=f)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -sn, sn, c
    return torch.linalg.inv(yiq) @ rot @ yiq @ sat


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mix (lowbias32) of int32 x, elementwise (wrapping arithmetic, logical shifts)."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * 0x7FEB352D
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * -2073254261  # 0x846CA68B as int32
    return x ^ ((x >> 16) & 0xFFFF)


NOISE_FRAMES = 32
"""Noise images in a bank: each env's frame takes one of them, picked by (env key, frame)."""


def noise_bank(shape: tuple[int, ...], device, frames: int = NOISE_FRAMES, seed: int = 0) -> Tensor:
    """float16 [frames, *shape] standard-normal noise images, the same for a seed on every machine
    (drawn on the CPU)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((frames, *shape), generator=g).to(device, torch.float16)


def noise_index(key: Tensor, frame: Tensor, frames: int) -> Tensor:
    """int64 [B]: the bank image of each env's frame, a hash of key [B] and frame [B] (int32): the same
    key and frame give the same noise whatever the other envs do."""
    x = _hash32(key.to(torch.int32) ^ _hash32(frame.to(torch.int32) + 0x27D4EB2F))
    return ((x >> 1) & 0x3FFFFFFF).to(torch.int64) % frames


def image_affine(rgb: Tensor, jitter: ImageJitter) -> tuple[Tensor, Tensor]:
    """Each image's colour map x' = A x + t from rgb [B, C, H, W, 3]: float32 A [B, C, 3, 3], t [B, C, 3].

    light x tint, brightness, contrast (about the image's mean grey), saturation and hue folded into one
    affine map: A = k M diag(g), t = M (k b + (1 - k) m) 1, m the mean grey of g x + b."""
    B, C = rgb.shape[:2]
    g = jitter.gain[:, None, :].to(torch.float32)  # [B, 1, 3]
    b = jitter.brightness[:, None, None].to(torch.float32)  # [B, 1, 1]
    k = jitter.contrast[:, None, None].to(torch.float32)
    M = jitter.color_matrix[:, None].to(torch.float32)  # [B, 1, 3, 3]
    luma = torch.tensor(LUMA, device=rgb.device, dtype=torch.float32)
    mean_rgb = rgb.mean(dim=(2, 3), dtype=torch.float32)  # [B, C, 3]
    grey = (g * mean_rgb) @ luma + b[..., 0]  # [B, C]
    A = (k[..., None] * M * g[:, :, None, :]).expand(B, C, 3, 3)
    t = (M @ (k * b + (1 - k) * grey[..., None]).expand(B, C, 3)[..., None])[..., 0]  # [B, C, 3]
    return A, t


def apply_image_jitter(rgb: Tensor, jitter: ImageJitter) -> Tensor:
    """Float RGB [B, C, H, W, 3] (composited, about [0, 1]) -> the jittered float RGB, same shape (torch
    ops: the reference of the fused kernel): the image_affine map, clamp to [0, 1], gamma, noise."""
    B, C, H, W, _ = rgb.shape
    A, t = (x.to(rgb.dtype) for x in image_affine(rgb, jitter))
    flat = rgb.reshape(B * C, H * W, 3)
    out = torch.baddbmm(t.reshape(B * C, 1, 3), flat, A.reshape(B * C, 3, 3).transpose(1, 2))
    out = out.reshape(B, C, H, W, 3).clamp_(0.0, 1.0)
    if jitter.gamma is not None:
        out = out.pow_(jitter.gamma[:, None, None, None, None])
    if jitter.noise_std is not None:  # one gather from the bank and one fused multiply-add
        noise = jitter.noise_bank[noise_index(jitter.noise_key, jitter.frame, jitter.noise_bank.shape[0])]
        out = out.addcmul_(noise, jitter.noise_std[:, None, None, None, None].to(out.dtype))
    return out


_FUSED: dict[str, object] = {}


def _fused_kernel():
    """gsenv.splat.jitter_kernel.jitter_to_uint8_fused, or None where triton does not import (said once)."""
    if "fn" not in _FUSED:
        try:
            from gsenv.splat.jitter_kernel import jitter_to_uint8_fused
        except ImportError as exc:
            logger.warning("image jitter runs as torch ops, not as one fused kernel (triton does not import: "
                           "%s); the images agree to one level, it is slower", exc)
            jitter_to_uint8_fused = None
        _FUSED["fn"] = jitter_to_uint8_fused
    return _FUSED["fn"]


def jitter_to_uint8(rgb: Tensor, jitter: ImageJitter, fused: bool | None = None) -> Tensor:
    """Float RGB [B, C, H, W, 3] -> the jittered image as uint8 [B, C, H, W, 3] (apply_image_jitter,
    then to_uint8's rounding).

    fused: None: one fused kernel on CUDA where triton imports, else torch ops; False: torch ops;
    True: the fused kernel (RuntimeError where it cannot run)."""
    kernel = None
    if fused is not False and rgb.is_cuda:
        kernel = _fused_kernel()
    if fused is True and kernel is None:
        raise RuntimeError("jitter_to_uint8(fused=True) needs CUDA images and triton "
                           f"(the images are on {rgb.device}); pass fused=None to use torch ops where it cannot run")
    if kernel is None:
        return to_uint8(apply_image_jitter(rgb, jitter))
    return kernel(rgb, jitter, LUMA)
