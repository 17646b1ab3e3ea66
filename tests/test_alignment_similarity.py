"""The least-squares similarity fit (Umeyama) and the mask / picture helpers of the alignment check."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gsenv.alignment.check import mask_stats, verdict
from gsenv.alignment.overlay import AGREE, DISAGREE, MESH_ONLY, SPLAT_ONLY, blend, difference
from gsenv.alignment.similarity import fit_similarity, similarity_residuals


def _rotation(axis, angle) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


R_TRUE = _rotation([0.3, -0.5, 0.8], 2.1)
S_TRUE, T_TRUE = 0.37, np.array([0.4, -1.2, 0.75])


@pytest.mark.parametrize("n", [3, 6])
def test_recovers_a_known_similarity_exactly(n):
    src = np.random.default_rng(n).uniform(-2, 2, size=(n, 3))
    dst = S_TRUE * src @ R_TRUE.T + T_TRUE
    sim = fit_similarity(src, dst)
    assert sim.scale == pytest.approx(S_TRUE, rel=1e-9)
    np.testing.assert_allclose(sim.rotation, R_TRUE, atol=1e-9)
    np.testing.assert_allclose(sim.translation, T_TRUE, atol=1e-9)
    assert np.linalg.det(sim.rotation) == pytest.approx(1.0)
    assert similarity_residuals(sim, src, dst).max() < 1e-9


def test_noisy_points_give_the_least_squares_fit_and_honest_residuals():
    rng = np.random.default_rng(0)
    src = rng.uniform(-1, 1, size=(40, 3))
    noise = rng.normal(0, 0.003, size=(40, 3))
    dst = S_TRUE * src @ R_TRUE.T + T_TRUE + noise
    sim = fit_similarity(src, dst)
    assert sim.scale == pytest.approx(S_TRUE, rel=0.02)
    assert np.degrees(np.arccos((np.trace(sim.rotation.T @ R_TRUE) - 1) / 2)) < 1.0
    res = similarity_residuals(sim, src, dst)
    assert 0.002 < np.sqrt((res ** 2).mean()) < 0.006  # about the noise, not zero
    # the fit is a minimum: nudging it makes the squared error larger
    from dataclasses import replace

    for nudged in (replace(sim, scale=sim.scale * 1.01), replace(sim, translation=sim.translation + 0.002)):
        assert (similarity_residuals(nudged, src, dst) ** 2).sum() > (res ** 2).sum()


def test_rigid_fit_keeps_scale_one_and_a_mirror_is_never_returned():
    src = np.random.default_rng(1).uniform(-1, 1, size=(5, 3))
    dst = src @ R_TRUE.T + T_TRUE
    sim = fit_similarity(src, dst, with_scale=False)
    assert sim.scale == 1.0
    np.testing.assert_allclose(sim.rotation, R_TRUE, atol=1e-9)
    mirrored = dst * np.array([1, 1, -1])  # a reflection cannot be a rotation: best proper rotation instead
    assert np.linalg.det(fit_similarity(src, mirrored).rotation) == pytest.approx(1.0)


@pytest.mark.parametrize("src, dst, match", [
    (np.zeros((2, 3)), np.zeros((2, 3)), "at least 3 point pairs"),
    (np.zeros((3, 3)), np.zeros((4, 3)), "pair up"),
    (np.zeros((3, 2)), np.zeros((3, 2)), r"\[N, 3\]"),
    ([[0, 0, 0], [1, 1, 1], [2, 2, 2]], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], "collinear"),
    ([[0, 0, 0], [1, 0, 0], [0, np.nan, 0]], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], "NaN"),
])
def test_bad_correspondences_raise_value_errors(src, dst, match):
    with pytest.raises(ValueError, match=match):
        fit_similarity(src, dst)


def test_mask_stats_and_verdicts():
    a = np.zeros((20, 20), bool)
    b = np.zeros((20, 20), bool)
    a[0:10, 0:10] = True
    b[0:10, 5:15] = True  # half overlap, shifted 5 columns
    st = mask_stats(a, b)
    assert (st.mesh_pixels, st.splat_pixels, st.intersection, st.union) == (100, 100, 50, 150)
    assert st.iou == pytest.approx(1 / 3) and st.centroid_offset_px == pytest.approx(5.0)
    assert verdict(st, 0.3, 100) == "pass" and verdict(st, 0.5, 100) == "fail"
    assert verdict(st, 0.5, 101) == "small"  # below min_pixels in both: reported, not judged
    empty = mask_stats(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    assert empty.iou is None and empty.centroid_offset_px is None and verdict(empty, 0.9, 1) == "out_of_view"
    # a body drawn only by the splat renderer (the simulator has nothing there) is judged too
    assert verdict(mask_stats(a, np.zeros_like(a)), 0.5, 100) == "fail"


def test_blend_and_difference_pictures():
    s = np.full((2, 2, 3), 200, np.uint8)
    m = np.full((2, 2, 3), 100, np.uint8)
    assert (blend(s, m) == 150).all()
    splat_any = np.array([[1, 1], [0, 1]], bool)
    mesh_any = np.array([[1, 0], [1, 1]], bool)
    same = np.array([[1, 0], [0, 0]], bool)
    d = difference(splat_any, mesh_any, same)
    assert tuple(d[0, 0]) == AGREE and tuple(d[0, 1]) == SPLAT_ONLY
    assert tuple(d[1, 0]) == MESH_ONLY and tuple(d[1, 1]) == DISAGREE
