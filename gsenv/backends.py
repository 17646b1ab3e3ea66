"""Which physics and render backends `auto` resolves to on this machine (and why)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["PHYSICS_BACKENDS", "RENDER_BACKENDS", "cuda_available", "gpu_physx_library", "resolve_physics_backend",
           "resolve_render_backend"]

logger = logging.getLogger(__name__)

PHYSICS_BACKENDS = ("auto", "physx_cpu", "physx_cuda")
RENDER_BACKENDS = ("auto", "gsplat", "torch")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def gpu_physx_library() -> Path:
    """Where SAPIEN keeps its GPU PhysX library (it downloads it there on first GPU use)."""
    import sapien.physx

    name = "PhysXGpu_64.dll" if sys.platform == "win32" else "libPhysXGpu_64.so"
    return Path.home() / ".sapien" / "physx" / sapien.physx.version() / name


def resolve_physics_backend(requested: str = "auto") -> str:
    """`auto` -> physx_cuda only with CUDA *and* SAPIEN's GPU PhysX library already on disk.

    This only says what the machine has; whether the GPU library actually runs is checked on first use
    by gsenv.physics.gpu_check.checked_physics_backend (what environments call), which falls back to
    physx_cpu with a warning when it does not."""
    if requested not in PHYSICS_BACKENDS:
        raise ValueError(f"sim_backend must be one of {PHYSICS_BACKENDS}, got {requested!r}")
    if requested != "auto":
        return requested
    if cuda_available() and gpu_physx_library().is_file():
        choice, why = "physx_cuda", "CUDA present and GPU PhysX library on disk"
    elif cuda_available():
        choice, why = "physx_cpu", f"GPU PhysX library not on disk ({gpu_physx_library()})"
    else:
        choice, why = "physx_cpu", "no CUDA device"
    logger.info("physics backend auto -> %s (%s)", choice, why)
    return choice


def resolve_render_backend(requested: str = "auto", device: str = "cpu") -> str:
    """`auto` -> gsplat on a CUDA device, the pure-torch reference rasteriser otherwise."""
    if requested not in RENDER_BACKENDS:
        raise ValueError(f"render_backend must be one of {RENDER_BACKENDS}, got {requested!r}")
    on_cuda = str(device).startswith("cuda")
    if requested == "gsplat" and not (on_cuda and cuda_available()):
        raise ValueError(
            "render_backend='gsplat' needs a CUDA device (gsplat has no CPU kernels); "
            f"got device={device!r}, CUDA available={cuda_available()}. "
            "Use render_backend='torch' (or 'auto') on CPU."
        )
    if requested != "auto":
        return requested
    return "gsplat" if on_cuda else "torch"
