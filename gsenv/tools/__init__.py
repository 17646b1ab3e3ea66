"""The tools layer: the `gsenv` command line, doctor, demo and benchmarks.

Built on the public API of the library (splat, sim, physics, scene, assets) and of the env; nothing
below this package imports it.
"""
