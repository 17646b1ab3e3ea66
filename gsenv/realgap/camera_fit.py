"""The camera-pose correction that best explains the real frames: a small rigid motion of each camera
in its own frame, fitted over all frames by Gauss-Newton on the image error (direct image alignment).

Model, per camera: the real image ≈ gain * the render from the corrected camera + bias (per channel).
A correction moves the camera by `offset` in its own frame (cam_to_world @ offset, as the env's
camera randomisation does). One iteration renders every frame once (colour and depth), linearises
the render about the current correction (how each pixel moves for a small camera motion follows from
its depth and the image gradient), and solves for the step; the colour gain and bias are refitted
first. Only the robot's pixels and a margin around them count (the robot's place is known from the
joint positions; a real background may have changed since the scan), with Huber weights so that a
few wrong pixels (a link off in one frame, a person) do not pull the fit.

The render callback keeps this module free of the renderer: render(offsets [C, 4, 4]) -> a Views.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gsenv.realgap.metrics import gaussian_blur

__all__ = ["Views", "CameraCorrection", "se3_exp", "fit_camera_corrections"]

BLUR_SIGMA = 1.0  # px: both images are smoothed alike, for gradients that reach a pixel or two
MASK_MARGIN = 3  # px around the robot's silhouette that count too (where the real robot may show)
BORDER = 2  # px at the image border left out (no gradient there)
HUBER_K = 1.345  # Huber's constant, in units of the residuals' robust std
STEP_TOL_M, STEP_TOL_RAD = 1e-5, 1e-5  # converged when a step moves less than 0.01 mm and 0.0006 degrees


@dataclass
class Views:
    """One render of N frames x C cameras.

    rgb: float64 [N, C, H, W, 3] in 0-255; depth: float64 [N, C, H, W] along the optical axis (0 where
    nothing was drawn); region: bool [N, C, H, W] the robot's pixels; Ks: float64 [C, 3, 3]."""

    rgb: torch.Tensor
    depth: torch.Tensor
    region: torch.Tensor
    Ks: torch.Tensor


@dataclass
class CameraCorrection:
    """The fitted correction of one camera: corrected cam_to_mount = cam_to_mount @ offset.

    translation_m: [3] metres, rotation_rad: [3] rotation vector, both in the camera's own axes (x
    right, y down, z forward); gain, bias: [3] per channel (real ≈ gain * render + bias, 0-255)."""

    camera: str
    offset: np.ndarray
    iterations: int
    converged: bool
    frames: int
    pixels: int
    gain: np.ndarray
    bias: np.ndarray

    @property
    def translation_m(self) -> np.ndarray:
        return self.offset[:3, 3].copy()

    @property
    def rotation_rad(self) -> np.ndarray:
        from gsenv.geometry import matrix_to_rotvec

        return matrix_to_rotvec(torch.as_tensor(self.offset[:3, :3], dtype=torch.float64)).numpy()

    @property
    def shift_mm(self) -> float:
        return float(np.linalg.norm(self.translation_m) * 1000)

    @property
    def turn_deg(self) -> float:
        return float(math.degrees(np.linalg.norm(self.rotation_rad)))

    def to_json(self) -> dict:
        return {"camera": self.camera, "shift_mm": round(self.shift_mm, 3), "turn_deg": round(self.turn_deg, 4),
                "translation_mm": np.round(self.translation_m * 1000, 3).tolist(),
                "rotation_deg": np.round(np.degrees(self.rotation_rad), 4).tolist(),
                "offset": np.round(self.offset, 8).tolist(), "iterations": self.iterations,
                "converged": self.converged, "frames": self.frames, "pixels": self.pixels,
                "colour_gain": np.round(self.gain, 4).tolist(), "colour_bias": np.round(self.bias, 3).tolist()}


def se3_exp(xi: torch.Tensor) -> torch.Tensor:
    """[..., 6] (translation, rotation vector) -> [..., 4, 4]: rotation by Rodrigues' formula, the
    translation taken as it is (a small step either way)."""
    v, w = xi[..., :3], xi[..., 3:]
    theta = w.norm(dim=-1, keepdim=True)[..., None]  # [..., 1, 1]
    z = torch.zeros_like(w[..., 0])
    K = torch.stack([z, -w[..., 2], w[..., 1], w[..., 2], z, -w[..., 0], -w[..., 1], w[..., 0], z], -1)
    K = K.reshape(w.shape[:-1] + (3, 3))
    small = theta < 1e-8
    a = torch.where(small, torch.ones_like(theta), torch.sin(theta) / theta.clamp_min(1e-12))
    b = torch.where(small, torch.full_like(theta, 0.5), (1 - torch.cos(theta)) / (theta ** 2).clamp_min(1e-24))
    R = torch.eye(3, dtype=xi.dtype) + a * K + b * (K @ K)
    T = torch.eye(4, dtype=xi.dtype).expand(xi.shape[:-1] + (4, 4)).clone()
    T[..., :3, :3], T[..., :3, 3] = R, v
    return T


def _dilate(mask: torch.Tensor, r: int) -> torch.Tensor:
    """bool [B, H, W] grown by r pixels (square)."""
    return F.max_pool2d(mask.to(torch.float64)[:, None], 2 * r + 1, stride=1, padding=r)[:, 0] > 0


def _blur_rgb(x: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] -> the same blurred by BLUR_SIGMA."""
    return gaussian_blur(x.permute(0, 3, 1, 2), BLUR_SIGMA).permute(0, 2, 3, 1)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of [B, H, W, 3] along x (columns) and y (rows); 0 at the border."""
    gx, gy = torch.zeros_like(x), torch.zeros_like(x)
    gx[:, :, 1:-1] = (x[:, :, 2:] - x[:, :, :-2]) / 2
    gy[:, 1:-1] = (x[:, 2:] - x[:, :-2]) / 2
    return gx, gy


def _pixel_jacobian(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 2, 6]: how each pixel (u, v) moves for a camera step (translation, rotation vector) in
    the camera's frame, for the point seen there at `depth` [B, H, W]."""
    B, H, W = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = torch.arange(W, dtype=depth.dtype) + 0.5
    v = torch.arange(H, dtype=depth.dtype) + 0.5
    Z = depth.clamp_min(1e-6)
    X = (u[None, None, :] - cx) / fx * Z
    Y = (v[None, :, None] - cy) / fy * Z
    # the point's coordinates after the camera moves by (t, w): X' = X - t - w x X
    zero = torch.zeros_like(Z)
    dX = torch.stack([  # [B, H, W, 3, 6]: d X' / d (t, w)
        torch.stack([-torch.ones_like(Z), zero, zero, zero, -Z, Y], -1),
        torch.stack([zero, -torch.ones_like(Z), zero, Z, zero, -X], -1),
        torch.stack([zero, zero, -torch.ones_like(Z), -Y, X, zero], -1)], -2)
    dproj = torch.stack([  # [B, H, W, 2, 3]: d (u, v) / d X'
        torch.stack([fx / Z, zero, -fx * X / Z ** 2], -1),
        torch.stack([zero, fy / Z, -fy * Y / Z ** 2], -1)], -2)
    return dproj @ dX


def _colour_fit(sim: torch.Tensor, real: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel gain, bias [3] of real ≈ gain * sim + bias over pixels [P, 3] with weights [P]."""
    sw = w.sum().clamp_min(1e-12)
    ms, mr = (w[:, None] * sim).sum(0) / sw, (w[:, None] * real).sum(0) / sw
    cov = (w[:, None] * (sim - ms) * (real - mr)).sum(0)
    var = (w[:, None] * (sim - ms) ** 2).sum(0).clamp_min(1e-9)
    gain = cov / var
    return gain, mr - gain * ms


def fit_camera_corrections(render: Callable[[torch.Tensor], Views], real: torch.Tensor, cameras: list[str],
                           *, iterations: int = 15, use_frames: torch.Tensor | None = None,
                           ) -> tuple[list[CameraCorrection], Views, Views]:
    """Fit one camera correction per camera over all frames.

    Args:
        render: offsets float64 [C, 4, 4] -> Views of every frame and camera.
        real: float64 [N, C, H, W, 3] the real frames at the render size, 0-255.
        cameras: the C camera names (for the result).
        iterations: Gauss-Newton iterations at most (each renders once).
        use_frames: bool [N] the frames that count (default all).
    Returns:
        (a CameraCorrection per camera, the render at the calibrated cameras, the render at the
        corrections).
    """
    N, C = real.shape[:2]
    use = torch.ones(N, dtype=torch.bool) if use_frames is None else use_frames
    offsets = torch.eye(4, dtype=torch.float64).repeat(C, 1, 1)
    real_b = [_blur_rgb(real[:, c]) for c in range(C)]
    done = [False] * C
    first = views = render(offsets)
    its = [0] * C
    gains = [torch.ones(3, dtype=torch.float64)] * C
    biases = [torch.zeros(3, dtype=torch.float64)] * C
    pixels = [0] * C
    for it in range(iterations):
        for c in range(C):
            if done[c]:
                continue
            sim = _blur_rgb(views.rgb[:, c])  # [N, H, W, 3]
            gx, gy = _gradients(sim)
            region = _dilate(views.region[:, c], MASK_MARGIN) & (views.depth[:, c] > 0) & use[:, None, None]
            region[:, :BORDER], region[:, -BORDER:], region[:, :, :BORDER], region[:, :, -BORDER:] = (
                False, False, False, False)
            sel = region.nonzero(as_tuple=True)
            pixels[c] = len(sel[0])
            if pixels[c] < 50:
                raise ValueError(f"camera {cameras[c]!r}: the robot covers {pixels[c]} pixels in the frames used, "
                                 "too few to fit a camera correction (a larger --image-size, or frames where the "
                                 "robot is in view)")
            s, r = sim[sel], real_b[c][sel]  # [P, 3]
            w = torch.ones(len(s), dtype=torch.float64)
            for _ in range(2):  # colour with Huber weights from its own residuals
                gains[c], biases[c] = _colour_fit(s, r, w)
                res = r - (gains[c] * s + biases[c])
                sigma = 1.4826 * res.abs().median().clamp_min(0.5)
                w = (HUBER_K * sigma / res.abs().clamp_min(1e-12)).clamp(max=1.0).min(-1).values
            J_uv = _pixel_jacobian(views.depth[:, c], views.Ks[c])[sel]  # [P, 2, 6]
            grad = torch.stack([gx[sel], gy[sel]], -1) * gains[c][:, None]  # [P, 3, 2]
            J = -(grad @ J_uv)  # [P, 3, 6]: d render / d step (the pixel content moves by du)
            wj = res.abs().clamp_min(1e-12)
            wk = (HUBER_K * sigma / wj).clamp(max=1.0)  # [P, 3]
            A = torch.einsum("pki,pk,pkj->ij", J, wk, J)
            b = torch.einsum("pki,pk,pk->i", J, wk, res)
            step = torch.linalg.solve(A + 1e-9 * torch.eye(6, dtype=A.dtype) * A.diagonal().mean(), b)
            offsets[c] = offsets[c] @ se3_exp(step)
            its[c] = it + 1
            if step[:3].norm() < STEP_TOL_M and step[3:].norm() < STEP_TOL_RAD:
                done[c] = True
        if all(done):
            break
        views = render(offsets)
    out = [CameraCorrection(cameras[c], offsets[c].numpy(), its[c], done[c], int(use.sum()), pixels[c],
                            gains[c].numpy(), biases[c].numpy()) for c in range(C)]
    return out, first, views
