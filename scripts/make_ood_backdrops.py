"""Seeded procedural backdrops of the generalisation suite's VisionImage variant (gsenv/assets_manifest/ood_backdrops).

Run from the repository root once; the outputs (160x120 PNGs, no downloads) are committed.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

H, W = 120, 160
OUT = "gsenv/assets_manifest/ood_backdrops"


def save(name: str, rgb: np.ndarray) -> None:
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(f"{OUT}/{name}.png", optimize=True)


def main() -> None:
    rng = np.random.default_rng(27)
    y, x = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
    # a green-screen studio: a vertical gradient of greens
    save("green_studio", np.stack([0.15 + 0.1 * y, 0.55 + 0.25 * (1 - y), 0.2 + 0.05 * x], -1))
    # a tiled kitchen wall: white tiles, grey grout
    tiles = ((x * 8) % 1 < 0.88) & ((y * 6) % 1 < 0.86)
    save("kitchen_tiles", np.where(tiles[..., None], [0.92, 0.9, 0.85], [0.45, 0.45, 0.45]))
    # a striped curtain: red and orange folds
    fold = 0.5 + 0.5 * np.sin(2 * np.pi * (x * 9 + 0.05 * np.sin(6 * y)))
    save("red_curtain", np.stack([0.55 + 0.35 * fold, 0.12 + 0.3 * fold, 0.1 + 0.05 * fold], -1))
    # a sky: a blue gradient with soft clouds
    sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.25 * y, 0.95 - 0.1 * y], -1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.7), rng.uniform(0.08, 0.2)
        sky += 0.5 * np.exp(-((x - cx) ** 2 + ((y - cy) * 0.75) ** 2) / r**2)[..., None]
    save("cloudy_sky", sky)


if __name__ == "__main__":
    main()
