"""Read and write gaussians in the standard 3DGS PLY layout (reference 3DGS code, nerfstudio, gsplat).

One `vertex` element with float properties:
    x y z, optional nx ny nz, f_dc_0..2, f_rest_0..f_rest_{3M-1}, opacity, scale_0..2, rot_0..3
f_rest is stored channel-major (all of red's higher-order coefficients, then green's, then blue's), so
f_rest_{c*M + k} is coefficient k+1 of channel c; M = (degree+1)^2 - 1, degree 0..3. Scales are log
standard deviations, opacity is a logit, rot is a quaternion w-first.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from gsenv.splat.gaussians import Gaussians

__all__ = ["PlyError", "load_ply", "save_ply"]

logger = logging.getLogger(__name__)

_REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
_REST_COUNT_TO_DEGREE = {0: 0, 9: 1, 24: 2, 45: 3}


class PlyError(ValueError):
    """A file is not a usable 3DGS PLY. The message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def load_ply(path: str | os.PathLike, device: torch.device | str = "cpu") -> Gaussians:
    """Load a 3DGS PLY (binary or ASCII) into `Gaussians` (float32) on `device`.

    Raises PlyError (a ValueError) for a missing, empty or non-PLY file, missing fields, an f_rest
    count that is no SH degree (0, 9, 24 or 45 values), NaN/inf values, or zero-norm quaternions.
    """
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise PlyError(path, "file not found")
    if path.stat().st_size == 0:
        raise PlyError(path, "empty file (0 bytes)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:3] != b"ply":
        raise PlyError(path, f"not a PLY file (starts with {magic!r}, expected b'ply')")
    try:
        ply = PlyData.read(str(path))
    except Exception as e:  # plyfile raises several types for broken headers / truncated data
        raise PlyError(path, f"unreadable PLY ({type(e).__name__}: {e})") from e

    names = [el.name for el in ply.elements]
    if "vertex" not in names:
        raise PlyError(path, f"no 'vertex' element (elements: {names}); expected the 3DGS layout")
    v = ply["vertex"].data
    if len(v) == 0:
        raise PlyError(path, "the 'vertex' element holds 0 gaussians")
    fields = set(v.dtype.names or ())
    missing = [n for n in _REQUIRED if n not in fields]
    if missing:
        raise PlyError(path, f"missing vertex fields {missing} (3DGS layout needs {_REQUIRED})")
    rest_names = sorted((n for n in fields if n.startswith("f_rest_")),
                        key=lambda n: int(n[7:]) if n[7:].isdigit() else -1)
    n_rest = len(rest_names)
    if n_rest not in _REST_COUNT_TO_DEGREE:
        raise PlyError(path, f"{n_rest} f_rest_* fields is no SH degree (expected 0, 9, 24 or 45 for degree 0..3)")
    if rest_names != [f"f_rest_{i}" for i in range(n_rest)]:
        raise PlyError(path, f"f_rest_* fields must be numbered f_rest_0..f_rest_{n_rest - 1}, got {rest_names}")

    def col(names: list[str]) -> np.ndarray:
        return np.stack([np.asarray(v[n], dtype=np.float32) for n in names], axis=-1)

    arrays = {
        "position (x y z)": col(["x", "y", "z"]),
        "colour (f_dc_*)": col(["f_dc_0", "f_dc_1", "f_dc_2"]),
        "colour (f_rest_*)": col(rest_names) if n_rest else np.zeros((len(v), 0), np.float32),
        "opacity": np.asarray(v["opacity"], dtype=np.float32),
        "scale (scale_*)": col(["scale_0", "scale_1", "scale_2"]),
        "rotation (rot_*)": col(["rot_0", "rot_1", "rot_2", "rot_3"]),
    }
    for what, a in arrays.items():
        bad = ~np.isfinite(a)
        if bad.any():
            rows = int(bad.reshape(len(a), -1).any(axis=1).sum())
            raise PlyError(path, f"{rows} gaussian(s) have NaN or inf in {what}")
    rot = arrays["rotation (rot_*)"]
    zero = np.linalg.norm(rot.astype(np.float64), axis=1) == 0
    if zero.any():
        raise PlyError(path, f"{int(zero.sum())} gaussian(s) have a zero-norm rotation quaternion (rot_0..3)")

    n = len(v)
    m = n_rest // 3
    sh = np.empty((n, 1 + m, 3), dtype=np.float32)
    sh[:, 0, :] = arrays["colour (f_dc_*)"]
    if m:
        sh[:, 1:, :] = arrays["colour (f_rest_*)"].reshape(n, 3, m).transpose(0, 2, 1)  # channel-major
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    g = Gaussians(t(arrays["position (x y z)"]), t(rot), t(arrays["scale (scale_*)"]), t(arrays["opacity"]), t(sh))
    logger.debug("loaded %d gaussians (SH degree %d) from %s", n, g.sh_degree, path)
    return g


def save_ply(gaussians: Gaussians, path: str | os.PathLike, ascii: bool = False) -> None:
    """Write `gaussians` as a 3DGS PLY (float32; normals written as zeros). Binary little-endian by
    default, ASCII with ascii=True. load_ply(save_ply(g)) returns g's float32 values exactly."""
    from plyfile import PlyData, PlyElement

    g = gaussians.to(device="cpu")
    n = g.num_gaussians
    m = g.sh.shape[1] - 1
    rest = g.sh[:, 1:, :].permute(0, 2, 1).reshape(n, 3 * m)  # channel-major
    cols = (
        [("x", g.means[:, 0]), ("y", g.means[:, 1]), ("z", g.means[:, 2])]
        + [(f"n{a}", torch.zeros(n)) for a in "xyz"]
        + [(f"f_dc_{i}", g.sh[:, 0, i]) for i in range(3)]
        + [(f"f_rest_{i}", rest[:, i]) for i in range(3 * m)]
        + [("opacity", g.opacity_logits)]
        + [(f"scale_{i}", g.log_scales[:, i]) for i in range(3)]
        + [(f"rot_{i}", g.quats[:, i]) for i in range(4)]
    )
    data = np.empty(n, dtype=[(name, "<f4") for name, _ in cols])
    for name, c in cols:
        data[name] = c.detach().to(torch.float32).numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    PlyData([PlyElement.describe(data, "vertex")], text=ascii).write(str(path))
