"""`Gaussians`: a set of 3D gaussians in the standard 3DGS parameterisation."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gsenv.geometry import quat_multiply, quat_normalize, quat_to_rotmat, rotmat_to_quat
from gsenv.splat.sh import num_sh_bases, rotate_sh, sh_degree_from_bases

__all__ = ["Gaussians"]


@dataclass
class Gaussians:
    """N 3D gaussians, all tensors on one device with one float dtype.

    Fields (stored parameters, as in 3DGS PLY files):
        means:          [N, 3] centres.
        quats:          [N, 4] rotations, w-first; kept as stored, normalised where used.
        log_scales:     [N, 3] log standard deviations along the gaussian's axes.
        opacity_logits: [N]    logit of opacity.
        sh:             [N, K, 3] spherical-harmonic coefficients, K = (degree + 1)^2 (1, 4, 9 or 16);
                        sh[:, 0] is the DC term (colour = 0.2820948 * sh[:, 0] + 0.5 seen from anywhere
                        for degree 0).
    """

    means: Tensor
    quats: Tensor
    log_scales: Tensor
    opacity_logits: Tensor
    sh: Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0] if self.means.dim() == 2 else -1
        expected = {
            "means": (self.means, (n, 3)),
            "quats": (self.quats, (n, 4)),
            "log_scales": (self.log_scales, (n, 3)),
            "opacity_logits": (self.opacity_logits, (n,)),
        }
        for name, (t, shape) in expected.items():
            if tuple(t.shape) != shape:
                raise ValueError(f"Gaussians.{name} must have shape {list(shape)} (N={n}), got {list(t.shape)}")
        if self.sh.dim() != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f"Gaussians.sh must have shape [N, K, 3] (N={n}), got {list(self.sh.shape)}")
        sh_degree_from_bases(self.sh.shape[1])  # raises ValueError for K not in 1, 4, 9, 16
        devices = {t.device for t in self._tensors()}
        if len(devices) != 1:
            raise ValueError(f"Gaussians tensors must share one device, got {sorted(map(str, devices))}")

    # ------------------------------------------------------------------ properties
    def _tensors(self) -> tuple[Tensor, ...]:
        return (self.means, self.quats, self.log_scales, self.opacity_logits, self.sh)

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def num_gaussians(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def scales(self) -> Tensor:
        """[N, 3] standard deviations (exp of log_scales)."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:
        """[N] opacities in (0, 1) (sigmoid of the logits)."""
        return torch.sigmoid(self.opacity_logits)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_activated(
        cls, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor | None = None,
        sh: Tensor | None = None,
    ) -> Gaussians:
        """Build from activated values: scales [N,3] > 0, opacities [N] in (0,1), and either
        colors [N,3] in [0,1] (degree-0 SH) or sh [N,K,3]."""
        if (colors is None) == (sh is None):
            raise ValueError("pass exactly one of colors [N,3] or sh [N,K,3]")
        if sh is None:
            sh = ((colors - 0.5) / 0.28209479177387814)[:, None, :]
        eps = torch.finfo(opacities.dtype).eps
        op = opacities.clamp(eps, 1 - eps)
        return cls(means, quats, scales.log(), torch.log(op) - torch.log1p(-op), sh)

    @staticmethod
    def concat(parts: Sequence[Gaussians]) -> Gaussians:
        """Concatenate gaussian sets; SH are zero-padded to the highest degree among the parts."""
        if len(parts) == 0:
            raise ValueError("Gaussians.concat needs at least one Gaussians")
        k = max(p.sh.shape[1] for p in parts)
        shs = [torch.nn.functional.pad(p.sh, (0, 0, 0, k - p.sh.shape[1])) for p in parts]
        return Gaussians(
            torch.cat([p.means for p in parts]),
            torch.cat([p.quats for p in parts]),
            torch.cat([p.log_scales for p in parts]),
            torch.cat([p.opacity_logits for p in parts]),
            torch.cat(shs),
        )

    @classmethod
    def empty(cls, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Gaussians:
        z = lambda *s: torch.zeros(s, device=device, dtype=dtype)  # noqa: E731
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, 1, 3))

    # ------------------------------------------------------------------ moves and selections
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Gaussians:
        return Gaussians(*(t.to(device=device, dtype=dtype) for t in self._tensors()))

    def subset(self, index: Tensor | slice) -> Gaussians:
        """Select gaussians by a bool mask [N], an index tensor [M] or a slice."""
        return Gaussians(*(t[index] for t in self._tensors()))

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Truncate or zero-pad the SH coefficients to `degree` (0..3)."""
        k = num_sh_bases(degree)
        sh = self.sh[:, :k]
        if sh.shape[1] < k:
            sh = torch.nn.functional.pad(sh, (0, 0, 0, k - sh.shape[1]))
        return Gaussians(self.means, self.quats, self.log_scales, self.opacity_logits, sh)

    def transform(self, rotation: Tensor, translation: Tensor | None = None, scale: float = 1.0) -> Gaussians:
        """Apply x -> scale * R x + t to the whole set (a similarity transform).

        rotation: [4] quaternion (wxyz) or [3, 3] matrix; translation: [3] (default 0); scale: > 0.
        Means, orientations, sizes and the view-dependent colour (SH coefficients are rotated) all follow.
        """
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"scale must be a positive finite number, got {scale}")
        rotation = torch.as_tensor(rotation, dtype=self.dtype, device=self.device)
        if rotation.shape == (4,):
            q = quat_normalize(rotation)
            R = quat_to_rotmat(q)
        elif rotation.shape == (3, 3):
            R = rotation
            q = rotmat_to_quat(R)
        else:
            raise ValueError(f"rotation must be a [4] quaternion (wxyz) or a [3,3] matrix, got {list(rotation.shape)}")
        t = torch.zeros(3, dtype=self.dtype, device=self.device) if translation is None else torch.as_tensor(
            translation, dtype=self.dtype, device=self.device)
        if t.shape != (3,):
            raise ValueError(f"translation must have shape [3], got {list(t.shape)}")
        means = scale * self.means @ R.T + t
        quats = quat_multiply(q.expand_as(self.quats), self.quats)
        log_scales = self.log_scales + math.log(scale)
        return Gaussians(means, quats, log_scales, self.opacity_logits, rotate_sh(self.sh, R))
