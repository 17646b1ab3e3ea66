"""The light default scene rendered by the torch backend: the robot, cube and plate are where the
camera maths says they are."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gsenv.geometry import rotmat_to_quat
from gsenv.scene.camera_rig import bundle_cameras
from gsenv.scene.rendering import make_renderer
from gsenv.scene.task_fit import objects_of_task
from gsenv.scene_build.default import load_default_bundle
from gsenv.scene_build.rlinf_dataset import default_joint_config, link_world_transforms
from gsenv.sim import names

W, H = 128, 96
CUBE_POS = (0.40, 0.20, names.CUBE_HALF_SIZE)
PLATE_POS = (0.45, -0.02, names.PLATE_HEIGHT / 2)


def _pose(T: np.ndarray) -> torch.Tensor:
    T = torch.as_tensor(T, dtype=torch.float32)
    return torch.cat([T[:3, 3], rotmat_to_quat(T[:3, :3])])[None]  # [1, 7]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    # the cube and the plate of PutCubeOnPlate (the embedded scene holds other tasks' objects too)
    bundle = objects_of_task(load_default_bundle(tmp_path_factory.mktemp("assets"), density=0.06, progress=False),
                             (names.CUBE, names.PLATE))
    fk = link_world_transforms(__import__("gsenv.sim.robot_description", fromlist=["x"]).default_fr3_urdf(),
                               default_joint_config())
    poses = {link: _pose(fk[link]) for link in bundle.links}
    for name, pos in ((names.CUBE, CUBE_POS), (names.PLATE, PLATE_POS)):
        poses[name] = torch.tensor([[*pos, 1.0, 0.0, 0.0, 0.0]])
    cams = bundle_cameras(bundle, None, 1, image_size=(H, W))
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
    from gsenv.geometry import quat_to_rotmat

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


def test_bundle_cameras_sizes_and_errors(scene):
    import dataclasses

    bundle = scene[0]
    cam = bundle.cameras[0]
    calibrated = bundle_cameras(bundle, None, 3)  # every env the same cameras, at the calibrated size
    assert (calibrated.height, calibrated.width) == (cam.height, cam.width)
    C = len(bundle.cameras)
    assert calibrated.Ks.shape == (3, C, 3, 3) and calibrated.viewmats.shape == (3, C, 4, 4)
    assert torch.equal(calibrated.Ks[2, 0], torch.tensor(cam.K, dtype=torch.float32))
    assert torch.equal(calibrated.viewmats[1, 0], torch.tensor(cam.world_to_cam, dtype=torch.float32))
    half = bundle_cameras(bundle, [cam.name], 1, image_size=(cam.height // 2, cam.width // 4))  # (height, width)
    assert (half.height, half.width) == (cam.height // 2, cam.width // 4)
    assert torch.allclose(half.Ks[0, 0, 0], calibrated.Ks[0, 0, 0] / 4)  # row 0 (fx, cx) scales with the width
    assert torch.allclose(half.Ks[0, 0, 1], calibrated.Ks[0, 0, 1] / 2)  # row 1 (fy, cy) with the height
    with pytest.raises(ValueError, match="no camera 'nope'"):
        bundle_cameras(bundle, ["nope"], 1)
    other = dataclasses.replace(cam, name="other", width=cam.width // 2, height=cam.height // 2)
    mixed = dataclasses.replace(bundle, cameras=[cam, other])
    with pytest.raises(ValueError, match="different calibrated sizes"):
        bundle_cameras(mixed, None, 1)
    assert bundle_cameras(mixed, None, 1, image_size=(H, W)).Ks.shape == (1, 2, 3, 3)


@pytest.mark.parametrize("bad", ["64", "48x64", 64.5, (48.0, 64), (48,), True, (0, 64), (48, -1)])
def test_image_sizes_are_ints_or_pairs_of_ints_never_coerced(bad):
    from gsenv.splat.cameras import image_size_hw

    with pytest.raises(ValueError, match="image_size must be"):
        image_size_hw(bad)


def test_image_size_forms():
    from gsenv.splat.cameras import image_size_hw

    assert image_size_hw(64) == (64, 64)
    assert image_size_hw((48, 64)) == (48, 64)
    assert image_size_hw(np.array([48, 64])) == (48, 64)
