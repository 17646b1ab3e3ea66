"""Turn mesh surfaces into flat, oriented, coloured gaussians (how the default scene is made).

Each sample is a surface point; its gaussian lies in the surface (two tangent axes of the sample
spacing, a thin axis along the face normal), with the colour of the mesh's material, vertex colours
or texture at that point. Sampling is area-weighted and seeded: the same mesh, count and seed give
the same gaussians bit for bit.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from gsenv.splat.gaussians import Gaussians

# Tangent std as a fraction of the mean sample spacing: neighbours overlap so surfaces look closed.
TANGENT_STD_FRACTION = 0.6
# Thin axis along the normal, relative to the tangent std.
NORMAL_STD_FRACTION = 0.1
DEFAULT_OPACITY = 0.97


def _normal_to_quat(normals: np.ndarray, spin: np.ndarray) -> np.ndarray:
    """[N,3] unit normals, [N] in-plane angles -> [N,4] wxyz quats rotating +z onto the normal."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, normals)
    s = np.linalg.norm(axis, axis=1)
    c = normals @ z
    angle = np.arctan2(s, c)
    safe = s > 1e-9
    axis[safe] /= s[safe, None]
    axis[~safe] = np.array([1.0, 0.0, 0.0])  # normal is +z or -z: any axis perpendicular to z
    q_align = np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axis], axis=1)
    q_spin = np.stack([np.cos(spin / 2), np.zeros_like(spin), np.zeros_like(spin), np.sin(spin / 2)], axis=1)
    # q_align * q_spin: spin about the local z (the normal) first, then align
    w1, x1, y1, z1 = q_align.T
    w2, x2, y2, z2 = q_spin.T
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=1)


def surface_colors(mesh, points: np.ndarray, face_index: np.ndarray) -> np.ndarray:
    """[N,3] RGB in [0,1] of a trimesh mesh at surface points: texture, vertex colours or material."""
    import trimesh

    visual = mesh.visual
    if isinstance(visual, trimesh.visual.texture.TextureVisuals):
        material = visual.material
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        factor = getattr(material, "baseColorFactor", None)
        if factor is None:
            factor = getattr(material, "main_color", None)
        base = np.ones(3) if factor is None else np.asarray(factor, dtype=np.float64)[:3] / 255.0
        if image is not None and visual.uv is not None and len(visual.uv) == len(mesh.vertices):
            bary = trimesh.triangles.points_to_barycentric(mesh.triangles[face_index], points)
            uv = np.einsum("nk,nkj->nj", bary, visual.uv[mesh.faces[face_index]])
            tex = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
            h, w = tex.shape[:2]
            px = np.clip((uv[:, 0] % 1.0) * (w - 1), 0, w - 1).round().astype(int)
            py = np.clip((1.0 - uv[:, 1] % 1.0) * (h - 1), 0, h - 1).round().astype(int)
            return tex[py, px] * base
        return np.broadcast_to(base, (len(points), 3)).copy()
    if isinstance(visual, trimesh.visual.color.ColorVisuals) and visual.kind in ("vertex", "face"):
        if visual.kind == "face":
            return visual.face_colors[face_index, :3] / 255.0
        bary = trimesh.triangles.points_to_barycentric(mesh.triangles[face_index], points)
        vc = visual.vertex_colors[:, :3].astype(np.float64) / 255.0
        return np.einsum("nk,nkj->nj", bary, vc[mesh.faces[face_index]])
    return np.full((len(points), 3), 0.7)


def sample_surface(
    mesh,
    count: int,
    seed: int,
    color_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    opacity: float = DEFAULT_OPACITY,
) -> Gaussians:
    """Area-weighted surface samples of a trimesh mesh -> `count` flat gaussians in the mesh's frame.

    Args:
        mesh: trimesh.Trimesh (its own frame; its visual supplies colours unless color_fn is given).
        count: number of gaussians N (>= 1).
        seed: sampling seed (deterministic output).
        color_fn: optional (points [N,3], face_index [N]) -> RGB [N,3] in [0,1], e.g. a procedural texture.
    Returns:
        Gaussians with means [N,3], degree-0 colour.
    """
    import trimesh

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if mesh.area <= 0:
        raise ValueError("mesh has no surface area")
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    rng = np.random.default_rng(seed + 1)
    normals = mesh.face_normals[face_index]
    spacing = math.sqrt(mesh.area / count)
    tangent = TANGENT_STD_FRACTION * spacing
    scales = np.tile([tangent, tangent, NORMAL_STD_FRACTION * tangent], (count, 1))
    quats = _normal_to_quat(normals, rng.uniform(0, 2 * np.pi, size=count))
    colors = color_fn(points, face_index) if color_fn is not None else surface_colors(mesh, points, face_index)
    f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return Gaussians.from_activated(f32(points), f32(quats), f32(scales),
                                    torch.full((count,), opacity, dtype=torch.float32),
                                    colors=f32(np.clip(colors, 0.0, 1.0)))


def merge_meshes(scene_or_mesh) -> list:
    """A trimesh Scene or Trimesh -> list of Trimesh in the file's root frame (node transforms applied),
    each keeping its own visual (material)."""
    import trimesh

    if isinstance(scene_or_mesh, trimesh.Trimesh):
        return [scene_or_mesh]
    meshes = []
    for node in scene_or_mesh.graph.nodes_geometry:
        transform, geometry_name = scene_or_mesh.graph[node]
        mesh = scene_or_mesh.geometry[geometry_name].copy()
        mesh.apply_transform(transform)
        meshes.append(mesh)
    return meshes


def sample_meshes(meshes: list, count: int, seed: int) -> Gaussians:
    """Split `count` samples over several meshes by area and concatenate the gaussians."""
    areas = np.array([m.area for m in meshes], dtype=np.float64)
    if areas.sum() <= 0:
        raise ValueError("meshes have no surface area")
    counts = np.floor(areas / areas.sum() * count).astype(int)
    counts[np.argmax(areas)] += count - counts.sum()
    parts = [sample_surface(m, int(n), seed + 7919 * i) for i, (m, n) in enumerate(zip(meshes, counts)) if n > 0]
    return Gaussians.concat(parts)
