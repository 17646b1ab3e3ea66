"""Locate an object in a registered capture: rigid ICP of its mesh against the gaussians near a
given position, from several start yaws (objects stand upright on the table); the start with the
most gaussians on the mesh's surface wins."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gsenv.capture.registration import icp_similarity
from gsenv.capture.surfaces import Surface
from gsenv.scene.bundle import Similarity

START_YAWS = 24
COARSE_ITERATIONS = 10
REFINED_STARTS = 2
# Gaussians within this many object radii (+ SEARCH_MARGIN) of the given position take part.
SEARCH_RADII = 1.5
SEARCH_MARGIN = 0.02  # m


@dataclass
class ObjectFit:
    name: str
    pose: np.ndarray
    """[4, 4] object frame -> robot base."""
    inliers: int
    """Gaussians within the final distance of the mesh's surface."""
    rms: float
    """Point-to-plane residual (m) of those gaussians."""


def locate_object(name: str, surface: Surface, points: np.ndarray, hint: np.ndarray, exclude: np.ndarray | None = None,
                  min_distance: float = 0.0003) -> ObjectFit:
    """Pose of an object in the robot-base frame.

    Args:
        surface: the object's mesh samples in its own frame.
        points: [N, 3] gaussian centres in the robot-base frame.
        hint: [3] a point on or near the object (robot-base frame).
        exclude: [N] bool, gaussians already taken (e.g. by the robot).
    Raises:
        ValueError: no gaussians near the hint.
    """
    from scipy.spatial import cKDTree

    centre = surface.points.mean(0)
    radius = float(np.linalg.norm(surface.points - centre, axis=1).max())
    near = np.linalg.norm(points - hint, axis=1) <= SEARCH_RADII * radius + SEARCH_MARGIN
    if exclude is not None:
        near &= ~exclude
    cand = points[near]
    if len(cand) < 10:
        raise ValueError(f"object {name!r}: only {len(cand)} gaussians lie within "
                         f"{(SEARCH_RADII * radius + SEARCH_MARGIN) * 100:.0f} cm of its given position "
                         f"{np.round(hint, 3).tolist()} (robot base frame): check the position in points.json")
    tree = cKDTree(surface.points)
    starts = []
    for k in range(START_YAWS):
        yaw = 2 * math.pi * k / START_YAWS
        c, s = math.cos(yaw), math.sin(yaw)
        Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        # start: the mesh's centre at the hint, turned by yaw; ICP maps capture -> object frame
        t0 = hint - Rz @ centre
        starts.append(Similarity(1.0, Rz.T, -Rz.T @ t0))

    def fit(init, iterations):
        try:
            res = icp_similarity(cand, init, surface.points, surface.normals, max_distance=max(radius, 0.01),
                                 min_distance=min_distance, with_scale=False, tree=tree, iterations=iterations)
        except ValueError:
            return None
        return (int(res.inliers.sum()), -res.rms), res

    # a short fit from every start, then the best few to convergence
    coarse = sorted((r for r in (fit(s0, COARSE_ITERATIONS) for s0 in starts) if r is not None),
                    key=lambda r: r[0], reverse=True)[:REFINED_STARTS]
    fine = [r for r in (fit(r[1].similarity, 100) for r in coarse) if r is not None]
    best = max(fine, key=lambda r: r[0]) if fine else None
    if best is None:
        raise ValueError(f"object {name!r}: its mesh could not be fitted to the gaussians near "
                         f"{np.round(hint, 3).tolist()}: check the position and the mesh's units (metres)")
    res = best[1]
    S = res.similarity
    T = np.eye(4)
    T[:3, :3] = S.rotation.T
    T[:3, 3] = -S.rotation.T @ S.translation
    return ObjectFit(name, T, int(res.inliers.sum()), res.rms)
