"""`auto`'s GPU PhysX self-check: the episode comparison on real CPU-physics episodes, the verdict cache
and the fallback, run on CPU through a backend pair this machine can run (physx_cpu vs physx_cpu) and
one it cannot start (physx_cuda without CUDA)."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch

from gsenv.physics import gpu_check
from gsenv.physics.backend import make_physics
from gsenv.physics.gpu_check import (
    SEEDS,
    STEPS,
    EpisodeResults,
    cache_key,
    checked_physics_backend,
    compare_episodes,
    cube_angle,
    expert_episodes,
)


@pytest.fixture(scope="module")
def runs():
    """Real CPU PhysX episodes: two full runs of the check's seeds, one cut short, one of other seeds."""
    physics = make_physics("physx_cpu", len(SEEDS), {}, torch.device("cpu"), num_workers=2)
    try:
        full_a = expert_episodes(physics, SEEDS, STEPS)
        full_b = expert_episodes(physics, SEEDS, STEPS)
        short = expert_episodes(physics, SEEDS, 20)
        other = expert_episodes(physics, [s + 10 for s in SEEDS], 20)
    finally:
        physics.close()
    return full_a, full_b, short, other


def _with_final(r: EpisodeResults, i: int, pose) -> EpisodeResults:
    poses = list(r.final_cube_pose)
    poses[i] = tuple(float(v) for v in pose)
    return dataclasses.replace(r, backend="candidate", final_cube_pose=tuple(poses))


def _yaw(q, deg: float):
    """wxyz quaternion q rotated by `deg` about the world z axis."""
    h = math.radians(deg) / 2
    w1, z1 = math.cos(h), math.sin(h)
    w, x, y, z = q
    return (w1 * w - z1 * z, w1 * x - z1 * y, w1 * y + z1 * x, w1 * z + z1 * w)


@pytest.mark.slow
def test_two_cpu_runs_agree(runs):
    full_a, full_b, _, _ = runs
    assert all(full_a.success), "the check's seeds must be ones the expert solves on CPU"
    verdict = compare_episodes(full_a, full_b)
    assert verdict.ok, verdict.reason
    assert verdict.reason.startswith(f"{len(SEEDS)} expert episodes agree: success {len(SEEDS)}/{len(SEEDS)}")
    # the cube was carried: it ends far from where it started, on the plate (z above the table)
    moved = np.linalg.norm(np.array(full_a.final_cube_pose)[:, :2] - np.array(full_a.reset_cube_pose)[:, :2], axis=1)
    assert (moved > 0.05).all(), moved


@pytest.mark.slow
def test_a_shortened_run_does_not_agree(runs):
    full_a, _, short, _ = runs
    assert not any(short.success), "20 steps are too few for the expert to succeed"
    assert not compare_episodes(full_a, short).ok  # different step counts: not comparable
    assert "not comparable" in compare_episodes(full_a, short).reason
    verdict = compare_episodes(full_a, dataclasses.replace(short, steps=STEPS, backend="cut"))
    assert not verdict.ok
    assert verdict.reason == f"seed {SEEDS[0]}: the expert succeeds on physx_cpu but not on cut"


@pytest.mark.slow
def test_other_starting_states_do_not_agree(runs):
    full_a, _, _, other = runs
    relabeled = dataclasses.replace(other, seeds=full_a.seeds, steps=STEPS, backend="other")
    verdict = compare_episodes(full_a, relabeled)
    assert not verdict.ok and "the reset differs" in verdict.reason


@pytest.mark.slow
def test_final_pose_tolerances(runs):
    full_a, _, _, _ = runs
    p = np.array(full_a.final_cube_pose[1])
    near = p.copy()
    near[0] += 0.01  # 1 cm: within half a cube edge
    assert compare_episodes(full_a, _with_final(full_a, 1, near)).ok
    far = p.copy()
    far[1] += 0.03
    verdict = compare_episodes(full_a, _with_final(full_a, 1, far))
    assert not verdict.ok and verdict.reason == (
        f"seed {SEEDS[1]}: the final cube positions on candidate and physx_cpu are 30 mm apart (> 20 mm)")
    turned = np.r_[p[:3], _yaw(p[3:], 30.0)]
    verdict = compare_episodes(full_a, _with_final(full_a, 1, turned))
    assert not verdict.ok and "differ by 30 deg (> 15 deg)" in verdict.reason
    quarter = np.r_[p[:3], _yaw(p[3:], 90.0)]  # the same cube, seen after a quarter turn
    assert compare_episodes(full_a, _with_final(full_a, 1, quarter)).ok
    nan = p.copy()
    nan[2] = np.nan
    verdict = compare_episodes(full_a, _with_final(full_a, 1, nan))
    assert not verdict.ok and "non-finite" in verdict.reason


def test_cube_angle_is_modulo_the_cube_symmetry():
    q = (1.0, 0.0, 0.0, 0.0)
    assert cube_angle(q, _yaw(q, 10.0)) == pytest.approx(math.radians(10.0))
    assert cube_angle(q, _yaw(q, 80.0)) == pytest.approx(math.radians(10.0))
    assert cube_angle(q, _yaw(q, 45.0)) == pytest.approx(math.radians(45.0))
    tipped = (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0)  # on another face
    assert cube_angle(q, tipped) == pytest.approx(0.0, abs=1e-7)


# ----------------------------------------------------------------------------------------- cache + fallback
def test_explicit_backends_and_a_cpu_machine_need_no_check(tmp_path):
    cache = tmp_path / "check.json"
    assert checked_physics_backend("physx_cpu", cache_path=cache) == "physx_cpu"
    if not torch.cuda.is_available():
        assert checked_physics_backend("auto", cache_path=cache) == "physx_cpu"
    assert not cache.exists()
    with pytest.raises(ValueError, match="sim_backend must be one of"):
        checked_physics_backend("gpu", cache_path=cache)


def test_cache_key_names_what_the_verdict_depends_on():
    import importlib.metadata as md

    key = cache_key("physx_cuda", "physx_cpu")
    assert f"v{gpu_check.CHECK_VERSION}" in key and "physx_cuda-vs-physx_cpu" in key
    assert f"sapien {md.version('sapien')}" in key and "libPhysXGpu_64.so" in key
    if not torch.cuda.is_available():
        assert "no CUDA" in key
    assert cache_key("physx_cpu", "physx_cpu") != key


@pytest.mark.slow
def test_a_pair_that_agrees_passes_and_is_cached(tmp_path):
    cache = tmp_path / "check.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert checked_physics_backend("auto", pair=("physx_cpu", "physx_cpu"), cache_path=cache) == "physx_cpu"
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    data = json.loads(cache.read_text())
    key = cache_key("physx_cpu", "physx_cpu")
    assert list(data) == [key] and data[key]["ok"] is True
    assert data[key]["reason"].startswith(f"{len(SEEDS)} expert episodes agree")
    # the next call reads the verdict: a cached failure (edited in) is what it reports, without a new run
    data[key] = {"ok": False, "reason": "edited verdict"}
    cache.write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match=r"failed its self-check against physx_cpu on this machine "
                                            r"\(edited verdict\); using physx_cpu"):
        checked_physics_backend("auto", pair=("physx_cpu", "physx_cpu"), cache_path=cache)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine physx_cuda starts")
def test_a_gpu_backend_that_cannot_start_falls_back_to_cpu(tmp_path):
    cache = tmp_path / "check.json"
    cache.write_text("{not json")  # a broken cache is ignored (and rewritten)
    with pytest.warns(RuntimeWarning) as caught:
        choice = checked_physics_backend("auto", pair=("physx_cuda", "physx_cpu"), cache_path=cache)
    assert choice == "physx_cpu"
    message = str(caught[0].message)
    assert "physx_cuda failed its self-check" in message and "physx_cuda could not start: ValueError" in message
    assert "needs a CUDA GPU" in message and str(cache) in message
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["ok"] is False and "could not start" in entry["reason"]


def test_a_check_that_does_not_finish_is_a_failure(tmp_path):
    cache = tmp_path / "check.json"
    verdict = gpu_check.self_check("physx_cpu", "physx_cpu", cache_path=cache, timeout_s=1.0)
    assert not verdict.ok and verdict.reason == "the check did not finish within 1 s"
    assert json.loads(cache.read_text())[cache_key("physx_cpu", "physx_cpu")]["ok"] is False


def test_doctor_shows_the_cached_verdict(tmp_path, monkeypatch):
    from gsenv.tools.doctor import _gpu_check_row

    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path))
    row = _gpu_check_row()
    assert row.ok and row.value == "not run yet" and "sim_backend='auto'" in row.fix
    key = cache_key("physx_cuda", "physx_cpu")
    (tmp_path / gpu_check.CACHE_FILE).write_text(json.dumps({key: {"ok": False, "reason": "seed 0: differs"}}))
    row = _gpu_check_row()
    assert row.value == "failed: seed 0: differs" and "auto uses physx_cpu" in row.fix
    assert str(tmp_path / gpu_check.CACHE_FILE) in row.fix
