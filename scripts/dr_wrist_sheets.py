"""The README's contact sheets of domain randomisation and the wrist camera (CPU reference renderer).

    python scripts/dr_wrist_sheets.py [--out docs/img] [--density 1.0]

- dr_contact_sheet.png: 8 envs reset with one seed under the README's example ranges, third-person view;
- wrist_contact_sheet.png: 3 envs driven by the scripted expert, third-person | wrist view side by side,
  one row per env, columns at steps 0, 12, 24, 36.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import gsenv
from gsenv.media import tile_frames

EXAMPLE = dict(camera_translation=(-0.02, 0.02), camera_rotation=(-3.0, 3.0), focal_scale=(0.92, 1.08),
               light=(0.7, 1.3), tint=(0.9, 1.1), brightness=(-0.05, 0.05), contrast=(0.8, 1.2),
               saturation=(0.6, 1.4), hue=(-0.05, 0.05), gamma=(0.8, 1.25), noise_std=(0.0, 0.02),
               object_color=(-0.35, 0.35), backdrop_color=((0.1, 0.1, 0.1), (0.9, 0.9, 0.9)))
SIZE = (180, 240)


def _make(density: float, num_envs: int, **kw):
    return gym.make(gsenv.registration.ENV_ID, num_envs=num_envs, image_size=SIZE, scene_density=density,
                    render_backend="torch", device="cpu", num_workers=1, **kw)


def dr_sheet(density: float) -> np.ndarray:
    env = _make(density, 8, obs_mode="rgb", domain_randomization=EXAMPLE)
    try:
        obs, _ = env.reset(seed=1)
        return tile_frames(obs["sensor_data"]["3rd_view_camera"]["rgb"].numpy(), 2, gap=4, fill=255)
    finally:
        env.close()


def wrist_sheet(density: float, steps=(0, 12, 24, 36)) -> np.ndarray:
    env = _make(density, 3, obs_mode="state", cameras=["3rd_view_camera", "wrist_camera"])
    u = env.unwrapped
    try:
        env.reset(seed=2)
        shots = []
        for t in range(max(steps) + 1):
            if t in steps:
                rgb = u.renderer.render(u.get_body_poses(), u.cameras).rgb.numpy()  # [B, 2, H, W, 3]
                shots.append(np.concatenate([rgb[:, 0], rgb[:, 1]], 2))  # third-person | wrist
            env.step(gsenv.scripted_expert_action(**u.get_expert_inputs()))
        tiles = np.stack(shots, 1).reshape((-1,) + shots[0].shape[1:])  # row per env, column per step
        return tile_frames(tiles, 3, gap=4, fill=255)
    finally:
        env.close()


def _write(path: Path, image: np.ndarray) -> None:
    """A 256-colour PNG (a third of the size of the full-colour one; the README shows it small)."""
    from PIL import Image

    Image.fromarray(image).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--density", type=float, default=1.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    _write(out / "dr_contact_sheet.png", dr_sheet(args.density))
    _write(out / "wrist_contact_sheet.png", wrist_sheet(args.density))
    print("wrote", out / "dr_contact_sheet.png", out / "wrist_contact_sheet.png")


if __name__ == "__main__":
    main()
