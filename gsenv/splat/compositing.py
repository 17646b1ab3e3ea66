"""Rasterised layers and how they combine: bodies over the cached background, depth-tested, to uint8.

A `Layer` is what one rasterisation gives, premultiplied by alpha. Bodies and background are
composited per pixel with premultiplied alpha and a depth test: whichever layer's expected depth
(accumulated depth / alpha) is nearer goes in front, so a body behind background geometry is hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Expected depth of an empty background pixel: everything is in front of it.
FAR = 1e30


@dataclass
class Layer:
    """A rasterised layer, [..., C, H, W, *]: premultiplied features [..., D] (RGB, then per-body
    alpha channels where asked for), accumulated depth [..., 1] (sum of w_i z_i) and alpha [..., 1]."""

    feats: Tensor
    depth_acc: Tensor
    alpha: Tensor


def empty_layer(B: int, C: int, H: int, W: int, nb: int, device: torch.device) -> Layer:
    """A layer with nothing in it: features [B, C, H, W, 3 + nb], depth and alpha [B, C, H, W, 1], all 0."""
    z = torch.zeros(B, C, H, W, 1, device=device)
    return Layer(z.expand(B, C, H, W, 3 + nb), z, z)


def pad_feats(layer: Layer, nb: int) -> Layer:
    """The layer with nb zero feature channels appended (no body owns any of its pixels)."""
    return Layer(torch.nn.functional.pad(layer.feats, (0, nb)), layer.depth_acc, layer.alpha)


@dataclass
class Underlay:
    """The cached background seen from the bodies' side, [1 or B, C, H, W, *]: its expected depth
    `far` [..., 1] (FAR where it leaves the pixel empty), its transmittance `clear` [..., 1], and
    `over_backdrop` [..., 3] it composited over the backdrop."""

    far: Tensor
    clear: Tensor
    over_backdrop: Tensor


def underlay(bg: Layer, backdrop: Tensor) -> Underlay:
    """What bodies are composited over, from the background layer bg and the backdrop ([3] or [H, W, 3])."""
    clear = 1.0 - bg.alpha
    far = torch.where(bg.alpha > 1e-6, bg.depth_acc / bg.alpha.clamp_min(1e-10), torch.full_like(bg.alpha, FAR))
    return Underlay(far, clear, bg.feats[..., :3] + clear * backdrop)


def in_front(fg: Layer, far: Tensor) -> Tensor:
    """bool [..., 1]: the bodies' expected depth is nearer than the background's (depth_acc / alpha
    <= far, multiplied out: no division, and an empty body pixel counts as in front)."""
    return fg.depth_acc <= far * fg.alpha


def rgb_over(fg: Layer, under: Underlay, backdrop: Tensor) -> Tensor:
    """Float RGB [B, C, H, W, 3] of the bodies fg depth-tested against the background, over the backdrop.

    In front: fg + (1 - a_fg) (bg over backdrop). Behind: bg + (1 - a_bg) (fg + (1 - a_fg) backdrop),
    which is (bg over backdrop) + (1 - a_bg) (fg - a_fg backdrop): both from the cached `under`."""
    f, a = fg.feats[..., :3], fg.alpha
    return torch.where(in_front(fg, under.far), torch.addcmul(f, 1.0 - a, under.over_backdrop),
                       torch.addcmul(under.over_backdrop, under.clear, f - a * backdrop))


def composite_depth_tested(fg: Layer, bg: Layer, far: Tensor) -> Layer:
    """Per pixel, put the layer with the nearer expected depth in front ("over", premultiplied).
    fg: bodies [B, C, H, W, 3 + nb]; bg: background [1 or B, C, H, W, 3]; far: bg's depth (Underlay)."""
    nb = fg.feats.shape[-1] - bg.feats.shape[-1]
    bg = pad_feats(bg, nb)
    front = in_front(fg, far)
    t_fg, t_bg = 1.0 - fg.alpha, 1.0 - bg.alpha
    feats = torch.where(front, fg.feats + t_fg * bg.feats, bg.feats + t_bg * fg.feats)
    depth_acc = torch.where(front, fg.depth_acc + t_fg * bg.depth_acc, bg.depth_acc + t_bg * fg.depth_acc)
    alpha = 1.0 - t_fg * t_bg
    return Layer(feats, depth_acc, alpha)


def to_uint8(rgb: Tensor) -> Tensor:
    """Float RGB in [0, 1] [..., 3] -> uint8 [..., 3] (rounded, clamped)."""
    return (rgb * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
