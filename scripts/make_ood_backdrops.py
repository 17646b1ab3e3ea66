"""Seeded procedural backdrops of the generalisation suite's VisionImage variant (gsenv/assets_manifest/ood_backdrops;
run from the repository root once, outputs committed: 160x120 PNGs, no downloads)."""
import numpy as np
from PIL import Image
H, W = 120, 160
rng = np.random.default_rng(27)
y, x = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
def save(name, rgb):
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(f"gsenv/assets_manifest/ood_backdrops/{name}.png", optimize=True)
n = lambda s: 0.0  # no sensor noise: small files
# 1 green screen studio: a vertical gradient of greens
save("green_studio", np.stack([0.15 + 0.1 * y, 0.55 + 0.25 * (1 - y), 0.2 + 0.05 * x], -1) + n(0.01))
# 2 tiled kitchen wall: white tiles, grey grout
tiles = ((x * 8) % 1 < 0.88) & ((y * 6) % 1 < 0.86)
save("kitchen_tiles", np.where(tiles[..., None], [0.92, 0.9, 0.85], [0.45, 0.45, 0.45]) + n(0.015))
# 3 striped curtain: red and orange folds
fold = 0.5 + 0.5 * np.sin(2 * np.pi * (x * 9 + 0.05 * np.sin(6 * y)))
save("red_curtain", np.stack([0.55 + 0.35 * fold, 0.12 + 0.3 * fold, 0.1 + 0.05 * fold], -1) + n(0.01))
# 4 sky: blue gradient with soft blobs
sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.25 * y, 0.95 - 0.1 * y], -1)
for _ in range(6):
    cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.7), rng.uniform(0.08, 0.2)
    sky += 0.5 * np.exp(-((x - cx) ** 2 + ((y - cy) * 0.75) ** 2) / r**2)[..., None]
save("cloudy_sky", sky + n(0.01))
