"""`gsenv doctor`: what this machine has, which backends gsenv will use, and how to fix what is missing."""
from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Runs in a child process: a broken Vulkan set-up can abort the interpreter, which must not take
# the doctor down with it. Prints the Vulkan device, then steps a one-box CPU PhysX scene.
_SAPIEN_PROBE = r"""
import sapien
summary = sapien.render.get_device_summary().strip().splitlines()
sapien.render.RenderSystem()  # initialises Vulkan; raises without a usable driver
print("VULKAN", summary[0].split(":", 1)[-1].strip() if summary else "unknown")
scene = sapien.Scene()
b = scene.create_actor_builder(); b.add_box_collision(half_size=[0.02] * 3); box = b.build()
box.set_pose(sapien.Pose([0, 0, 1])); [scene.step() for _ in range(10)]
print("PHYSX", "ok" if box.get_pose().p[2] < 1 else "box did not fall")
"""


@dataclass
class Row:
    name: str
    value: str
    ok: bool
    fix: str = ""
    warn: bool = False  # works, but outside what CI tests


def _versioned(name: str, package: str, version: str, extra: str = "") -> Row:
    """A package's row: its version and whether it lies inside the tested window (gsenv.compat.TESTED)."""
    from gsenv.compat import TESTED, in_tested_window

    inside = in_tested_window(package, version)
    where = "tested window" if inside else f"OUTSIDE the tested window {TESTED[package]}"
    return Row(name, f"{version} ({where}{', ' + extra if extra else ''})", True, "" if inside else
               f"tested: pip install '{package}{TESTED[package]}'" if package != "python" else
               f"tested: Python {TESTED['python']}", warn=not inside)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _gsplat_extension_state(cuda: bool) -> tuple[str, bool, str]:
    if not cuda:
        return "no CUDA: torch reference rasteriser", True, ""
    try:
        import gsplat.csrc  # noqa: F401  (prebuilt wheel)
        return "CUDA extension prebuilt", True, ""
    except ImportError:
        pass
    from torch.utils.cpp_extension import _get_build_directory  # where torch's JIT builds extensions

    build_dir = Path(_get_build_directory("gsplat_cuda", False))
    built = any((build_dir / f).exists() for f in ("gsplat_cuda.so", "gsplat_cuda.lib"))
    if built:
        return "CUDA extension compiled", True, ""
    return ("CUDA extension not compiled yet", True,
            "it JIT-compiles on the first GPU render (~70 s, needs nvcc)")


def collect() -> list[Row]:
    from gsenv.compat import TESTED, sapien_import_problem

    rows: list[Row] = []
    rows.append(_versioned("Python", "python", platform.python_version()))

    try:
        import torch
    except ImportError:
        rows.append(Row("torch", "missing", False, "pip install torch==2.13.0 (CPU) or a CUDA build"))
        return rows
    rows.append(_versioned("torch", "torch", torch.__version__))
    cuda = torch.cuda.is_available()
    rows.append(Row("CUDA", torch.cuda.get_device_name(0) if cuda else "not available (CPU path)", True))
    for name, package in (("numpy", "numpy"), ("gymnasium", "gymnasium"), ("gsplat", "gsplat"),
                          ("ManiSkill", "mani_skill"), ("SAPIEN", "sapien")):
        version = _version(package)
        if version is None:
            rows.append(Row(name, "missing", False, f"pip install '{package}{TESTED[package]}'"))
        elif package == "gsplat":
            state, ok, fix = _gsplat_extension_state(cuda)
            row = _versioned(name, package, version, state)
            rows.append(row if ok else Row(name, row.value, False, fix))
        else:
            rows.append(_versioned(name, package, version))
    sp = _version("sapien")
    if sp is None:
        return rows
    problem = sapien_import_problem()
    if problem:
        rows.append(Row("SAPIEN import", "pkg_resources missing", False, problem))
        return rows
    vulkan_fix = ("install a Vulkan driver: bash scripts/ensure_vulkan.sh (Mesa lavapipe >= 25 on CPU "
                  "machines; Debian 12 has it in bookworm-backports)")
    try:
        probe = subprocess.run([sys.executable, "-c", _SAPIEN_PROBE], capture_output=True, text=True, timeout=120)
        out = dict(line.split(" ", 1) for line in probe.stdout.splitlines() if " " in line)
    except subprocess.TimeoutExpired:
        probe, out = None, {}
    if "VULKAN" in out:
        rows.append(Row("SAPIEN Vulkan", f"{sp}: {out['VULKAN']}", True))
    else:
        err = (probe.stderr.strip().splitlines() or ["no output"])[-1] if probe else "timed out"
        rows.append(Row("SAPIEN Vulkan", f"{sp}: no usable Vulkan device ({err[:80]})", False, vulkan_fix))
    physx_ok = out.get("PHYSX") == "ok"
    rows.append(Row("CPU PhysX", "steps" if physx_ok else "failed", physx_ok,
                    "" if physx_ok else "see the SAPIEN row; reinstall sapien"))

    from gsenv.backends import gpu_physx_library, resolve_physics_backend, resolve_render_backend

    physics = resolve_physics_backend("auto")
    why = "" if physics == "physx_cuda" else (
        f" (GPU PhysX library not at {gpu_physx_library()})" if cuda else " (no CUDA)")
    gpu_check = _gpu_check_row() if physics == "physx_cuda" else None
    if gpu_check is not None and gpu_check.value.startswith("failed"):
        physics, why = "physx_cpu", " (GPU PhysX failed its self-check)"
    rows.append(Row("physics backend", physics + why, True))
    if gpu_check is not None:
        rows.append(gpu_check)
    rows.append(Row("render backend", resolve_render_backend("auto", "cuda" if cuda else "cpu"), True))
    rows.append(_image_jitter_row(cuda))
    rows.extend(_asset_rows())
    return rows


def _image_jitter_row(cuda: bool) -> Row:
    """How domain randomisation's image colour runs: one fused Triton kernel on CUDA, else torch ops."""
    if not cuda:
        return Row("image jitter", "torch ops (no CUDA)", True)
    version = _version("triton")
    if version is None:
        return Row("image jitter", "torch ops (triton is not installed): slower", True,
                   "pip install triton (torch's CUDA wheels bring it)", warn=True)
    return Row("image jitter", f"one fused Triton kernel (triton {version})", True)


def _gpu_check_row() -> Row:
    """The cached verdict of `auto`'s GPU PhysX self-check (gsenv.physics.gpu_check); runs nothing."""
    from gsenv.physics.gpu_check import cached_verdict

    hit, path = cached_verdict("physx_cuda", "physx_cpu")
    if hit is None:
        return Row("GPU PhysX self-check", "not run yet", True,
                   "runs once on the first env with sim_backend='auto' (about a minute)")
    if hit.get("ok"):
        return Row("GPU PhysX self-check", f"passed: {hit.get('reason', '')}", True)
    return Row("GPU PhysX self-check", f"failed: {hit.get('reason', '')}", True,
               f"auto uses physx_cpu here; delete {path} to check again")


def _asset_rows() -> list[Row]:
    """The asset root, the default scene's build and the known datasets."""
    from gsenv.scene_build.doctor import asset_rows

    return [Row(*r) for r in asset_rows()]


def format_table(rows: list[Row]) -> str:
    w_name = max(len(r.name) for r in rows)
    # (statuses: OK, WARN = works but outside the tested window, FIX = broken, with the fix)
    w_val = min(max(len(r.value) for r in rows), 70)
    lines = []
    for r in rows:
        status = "FIX" if not r.ok else "WARN" if r.warn else "OK "
        line = f"{status}  {r.name:<{w_name}}  {r.value:<{w_val}}"
        if r.fix:
            line += f"  -> {r.fix}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def main() -> int:
    rows = collect()
    print(format_table(rows))
    failed = [r.name for r in rows if not r.ok]
    if failed:
        print(f"\ngsenv doctor: {len(failed)} problem(s): {', '.join(failed)}")
        return 1
    print("\ngsenv doctor: the CPU path works.")
    return 0


def add_commands(sub) -> None:
    parser = sub.add_parser("doctor", help="check this machine: versions, Vulkan, backends, assets",
                            description="Print versions, the Vulkan device, the backends gsenv will use and "
                                        "the scene bundles present; exit 0 when the CPU path works.")
    parser.set_defaults(func=lambda args: main())
