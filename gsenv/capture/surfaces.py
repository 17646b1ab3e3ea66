"""Dense surface samples of the bodies (robot links posed at a joint configuration, object meshes):
the model that the capture is registered against and segmented by.

Samples are area-weighted points (plus one at every face's centroid, so that every face has one)
with their faces' normals and the index of their face; the faces themselves are kept, so that
distances to the surface can be computed exactly on the faces near a point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_SPACING = 0.0025
"""Mean distance between surface samples (m): fine enough that a surface point's nearest samples
lie on its own face or the faces around it."""


@dataclass
class Surface:
    """Surface samples of several bodies in one frame.

    points [M, 3], normals [M, 3] (unit), face [M] (index into triangles), body [M] (index into
    names); triangles [F, 3, 3], spacing (m).
    """

    points: np.ndarray
    normals: np.ndarray
    face: np.ndarray
    body: np.ndarray
    triangles: np.ndarray
    names: list[str]
    spacing: float

    def __len__(self) -> int:
        return len(self.points)

    def transformed(self, T: np.ndarray) -> Surface:
        """The surface moved by a rigid [4, 4] transform."""
        R, t = T[:3, :3], T[:3, 3]
        return Surface(self.points @ R.T + t, self.normals @ R.T, self.face, self.body, self.triangles @ R.T + t,
                       self.names, self.spacing)

    @staticmethod
    def concat(parts: list[Surface]) -> Surface:
        names: list[str] = []
        pts, nrm, face, body, tris = [], [], [], [], []
        nf = 0
        for p in parts:
            pts.append(p.points)
            nrm.append(p.normals)
            face.append(p.face + nf)
            body.append(p.body + len(names))
            tris.append(p.triangles)
            nf += len(p.triangles)
            names += p.names
        return Surface(np.concatenate(pts), np.concatenate(nrm), np.concatenate(face), np.concatenate(body),
                       np.concatenate(tris), names, min(p.spacing for p in parts))


def sample_mesh_list(meshes: list, spacing: float, seed: int, name: str = "body") -> Surface:
    """One body's surface from trimesh meshes: ~area / spacing^2 area-weighted samples + face centroids."""
    import trimesh

    pts, nrm, face, tris = [], [], [], []
    nf = 0
    for i, mesh in enumerate(meshes):
        if mesh.area <= 0:
            continue
        n = max(4, int(math.ceil(mesh.area / spacing ** 2)))
        p, f = trimesh.sample.sample_surface(mesh, n, seed=seed + 7919 * i)
        f = np.concatenate([np.asarray(f), np.arange(len(mesh.faces))])
        p = np.concatenate([np.asarray(p, np.float64), np.asarray(mesh.triangles_center, np.float64)])
        pts.append(p)
        nrm.append(np.asarray(mesh.face_normals, np.float64)[f])
        face.append(f + nf)
        tris.append(np.asarray(mesh.triangles, np.float64))
        nf += len(mesh.faces)
    if not pts:
        raise ValueError(f"{name}: the meshes have no surface area")
    n = sum(len(p) for p in pts)
    return Surface(np.concatenate(pts), np.concatenate(nrm), np.concatenate(face), np.zeros(n, int),
                   np.concatenate(tris), [name], spacing)


def robot_surface(urdf: Path, joint_config: dict[str, float], spacing: float = DEFAULT_SPACING,
                  seed: int = 0) -> Surface:
    """Every link's visual meshes, posed by forward kinematics at joint_config, in the robot-base
    (URDF root) frame."""
    from gsenv.scene_build.default import link_visual_meshes
    from gsenv.scene_build.rlinf_dataset import link_world_transforms

    meshes = link_visual_meshes(Path(urdf))
    fk = link_world_transforms(Path(urdf), joint_config)
    return Surface.concat([sample_mesh_list(ms, spacing, seed + 101 * i, link).transformed(fk[link])
                           for i, (link, ms) in enumerate(sorted(meshes.items()))])


def mesh_surface(name: str, mesh, spacing: float = DEFAULT_SPACING, seed: int = 0) -> Surface:
    """One body's trimesh mesh in the mesh's own frame."""
    return sample_mesh_list([mesh], spacing, seed, name)


def point_triangle_distance(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Exact distances of points p [..., 3] to triangles tri [..., 3, 3] (broadcast): [...]."""
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_in, w_in = vb / denom, vc / denom
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    e = lambda t: np.nan_to_num(t, nan=0.0)[..., None]  # noqa: E731
    # Ericson's regions: vertices, edges, interior (in this order of precedence)
    q = a + e(v_in) * ab + e(w_in) * ac
    q = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[..., None], b + e(t_bc) * (c - b), q)
    q = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[..., None], a + e(t_ac) * ac, q)
    q = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, q)
    q = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[..., None], a + e(t_ab) * ab, q)
    q = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, q)
    q = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, q)
    return np.linalg.norm(p - q, axis=-1)
