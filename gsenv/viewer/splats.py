"""Gaussians -> the arrays viser's gaussian-splat node takes (numpy, float32).

viser draws each gaussian with one colour (no view-dependent SH): the degree-0 term, the colour seen
from every direction when the higher SH bands are zero. viser sends covariances as float16, whose
smallest normal number is 6e-5: a surfel 0.1 mm thin (variance 1e-8) would be flushed to zero. So the
arrays are in units of `unit` metres (default 1 cm: variances x 1e4) and the viser node is scaled
by `unit` to put them back in metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gsenv.geometry import quat_normalize, quat_to_rotmat
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.sh import SH_C0


@dataclass
class SplatArrays:
    """N gaussians as viser wants them.

    centers:     float32 [N, 3]
    covariances: float32 [N, 3, 3]  R diag(scale^2) R^T
    rgbs:        float32 [N, 3] in [0, 1]
    opacities:   float32 [N, 1] in [0, 1]
    """

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray

    def __len__(self) -> int:
        return self.centers.shape[0]


SPLAT_UNIT = 0.01  # metres per unit of the arrays sent to viser (see the module docstring)


def splat_arrays(g: Gaussians, unit: float = SPLAT_UNIT) -> SplatArrays:
    """The gaussians of `g` (any device) for viser, in the frame `g` is stored in, lengths in `unit` metres."""
    with torch.no_grad():
        g = g.to("cpu", torch.float32)
        R = quat_to_rotmat(quat_normalize(g.quats))  # [N, 3, 3]
        s2 = (g.scales / unit).square()  # [N, 3]
        cov = (R * s2[:, None, :]) @ R.transpose(1, 2)
        rgb = (SH_C0 * g.sh[:, 0] + 0.5).clamp(0.0, 1.0)
        return SplatArrays((g.means / unit).numpy(), cov.numpy(), rgb.numpy(), g.opacities[:, None].numpy())
