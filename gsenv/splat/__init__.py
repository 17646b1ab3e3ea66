"""Gaussian-splatting core: gaussians, PLY IO, spherical harmonics, rasterisers and the scene renderer.

Modules (import what you need; nothing heavy is imported here; rotations live in gsenv.geometry):
    gaussians   `Gaussians` (parameters of N 3D gaussians)
    ply         `load_ply`, `save_ply`, `PlyError`
    sh          spherical-harmonic evaluation and rotation
    cameras     `Cameras` and SAPIEN / OpenGL -> OpenCV conversions, intrinsics scaling
    rasterize   `rasterize(..., backend="auto" | "gsplat" | "torch")`, `DEFAULT_TILE_SIZE`
    torch_raster   the pure-PyTorch reference rasteriser (gsplat's maths, CPU or CUDA)
    rigid_raster   rigid bodies through gsplat's stages, each body's pose folded into the view matrices
    renderer    `SceneRenderer`, `RenderOutput` (static background + named rigid bodies, background cache),
                built from:
      render_splats    `RenderSplats`, `BodySplats`: the render-ready gaussian sets, background colours
      body_transforms  body poses stacked, bodies' view-dependent colour, bodies moved to the world frame
      culling          body gaussians by 5 cm cluster against the camera frusta
      view_state       `ViewState`: what a caller keeps between renders (frusta, background layer, kept
                       bodies) and tells to forget when its cameras or look change
      compositing      `Layer`s: bodies over the cached background, depth-tested; uint8
      backdrop         `Backdrop`: the colour or image behind everything
      appearance       `Look`: per-env appearance (colour shifts, backdrops, image colour and noise)
"""
