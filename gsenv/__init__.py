"""gsenv: photo-real, GPU-batched Gaussian-splatting simulation for robot RL.

Importing this package is cheap: it registers the environment ids with gymnasium (string entry
points) and imports neither ManiSkill nor SAPIEN nor torch. Public names below load lazily.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    # Gaussian-splatting core (gsenv.splat)
    "Gaussians": "gsenv.splat.gaussians",
    "load_ply": "gsenv.splat.ply",
    "save_ply": "gsenv.splat.ply",
    "PlyError": "gsenv.splat.ply",
    "SceneRenderer": "gsenv.splat.renderer",
    "RenderOutput": "gsenv.splat.renderer",
    "Cameras": "gsenv.splat.cameras",
    "rasterize": "gsenv.splat.rasterize",
    # simulation (gsenv.sim) and the environment
    "scripted_expert_action": "gsenv.sim.expert",
    "GSEnv": "gsenv.env",
    "DomainRandomization": "gsenv.scene.randomization",
    # tasks (gsenv.tasks): the seam, and registering your own
    "Task": "gsenv.tasks.base",
    "register_task": "gsenv.registration",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gsenv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


from gsenv import registration as _registration  # noqa: E402  (cheap: gymnasium only)

_registration.register_envs()
