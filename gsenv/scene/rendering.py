"""From a scene bundle to the splat renderer and its cameras (shared by the env, the tools and the
alignment check)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gsenv.scene.bundle import CameraSpec, SceneBundle
from gsenv.splat.cameras import Cameras, image_size_hw
from gsenv.splat.renderer import SceneRenderer


def make_renderer(bundle: SceneBundle, backend: str = "auto", device: str | torch.device = "cpu",
                  cache_background: bool = True) -> SceneRenderer:
    """A SceneRenderer with the bundle's background (in the simulator's frame), its bodies (robot
    links and objects, in their own frames) and its backdrop image or colour.

    backend: the splat rasteriser ("auto", "gsplat" or "torch", as the env's render_backend).
    """
    backdrop: Sequence[float] | np.ndarray = bundle.background_color
    if bundle.backdrop_image is not None:
        import imageio.v3 as iio

        backdrop = np.asarray(iio.imread(bundle.backdrop_image))[..., :3]
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


def camera_specs(bundle: SceneBundle, names: Sequence[str] | None = None,
                 image_size: int | tuple[int, int] | None = None) -> list[CameraSpec]:
    """The named bundle cameras (default: all), rendering image_size = (height, width) or an int for
    square images (intrinsics
    rescaled, see CameraSpec.at_resolution), or None: each camera's calibrated size, which must then
    be the same for all of them (one image size per Cameras batch).

    Raises ValueError for a scene without cameras, an unknown name or sizes that do not agree.
    """
    if not bundle.cameras:
        raise ValueError(f"scene {bundle.name!r} has no cameras: add one to scene.json (name, width, height, K, "
                         "cam_to_base)")
    specs = []
    for name in names or [c.name for c in bundle.cameras]:
        try:
            specs.append(bundle.camera(name))
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
    return at_one_size(specs, image_size)


def at_one_size(specs: list, image_size: int | tuple[int, int] | None) -> list:
    """Camera specs (fixed or on links) rendering image_size = (height, width) or an int, or None: their
    calibrated size, which must then agree (one image size per Cameras batch)."""
    if image_size is None:
        sizes = {(c.height, c.width) for c in specs}
        if len(sizes) > 1:
            raise ValueError(f"cameras {[c.name for c in specs]} have different calibrated sizes (height, width) "
                             f"{sorted(sizes)}: pass image_size=(height, width)")
        height, width = sizes.pop()
    else:
        height, width = image_size_hw(image_size)
    return [c.at_resolution(width, height) for c in specs]


def bundle_cameras(bundle: SceneBundle, names: Sequence[str] | None, num_envs: int,
                   device: str | torch.device = "cpu", image_size: int | tuple[int, int] | None = None) -> Cameras:
    """Cameras [num_envs, C] of the named bundle cameras (default: all), the same in every env,
    rendering image_size = (height, width) or None: each camera's calibrated size (see camera_specs).
    The robot base is the world origin."""
    if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    specs = camera_specs(bundle, names, image_size)
    Ks = torch.tensor(np.stack([c.K for c in specs]), dtype=torch.float32, device=device)  # [C, 3, 3]
    viewmats = torch.tensor(np.stack([c.world_to_cam for c in specs]), dtype=torch.float32, device=device)  # [C, 4, 4]
    return Cameras.shared(Ks, viewmats, int(specs[0].width), int(specs[0].height), int(num_envs))
