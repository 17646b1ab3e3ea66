"""How closely two renders of the same view must agree when they were computed along different paths.

Renders of one view from differently shaped batches (a camera alone vs inside a B x C batch) or from
different rows of one batch are equal on this machine but need not be on every machine: matmul and
einsum pick their kernel from the shapes (and, in MKL, from the CPU: AVX2 vs AVX-512 blocking, with or
without FMA), and vectorised loops hand the last ``n mod lanes`` elements of a tensor (and of each
thread's chunk, so the core count matters) to scalar code whose exp/sin may differ from the SIMD
version by one ulp. So such renders may differ by a few float32 ulps (eps = 1.2e-7) before the
final rounding to uint8.

How far that moves a pixel: a last-bit change of a camera-space position (~2 m) moves a gaussian's
projection by ~1e-5 px at the tests' focal lengths; with footprints of >= 1 px that changes its alpha
by <= 3e-5 and a colour in [0, 1] by about as much, mostly far less. One uint8 level is 1/255 = 3.9e-3,
so a value changes only where it sat within that distance of a rounding boundary: by one level, at
about 2 x 255 x 3e-5 = 1.5% of values in the worst case and well under 0.1% typically: the bound is
one level on at most 2% of values. A wrong pose, camera or batch row moves many values by many levels;
a systematic rounding slip (a different colour or gamma path) moves about half of them.
Exactness stays the rule for renders along the same path (same shapes, same rows, same inputs).
"""
from __future__ import annotations

import torch

MAX_LEVELS = 1
"""The most any uint8 value may differ: one rounding step."""
MAX_CHANGED_FRACTION = 0.02
"""The most values that may differ at all: above the 1.5% worst case estimated above."""


def assert_same_render(got: torch.Tensor, want: torch.Tensor, msg: object = "") -> None:
    """uint8 images [..., 3] of the same view computed along different batch shapes or rows: equal up
    to float32 rounding before the uint8 conversion (at most MAX_LEVELS, on at most
    MAX_CHANGED_FRACTION of the values)."""
    assert got.shape == want.shape and got.dtype == want.dtype == torch.uint8, (got.shape, want.shape, msg)
    diff = (got.int() - want.int()).abs()
    changed = float((diff > 0).float().mean())
    assert int(diff.max()) <= MAX_LEVELS and changed <= MAX_CHANGED_FRACTION, (int(diff.max()), changed, msg)
