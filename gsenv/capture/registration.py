"""ICP with scale: refine a similarity that maps capture points onto a model's surface samples.

Point-to-plane Gauss-Newton steps (each scene point against the plane of its nearest model sample)
with the scale as a seventh unknown, trimmed by a distance that starts at `max_distance` and
shrinks to a few times the robust spread of the residuals, so points of other bodies and the
background drop out as the fit tightens.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsenv.scene.bundle import Similarity

# The trimming distance shrinks to this many robust sigmas of the residuals (never below min_distance).
_TRIM_SIGMAS = 4.0
# ... and by at most this factor per iteration, so the fit can still slide while it shrinks.
_TRIM_DECAY = 0.8


@dataclass
class IcpResult:
    similarity: Similarity
    """source -> target frame."""
    inliers: np.ndarray
    """[N] bool: source points within the final trimming distance of the model."""
    residuals: np.ndarray
    """[K] point-to-plane distances (target units) of the inliers."""
    trim_distance: float
    iterations: int

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(self.residuals ** 2))) if len(self.residuals) else float("inf")

    @property
    def sigma(self) -> float:
        """Robust spread (1.4826 x median absolute residual)."""
        return float(1.4826 * np.median(np.abs(self.residuals))) if len(self.residuals) else float("inf")


def _rodrigues(w: np.ndarray) -> np.ndarray:
    th = float(np.linalg.norm(w))
    if th < 1e-15:
        return np.eye(3)
    k = w / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def icp_similarity(source: np.ndarray, init: Similarity, target_points: np.ndarray, target_normals: np.ndarray,
                   max_distance: float, min_distance: float = 0.0003, with_scale: bool = True,
                   iterations: int = 100, tree=None, search_radius: float = 0.01) -> IcpResult:
    """Refine `init` (source -> target) so the source points lie on the target's surface.

    Args:
        source: [N, 3] points (e.g. gaussian means of the capture).
        init: initial similarity, within about max_distance of the answer.
        target_points, target_normals: [M, 3] surface samples and their unit normals (target frame).
        max_distance: initial trimming distance (target units); pairs farther apart are ignored.
        min_distance: the trimming distance (on the point-to-plane residual) never shrinks below this.
        search_radius: nearest samples are looked for within max(trim, search_radius) (a few sample
            spacings: a point on the surface may lie that far from its nearest sample).
        with_scale: also fit the scale (False: the rigid part only).
        tree: a scipy cKDTree of target_points, to reuse one.
    Returns:
        IcpResult (the similarity, the inlier mask, the inliers' residuals).
    Raises:
        ValueError: fewer than 10 source points come within max_distance of the model.
    """
    from scipy.spatial import cKDTree

    src = np.asarray(source, np.float64)
    tree = tree or cKDTree(target_points)
    s, R, t = float(init.scale), np.asarray(init.rotation, np.float64), np.asarray(init.translation, np.float64)
    trim = float(max_distance)
    it = 0
    def pairs(s, R, t, trim):
        y = s * src @ R.T + t
        d, j = tree.query(y, distance_upper_bound=max(trim, search_radius))
        ok = np.isfinite(d)
        r = np.full(len(y), np.inf)
        r[ok] = np.einsum("ij,ij->i", target_normals[j[ok]], y[ok] - target_points[j[ok]])
        return y, j, ok & (np.abs(r) <= trim), r

    for it in range(1, iterations + 1):  # noqa: B007 (it: the count reported)
        y, j, ok, r_all = pairs(s, R, t, trim)
        if ok.sum() < 10:
            raise ValueError(f"only {int(ok.sum())} capture points lie within {max_distance * 1000:.0f} mm of the "
                             "model: the initial guess is too far off (check the point pairs)")
        yi, n, r = y[ok], target_normals[j[ok]], r_all[ok]
        sigma = max(1.4826 * np.median(np.abs(r)), 1e-9)
        # Cauchy weights, no narrower than the trimming distance: a minority of points that still
        # disagree (a plate's rim while its floor already fits) keeps pulling
        w = 1.0 / (1.0 + (r / max(2.0 * sigma, trim / 3.0)) ** 2)
        c = yi.mean(0)
        yc = yi - c
        cols = [np.cross(yc, n), n]
        if with_scale:
            cols.insert(0, np.einsum("ij,ij->i", n, yc)[:, None])
        J = np.concatenate(cols, 1)
        sw = np.sqrt(w)
        A = J * sw[:, None]
        delta = np.linalg.lstsq(A.T @ A + 1e-12 * np.eye(J.shape[1]), -(A.T @ (r * sw)), rcond=None)[0]
        ds = delta[0] if with_scale else 0.0
        rot = delta[1:4] if with_scale else delta[0:3]
        dt = delta[-3:]
        Rw = _rodrigues(rot)
        # new(x) = c + (1 + ds) Rw (s R x + t - c) + dt
        s, R, t = s * (1 + ds), Rw @ R, (1 + ds) * Rw @ (t - c) + c + dt
        trim = min(trim, max(min_distance, _TRIM_SIGMAS * sigma, _TRIM_DECAY * trim))
        step = abs(ds) + np.linalg.norm(rot) + np.linalg.norm(dt) / max(np.linalg.norm(yc, axis=1).mean(), 1e-9)
        if step < 1e-8 and trim <= min_distance * 1.0001:
            break
    # orthonormalise R against drift
    U, _, Vt = np.linalg.svd(R)
    R = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    _, _, ok, r = pairs(s, R, t, trim)
    return IcpResult(Similarity(float(s), R, t), ok, np.abs(r[ok]), float(trim), it)
