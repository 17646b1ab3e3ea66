"""GPU PhysX self-check: does ``physx_cuda`` play the same expert episodes as ``physx_cpu`` here?

``sim_backend="auto"`` picks physx_cuda wherever CUDA is present and SAPIEN's GPU PhysX library is on
disk (gsenv.backends), a path some machines cannot actually run (the library fails to load, or runs
and simulates nonsense). On first use per machine :func:`checked_physics_backend` runs the scripted
expert on the same seeds on both backends in a child process (a crash of the GPU library cannot take
the caller down), compares the episodes with :func:`compare_episodes` (a pure function), caches the
verdict (:func:`cache_key`: SAPIEN version, GPU name, the library's size and mtime) and, on a mismatch
or a failure to start, falls back to physx_cpu with a warning that says why.

Tolerances: the two PhysX solvers are not bit-identical (GPU contacts are solved in another order and
in parallel), so only outcomes are compared. Reset poses come from the same per-env generators and
must agree to RESET_TOL_M. Every episode's success must agree, and the final cube must lie within
POSITION_TOL_M = half a cube edge (2 cm) and ANGLE_TOL_RAD = 15 degrees (modulo the cube's 24
rotational symmetries) of the CPU run's: a correct GPU run lands the cube at the same place on the
plate to a few mm and degrees; a broken one drops it, pushes it away or leaves it in the air. A false
alarm only costs speed (CPU physics is correct), a missed fault would cost correctness, so the seeds
are ones where the expert succeeds with margin on CPU.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata as md
import itertools
import json
import logging
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gsenv.atomic import write_text_atomic

__all__ = ["CHECK_VERSION", "SEEDS", "STEPS", "RESET_TOL_M", "POSITION_TOL_M", "ANGLE_TOL_RAD", "TIMEOUT_S",
           "CACHE_FILE", "RUNNER", "EpisodeResults", "Verdict", "expert_episodes", "cube_angle", "compare_episodes",
           "cache_key", "default_cache_path", "cached_verdict", "read_cache", "self_check",
           "checked_physics_backend"]

logger = logging.getLogger(__name__)

CHECK_VERSION = 1  # bump when the episodes or the comparison change: old verdicts are then ignored
SEEDS = (0, 1, 2, 3)
STEPS = 100  # the self-check episodes' length (an episode's worth: names.EPISODE_STEPS), not a time limit
RESET_TOL_M = 1e-3
POSITION_TOL_M = 0.02  # half the cube's 4 cm edge
ANGLE_TOL_RAD = float(np.deg2rad(15.0))
TIMEOUT_S = 900.0
CACHE_FILE = "physx-gpu-check.json"
RUNNER = "gsenv.physics.gpu_check_run"  # the child process: runs both backends, prints the verdict


@dataclasses.dataclass(frozen=True)
class EpisodeResults:
    """The scripted expert's episodes on one backend, B = len(seeds).

    success:         bool [B], success at any step of the episode.
    reset_cube_pose: float [B, 7] position (m) + wxyz after the reset.
    final_cube_pose: float [B, 7] after the last step.
    """

    backend: str
    seeds: tuple[int, ...]
    steps: int
    success: tuple[bool, ...]
    reset_cube_pose: tuple[tuple[float, ...], ...]
    final_cube_pose: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> EpisodeResults:
        return cls(d["backend"], tuple(d["seeds"]), int(d["steps"]), tuple(bool(s) for s in d["success"]),
                   tuple(tuple(p) for p in d["reset_cube_pose"]), tuple(tuple(p) for p in d["final_cube_pose"]))


@dataclasses.dataclass(frozen=True)
class Verdict:
    """ok: the candidate backend may be used; reason: one line saying why (or why not)."""

    ok: bool
    reason: str
    cached: bool = False


# ----------------------------------------------------------------------------------------- episodes
def expert_episodes(physics, seeds: Sequence[int], steps: int = STEPS) -> EpisodeResults:
    """Reset `physics` (a backend of gsenv.physics.backend with B = len(seeds) envs) to `seeds` and
    run the scripted expert for `steps` steps."""
    import torch

    from gsenv.tasks import get_task

    task = get_task()  # the default task: its scripted expert moves its first object, the one compared
    body = task.objects[0]
    b = len(seeds)
    out = physics.reset(list(range(b)), [int(s) for s in seeds], [{} for _ in range(b)])
    reset_pose = out.body_poses[body].detach().cpu().double().numpy()
    success = np.zeros(b, dtype=bool)
    for _ in range(steps):
        action = task.expert_action(**task.expert_inputs(out.state))
        out = physics.step(action.to(torch.float32))
        success |= out.info["success"].detach().cpu().numpy().astype(bool)
    final_pose = out.body_poses[body].detach().cpu().double().numpy()
    return EpisodeResults(physics.name, tuple(int(s) for s in seeds), steps, tuple(bool(s) for s in success),
                          tuple(map(tuple, reset_pose.tolist())), tuple(map(tuple, final_pose.tolist())))


# ----------------------------------------------------------------------------------------- comparison
def _cube_symmetries() -> np.ndarray:
    """[24, 3, 3] rotations mapping a cube onto itself (signed permutation matrices with det +1)."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                mats.append(m)
    return np.stack(mats)


def cube_angle(q1: Sequence[float], q2: Sequence[float]) -> float:
    """Smallest rotation angle (rad) between two cube orientations (wxyz), modulo the cube's symmetry."""
    import torch

    from gsenv.geometry import quat_to_rotmat

    R1, R2 = quat_to_rotmat(torch.tensor(np.stack([q1, q2]), dtype=torch.float64)).numpy()
    rel = R1.T @ R2
    traces = np.einsum("ij,sji->s", rel, _cube_symmetries())  # trace(rel @ S) for every symmetry S
    return float(np.arccos(np.clip((traces.max() - 1) / 2, -1.0, 1.0)))


def compare_episodes(reference: EpisodeResults, candidate: EpisodeResults, position_tol: float = POSITION_TOL_M,
                     angle_tol: float = ANGLE_TOL_RAD, reset_tol: float = RESET_TOL_M) -> Verdict:
    """Whether `candidate`'s episodes agree with `reference`'s: same seeds and steps, reset cube poses
    within reset_tol (m), every episode's success equal, final cube positions within position_tol (m)
    and orientations within angle_tol (rad, modulo the cube's symmetry). The reason names the first
    disagreement, or sums up the agreement."""
    ref, cand = reference.backend, candidate.backend
    if (reference.seeds, reference.steps) != (candidate.seeds, candidate.steps):
        return Verdict(False, f"{cand} ran seeds {list(candidate.seeds)} for {candidate.steps} steps, "
                              f"{ref} seeds {list(reference.seeds)} for {reference.steps} steps: not comparable")
    worst_pos = worst_ang = 0.0
    for i, seed in enumerate(reference.seeds):
        r0, c0 = np.asarray(reference.reset_cube_pose[i]), np.asarray(candidate.reset_cube_pose[i])
        r1, c1 = np.asarray(reference.final_cube_pose[i]), np.asarray(candidate.final_cube_pose[i])
        if not (np.isfinite(c0).all() and np.isfinite(c1).all()):
            return Verdict(False, f"seed {seed}: {cand} gave a non-finite cube pose")
        d0 = float(np.linalg.norm(r0[:3] - c0[:3]))
        if d0 > reset_tol:
            return Verdict(False, f"seed {seed}: the cube starts {d0 * 1000:.1f} mm apart on {cand} and {ref} "
                                  f"(> {reset_tol * 1000:.1f} mm): the reset differs")
        if reference.success[i] != candidate.success[i]:
            won, lost = (ref, cand) if reference.success[i] else (cand, ref)
            return Verdict(False, f"seed {seed}: the expert succeeds on {won} but not on {lost}")
        d1 = float(np.linalg.norm(r1[:3] - c1[:3]))
        if d1 > position_tol:
            return Verdict(False, f"seed {seed}: the final cube positions on {cand} and {ref} are "
                                  f"{d1 * 1000:.0f} mm apart (> {position_tol * 1000:.0f} mm)")
        ang = cube_angle(r1[3:], c1[3:])
        if ang > angle_tol:
            return Verdict(False, f"seed {seed}: the final cube orientations on {cand} and {ref} differ by "
                                  f"{np.rad2deg(ang):.0f} deg (> {np.rad2deg(angle_tol):.0f} deg)")
        worst_pos, worst_ang = max(worst_pos, d1), max(worst_ang, ang)
    n = len(reference.seeds)
    return Verdict(True, f"{n} expert episodes agree: success {sum(candidate.success)}/{n} on both, final cube "
                         f"within {worst_pos * 1000:.1f} mm and {np.rad2deg(worst_ang):.1f} deg")


# ----------------------------------------------------------------------------------------- the check
def cache_key(candidate: str, reference: str) -> str:
    """What the verdict depends on: the check's version, the pair, SAPIEN's version, the GPU's name and
    SAPIEN's GPU PhysX library (path, size and mtime; 'absent' when not on disk)."""
    import torch

    from gsenv.backends import gpu_physx_library

    lib = gpu_physx_library()
    try:
        st = lib.stat()
        lib_id = f"{lib}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        lib_id = f"{lib}:absent"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    parts = [f"v{CHECK_VERSION}", f"{candidate}-vs-{reference}", f"sapien {_version('sapien')}", gpu, lib_id]
    return " | ".join(parts)


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "missing"


def default_cache_path() -> Path:
    """<asset root>/physx-gpu-check.json (the asset root: gsenv.assets.root)."""
    from gsenv.assets.root import asset_root

    return asset_root() / CACHE_FILE


def cached_verdict(candidate: str = "physx_cuda", reference: str = "physx_cpu") -> tuple[dict | None, Path]:
    """(the cached verdict {"ok", "reason", "checked_at"} of this machine's last self-check of the pair,
    or None when it has not run here; the cache file). Runs nothing."""
    path = default_cache_path()
    hit = read_cache(path).get(cache_key(candidate, reference))
    return (hit if isinstance(hit, dict) else None), path


def read_cache(path: Path) -> dict:
    """{cache key: {"ok", "reason", "checked_at"}}; an absent or unreadable file is an empty cache
    (with a warning when it exists but cannot be parsed: it is then rewritten)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the GPU PhysX check cache %s (%s); the check runs again", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, verdict: Verdict) -> None:
    path = Path(path)
    data = read_cache(path)
    data[key] = {"ok": verdict.ok, "reason": verdict.reason, "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError as exc:
        logger.warning("could not cache the GPU PhysX check's verdict in %s (%s): it runs again next time; "
                       "set GSENV_ASSETS to a writable directory to keep it", path, exc)


def self_check(candidate: str = "physx_cuda", reference: str = "physx_cpu", cache_path: Path | None = None,
               timeout_s: float = TIMEOUT_S) -> Verdict:
    """The cached verdict for this machine, or a fresh one from a child process running
    :func:`gsenv.physics.gpu_check_run.run_check` (its crash or timeout is a failed verdict), which is then cached."""
    path = Path(cache_path) if cache_path is not None else default_cache_path()
    key = cache_key(candidate, reference)
    hit = read_cache(path).get(key)
    if isinstance(hit, dict) and "ok" in hit:
        return Verdict(bool(hit["ok"]), str(hit.get("reason", "")), cached=True)
    logger.warning("checking %s against %s on this machine (once; the verdict is cached in %s)", candidate,
                   reference, path)
    cmd = [sys.executable, "-m", RUNNER, candidate, reference]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        verdict = Verdict(False, f"the check did not finish within {timeout_s:.0f} s")
    else:
        verdict = _parse_child(proc)
    _write_cache(path, key, verdict)
    return verdict


def _parse_child(proc: subprocess.CompletedProcess) -> Verdict:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        d = json.loads(lines[-1])
        return Verdict(bool(d["ok"]), str(d["reason"]))
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return Verdict(False, f"the check process died ({how}): {tail[:300]}")


def checked_physics_backend(requested: str = "auto", *, pair: tuple[str, str] | None = None,
                            cache_path: Path | None = None) -> str:
    """gsenv.backends.resolve_physics_backend, plus the self-check when `auto` picks physx_cuda: on a
    failed verdict, physx_cpu with a warning saying why. An explicit backend is returned as asked.

    pair: (candidate, reference) to check instead of (what auto picked, physx_cpu), for machines
    without a GPU (e.g. ("physx_cpu", "physx_cpu"), or ("physx_cuda", "physx_cpu") to see the failure)."""
    from gsenv.backends import resolve_physics_backend

    choice = resolve_physics_backend(requested)
    if requested != "auto" or (pair is None and choice != "physx_cuda"):
        return choice
    candidate, reference = pair or (choice, "physx_cpu")
    verdict = self_check(candidate, reference, cache_path)
    if verdict.ok:
        logger.info("physics backend auto -> %s (self-check passed%s: %s)", candidate,
                    ", cached" if verdict.cached else "", verdict.reason)
        return candidate
    where = cache_path if cache_path is not None else default_cache_path()
    warnings.warn(
        f"sim_backend='auto': {candidate} failed its self-check against {reference} on this machine "
        f"({verdict.reason}); using {reference}. The verdict is cached in {where} (delete the file to check "
        f"again); pass sim_backend='{candidate}' to use it anyway.", RuntimeWarning, stacklevel=2)
    return reference
