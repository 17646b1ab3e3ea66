"""The image jitter and the uint8 conversion in one pass over the pixels, on CUDA (a Triton kernel).

`gsenv.splat.appearance.jitter_to_uint8` calls it where it can run; the torch ops in `gsenv.splat.appearance` are
the reference it matches (to float rounding: a channel may differ by one level where a value falls on
a rounding edge). As torch ops the jitter is some forty launches and seven passes over the float
images (the per-image 3x3 matrix alone is a batched matrix product with an inner size of 3, far below
the memory bandwidth). Here each program derives its image's affine map and noise image from the
per-env values itself, reads each pixel once and the noise in place from the bank, and writes uint8.
Importing this module needs triton (torch's CUDA wheels bring it).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from triton.language.extra import libdevice

BLOCK = 1024
"""Pixels per program."""


@triton.jit
def _mix32(x):
    """appearance._hash32 (lowbias32) on int32, wrapping."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * 0x7FEB352D
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * -2073254261
    return x ^ ((x >> 16) & 0xFFFF)


@triton.jit
def _channel(x0, x1, x2, m, i, k, g0, g1, g2, shift):
    """Row i of the affine map, x' = k M diag(g) x + (sum of row i of M) shift, clamped to [0, 1]."""
    a0, a1, a2 = tl.load(m + 3 * i), tl.load(m + 3 * i + 1), tl.load(m + 3 * i + 2)
    y = k * (a0 * g0 * x0 + a1 * g1 * x1 + a2 * g2 * x2) + (a0 + a1 + a2) * shift
    return tl.minimum(tl.maximum(y, 0.0), 1.0)


@triton.jit
def _to_uint8(y):
    return tl.minimum(tl.maximum(libdevice.rint(y * 255.0), 0.0), 255.0).to(tl.uint8)


@triton.jit
def _jitter_to_uint8(rgb, out, mean, gain, brightness, contrast, matrix, gamma, noise_std, noise_bank, noise_key,
                     frame, pixels, cameras, bank_frames, luma_r, luma_g, luma_b,
                     HAS_GAMMA: tl.constexpr, HAS_NOISE: tl.constexpr, BLOCK: tl.constexpr):
    image = tl.program_id(0)  # env * cameras + camera (axis 0: the grid's other axes stop at 65,535)
    env = image // cameras
    p = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = p < pixels
    at = image.to(tl.int64) * pixels * 3 + p * 3
    x0 = tl.load(rgb + at, mask=inside, other=0.0)
    x1 = tl.load(rgb + at + 1, mask=inside, other=0.0)
    x2 = tl.load(rgb + at + 2, mask=inside, other=0.0)
    # this image's map (look.image_affine): contrast k about the mean grey of g x + b
    g0, g1, g2 = tl.load(gain + env * 3), tl.load(gain + env * 3 + 1), tl.load(gain + env * 3 + 2)
    b, k = tl.load(brightness + env), tl.load(contrast + env)
    grey = (luma_r * (g0 * tl.load(mean + image * 3)) + luma_g * (g1 * tl.load(mean + image * 3 + 1))
            + luma_b * (g2 * tl.load(mean + image * 3 + 2))) + b
    shift = k * b + (1.0 - k) * grey
    m = matrix + env * 9
    y0 = _channel(x0, x1, x2, m, 0, k, g0, g1, g2, shift)
    y1 = _channel(x0, x1, x2, m, 1, k, g0, g1, g2, shift)
    y2 = _channel(x0, x1, x2, m, 2, k, g0, g1, g2, shift)
    if HAS_GAMMA:
        e = tl.load(gamma + env)
        y0, y1, y2 = libdevice.pow(y0, e), libdevice.pow(y1, e), libdevice.pow(y2, e)
    if HAS_NOISE:  # look.noise_index: the bank image of this env's frame
        h = _mix32(tl.load(noise_key + env) ^ _mix32(tl.load(frame + env) + 0x27D4EB2F))
        row = (((h >> 1) & 0x3FFFFFFF) % bank_frames).to(tl.int64)
        n_at = (row * cameras + image % cameras) * pixels * 3 + p * 3
        s = tl.load(noise_std + env)
        y0 += s * tl.load(noise_bank + n_at, mask=inside).to(tl.float32)
        y1 += s * tl.load(noise_bank + n_at + 1, mask=inside).to(tl.float32)
        y2 += s * tl.load(noise_bank + n_at + 2, mask=inside).to(tl.float32)
    tl.store(out + at, _to_uint8(y0), mask=inside)
    tl.store(out + at + 1, _to_uint8(y1), mask=inside)
    tl.store(out + at + 2, _to_uint8(y2), mask=inside)


def jitter_to_uint8_fused(rgb: Tensor, jitter, luma: tuple[float, float, float]) -> Tensor:
    """uint8 [B, C, H, W, 3] from float CUDA rgb [B, C, H, W, 3] and a `look.ImageJitter` (its per-env
    [B, ...] tensors on the same device): the jitter of look.apply_image_jitter, rounded as to_uint8."""
    B, C, H, W, _ = rgb.shape
    rgb = rgb.to(torch.float32).contiguous()
    out = torch.empty(rgb.shape, dtype=torch.uint8, device=rgb.device)
    mean = rgb.mean(dim=(2, 3))  # [B, C, 3]
    f32 = lambda t: t.to(torch.float32).contiguous()  # noqa: E731
    i32 = lambda t: t.to(torch.int32).contiguous()  # noqa: E731
    noise = jitter.noise_std is not None
    unused = mean  # stands for the tensors a constexpr switch leaves unread
    _jitter_to_uint8[(B * C, triton.cdiv(H * W, BLOCK))](
        rgb, out, mean, f32(jitter.gain), f32(jitter.brightness), f32(jitter.contrast), f32(jitter.color_matrix),
        unused if jitter.gamma is None else f32(jitter.gamma),
        f32(jitter.noise_std) if noise else unused, jitter.noise_bank.contiguous() if noise else unused,
        i32(jitter.noise_key) if noise else unused, i32(jitter.frame) if noise else unused,
        H * W, C, jitter.noise_bank.shape[0] if noise else 1, *luma,
        HAS_GAMMA=jitter.gamma is not None, HAS_NOISE=noise, BLOCK=BLOCK)
    return out
