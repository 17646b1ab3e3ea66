"""Gaussian-splatting core: gaussians, PLY IO, spherical harmonics, rasterisers and the scene renderer.

Modules (import what you need; nothing heavy is imported here):
    gaussians   `Gaussians` (parameters of N 3D gaussians)
    ply         `load_ply`, `save_ply`, `PlyError`
    sh          spherical-harmonic evaluation and rotation
    rotations   quaternion / rigid-transform maths
    cameras     `Cameras` and SAPIEN / OpenGL -> OpenCV conversions, intrinsics scaling
    rasterize   `rasterize(..., backend="auto" | "gsplat" | "torch")`
    gsplat_raster  the gsplat (CUDA) backend: one gsplat.rasterization call per render
    torch_raster   the pure-PyTorch reference rasteriser (gsplat's maths, CPU or CUDA)
    renderer    `SceneRenderer`, `RenderOutput` (static background + named rigid bodies, background cache)
    bench       GPU render benchmark (`python -m gsenv.splat.bench`) and a synthetic table-top scene
"""
