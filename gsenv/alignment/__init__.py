"""Alignment of the splat scene with the simulator's geometry.

- :func:`check.check_alignment`: splat per-body masks vs SAPIEN's mesh segmentation over random
  states -> :class:`check.AlignmentReport` (per body: pixels, IoU, centroid offset; JSON; overlays).
- :func:`structure.check_structure`: every body present, frames consistent (no rendering).
- :func:`similarity.fit_similarity`: least-squares similarity (Umeyama) from >= 3 point pairs,
  for scene.json's ``splat_to_sim``.
- :func:`overlay.splat_vs_mesh`: the side-by-side of one state (used by ``gsenv demo``).

The command line, ``gsenv scene check``, lives in :mod:`gsenv.tools.scene_cli`.

Cheap to import: heavy modules load on first use.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "check_alignment": "gsenv.alignment.check",
    "AlignmentReport": "gsenv.alignment.check",
    "check_structure": "gsenv.alignment.structure",
    "StructureReport": "gsenv.alignment.structure",
    "fit_similarity": "gsenv.alignment.similarity",
    "similarity_residuals": "gsenv.alignment.similarity",
    "splat_vs_mesh": "gsenv.alignment.overlay",
    "MeshView": "gsenv.alignment.mesh_view",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gsenv.alignment' has no attribute {name!r}")
