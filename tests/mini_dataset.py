"""A miniature dataset in the RLinf/gsenv-assets-v0 layout: tiny PLYs, the FR3 URDF, meshes, a backdrop.

Link gaussians are made in link frames, posed with the URDF's forward kinematics at the default
configuration and written in world coordinates minus the research code's [0, 0, 0.02] offset, as
the real files are described; `truth` keeps the link-frame originals for the tests.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gsenv.scene_build.rlinf_dataset import RLinfLayout, default_joint_config, link_world_transforms
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.ply import save_ply

OFFSET = np.array([0.0, 0.0, 0.02])


def random_gaussians(n: int, seed: int, center=(0.0, 0.0, 0.0), spread: float = 0.03) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor(center, dtype=torch.float32) + spread * torch.randn(n, 3, generator=g)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=1)
    return Gaussians(means, quats, torch.full((n, 3), -5.0), torch.full((n,), 2.0),
                     0.5 * torch.randn(n, 4, 3, generator=g))  # SH degree 1


@dataclass
class MiniDataset:
    root: Path
    truth: dict[str, Gaussians]  # link name -> gaussians in the link frame


def make_mini_dataset(root: Path, n: int = 20) -> MiniDataset:
    from gsenv.sim.robot_description import default_fr3_urdf

    layout = RLinfLayout()
    urdf = root / layout.urdf
    urdf.parent.mkdir(parents=True)
    shutil.copy(default_fr3_urdf(), urdf)  # FR3 names; its mesh paths are absolute (ManiSkill's meshes)
    fk = link_world_transforms(urdf, default_joint_config())
    parts = root / layout.parts_dir
    parts.mkdir(parents=True)
    truth = {}
    for i, (link, stem) in enumerate(layout.link_files.items()):
        local = random_gaussians(n, seed=i)
        truth[link] = local
        T = torch.as_tensor(fk[link], dtype=torch.float32)
        world = local.transform(T[:3, :3], T[:3, 3] - torch.as_tensor(OFFSET, dtype=torch.float32))
        save_ply(world, parts / f"{stem}.ply")
    for j, (_name, obj) in enumerate(layout.objects.items()):
        (root / obj.ply).parent.mkdir(parents=True, exist_ok=True)
        save_ply(random_gaussians(n, seed=100 + j, center=(0.4, 0.1 * j, 0.02), spread=0.01), root / obj.ply)
        import trimesh

        trimesh.creation.box(extents=[0.04, 0.04, 0.04]).export(root / obj.mesh)
    (root / layout.table).parent.mkdir(parents=True, exist_ok=True)
    save_ply(random_gaussians(4 * n, seed=999, spread=0.3), root / layout.table)
    (root / layout.backdrop).parent.mkdir(parents=True, exist_ok=True)
    import imageio.v3 as iio

    iio.imwrite(root / layout.backdrop, np.full((48, 64, 3), (40, 200, 60), np.uint8))
    return MiniDataset(root, truth)
