"""The light default scene rendered by the torch backend: the robot, cube and plate are where the
camera maths says they are."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gsenv.scene.default import load_default_bundle
from gsenv.scene.rendering import bundle_cameras, make_renderer
from gsenv.scene.rlinf_dataset import default_joint_config, link_world_transforms
from gsenv.sim import names
from gsenv.splat.rotations import rotmat_to_quat

W, H = 128, 96
CUBE_POS = (0.40, 0.20, names.CUBE_HALF_SIZE)
PLATE_POS = (0.45, -0.02, names.PLATE_HEIGHT / 2)


def _pose(T: np.ndarray) -> torch.Tensor:
    T = torch.as_tensor(T, dtype=torch.float32)
    return torch.cat([T[:3, 3], rotmat_to_quat(T[:3, :3])])[None]  # [1, 7]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    bundle = load_default_bundle(tmp_path_factory.mktemp("assets"), density=0.06, progress=False)
    fk = link_world_transforms(__import__("gsenv.sim.robot_description", fromlist=["x"]).default_fr3_urdf(),
                               default_joint_config())
    poses = {link: _pose(fk[link]) for link in bundle.links}
    for name, pos in ((names.CUBE, CUBE_POS), (names.PLATE, PLATE_POS)):
        poses[name] = torch.tensor([[*pos, 1.0, 0.0, 0.0, 0.0]])
    cams = bundle_cameras(bundle, None, W, H, batch_size=1)
    out = make_renderer(bundle, backend="torch").render(poses, cams, depth=True, alpha=True, body_alpha=True)
    return bundle, poses, cams, out


def _project(cams, point) -> tuple[int, int]:
    p = cams.viewmats[0, 0] @ torch.tensor([*point, 1.0])
    uv = cams.Ks[0, 0] @ (p[:3] / p[2])
    return int(uv[1]), int(uv[0])  # row, column (pixel centres at +0.5)


def test_image_is_not_blank(scene):
    _, _, _, out = scene
    rgb = out.rgb[0, 0].float()
    assert out.rgb.shape == (1, 1, H, W, 3) and out.rgb.dtype == torch.uint8
    assert rgb.std() > 10
    # the table fills the lower three quarters of the view (a light scene's far wall may have gaps)
    assert (out.alpha[0, 0, H // 4:] > 0.5).float().mean() > 0.99


def test_bodies_are_where_the_camera_maths_says(scene):
    bundle, poses, cams, out = scene
    ids = out.body_ids()[0, 0]
    body_names = out.body_names
    for name, pos in ((names.CUBE, CUBE_POS), (names.PLATE, PLATE_POS)):
        r, c = _project(cams, pos)
        assert body_names[ids[r, c]] == name, (name, r, c)
        # and the depth there is the camera distance of the object's near surface
        cam_z = (cams.viewmats[0, 0] @ torch.tensor([*pos, 1.0]))[2]
        assert abs(out.depth[0, 0, r, c] - cam_z) < 0.05
    # the hand: project the centre of its gaussians as posed; the pixel belongs to the robot
    hand = poses[names.HAND_LINK][0]
    from gsenv.splat.rotations import quat_to_rotmat

    centre = quat_to_rotmat(hand[3:]) @ bundle.links[names.HAND_LINK].means.mean(0) + hand[:3]
    r, c = _project(cams, centre.tolist())
    assert body_names[ids[r, c]].startswith("fr3_"), body_names[ids[r, c]]
    # the cube's pixels are red-ish, the plate's light
    r, c = _project(cams, CUBE_POS)
    red = out.rgb[0, 0, r, c].float()
    assert red[0] > red[1] + 60 and red[0] > red[2] + 60
    r, c = _project(cams, PLATE_POS)
    assert out.rgb[0, 0, r, c].float().min() > 170


def test_moving_the_cube_moves_its_pixels(scene):
    bundle, poses, cams, out = scene
    moved = dict(poses)
    moved[names.CUBE] = torch.tensor([[0.30, 0.25, names.CUBE_HALF_SIZE, 1.0, 0.0, 0.0, 0.0]])
    out2 = make_renderer(bundle, backend="torch").render(moved, cams, body_alpha=True)
    cube = out.body_names.index(names.CUBE)
    r, c = _project(cams, (0.30, 0.25, names.CUBE_HALF_SIZE))
    assert out2.body_ids()[0, 0, r, c] == cube and out.body_ids()[0, 0, r, c] != cube
