"""From a scene bundle to the splat renderer (shared by the env, the tools and the alignment check);
its cameras come from gsenv.scene.camera_rig."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gsenv.scene.bundle import SceneBundle
from gsenv.splat.backdrop import read_backdrop_image
from gsenv.splat.renderer import SceneRenderer

__all__ = ["make_renderer", "body_renderer"]


def make_renderer(bundle: SceneBundle, backend: str = "auto", device: str | torch.device = "cpu",
                  cache_background: bool = True) -> SceneRenderer:
    """A SceneRenderer with the bundle's background (in the simulator's frame), its bodies (robot
    links and objects, in their own frames) and its backdrop image or colour.

    backend: the splat rasteriser ("auto", "gsplat" or "torch", as the env's render_backend).
    """
    backdrop: Sequence[float] | np.ndarray = bundle.background_color
    if bundle.backdrop_image is not None:
        backdrop = read_backdrop_image(bundle.backdrop_image)  # by bit depth and layout, or refused naming it
    background = bundle.background_in_sim()
    return SceneRenderer(None if background is None else background.to(device),
                         {name: g.to(device) for name, g in bundle.body_gaussians().items()},
                         backend=backend, backdrop=backdrop, cache_background=cache_background, device=device,
                         eps2d=bundle.eps2d)


def body_renderer(bundle: SceneBundle, backend: str = "auto", device: str | torch.device = "cpu") -> SceneRenderer:
    """A SceneRenderer of the bundle's bodies only (robot links and objects): no background gaussians,
    the plain background colour behind them (never the backdrop image), nothing cached. What the
    alignment check compares with the simulator's meshes."""
    return SceneRenderer(None, {name: g.to(device) for name, g in bundle.body_gaussians().items()},
                         backend=backend, backdrop=bundle.background_color, cache_background=False, device=device,
                         eps2d=bundle.eps2d)
