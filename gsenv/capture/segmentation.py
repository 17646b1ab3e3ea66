"""Segmentation of a registered capture: each gaussian to the body whose posed surface is nearest,
within a distance that follows the gaussian's size; isolated gaussians are floaters; the rest is
background.

A gaussian belongs to a body when its centre lies within tol + size_factor * sigma_min of the body's
surface (sigma_min: its smallest standard deviation, in model units: a flat gaussian on a surface
has its thin axis along the normal). tol follows the registration's residuals. A gaussian within
reach of two bodies goes to the nearer one and is counted as ambiguous; one that lies on two
bodies' surfaces at once (within CONTACT of both: faces in contact, which no camera sees) is
dropped with the floaters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsenv.capture.surfaces import Surface

BACKGROUND = -1
FLOATER = -2
# Nearest surface samples looked at per gaussian.
_NEIGHBOURS = 8
# A gaussian whose 8th-nearest neighbour is this many times farther than the median one is a floater.
FLOATER_FACTOR = 10.0
_FLOATER_K = 8
DEFAULT_SIZE_FACTOR = 1.0
CONTACT = 5e-5  # m


@dataclass
class Segmentation:
    labels: np.ndarray
    """[N] int: body index into names, BACKGROUND (-1) or FLOATER (-2)."""
    ambiguous: np.ndarray
    """[N] bool: within reach of a second body too."""
    distance: np.ndarray
    """[N] approximate distance (model units) to the nearest body surface."""
    names: list[str]

    def counts(self) -> dict[str, int]:
        out = {name: int((self.labels == i).sum()) for i, name in enumerate(self.names)}
        out["background"] = int((self.labels == BACKGROUND).sum())
        out["floaters"] = int((self.labels == FLOATER).sum())
        return out

    @property
    def ambiguous_share(self) -> float:
        body = self.labels >= 0
        return float(self.ambiguous[body].mean()) if body.any() else 0.0

    def mask(self, name: str) -> np.ndarray:
        return self.labels == self.names.index(name)


def body_distances(points: np.ndarray, surface: Surface, reach: np.ndarray) -> np.ndarray:
    """[N, NB] distance of each point to each body's surface, exact where it is within reach
    ([N]) and inf for bodies farther than about reach + a few sample spacings.

    First the faces of the point's k nearest samples (exact point-to-triangle distances); a point
    that comes close to a body but not within reach is then checked against every face of that
    body whose centroid lies near enough (the faces of its nearest samples need not include the
    face it lies on)."""
    from scipy.spatial import cKDTree

    from gsenv.capture.surfaces import point_triangle_distance

    n, nb = len(points), len(surface.names)
    out = np.full((n, nb), np.inf)
    near_radius = float(reach.max()) + 2 * surface.spacing  # a surface point has a sample this near
    near = np.zeros(n, bool)
    for body in range(nb):  # per body: its own nearest samples (a neighbour's must not crowd them out)
        own = np.flatnonzero(surface.body == body)
        lo, hi = surface.points[own].min(0) - near_radius, surface.points[own].max(0) + near_radius
        rows = np.flatnonzero(((points >= lo) & (points <= hi)).all(1))
        if len(rows) == 0:
            continue
        k = min(_NEIGHBOURS, len(own))
        dnn, j = cKDTree(surface.points[own]).query(points[rows], k=k, distance_upper_bound=near_radius)
        dnn, j = dnn.reshape(len(rows), k), j.reshape(len(rows), k)
        hit = np.isfinite(dnn[:, 0])
        rows, j = rows[hit], j[hit]
        near[rows] = True
        for c in range(0, len(rows), 20000):  # bounded memory: [chunk, k, 3, 3]
            r, jj = rows[c:c + 20000], j[c:c + 20000]
            valid = jj < len(own)
            faces = surface.face[own[np.where(valid, jj, 0)]]
            d = point_triangle_distance(points[r, None, :], surface.triangles[faces])
            out[r, body] = np.where(valid, d, np.inf).min(1)
    # points near a body but not within reach of any: every nearby face
    unsure = near & ~(out.min(1) <= reach)
    if unsure.any():
        tris = surface.triangles
        centre = tris.mean(1)
        radius = np.linalg.norm(tris - centre[:, None], axis=-1).max(1)
        ftree = cKDTree(centre)
        face_body = np.zeros(len(tris), int)
        face_body[surface.face] = surface.body
        rows = np.flatnonzero(unsure)
        for lo in range(0, len(rows), 256):  # chunks of points; their (point, face) pairs at once
            chunk = rows[lo:lo + 256]
            hits = ftree.query_ball_point(points[chunk], reach[chunk] + radius.max())
            counts = np.fromiter((len(h) for h in hits), int, len(hits))
            if counts.sum() == 0:
                continue
            pr = np.repeat(chunk, counts)
            pf = np.fromiter((f for h in hits for f in h), int, int(counts.sum()))
            keep = np.linalg.norm(centre[pf] - points[pr], axis=1) <= reach[pr] + radius[pf]
            pr, pf = pr[keep], pf[keep]
            if len(pr):
                d = point_triangle_distance(points[pr], tris[pf])
                np.minimum.at(out, (pr, face_body[pf]), d)
    return out


def floaters(points: np.ndarray, factor: float = FLOATER_FACTOR) -> np.ndarray:
    """[N] bool: gaussians far from their neighbours (the 8th-nearest farther than factor x the median)."""
    from scipy.spatial import cKDTree

    if len(points) <= _FLOATER_K:
        return np.zeros(len(points), bool)
    d, _ = cKDTree(points).query(points, k=_FLOATER_K + 1)
    dk = d[:, -1]
    return dk > factor * np.median(dk)


def segment(points: np.ndarray, sigma_min: np.ndarray, surface: Surface, tol: float,
            size_factor: float = DEFAULT_SIZE_FACTOR, floater_points: np.ndarray | None = None) -> Segmentation:
    """Label gaussians by body.

    Args:
        points: [N, 3] gaussian centres in the model frame (robot base).
        sigma_min: [N] each gaussian's smallest standard deviation in model units.
        surface: every body's surface samples, posed, in the model frame.
        tol: the distance allowed on top of the gaussian's size (model units).
        floater_points: [N, 3] the centres in the frame to judge isolation in (default: points).
    """
    reach = tol + size_factor * np.asarray(sigma_min, np.float64)
    per_body = body_distances(points, surface, reach)
    nb = len(surface.names)
    order = np.argsort(per_body, axis=1)
    best = order[:, 0]
    d1 = np.take_along_axis(per_body, order[:, :1], 1)[:, 0]
    d2 = np.take_along_axis(per_body, order[:, 1:2], 1)[:, 0] if nb > 1 else np.full(len(points), np.inf)
    on_body = d1 <= reach
    labels = np.where(on_body, best, BACKGROUND)
    isolated = floaters(points if floater_points is None else floater_points)
    labels[~on_body & isolated] = FLOATER
    ambiguous = on_body & (d2 <= reach)
    labels[on_body & (d2 <= CONTACT)] = FLOATER
    return Segmentation(labels, ambiguous, d1, list(surface.names))
