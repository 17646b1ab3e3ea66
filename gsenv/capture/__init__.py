"""Bring your own cell: one 3DGS capture of a robot cell -> a scene bundle.

- :func:`build.build_scene`: frame, objects, segmentation, bodies re-expressed in their frames.
- :func:`build.write_scene`: the bundle on disk (scene.json + PLYs + URDF + meshes, build.json).
- :mod:`inputs`: each input checked where it enters (:class:`inputs.CaptureError`).

The command line, ``gsenv scene build``, lives in :mod:`gsenv.tools.scene_cli`.
"""
