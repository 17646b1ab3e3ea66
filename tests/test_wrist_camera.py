"""The wrist camera: link cameras in the bundle format, the rig that follows each env's link, the
renderer's moving cameras (background rendered for them every step, the fixed ones' kept), and GSEnv's
sensor_data / sensor_param / RLinf extraction for it (real physics workers, torch rendering, tiny images)."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from tolerances import assert_same_render

import gsenv
from gsenv.geometry import pose_to_matrix, rotmat_to_quat
from gsenv.scene.camera_rig import CameraRig
from gsenv.scene.format import SceneError, load_bundle, write_bundle
from gsenv.scene.rendering import make_renderer
from gsenv.scene.task_fit import objects_of_task
from gsenv.scene_build.default import load_default_bundle
from gsenv.scene_build.rlinf_dataset import default_joint_config, link_world_transforms
from gsenv.sim import names
from gsenv.sim.robot_description import default_fr3_urdf
from gsenv.splat.cameras import Cameras
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.renderer import SceneRenderer
from gsenv.splat.view_state import ViewState

H, W = 36, 48
WRIST = "wrist_camera"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


@pytest.fixture(scope="module")
def bundle(assets):  # PutCubeOnPlate's scene: the cube and the plate of the embedded scene's objects
    return objects_of_task(load_default_bundle(assets, density=0.05, progress=False), (names.CUBE, names.PLATE))


def _fk_poses(bundle, assets, **joints) -> dict[str, torch.Tensor]:
    cfg = {**default_joint_config(), **joints}
    fk = link_world_transforms(default_fr3_urdf(assets), cfg)
    out = {}
    for link in [*bundle.links, names.HAND_LINK]:
        T = torch.as_tensor(fk[link], dtype=torch.float32)
        out[link] = torch.cat([T[:3, 3], rotmat_to_quat(T[:3, :3])])[None]
    return out


def test_the_embedded_scene_has_a_wrist_camera_on_the_hand_and_bundles_keep_it(bundle, tmp_path):
    cam = bundle.any_camera(WRIST)
    assert cam.link == names.HAND_LINK and (cam.width, cam.height) == (640, 480)
    assert [c.name for c in bundle.cameras] == ["3rd_view_camera"]  # the fixed cameras are as before
    # it looks along the fingers (the hand's +z), 4.65 cm off the hand's axis
    assert np.allclose(cam.pose[:3, 2], [0, 0, 1], atol=1e-3)
    assert np.allclose(cam.pose[:3, 3], [0.0465, -0.02, 0.036], atol=1e-3)
    again = load_bundle(write_bundle(bundle, tmp_path / "b"), known_links=names.ROBOT_LINK_NAMES)
    (kept,) = again.link_cameras
    assert kept.link == cam.link and np.array_equal(kept.pose, cam.pose) and np.array_equal(kept.K, cam.K)
    doc = json.loads((tmp_path / "b" / "scene.json").read_text())
    doc["link_cameras"][0]["link"] = "fr3_wrist"
    doc["link_cameras"][0]["cam_to_link"][0][0] = 2.0
    (tmp_path / "b" / "scene.json").write_text(json.dumps(doc))
    with pytest.raises(SceneError) as err:
        load_bundle(tmp_path / "b", known_links=names.ROBOT_LINK_NAMES)
    text = str(err.value)
    assert "link_cameras[0].link: unknown link 'fr3_wrist'" in text and "link_cameras[0].cam_to_link" in text


def test_the_wrist_view_follows_the_hand(bundle, assets):
    """Moving the arm leaves the fingers where they are in the wrist image; the cube, fixed in the
    world, moves there. From the fixed camera it is the other way round."""
    renderer = make_renderer(bundle, "torch")
    rig = CameraRig(bundle, ["3rd_view_camera", WRIST], 1, "cpu", image_size=(H, W))
    assert rig.moving == (False, True)
    a = _fk_poses(bundle, assets)
    b = _fk_poses(bundle, assets, fr3_joint1=0.35, fr3_joint4=-2.2)
    cams_a = rig.cameras(a)
    # the cube 12 cm in front of the wrist camera in configuration a
    cam_to_world = torch.linalg.inv(cams_a.viewmats[0, 1])
    cube = (cam_to_world @ torch.tensor([0.0, 0.0, 0.12, 1.0]))[:3]
    for p in (a, b):
        p[names.CUBE] = torch.cat([cube, torch.tensor([1.0, 0, 0, 0])])[None]
        p[names.PLATE] = torch.tensor([[0.45, -0.3, 0.01, 1.0, 0, 0, 0]])
    out_a = renderer.render(a, cams_a, body_alpha=True)
    out_b = renderer.render(b, rig.cameras(b), body_alpha=True)
    ids_a, ids_b = out_a.body_ids()[0], out_b.body_ids()[0]  # [C, H, W]
    fingers = [renderer.body_names.index(f) for f in names.FINGER_LINKS]
    cube_id = renderer.body_names.index(names.CUBE)

    def iou(m1, m2):
        return float((m1 & m2).sum()) / max(1, float((m1 | m2).sum()))

    fa, fb = (torch.isin(i, torch.tensor(fingers)) for i in (ids_a, ids_b))
    assert fa[1].sum() > 20 and iou(fa[1], fb[1]) > 0.97  # wrist: the fingers stay put
    assert iou(fa[0], fb[0]) < 0.5  # third-person: the fingers moved
    ca, cb = ids_a[1] == cube_id, ids_b[1] == cube_id
    assert ca.sum() > 20 and iou(ca, cb) < 0.3  # wrist: the cube moved (or left the view)
    assert torch.equal(ids_a[0] == cube_id, ids_b[0] == cube_id) or iou(ids_a[0] == cube_id, ids_b[0] == cube_id) > 0.9


def _scene():
    g = torch.Generator().manual_seed(0)

    def blob(centre, colour, n, scale):
        m = torch.tensor(centre) + 0.05 * torch.randn(n, 3, generator=g)
        return Gaussians.from_activated(m, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), scale),
                                        torch.full((n,), 0.9), colors=torch.tensor([colour] * n))

    wall = blob([0.0, 0.0, 3.0], [0.3, 0.3, 0.9], 200, 0.1)
    behind = blob([0.0, 0.0, -2.0], [0.9, 0.9, 0.1], 100, 0.1)  # no camera sees it: culled
    return Gaussians.concat([wall, behind]), {"hand": blob([0.0, 0.0, 0.0], [0.9, 0.2, 0.2], 40, 0.03)}


def test_moving_cameras_render_their_background_each_step_and_keep_the_fixed_ones():
    wall, bodies = _scene()
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]])
    B = 2
    still = torch.eye(4)
    cached = SceneRenderer(wall, bodies, backend="torch", backdrop=(0.2, 0.2, 0.2))
    joint = SceneRenderer(wall, bodies, backend="torch", backdrop=(0.2, 0.2, 0.2), cache_background=False)
    alone = SceneRenderer(wall, bodies, backend="torch", backdrop=(0.2, 0.2, 0.2))
    unculled = SceneRenderer(wall, bodies, backend="torch", backdrop=(0.2, 0.2, 0.2), cull=False)
    views = ViewState()  # kept from step to step, as the env does
    for step in range(3):
        moving = torch.eye(4).repeat(B, 1, 1)
        moving[:, 0, 3] = torch.tensor([0.1, -0.1]) * (step + 1)  # each env's own moving camera
        vms = torch.stack([still.expand(B, 4, 4), moving], 1)
        cams = Cameras(K.expand(B, 2, 3, 3), vms, W, H, moving=(False, True))
        poses = {"hand": torch.tensor([[0.0, 0.0, 1.5, 1.0, 0, 0, 0]]).repeat(B, 1)}
        out = cached.render(poses, cams, depth=True, views=views)
        ref = joint.render(poses, cams, depth=True)
        assert (out.rgb.int() - ref.rgb.int()).abs().float().mean() < 2.0  # cached + fresh ~ joint
        assert torch.equal(out.rgb, unculled.render(poses, cams).rgb)  # culling the background changes nothing
        # the fixed camera: what rendering it alone gives (C = 1 vs 2: other matmul shapes, so equal up to
        # float32 rounding, tolerances.py)
        solo = alone.render(poses, Cameras(K.expand(B, 1, 3, 3), vms[:, :1], W, H))
        assert_same_render(out.rgb[:, :1], solo.rgb)
        # the fixed camera's background once (one view shared by both envs), the moving ones' every step
        assert cached.background_images_rendered == 1 + B * (step + 1)
    assert not torch.equal(out.rgb[0, 1], out.rgb[1, 1])  # each env's moving camera sees its own view


@pytest.fixture(scope="module")
def env(assets):
    e = gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode="rgb+depth", image_size=(24, 32), scene_density=0.02,
                 asset_root=str(assets), num_workers=1, render_backend="torch", device="cpu",
                 cameras=["3rd_view_camera", WRIST])
    yield e
    e.close()


@pytest.mark.slow
def test_env_wrist_camera_observations_follow_each_envs_hand(env):
    u = env.unwrapped
    obs, info = env.reset(seed=[1, 2])
    mount = torch.as_tensor(u.scene.any_camera(WRIST).pose, dtype=torch.float32)
    action = torch.zeros(2, 7)
    action[0, 0] = 0.1  # env 0's hand moves, env 1's stays
    before = obs["sensor_param"][WRIST]["cam2world_gl"].clone()
    for _ in range(2):
        obs, _, _, _, info = env.step(action)
    wrist = obs["sensor_data"][WRIST]
    assert wrist["rgb"].shape == (2, 24, 32, 3) and wrist["depth"].shape == (2, 24, 32, 1)
    assert 0.0 < float(wrist["depth"][wrist["depth"] > 0].median()) < 0.5  # the fingers are centimetres away
    assert torch.equal(info["extracted_obs"]["wrist_images"], wrist["rgb"])
    assert torch.equal(info["extracted_obs"]["main_images"], obs["sensor_data"]["3rd_view_camera"]["rgb"])
    # the camera's pose is the hand's pose times the mount, env by env
    hand = pose_to_matrix(u.get_body_poses()[names.HAND_LINK])  # [2, 4, 4]
    cv_to_gl = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    assert torch.allclose(obs["sensor_param"][WRIST]["cam2world_gl"], hand @ mount @ cv_to_gl, atol=1e-4)
    moved = (obs["sensor_param"][WRIST]["cam2world_gl"][:, :3, 3] - before[:, :3, 3]).norm(dim=-1)
    assert moved[0] > 0.005 and moved[0] > 3 * moved[1]
    assert env.observation_space[ "sensor_data"][WRIST]["rgb"].shape == (2, 24, 32, 3)


@pytest.mark.slow
def test_the_alignment_check_covers_the_wrist_camera(assets):
    """SAPIEN's camera mounted on the hand against the splat render from the same mount: the fingers,
    centimetres from the lens, line up (density 0.5; the near field needs density, see the README)."""
    from gsenv.alignment.check import check_alignment

    dense = load_default_bundle(assets, density=0.5, progress=False)
    report = check_alignment(dense, samples=2, image_size=(120, 160), cameras=[WRIST], min_iou=0.8, progress=False,
                             render_backend="torch")
    s = report.summary()
    assert report.passed and report.cameras == [WRIST], report.format_table()
    for finger in names.FINGER_LINKS:
        assert s[finger]["judged"] == 2 and s[finger]["min_iou"] >= 0.85, (finger, s[finger])
        assert s[finger]["max_centroid_offset_px"] < 2.0, (finger, s[finger])
