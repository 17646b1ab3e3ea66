"""Least-squares similarity fit (Umeyama 1991): the `splat_to_sim` transform from point pairs.

Pick >= 3 points you can identify both in your splat model (e.g. in a viewer: the robot base's
bolts, the table corners, a marker) and in the simulator's world (the robot base frame), then

    >>> sim = fit_similarity(splat_points, sim_points)      # x_sim = s R x_splat + t
    >>> sim.scale, sim.rotation, sim.translation

and write ``sim.to_json()`` as scene.json's ``splat_to_sim``. With exactly 3 points the fit is
exact but unchecked; use 4 or more spread over the cell so the residuals tell you how good the
picking was (:func:`similarity_residuals`).
"""
from __future__ import annotations

import numpy as np

from gsenv.scene.bundle import Similarity

# Points whose spread (second singular value relative to the first) is below this are collinear.
_COLLINEAR_TOL = 1e-6


def _points(a, label: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{label} must be an [N, 3] array of points, got shape {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{label} contains NaN or inf")
    return arr


def fit_similarity(source, target, with_scale: bool = True) -> Similarity:
    """The similarity (s, R, t) minimising sum_i |target_i - (s R source_i + t)|^2.

    Args:
        source: [N, 3] points in the splat model's frame (N >= 3, not all on one line).
        target: [N, 3] the same points, in the same order, in the simulator's world frame.
        with_scale: fit the scale too (False: a rigid transform, s = 1).
    Returns:
        Similarity with scale s > 0, proper rotation R (det +1) and translation t, so that
        ``Similarity.apply(source) ~= target``.
    Raises:
        ValueError: shapes differ, fewer than 3 pairs, non-finite values, or the source or target
            points are (nearly) collinear, which leaves the rotation about their line undetermined.
    """
    src, dst = _points(source, "source"), _points(target, "target")
    if src.shape != dst.shape:
        raise ValueError(f"source and target must pair up point for point: got {src.shape[0]} source and "
                         f"{dst.shape[0]} target points")
    if src.shape[0] < 3:
        raise ValueError(f"a similarity needs at least 3 point pairs (not all on one line), got {src.shape[0]}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    for label, x in (("source", xs), ("target", xd)):
        sv = np.linalg.svd(x, compute_uv=False)
        if sv[0] <= 0 or sv[1] / sv[0] < _COLLINEAR_TOL:
            raise ValueError(f"the {label} points are (nearly) collinear or coincide: pick at least 3 points "
                             "that span a plane (better: 4+ spread over the cell)")
    n = src.shape[0]
    cov = xd.T @ xs / n  # [3, 3]
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    var_s = (xs ** 2).sum() / n
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return Similarity(scale=s, rotation=R, translation=t)


def similarity_residuals(similarity: Similarity, source, target) -> np.ndarray:
    """[N] distances |target_i - similarity(source_i)| (in the target's units, metres)."""
    src, dst = _points(source, "source"), _points(target, "target")
    if src.shape != dst.shape:
        raise ValueError(f"source and target must have the same shape, got {src.shape} and {dst.shape}")
    return np.linalg.norm(similarity.apply(src) - dst, axis=1)
