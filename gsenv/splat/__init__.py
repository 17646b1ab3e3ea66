"""Gaussian-splatting core: gaussians, PLY IO, spherical harmonics, rasterisers and the scene renderer.

Modules (import what you need; nothing heavy is imported here):
    gaussians   `Gaussians` (parameters of N 3D gaussians)
    ply         `load_ply`, `save_ply`, `PlyError`
    sh          spherical-harmonic evaluation and rotation
    rotations   quaternion / rigid-transform maths
    cameras     `Cameras` and SAPIEN / OpenGL -> OpenCV conversions, intrinsics scaling
    rasterize   `rasterize(..., backend="auto" | "gsplat" | "torch")`
    torch_raster  the pure-PyTorch reference rasteriser
    renderer    `SceneRenderer` (static background + named rigid bodies, background cache)
"""
