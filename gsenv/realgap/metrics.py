"""Image agreement of a real frame and its render: PSNR and SSIM (whole image or a mask), and the 2-D
offset of the render's robot silhouette against the real image's edges.

Images are uint8 [H, W, 3] (numpy); masks bool [H, W]. Everything runs on the CPU with torch.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["MAX_PSNR_DB", "psnr", "ssim", "edge_strength", "silhouette_edge", "silhouette_offset", "gaussian_blur"]

MAX_PSNR_DB = 100.0
"""PSNR of identical images (reported instead of infinity, which JSON cannot hold)."""
SSIM_SIGMA = 1.5  # Wang et al. 2004: an 11-tap gaussian window of sigma 1.5
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _luma(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float64 [1, 1, H, W] grey (ITU-R BT.601 weights), 0-255."""
    x = torch.as_tensor(np.asarray(image), dtype=torch.float64)
    return (x @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64))[None, None]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """[B, K, H, W] blurred by a separable gaussian of std sigma pixels (replicated border)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    ch = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(ch, 1, 1, -1), groups=ch)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(ch, 1, -1, 1), groups=ch)


def psnr(real: np.ndarray, sim: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    """PSNR in dB (peak 255) over all pixels or the mask's (None when the mask is empty); MAX_PSNR_DB
    for identical pixels."""
    a, b = np.asarray(real, np.float64), np.asarray(sim, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have one shape, got {a.shape} and {b.shape}")
    d2 = (a - b) ** 2
    if mask is not None:
        if not mask.any():
            return None
        d2 = d2[np.asarray(mask, bool)]
    mse = float(d2.mean())
    return MAX_PSNR_DB if mse == 0 else min(MAX_PSNR_DB, 10 * math.log10(255.0 ** 2 / mse))


def ssim(real: np.ndarray, sim: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    """Mean SSIM of the two images' grey values (gaussian window, sigma 1.5 px) over all pixels or the
    mask's (None when the mask is empty)."""
    x, y = _luma(real), _luma(sim)
    if x.shape != y.shape:
        raise ValueError(f"images must have one shape, got {tuple(real.shape)} and {tuple(sim.shape)}")
    mx, my = gaussian_blur(x, SSIM_SIGMA), gaussian_blur(y, SSIM_SIGMA)
    sxx = gaussian_blur(x * x, SSIM_SIGMA) - mx * mx
    syy = gaussian_blur(y * y, SSIM_SIGMA) - my * my
    sxy = gaussian_blur(x * y, SSIM_SIGMA) - mx * my
    ssim_map = ((2 * mx * my + SSIM_C1) * (2 * sxy + SSIM_C2)) / ((mx * mx + my * my + SSIM_C1) * (sxx + syy + SSIM_C2))
    m = ssim_map[0, 0].numpy()
    if mask is not None:
        if not mask.any():
            return None
        m = m[np.asarray(mask, bool)]
    return float(m.mean())


def edge_strength(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """float64 [H, W]: gradient magnitude (Sobel of the grey image blurred by sigma), normalised to a
    maximum of 1."""
    g = gaussian_blur(_luma(image), sigma)
    sx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
    gp = F.pad(g, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(gp, sx.view(1, 1, 3, 3))
    gy = F.conv2d(gp, sx.t().contiguous().view(1, 1, 3, 3))
    mag = torch.sqrt(gx ** 2 + gy ** 2)[0, 0].numpy()
    top = mag.max()
    return mag / top if top > 0 else mag


def silhouette_edge(mask: np.ndarray) -> np.ndarray:
    """bool [H, W]: the mask's pixels with a 4-neighbour outside it (its outline)."""
    m = np.asarray(mask, bool)
    p = np.pad(m, 1, mode="edge")
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def silhouette_offset(mask: np.ndarray, real: np.ndarray, sim: np.ndarray | None = None,
                      search: int = 6) -> tuple[float, float] | None:
    """(dx, dy) pixels by which the real image's edges sit from the render's robot silhouette: the shift
    within +-search pixels that best lays the silhouette's edges on the real image's edges (their
    correlation), refined to a fraction of a pixel by a parabola through the best shift and its
    neighbours. The silhouette's edges: the render's own edges (sim) in a band along the mask's outline,
    else the mask's gradient; both peak between the pixels inside and outside, as an image edge does.
    None when the silhouette has no edge inside the image's margin."""
    outline = edge_strength(np.repeat(np.asarray(mask, np.uint8)[..., None] * 255, 3, -1))
    band = outline > 0.1
    if sim is not None:
        band = F.max_pool2d(torch.as_tensor(band, dtype=torch.float64)[None, None], 5, stride=1,
                            padding=2)[0, 0].numpy() > 0
        template = edge_strength(sim) * band
    else:
        template = outline
    band &= template > 0.05
    band[:search + 1], band[-search - 1:], band[:, :search + 1], band[:, -search - 1:] = False, False, False, False
    ys, xs = np.nonzero(band)
    if len(ys) == 0:
        return None
    weight = template[ys, xs]
    edges = edge_strength(real)
    shifts = np.arange(-search, search + 1)
    score = np.array([[(weight * edges[ys + dy, xs + dx]).sum() for dx in shifts] for dy in shifts])  # [dy, dx]
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)

    def refine(values: np.ndarray, i: int) -> float:
        if 0 < i < len(values) - 1:
            a, b, c = values[i - 1], values[i], values[i + 1]
            den = a - 2 * b + c
            if den < 0:
                return float(shifts[i] + 0.5 * (a - c) / den)
        return float(shifts[i])

    return refine(score[iy], ix), refine(score[:, ix], iy)
