"""gsenv.compat: the tested window (= pyproject's specifiers) and the gsplat shims against the
installed gsplat (1.4.x or 1.5.x), on CPU: gsplat's kernels are replaced by recorders, so what is
checked is that gsenv calls the same kernel with the same arguments as gsplat's own wrapper does."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from gsenv import compat

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_tested_window_is_pyprojects():
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    declared = {m.group(1): m.group(2) for m in (re.match(r"([A-Za-z_]+)(.*)", d) for d in deps)}
    for package in ("numpy", "gymnasium", "mani_skill", "sapien", "gsplat"):
        assert declared[package] == compat.TESTED[package], package


@pytest.mark.parametrize("package, version, inside", [
    ("mani_skill", "3.0.0b20", False), ("mani_skill", "3.0.0b21", True), ("mani_skill", "3.0.0b22", True),
    ("mani_skill", "3.0.1", True), ("mani_skill", "3.0.1.post1", False), ("mani_skill", "3.0.2", False),
    ("gymnasium", "0.29.1", True), ("gymnasium", "1.4.0", True), ("gymnasium", "0.29.0", False),
    ("sapien", "3.0.1", True), ("sapien", "3.0.3", True), ("sapien", "3.0.4", False),
    ("gsplat", "1.4.0", True), ("gsplat", "1.5.3", True), ("gsplat", "1.6.0", False),
    ("numpy", "1.26.4", True), ("numpy", "2.4.6", True), ("numpy", "1.25.2", False),
    ("torch", "2.13.0+cpu", True), ("python", "3.12.1", True), ("python", "3.13.0", False),
])
def test_in_tested_window(package, version, inside):
    assert compat.in_tested_window(package, version) is inside


@pytest.fixture
def kernels(monkeypatch):
    """gsplat's lazy CUDA functions replaced by recorders returning zeros of gsplat's output shapes."""
    import gsplat.cuda._wrapper as wrapper

    calls = []

    def fake_func(name):
        def call(*args):
            calls.append((name, args))
            if name in ("projection_ewa_3dgs_fused_fwd", "fully_fused_projection_fwd"):
                means, viewmats = args[0], args[5 if name == "projection_ewa_3dgs_fused_fwd" else 4]
                I, N = viewmats.shape[0], means.shape[0]
                radii = torch.zeros((I, N, 2) if name == "projection_ewa_3dgs_fused_fwd" else (I, N), dtype=torch.int32)
                return radii, torch.zeros(I, N, 2), torch.zeros(I, N), torch.zeros(I, N, 3), torch.zeros(I, N)
            return torch.zeros(1), torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.int32)
        return call

    monkeypatch.setattr(wrapper, "_make_lazy_cuda_func", fake_func)
    monkeypatch.setattr(wrapper, "_make_lazy_cuda_obj", lambda name: f"obj:{name}")
    compat.project_fused.cache_clear()
    yield calls
    compat.project_fused.cache_clear()


def _gaussians(N=5, I=3):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(N, 3, generator=g), torch.nn.functional.normalize(torch.randn(N, 4, generator=g), dim=-1),
            torch.rand(N, 3, generator=g) * 0.1, torch.rand(N, generator=g),
            torch.eye(4).repeat(I, 1, 1), torch.tensor([[50.0, 0, 16], [0, 50, 12], [0, 0, 1]]).repeat(I, 1, 1))


def test_projection_calls_the_kernel_as_gsplats_wrapper_does(kernels):
    """gsplat's public fully_fused_projection (1.5: with opacities) and compat.project_fused reach
    the same kernel with the same arguments, in this gsplat's order."""
    import inspect

    from gsplat.cuda._wrapper import fully_fused_projection

    means, quats, scales, opac, vms, Ks = _gaussians()
    extra = {"opacities": opac} if "opacities" in inspect.signature(fully_fused_projection).parameters else {}
    fully_fused_projection(means, None, quats, scales, vms, Ks, 32, 24, eps2d=0.3, near_plane=0.01, far_plane=100.0,
                           **extra)
    out = compat.project_fused()(means, quats, scales, opac, vms, Ks, 32, 24, 0.3, 0.01, 100.0)
    (name_ref, args_ref), (name, args) = kernels
    assert name == name_ref and len(args) == len(args_ref)
    for a, b in zip(args, args_ref):
        assert (a is b or torch.equal(a, b)) if isinstance(a, torch.Tensor) else a == b
    assert len(out) == 4 and compat.radii_xy(out[0]).shape == (3, 5, 2)


def test_isect_tiles_runs_on_this_gsplat(kernels):
    """The unpacked call without the renamed count keyword (n_cameras / n_images) binds in both."""
    radii = torch.ones((3, 5, 2) if compat.gsplat_batched() else (3, 5), dtype=torch.int32)  # this gsplat's form
    compat.isect_tiles(torch.zeros(3, 5, 2), radii, torch.ones(3, 5), 16, 2, 2)
    assert kernels[-1][0] in ("intersect_tile", "isect_tiles")


def test_rasterization_with_batch_dims_on_a_version_without_them(monkeypatch):
    """gsplat 1.4 has no leading batch dims: compat.rasterization loops over them. Checked with the
    torch reference standing in for gsplat.rasterization (one scene per call, as 1.4 asserts)."""
    import gsplat

    from gsenv.splat.rasterize import rasterize

    def one_scene(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **kw):
        assert means.dim() == 2 and viewmats.dim() == 3  # what 1.4 accepts
        r, a = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height, backend="torch",
                         render_mode=kw["render_mode"])
        return r, a, {}

    monkeypatch.setattr(gsplat, "rasterization", one_scene)
    monkeypatch.setattr(compat, "gsplat_batched", lambda: False)
    B, C, N = 2, 2, 20
    means, quats, scales, opac, _, Ks = _gaussians(N, C)
    vms = torch.eye(4).repeat(B, C, 1, 1)
    vms[..., 2, 3] = 3.0
    vms[1, :, 0, 3] = 0.3
    batch = [t.expand(B, *t.shape).contiguous() for t in (means, quats, scales, opac)]
    colors = torch.rand(B, N, 3)
    r, a = compat.rasterization(*batch, colors, vms, Ks.expand(B, C, 3, 3), 32, 24, render_mode="RGB+D")
    want_r, want_a = rasterize(*batch, colors, vms, Ks.expand(B, C, 3, 3), 32, 24, backend="torch",
                               render_mode="RGB+D")
    assert r.shape == (B, C, 24, 32, 4) and a.shape == (B, C, 24, 32, 1) and a.max() > 0.1
    assert torch.allclose(r, want_r) and torch.allclose(a, want_a)


def test_sapien_import_problem_names_the_fix(monkeypatch):
    import importlib.util

    monkeypatch.setattr(compat, "installed_version", lambda p: "3.0.1")
    monkeypatch.setattr(compat, "_release", lambda p: (3, 0, 1))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pkg_resources" else real(n, *a))
    assert "setuptools<81" in compat.sapien_import_problem()
    monkeypatch.setattr(compat, "_release", lambda p: (3, 0, 3))
    assert compat.sapien_import_problem() is None


def test_doctor_says_per_package_whether_it_is_inside_the_window():
    from gsenv.tools.doctor import _versioned, format_table

    inside, outside = _versioned("ManiSkill", "mani_skill", "3.0.0b22"), _versioned("numpy", "numpy", "1.25.2")
    assert inside.value == "3.0.0b22 (tested window)" and not inside.warn
    assert outside.warn and outside.ok and "OUTSIDE the tested window >=1.26,<3" in outside.value
    assert format_table([inside, outside]).splitlines()[1].startswith("WARN  numpy")
