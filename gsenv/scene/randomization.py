"""Visual domain randomisation: the ranges (`DomainRandomization`), and their per-env draws.

Every range is (low, high), drawn uniformly per env at each reset of that env from a torch.Generator
seeded by the env's reset seed (or its episode id, when one is given): the same seed or episode id
gives the same draw, whatever the other envs do. The defaults change nothing.

| key | unit, allowed values | what it does |
|---|---|---|
| camera_translation | metres, [-0.5, 0.5] | offset of each camera along its own axes (x right, y down, z fwd) |
| camera_rotation | degrees, [-45, 45] | rotation of each camera about its own axes (x, then y, then z) |
| focal_scale | factor, (0, 4] | both focal lengths of each camera times this (principal point kept) |
| light | factor, [0, 4] | global light intensity: the image times this |
| tint | factor, [0, 4] | per-channel gain (R, G, B drawn separately) |
| brightness | image units, [-1, 1] | added to every channel |
| contrast | factor, [0, 4] | about the image's mean grey |
| saturation | factor, [0, 4] | 0 grey, 1 unchanged |
| hue | turns, [-0.5, 0.5] | rotation of the chroma plane (YIQ) |
| gamma | exponent, (0, 4] | x ** gamma after clamping to [0, 1] |
| noise_std | image units, [0, 1] | std of Gaussian sensor noise per env (each frame: one of 32 noise images) |
| object_color | colour units, [-1, 1] | shift of each RGB channel of the DC colour of a body's gaussians |
| object_bodies | body names | the bodies object_color shifts (default: all but the robot's, the task's objects) |
| backdrop_images | a folder | one of its .png / .jpg images, drawn per env, behind everything |
| backdrop_color | ((r, g, b), (r, g, b)) in [0, 1] | a solid backdrop colour per env, each channel drawn in its range |

Camera offsets apply per env and camera (attached cameras move relative to their mount); the image
colour per env. The order of the draws is fixed, so a range left at its default still draws (its
value is then the default): turning one range on does not change what the others draw.

``domain_randomization="default"`` (`DomainRandomization.default()`) is a sound starting point: the
ranges of `DEFAULT_RANGES`, each with its reason in `DEFAULT_REASONS` (a published recipe or gsenv's
own calibration threshold); the ranges it leaves out stay off.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gsenv.geometry import rpy_to_rotmat
from gsenv.ranges import DEFAULT_PRESET, checked_range, is_number, settings_from_any
from gsenv.sim import names
from gsenv.splat.appearance import ImageJitter, Look, noise_bank, saturation_hue_matrix

__all__ = ["IMAGE_SUFFIXES", "DEFAULT_PRESET", "DEFAULT_RANGES", "DEFAULT_REASONS", "DomainRandomization",
           "backdrop_files", "load_backdrops", "draw_seed", "fold32", "RandomizedLook"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# (lowest, highest, whether the lowest itself is allowed) per range
_BOUNDS = {
    "camera_translation": (-0.5, 0.5, True), "camera_rotation": (-45.0, 45.0, True),
    "focal_scale": (0.0, 4.0, False), "light": (0.0, 4.0, True), "tint": (0.0, 4.0, True),
    "brightness": (-1.0, 1.0, True), "contrast": (0.0, 4.0, True), "saturation": (0.0, 4.0, True),
    "hue": (-0.5, 0.5, True), "gamma": (0.0, 4.0, False), "noise_std": (0.0, 1.0, True),
    "object_color": (-1.0, 1.0, True),
}

# The default preset: what a policy meant for a real, calibrated cell should be robust to. Sources:
# openpi's training augmentation of pi0 (augmax ColorJitter(brightness=0.3, contrast=0.4, saturation=0.5),
# a 95% random crop resized back and a +-5 degree rotation of the third-person images; as RLinf's copy
# rlinf/models/embodiment/openpi_rlinf/pi0_model/model.py reproduces it), ManiSkill's camera-randomisation
# tutorial (docs/source/user_guide/tutorials/domain_randomization.md: +-2.5 cm and +-pi/24 for a camera
# placed by hand), and `gsenv real compare`'s calibration threshold (2 mm, 0.2 degrees).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "camera_translation": (-0.01, 0.01),
    "camera_rotation": (-1.5, 1.5),
    "focal_scale": (1.0, 1.05),
    "light": (0.7, 1.3),
    "contrast": (0.6, 1.4),
    "saturation": (0.5, 1.5),
}
DEFAULT_REASONS: dict[str, str] = {
    "camera_translation": "5x the 2 mm a camera may be off and still pass `gsenv real compare`, well inside the "
                          "+-2.5 cm of ManiSkill's camera-randomisation tutorial (a camera placed by hand, not "
                          "calibrated): a bumped or re-mounted camera",
    "camera_rotation": "openpi's 95% random crop moves the image by up to +-2.5% of its width, +-1.5 degrees of the "
                       "calibrated third-person camera (fx 604 px at 640 px); 7x the 0.2 degrees `gsenv real compare` "
                       "accepts (one range for the three axes, so openpi's +-5 degree in-plane turn is not copied)",
    "focal_scale": "openpi's 95% crop resized back to the full image: a zoom of 1 to 1/0.95 = 1.053",
    "light": "openpi's brightness jitter 0.3 (augmax ColorJitter; GR00T N1.5 uses the same 0.3): the image times "
             "0.7 to 1.3",
    "contrast": "openpi's contrast jitter 0.4: 0.6 to 1.4 about the mean grey",
    "saturation": "openpi's saturation jitter 0.5: 0.5 to 1.5",
}
"""Why each range of the default preset is what it is (README: "Domain randomisation")."""

# Salt mixed into an episode id so that episode k and seed k draw differently.
_EPISODE_SALT = 0x5EED_0000_0000
_MASK32, _MASK64 = 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class DomainRandomization:
    """Ranges of visual domain randomisation, each (low, high); see the module doc for units and
    bounds. The defaults randomise nothing. Pass one (or a dict of some of its keys) as
    ``gym.make(..., domain_randomization=...)``."""

    camera_translation: tuple[float, float] = (0.0, 0.0)
    camera_rotation: tuple[float, float] = (0.0, 0.0)
    focal_scale: tuple[float, float] = (1.0, 1.0)
    light: tuple[float, float] = (1.0, 1.0)
    tint: tuple[float, float] = (1.0, 1.0)
    brightness: tuple[float, float] = (0.0, 0.0)
    contrast: tuple[float, float] = (1.0, 1.0)
    saturation: tuple[float, float] = (1.0, 1.0)
    hue: tuple[float, float] = (0.0, 0.0)
    gamma: tuple[float, float] = (1.0, 1.0)
    noise_std: tuple[float, float] = (0.0, 0.0)
    object_color: tuple[float, float] = (0.0, 0.0)
    object_bodies: tuple[str, ...] | None = None
    """None: every body of the renderer that is not the robot's (the env's renderer draws the task's objects)."""
    backdrop_images: str | None = None
    backdrop_color: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    def __post_init__(self) -> None:
        for name in _BOUNDS:
            value = checked_range("domain_randomization", name, getattr(self, name), _BOUNDS[name])
            object.__setattr__(self, name, value)
        bodies = self.object_bodies
        if bodies is None:
            pass
        elif isinstance(bodies, str) or not isinstance(bodies, Sequence) or not all(isinstance(b, str) for b in bodies):
            raise ValueError(f"domain_randomization 'object_bodies' must be a list of body names, got {bodies!r}")
        else:
            object.__setattr__(self, "object_bodies", tuple(bodies))
        if self.backdrop_images is not None and self.backdrop_color is not None:
            raise ValueError("domain_randomization: give backdrop_images (a folder) or backdrop_color, not both")
        if self.backdrop_images is not None:
            folder = Path(self.backdrop_images)
            if not folder.is_dir():
                raise ValueError(f"domain_randomization 'backdrop_images' must be a folder of images, "
                                 f"got {str(folder)!r} (not a directory)")
            if not backdrop_files(folder):
                raise ValueError(f"domain_randomization 'backdrop_images' folder {str(folder)!r} has no "
                                 f"{'/'.join(IMAGE_SUFFIXES)} images")
            object.__setattr__(self, "backdrop_images", str(folder))
        if self.backdrop_color is not None:
            c = np.asarray(self.backdrop_color, dtype=object)
            ok = c.shape == (2, 3) and all(is_number(v) for v in c.ravel())
            c = np.asarray(self.backdrop_color, dtype=np.float64) if ok else None
            if not ok or not np.isfinite(c).all() or (c < 0).any() or (c > 1).any() or (c[0] > c[1]).any():
                raise ValueError("domain_randomization 'backdrop_color' must be ((r, g, b) low, (r, g, b) high) in "
                                 f"[0, 1] with low <= high, got {self.backdrop_color!r}")
            object.__setattr__(self, "backdrop_color", tuple(tuple(float(v) for v in row) for row in c))

    @property
    def moves_cameras(self) -> bool:
        """Whether a draw moves the cameras or scales their focal lengths."""
        return (self.camera_translation, self.camera_rotation, self.focal_scale) != ((0.0, 0.0), (0.0, 0.0),
                                                                                      (1.0, 1.0))

    @classmethod
    def default(cls) -> DomainRandomization:
        """The default preset: DEFAULT_RANGES (reasons in DEFAULT_REASONS), every other range off."""
        return cls(**DEFAULT_RANGES)

    @classmethod
    def from_any(cls, value: Any) -> DomainRandomization | None:
        """None (off), "default" (the preset, see `default`), a DomainRandomization, or a dict of its keys
        -> a checked DomainRandomization (or None); ValueError naming an unknown key (and the nearest
        known one), and for True / False (which ranges "on" would mean is not for gsenv to guess)."""
        return settings_from_any(cls, value, "domain_randomization")


def backdrop_files(folder: str | Path) -> list[Path]:
    """The images of a backdrop folder, sorted by name (the drawn index refers to this order)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_backdrops(folder: str | Path, width: int, height: int, device) -> Tensor:
    """float32 [K, H, W, 3] in [0, 1]: the folder's images (gsenv.splat.backdrop.read_backdrop_image:
    by bit depth and channel layout, size bounded) resized to the render size (bilinear, antialiased)."""
    from gsenv.splat.backdrop import Backdrop, read_backdrop_image

    return torch.stack([Backdrop(read_backdrop_image(p), torch.device(device)).at(width, height)
                        for p in backdrop_files(folder)])


def fold32(value: int) -> int:
    """value's 64 bits folded into the 32 that torch's CPU generator keeps (it drops the upper ones,
    so seeds that differ only there would draw alike); values below 2**32 are kept as they are."""
    v = int(value) & _MASK64
    return (v ^ (v >> 32)) & _MASK32


def _mix64(value: int) -> int:
    """splitmix64's finaliser: nearby inputs to unrelated 64-bit outputs."""
    z = int(value) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & _MASK64
    return z ^ (z >> 31)


def draw_seed(seed: int, episode_id: int | None) -> int:
    """The generator seed (< 2**32) of one env's draw: its reset seed (folded), or, when it has an
    episode id, a hash of the salted id, so that episode k does not draw what seed k draws."""
    return fold32(seed) if episode_id is None else fold32(_mix64(_EPISODE_SALT + int(episode_id)))


class RandomizedLook:
    """The drawn values of B envs ([B, ...] tensors on `device`) and what the renderer takes from them.

    Args:
        config: the ranges.
        num_envs: B; num_cameras: C (each env and camera gets its own camera offsets).
        body_names: the renderer's bodies, in its order (object_color shifts those in object_bodies, or
            every one but the robot's links when object_bodies is None).
        width, height: the render size (backdrop images are resized to it once).
        device: where the values live.
    """

    def __init__(self, config: DomainRandomization, num_envs: int, num_cameras: int, body_names: Sequence[str],
                 width: int, height: int, device) -> None:
        if config.object_bodies is None:
            robot = {*names.ROBOT_LINK_NAMES, names.ROBOT_ROOT}
            config = replace(config, object_bodies=tuple(b for b in body_names if b not in robot))
        missing = [b for b in config.object_bodies if b not in body_names]
        if missing:
            raise ValueError(f"domain_randomization 'object_bodies' {missing} are not bodies of this scene "
                             f"(it has {list(body_names)})")
        self.config, self.B, self.C, self.device = config, int(num_envs), int(num_cameras), torch.device(device)
        self.body_names = tuple(body_names)
        self._object_index = torch.tensor([self.body_names.index(b) for b in config.object_bodies], dtype=torch.long)
        self._backdrops = None if config.backdrop_images is None else load_backdrops(
            config.backdrop_images, width, height, self.device)  # [K, H, W, 3]
        B, C, n_obj = self.B, self.C, len(config.object_bodies)
        z = lambda *shape: torch.zeros((B,) + shape, device=self.device)  # noqa: E731
        self.values: dict[str, Tensor] = {
            "camera_translation": z(C, 3), "camera_rotation": z(C, 3), "focal_scale": z(C) + 1,
            "light": z() + 1, "tint": z(3) + 1, "brightness": z(), "contrast": z() + 1, "saturation": z() + 1,
            "hue": z(), "gamma": z() + 1, "noise_std": z(), "object_color": z(n_obj, 3),
            "backdrop_index": torch.zeros(B, dtype=torch.long, device=self.device),
            "backdrop_color": z(3), "noise_key": torch.zeros(B, dtype=torch.int32, device=self.device),
        }
        self.width, self.height = int(width), int(height)
        self._bank: Tensor | None = None
        self._look: Look | None = None
        self._offsets: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ draws (at reset)
    def _draw_one(self, seed: int) -> dict[str, Tensor]:
        """One env's values, from its own generator (a fixed order of draws)."""
        cfg, C, n_obj = self.config, self.C, len(self.config.object_bodies)
        g = torch.Generator().manual_seed(int(seed))

        def u(rng, *shape):
            lo, hi = rng
            return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

        out = {"camera_translation": u(cfg.camera_translation, C, 3), "camera_rotation": u(cfg.camera_rotation, C, 3),
               "focal_scale": u(cfg.focal_scale, C), "light": u(cfg.light), "tint": u(cfg.tint, 3),
               "brightness": u(cfg.brightness), "contrast": u(cfg.contrast), "saturation": u(cfg.saturation),
               "hue": u(cfg.hue), "gamma": u(cfg.gamma), "noise_std": u(cfg.noise_std),
               "object_color": u(cfg.object_color, n_obj, 3)}
        k = 1 if self._backdrops is None else len(self._backdrops)
        out["backdrop_index"] = torch.randint(0, k, (), generator=g)
        lo, hi = cfg.backdrop_color or ((0.0,) * 3, (0.0,) * 3)
        out["backdrop_color"] = torch.tensor(lo, dtype=torch.float64) + (
            torch.tensor(hi, dtype=torch.float64) - torch.tensor(lo, dtype=torch.float64)) * torch.rand(
            3, generator=g, dtype=torch.float64)
        out["noise_key"] = torch.randint(-2**31, 2**31 - 1, (), generator=g, dtype=torch.int64)
        return out

    def redraw(self, env_idx: Sequence[int], seeds: Sequence[int]) -> None:
        """Draw new values for the envs env_idx, env env_idx[i] from its generator seeded seeds[i]
        (see draw_seed). Runs at reset: one small generator per reset env."""
        draws = [self._draw_one(s) for s in seeds]
        idx = torch.as_tensor(list(env_idx), dtype=torch.long, device=self.device)
        for key, column in self.values.items():
            column[idx] = torch.stack([d[key] for d in draws]).to(self.device, column.dtype)
        self._look, self._offsets = None, None

    def restore(self, env_idx: Sequence[int], values: Mapping[str, Tensor]) -> None:
        """Put back the envs env_idx's values: {key: [n, ...]} with every key of ``values`` (a saved
        env state's; the caller checked keys and shapes)."""
        idx = torch.as_tensor(list(env_idx), dtype=torch.long, device=self.device)
        for key, column in self.values.items():
            column[idx] = values[key].to(self.device, column.dtype)
        self._look, self._offsets = None, None

    # ------------------------------------------------------------------ what the renderer takes
    def snapshot(self) -> dict[str, Any]:
        """The current episode's values of every env (copies, on the CPU): [B, ...] tensors, object_color
        as {body: [B, 3]}, backdrop_index only with backdrop_images, backdrop_color only with a range."""
        v = {k: t.detach().cpu().clone() for k, t in self.values.items() if k not in ("noise_key", "object_color")}
        v["object_color"] = {b: self.values["object_color"][:, i].cpu().clone()
                             for i, b in enumerate(self.config.object_bodies)}
        if self._backdrops is None:
            v.pop("backdrop_index")
        if self.config.backdrop_color is None:
            v.pop("backdrop_color")
        return v

    def camera_offsets(self) -> tuple[Tensor, Tensor]:
        """(offset [B, C, 4, 4] camera-to-randomised-camera in the camera's own frame, focal scale [B, C]):
        a camera at cam_to_world becomes cam_to_world @ offset."""
        if self._offsets is None:
            v = self.values
            T = torch.eye(4, device=self.device).repeat(self.B, self.C, 1, 1)
            T[..., :3, :3] = rpy_to_rotmat(torch.deg2rad(v["camera_rotation"]))  # about x, then y, then z
            T[..., :3, 3] = v["camera_translation"]
            self._offsets = (T, v["focal_scale"])
        return self._offsets

    def _noise_bank(self) -> Tensor:
        """float16 [K, C, H, W, 3] noise images (made once: the same on every machine)."""
        if self._bank is None:
            self._bank = noise_bank((self.C, self.height, self.width, 3), self.device)
        return self._bank

    def look(self, frame: Tensor) -> Look:
        """The renderer's Look for the current draws; frame [B] (each env's step) drives the noise."""
        if self._look is None:
            v, cfg = self.values, self.config
            shift = None
            if cfg.object_color != (0.0, 0.0):
                shift = torch.zeros(self.B, len(self.body_names), 3, device=self.device)
                shift[:, self._object_index.to(self.device)] = v["object_color"]
            backdrop = None
            if self._backdrops is not None:
                backdrop = self._backdrops[v["backdrop_index"]]  # [B, H, W, 3]
            elif cfg.backdrop_color is not None:
                backdrop = v["backdrop_color"].clone()  # [B, 3]
            image = None
            if any(getattr(cfg, k) != getattr(DomainRandomization, k) for k in
                   ("light", "tint", "brightness", "contrast", "saturation", "hue", "gamma", "noise_std")):
                image = ImageJitter(
                    gain=v["light"][:, None] * v["tint"], brightness=v["brightness"], contrast=v["contrast"],
                    color_matrix=saturation_hue_matrix(v["saturation"], v["hue"]),
                    gamma=None if cfg.gamma == (1.0, 1.0) else v["gamma"],
                    noise_std=None if cfg.noise_std == (0.0, 0.0) else v["noise_std"], noise_key=v["noise_key"],
                    noise_bank=None if cfg.noise_std == (0.0, 0.0) else self._noise_bank())
            self._look = Look(body_color_shift=shift, backdrop=backdrop, image=image)
        look = self._look
        if look.image is not None and look.image.noise_std is not None:
            look = replace(look, image=replace(look.image, frame=frame.to(self.device, torch.int32)))
        return look
