"""How far is the splat scene from the real cell? A real recording (a LeRobot v2.1 dataset of the real
robot's joint positions and camera frames) against the scene rendered at the same joint positions.

- :func:`recording.read_recording`: one episode of the dataset -> :class:`recording.Recording`
  (which columns are the joints, which video is which scene camera: `QposMapping`, camera_mapping).
- :func:`compare.compare_recording`: per camera and frame PSNR / SSIM (whole image and the robot's
  pixels), the silhouette's offset against the real edges, a fitted camera-pose correction
  (:mod:`camera_fit`), verdicts against :class:`compare.Thresholds`, report.json and a contact sheet.
- :mod:`metrics`: the image measures; :mod:`kinematics`: joint positions -> body poses.

The command line, ``gsenv real compare``, lives in :mod:`gsenv.tools.real_cli`.

Cheap to import: heavy modules load on first use.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "read_recording": "gsenv.realgap.recording",
    "Recording": "gsenv.realgap.recording",
    "RecordingError": "gsenv.realgap.recording",
    "QposMapping": "gsenv.realgap.recording",
    "compare_recording": "gsenv.realgap.compare",
    "CompareReport": "gsenv.realgap.compare",
    "Thresholds": "gsenv.realgap.compare",
    "CameraCorrection": "gsenv.realgap.camera_fit",
    "fit_camera_corrections": "gsenv.realgap.camera_fit",
    "robot_body_poses": "gsenv.realgap.kinematics",
}

__all__ = ["CameraCorrection", "CompareReport", "QposMapping", "Recording", "RecordingError", "Thresholds",
           "compare_recording", "fit_camera_corrections", "read_recording", "robot_body_poses"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gsenv.realgap' has no attribute {name!r}")
