"""The tested dependency window and every API difference between its ends, in one place.

gsenv installs into environments it does not own (RLinf's ManiSkill stack: mani_skill 3.0.0b22,
gymnasium 0.29.1, sapien 3.0.1, the research package's gsplat 1.4.0, numpy < 2). `TESTED` is the
window CI runs at both ends (pyproject.toml's specifiers say the same; `gsenv doctor` compares the
installed versions with it). Where an API differs between the ends, the shim lives here and the
call sites use it; no version checks anywhere else.

Differences found (everything else gsenv calls is the same at both ends):

gsplat 1.4.x -> 1.5.x (the stage functions rigid_raster.py calls directly, and rasterization):
  - the fused projection kernel: 1.4 `_C.fully_fused_projection_fwd(means, covars, quats, scales,
    viewmats, Ks, W, H, eps2d, near, far, radius_clip, calc_compensations, camera_model)`;
    1.5 `_C.projection_ewa_3dgs_fused_fwd(...)`, same arguments plus `opacities` after `scales`
    (opacity-aware radii). The public `fully_fused_projection` gained `opacities=` in 1.5 too.
  - radii: 1.4 one radius per gaussian, int32 [..., N] (3 sigma of the larger eigenvalue); 1.5
    per axis [..., N, 2] (3.33 sigma, tighter with opacities). `isect_tiles` of each version takes
    its own form: `project_fused` returns the installed form, `radii_xy` gives [..., N, 2] always.
  - `isect_tiles`: keyword `n_cameras`/`camera_ids` (1.4) became `n_images`/`image_ids` (1.5), and
    1.5 added `segmented` before `packed`. Unpacked, neither needs the count (it comes from the
    shapes), so `isect_tiles` here passes none.
  - `isect_offset_encode(isect_ids, n, tile_width, tile_height)`: the second parameter was renamed
    (`n_cameras` -> `n_images`); positional here.
  - `rasterization`: 1.5 takes leading batch dims ([..., N, 3], viewmats [..., C, 4, 4]); 1.4 only
    one scene [N, 3] with cameras [C, 4, 4]. `rasterization` here loops over the batch on 1.4.
  - `rasterize_to_pixels`: same signature; 1.4 wants exactly one image dim [I, N, ...], which is
    what gsenv passes. `spherical_harmonics`: same (not called by gsenv, which has its own SH).
  - tests only: `gsplat.exporter` (export_splats) exists from 1.5; `_torch_impl._spherical_harmonics`
    renamed its first parameter (`degree` -> `degrees_to_use`, positional in the tests).

sapien 3.0.1 / 3.0.2 -> 3.0.3:
  - 3.0.1 and 3.0.2 `import pkg_resources` at import time (sapien/__init__.py:18, _vulkan_tricks.py:17);
    setuptools >= 81 no longer ships it, so `import sapien` fails there unless setuptools < 81 is
    installed (RLinf pins setuptools < 75.9). 3.0.3 does not use it. Nothing gsenv can shim before
    mani_skill imports sapien in RLinf's own module; `gsenv doctor` reports it with the fix.

mani_skill 3.0.0b22 -> 3.0.1, gymnasium 0.29.1 -> 1.x: no difference reaches gsenv (controller
defaults that changed, PDEEPoseControllerConfig.rot_lower/upper and Panda's pos_lower/upper, are
passed explicitly by gsenv's agent; ManiSkillVectorEnv's gymnasium-1 branch exists only in 3.0.1,
and 3.0.0b22 requires gymnasium 0.29.1, so each pairing is consistent by itself).
"""
from __future__ import annotations

import functools
import importlib.metadata as md
import sys
from collections.abc import Callable

__all__ = ["TESTED", "installed_version", "in_tested_window", "gsplat_batched", "project_fused", "radii_xy",
           "isect_tiles", "rasterization", "sapien_import_problem"]

# The window CI tests at both ends (pyproject.toml's specifiers for the same packages; torch only
# as the CPU build 2.13 in CI, the declared dependency is torch>=2.1).
TESTED: dict[str, str] = {
    "python": ">=3.10,<3.13",
    "torch": ">=2.13,<2.14",
    "numpy": ">=1.26,<3",
    "gymnasium": ">=0.29.1,<2",
    "mani_skill": ">=3.0.0b21,<=3.0.1",
    "sapien": ">=3.0.1,<=3.0.3",
    "gsplat": ">=1.4.0,<1.6",
}


def installed_version(package: str) -> str | None:
    """The installed version of `package` ("python": the interpreter's), None when absent."""
    if package == "python":
        return ".".join(map(str, sys.version_info[:3]))
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def in_tested_window(package: str, version: str) -> bool:
    """Whether `version` lies inside TESTED[package] (local labels such as +cpu ignored)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    return Version(version) in SpecifierSet(TESTED[package], prereleases=True)


def _release(package: str) -> tuple[int, ...]:
    from packaging.version import Version

    return Version(md.version(package)).release


# ---------------------------------------------------------------------------------------- gsplat

@functools.cache
def gsplat_batched() -> bool:
    """gsplat >= 1.5: leading batch dims, per-axis radii, projection_ewa_3dgs_fused_fwd."""
    return _release("gsplat") >= (1, 5)


@functools.cache
def project_fused() -> Callable:
    """gsplat's fused EWA projection kernel for pinhole cameras, called directly (no autograd node,
    shape asserts or copies of the public wrapper, which cost more CPU time per body than the kernel):
    fn(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far)
    -> (radii, means2d [I, N, 2], depths [I, N], conics [I, N, 3]) with viewmats [I, 4, 4];
    radii in the installed gsplat's form ([I, N, 2] on 1.5, [I, N] on 1.4, see `radii_xy`).
    Inputs must be contiguous (the kernel checks). 1.4 has no opacity-aware radii: opacities unused."""
    from gsplat.cuda._wrapper import _make_lazy_cuda_func, _make_lazy_cuda_obj

    pinhole = _make_lazy_cuda_obj("CameraModelType.PINHOLE")
    if gsplat_batched():
        kernel = _make_lazy_cuda_func("projection_ewa_3dgs_fused_fwd")

        def project(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far):
            return kernel(means, None, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far,
                          0.0, False, pinhole)[:4]
    else:
        kernel = _make_lazy_cuda_func("fully_fused_projection_fwd")

        def project(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far):
            return kernel(means, None, quats, scales, viewmats, Ks, width, height, eps2d, near, far,
                          0.0, False, pinhole)[:4]
    return project


def radii_xy(radii):
    """gsplat radii as [..., N, 2] (x, y) whatever the version: 1.4's one radius [..., N] is both."""
    return radii if gsplat_batched() else radii[..., None].expand(*radii.shape, 2)


def isect_tiles(means2d, radii, depths, tile_size: int, tiles_w: int, tiles_h: int):
    """gsplat's tile intersection, unpacked, sorted: (tiles_per_gauss, isect_ids, flatten_ids).
    The image count comes from the shapes in both versions (its keyword was renamed in 1.5)."""
    from gsplat.cuda._wrapper import isect_tiles as _isect_tiles

    return _isect_tiles(means2d, radii, depths, tile_size, tiles_w, tiles_h)


def rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int, **kwargs):
    """gsplat.rasterization with leading batch dims ([..., N, 3], viewmats [..., C, 4, 4], colors
    [..., N, D] or [..., C, N, D]) on every version: one call on 1.5, one call per batch element on
    1.4 (stacked). Returns (render, alphas) without gsplat's meta dict."""
    import torch
    from gsplat import rasterization as _rasterization

    batch = means.shape[:-2]
    if gsplat_batched() or not batch:
        render, alphas, _ = _rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                                           **kwargs)
        return render, alphas
    flat = [t.reshape((-1,) + t.shape[len(batch):]) for t in (means, quats, scales, opacities, colors, viewmats, Ks)]
    outs = [_rasterization(*(t[b] for t in flat), width, height, **kwargs)[:2] for b in range(flat[0].shape[0])]
    render, alphas = (torch.stack([o[i] for o in outs]) for i in range(2))
    return render.reshape(batch + render.shape[1:]), alphas.reshape(batch + alphas.shape[1:])


# ---------------------------------------------------------------------------------------- sapien

def sapien_import_problem() -> str | None:
    """Why `import sapien` would fail for want of pkg_resources (sapien 3.0.1/3.0.2 with setuptools
    >= 81), with the fix; None when it would not."""
    version = installed_version("sapien")
    if version is None or _release("sapien") >= (3, 0, 3):
        return None
    import importlib.util

    if importlib.util.find_spec("pkg_resources") is not None:
        return None
    return (f"sapien {version} imports pkg_resources, which setuptools >= 81 no longer ships: "
            "pip install 'setuptools<81' (or sapien==3.0.3)")
