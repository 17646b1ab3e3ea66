"""PLY IO: exact round trips, gsplat's exporter, malformed files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsenv.splat.gaussians import Gaussians
from gsenv.splat.ply import PlyError, load_ply, save_ply


def random_gaussians(n: int, degree: int, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return Gaussians(r(n, 3), r(n, 4), r(n, 3) - 3, r(n), r(n, (degree + 1) ** 2, 3))


def assert_same(a: Gaussians, b: Gaussians) -> None:
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("ascii", [False, True])
def test_round_trip_exact(tmp_path, degree, ascii):
    g = random_gaussians(50, degree, seed=degree)
    path = tmp_path / "g.ply"
    save_ply(g, path, ascii=ascii)
    back = load_ply(path)
    assert back.sh_degree == degree
    assert_same(g, back)
    head = path.read_bytes()[:200]
    assert (b"format ascii" in head) == ascii


def test_channel_major_f_rest_order(tmp_path):
    """f_rest_{c*M+k} is coefficient k+1 of channel c (the order upstream got wrong)."""
    from plyfile import PlyData

    g = random_gaussians(4, 1)
    path = tmp_path / "g.ply"
    save_ply(g, path)
    v = PlyData.read(str(path))["vertex"].data
    # M = 3 for degree 1: f_rest_3 is green's first higher-order coefficient = sh[:, 1, 1]
    np.testing.assert_array_equal(v["f_rest_3"], g.sh[:, 1, 1].numpy())
    np.testing.assert_array_equal(v["f_rest_2"], g.sh[:, 3, 0].numpy())
    np.testing.assert_array_equal(v["f_rest_8"], g.sh[:, 3, 2].numpy())


@pytest.mark.parametrize("degree", [0, 3])
def test_gsplat_exporter_file_loads_identically(tmp_path, degree):
    export_splats = pytest.importorskip("gsplat.exporter", reason="gsplat < 1.5 has no exporter").export_splats

    g = random_gaussians(30, degree, seed=7)
    path = tmp_path / "exported.ply"
    shn = g.sh[:, 1:] if degree else torch.zeros(30, 0, 3)
    export_splats(g.means, g.log_scales, g.quats, g.opacity_logits, g.sh[:, :1], shn, format="ply", save_to=str(path))
    back = load_ply(path)
    assert back.sh_degree == degree
    assert_same(g, back)


def _write_ply(path, fields: dict[str, np.ndarray], ascii: bool = False) -> None:
    from plyfile import PlyData, PlyElement

    n = len(next(iter(fields.values())))
    data = np.empty(n, dtype=[(k, "<f4") for k in fields])
    for k, a in fields.items():
        data[k] = a
    PlyData([PlyElement.describe(data, "vertex")], text=ascii).write(str(path))


def _valid_fields(n: int = 3, n_rest: int = 0) -> dict[str, np.ndarray]:
    f = {k: np.full(n, 0.1, np.float32) for k in ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"]}
    f.update({f"f_rest_{i}": np.zeros(n, np.float32) for i in range(n_rest)})
    f.update({k: np.zeros(n, np.float32) for k in ["opacity", "scale_0", "scale_1", "scale_2"]})
    f.update({"rot_0": np.ones(n, np.float32), "rot_1": np.zeros(n, np.float32), "rot_2": np.zeros(n, np.float32),
              "rot_3": np.zeros(n, np.float32)})
    return f


def test_valid_minimal_file_without_normals_loads(tmp_path):
    p = tmp_path / "ok.ply"
    _write_ply(p, _valid_fields(), ascii=True)
    g = load_ply(p)
    assert g.num_gaussians == 3 and g.sh_degree == 0
    assert torch.allclose(g.means, torch.full((3, 3), 0.1))


def _case(tmp_path, name):
    p = tmp_path / f"{name}.ply"
    if name == "empty":
        p.write_bytes(b"")
    elif name == "not_ply":
        p.write_bytes(b"\x89PNG\r\n\x1a\n not a ply")
    elif name == "truncated":
        _write_ply(p, _valid_fields(100))
        p.write_bytes(p.read_bytes()[:400])
    elif name == "missing_field":
        f = _valid_fields()
        del f["scale_1"]
        _write_ply(p, f)
    elif name == "bad_rest_count":
        _write_ply(p, _valid_fields(n_rest=10))
    elif name == "nan":
        f = _valid_fields()
        f["y"][1] = np.nan
        _write_ply(p, f)
    elif name == "inf":
        f = _valid_fields()
        f["opacity"][2] = np.inf
        _write_ply(p, f)
    elif name == "zero_quat":
        f = _valid_fields()
        f["rot_0"][0] = 0.0
        _write_ply(p, f)
    elif name == "no_vertices":
        _write_ply(p, {k: a[:0] for k, a in _valid_fields().items()})
    return p


@pytest.mark.parametrize(
    "name, words",
    [
        ("empty", "empty file"),
        ("not_ply", "not a PLY"),
        ("truncated", "unreadable PLY"),
        ("missing_field", "missing vertex fields ['scale_1']"),
        ("bad_rest_count", "10 f_rest_* fields is no SH degree"),
        ("nan", "1 gaussian(s) have NaN or inf in position"),
        ("inf", "1 gaussian(s) have NaN or inf in opacity"),
        ("zero_quat", "1 gaussian(s) have a zero-norm rotation"),
        ("no_vertices", "0 gaussians"),
    ],
)
def test_malformed_files_raise_ply_error(tmp_path, name, words):
    p = _case(tmp_path, name)
    with pytest.raises(PlyError) as info:
        load_ply(p)
    msg = str(info.value)
    assert str(p) in msg and words in msg
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(PlyError, match="file not found"):
        load_ply(tmp_path / "nope.ply")


def test_gaussians_ops():
    g = random_gaussians(10, 1)
    h = random_gaussians(5, 0, seed=1)
    both = Gaussians.concat([g, h])
    assert both.num_gaussians == 15 and both.sh_degree == 1
    assert torch.equal(both.sh[10:, 0], h.sh[:, 0]) and torch.all(both.sh[10:, 1:] == 0)
    sub = both.subset(torch.tensor([0, 12]))
    assert torch.equal(sub.means, torch.stack([g.means[0], h.means[2]]))
    assert both.to(dtype=torch.float64).dtype == torch.float64
    assert torch.allclose(g.opacities, torch.sigmoid(g.opacity_logits))
    with pytest.raises(ValueError, match="sh must have shape"):
        Gaussians(g.means, g.quats, g.log_scales, g.opacity_logits, g.sh[:, :, :2])
    with pytest.raises(ValueError, match="1, 4, 9 or 16"):
        Gaussians(g.means, g.quats, g.log_scales, g.opacity_logits, torch.zeros(10, 5, 3))


def test_from_activated_colour():
    c = torch.tensor([[0.2, 0.5, 0.9]])
    g = Gaussians.from_activated(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1),
                                 torch.tensor([0.7]), colors=c)
    from gsenv.splat.sh import eval_sh

    assert torch.allclose(eval_sh(g.sh, torch.tensor([[0.0, 0, 1]])), c, atol=1e-6)
    assert torch.allclose(g.opacities, torch.tensor([0.7])) and torch.allclose(g.scales, torch.full((1, 3), 0.1))


def test_transform_similarity():
    """Means, orientation, size and view-dependent colour all follow a similarity transform."""
    from gsenv.geometry import quat_to_rotmat
    from gsenv.splat.sh import eval_sh

    g = random_gaussians(20, 3, seed=3).to(dtype=torch.float64)
    q = torch.tensor([0.3, -0.5, 0.7, 0.2], dtype=torch.float64)
    q = q / q.norm()
    R = quat_to_rotmat(q)
    t = torch.tensor([0.1, -2.0, 0.5], dtype=torch.float64)
    h = g.transform(q, t, scale=2.0)
    assert torch.allclose(h.means, 2.0 * g.means @ R.T + t)
    assert torch.allclose(h.log_scales, g.log_scales + math.log(2.0))
    # covariance rotates: R_h S R_h^T == R (R_g S R_g^T) R^T
    Rg, Rh = quat_to_rotmat(g.quats), quat_to_rotmat(h.quats)
    S = torch.diag_embed(g.scales**2)
    assert torch.allclose(Rh @ S @ Rh.transpose(-1, -2), R @ Rg @ S @ Rg.transpose(-1, -2) @ R.T, atol=1e-10)
    # colour seen along R d after the transform == colour seen along d before
    d = torch.nn.functional.normalize(torch.randn(20, 3, dtype=torch.float64), dim=-1)
    assert torch.allclose(eval_sh(h.sh, d @ R.T), eval_sh(g.sh, d), atol=1e-9)
    # the matrix form gives the same result
    h2 = g.transform(R, t, scale=2.0)
    assert torch.allclose(h2.sh, h.sh, atol=1e-9) and torch.allclose(h2.means, h.means)
    with pytest.raises(ValueError, match="rotation must be"):
        g.transform(torch.zeros(3))
