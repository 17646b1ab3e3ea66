"""From a scene bundle to the splat renderer and its cameras (shared by the env, the demo and checks)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from gsenv.scene.bundle import SceneBundle
from gsenv.splat.cameras import Cameras
from gsenv.splat.renderer import SceneRenderer


def make_renderer(bundle: SceneBundle, backend: str = "auto", device: str | torch.device = "cpu",
                  cache_background: bool = True) -> SceneRenderer:
    """A SceneRenderer with the bundle's background (in the simulator's frame), its bodies (robot
    links and objects, in their own frames) and its backdrop image or colour."""
    backdrop: Sequence[float] | np.ndarray = bundle.background_color
    if bundle.backdrop_image is not None:
        import imageio.v3 as iio

        backdrop = np.asarray(iio.imread(bundle.backdrop_image))[..., :3]
    background = bundle.background_in_sim()
    return SceneRenderer(None if background is None else background.to(device),
                         {name: g.to(device) for name, g in bundle.body_gaussians().items()},
                         backend=backend, backdrop=backdrop, cache_background=cache_background, device=device,
                         eps2d=bundle.eps2d)


def bundle_cameras(bundle: SceneBundle, names: Sequence[str] | None, width: int | None, height: int | None,
                   batch_size: int, device: str | torch.device = "cpu") -> Cameras:
    """Cameras [B, C] of the named bundle cameras (default: all), rendering width x height (default:
    each camera's calibrated size; all must then agree). The robot base is the world origin."""
    specs = [bundle.camera(n) for n in names] if names else list(bundle.cameras)
    if not specs:
        raise ValueError(f"scene {bundle.name!r} has no cameras")
    if width is None or height is None:
        sizes = {(c.width, c.height) for c in specs}
        if len(sizes) > 1:
            raise ValueError(f"cameras {[c.name for c in specs]} have different sizes {sorted(sizes)}: pass image_size")
        width, height = sizes.pop()
    specs = [c.at_resolution(width, height) for c in specs]
    Ks = torch.tensor(np.stack([c.K for c in specs]), dtype=torch.float32, device=device)
    vms = torch.tensor(np.stack([c.world_to_cam for c in specs]), dtype=torch.float32, device=device)
    B = batch_size
    return Cameras(Ks.expand(B, -1, -1, -1), vms.expand(B, -1, -1, -1), int(width), int(height))
