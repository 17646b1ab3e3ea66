"""The alignment check on the embedded default scene: real SAPIEN mesh segmentation (lavapipe on CPU)
against the real splat renderer. It passes when aligned, and names the body when a link's gaussians
are offset by 2 cm or the body poses' quaternion order is wrong."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from gsenv.alignment.check import ROBOT, check_alignment
from gsenv.scene_build.default import load_default_bundle
from gsenv.sim import names

DENSITY = 0.5
SIZE = (224, 224)  # height, width
SAMPLES = 2
LOWER_LINKS = ("fr3_link0", "fr3_link1", "fr3_link2", "fr3_link3")  # the 3rd-person camera does not see them


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


@pytest.fixture(scope="module")
def bundle(assets):
    return load_default_bundle(assets, density=DENSITY, progress=False)


@pytest.fixture(scope="module")
def aligned(bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("check")
    return check_alignment(bundle, samples=SAMPLES, image_size=SIZE, min_iou=0.8, out_dir=out, progress=False), out


@pytest.mark.slow
def test_default_scene_is_aligned(aligned):
    report, _ = aligned
    s = report.summary()
    # the acceptance bars: robot, cube and plate >= 0.9; links with >= 200 visible pixels >= 0.8
    for body in (ROBOT, names.CUBE, names.PLATE):
        assert s[body]["judged"] == SAMPLES and s[body]["min_iou"] >= 0.9, (body, s[body])
    judged_links = [link for link in names.ROBOT_VISUAL_LINK_NAMES if s[link]["judged"]]
    assert names.HAND_LINK in judged_links and len(judged_links) >= 3
    for body in [ROBOT, names.CUBE, names.PLATE, *judged_links]:
        # the masks sit on each other: centroids within 2 px (a 2 cm slip is ~7 px here)
        assert s[body]["max_centroid_offset_px"] < 2.0, (body, s[body])
    for link in judged_links:
        assert s[link]["min_iou"] >= 0.8, (link, s[link])


@pytest.mark.slow
def test_bodies_outside_the_view_are_reported_not_failed(aligned):
    report, _ = aligned
    s = report.summary()
    for link in LOWER_LINKS:
        assert s[link]["verdict"] == "out_of_view" and s[link]["max_mesh_pixels"] == 0, s[link]
        assert link not in report.failed_bodies
    # the fingers are small at 224 px: reported, and only judged where they reach min_pixels
    for r in report.results:
        if max(r.mesh_pixels, r.splat_pixels) < report.min_pixels:
            assert r.status in ("small", "out_of_view")


@pytest.mark.slow
def test_report_json_and_overlay_images(aligned):
    import imageio.v3 as iio

    report, out = aligned
    data = json.loads((out / "report.json").read_text())
    assert data["passed"] == report.passed and data["image_size"] == list(SIZE)
    assert len(data["states"]) == SAMPLES and len(data["states"][0]["qpos"]) == 9
    hand = [r for r in data["results"] if r["body"] == names.HAND_LINK]
    assert len(hand) == SAMPLES and all(set(r) >= {"mesh_pixels", "splat_pixels", "iou", "centroid_offset_px"}
                                         for r in hand)
    assert data["summary"][names.CUBE]["judged"] == SAMPLES
    blend = iio.imread(out / "00_3rd_view_camera_blend.png")
    diff = iio.imread(out / "00_3rd_view_camera_diff.png")
    panel = iio.imread(out / "00_3rd_view_camera_panel.png")
    assert blend.shape == (*SIZE, 3) and diff.shape == blend.shape
    assert panel.shape == (SIZE[0], 4 * SIZE[1] + 6, 3)
    # the difference map is mostly agreement (grey) where there are bodies
    grey = (diff == 150).all(-1).sum()
    colored = ((diff != 0).any(-1) & ~(diff == 150).all(-1)).sum()
    assert grey > 3 * colored > 0
    assert blend.std() > 10  # not blank


def _shift_link(bundle, link, offset):
    g = bundle.links[link]
    moved = g.transform(torch.eye(3, dtype=g.dtype), torch.tensor(offset, dtype=g.dtype))
    return dataclasses.replace(bundle, links={**bundle.links, link: moved})


@pytest.mark.slow
def test_a_link_offset_by_2cm_fails_and_is_named(bundle):
    shifted = _shift_link(bundle, names.HAND_LINK, [0.0, 0.02, 0.0])  # 2 cm along the hand's y axis
    report = check_alignment(shifted, samples=SAMPLES, image_size=SIZE, min_iou=0.8, progress=False)
    assert not report.passed
    assert names.HAND_LINK in report.failed_bodies
    s = report.summary()[names.HAND_LINK]
    assert s["min_iou"] < 0.75 and s["max_centroid_offset_px"] > 3.0
    # the other bodies are untouched: the cube and the plate still pass
    assert names.CUBE not in report.failed_bodies or report.summary()[names.CUBE]["min_iou"] > 0.75
    assert names.PLATE not in report.failed_bodies


@pytest.mark.slow
def test_a_swapped_quaternion_order_fails(bundle):
    def xyzw(poses):  # what a wxyz/xyzw mix-up does: the renderer reads x, y, z, w as w, x, y, z
        return {k: torch.cat([v[:, :3], v[:, [4, 5, 6, 3]]], 1) for k, v in poses.items()}

    report = check_alignment(bundle, samples=SAMPLES, image_size=SIZE, min_iou=0.8, progress=False,
                             pose_transform=xyzw)
    assert not report.passed
    assert ROBOT in report.failed_bodies and names.HAND_LINK in report.failed_bodies
    assert report.summary()[ROBOT]["min_iou"] < 0.5


def test_bad_arguments_are_value_errors(bundle):
    with pytest.raises(ValueError, match="samples"):
        check_alignment(bundle, samples=0)
    with pytest.raises(ValueError, match="min_iou"):
        check_alignment(bundle, samples=1, min_iou=1.5)
    with pytest.raises(ValueError, match="no camera 'nope'"):
        check_alignment(bundle, samples=1, cameras=["nope"])


@pytest.mark.slow
def test_splat_vs_mesh_side_by_side(bundle):
    from gsenv.alignment.overlay import splat_vs_mesh

    img = splat_vs_mesh(bundle, image_size=(72, 96))  # height, width
    assert img.shape == (72, 2 * 96 + 2, 3) and img.dtype == np.uint8
    left, right = img[:, :96].astype(float), img[:, 98:].astype(float)
    assert left.std() > 10 and right.std() > 10  # both halves show something
    # the cube (red) is at the same place in both halves
    def red(im):
        mask = (im[..., 0] > im[..., 1] + 60) & (im[..., 0] > im[..., 2] + 60)
        return np.argwhere(mask).mean(0)
    assert np.linalg.norm(red(left) - red(right)) < 2.0


@pytest.mark.slow
def test_check_is_right_after_a_maniskill_env_in_the_same_process(bundle, tmp_path):
    """ManiSkill's camera sensors rewrite SAPIEN's process-wide camera settings (PickCube's camera:
    the "minimal" shader pack, which has no Segmentation output, and uint8 Color) and leave them so
    after the env is closed. The check's own cameras must not depend on them."""
    from pathlib import Path

    import gymnasium as gym
    import imageio.v3 as iio
    import mani_skill.envs  # noqa: F401  (registers PickCube-v1)
    import sapien

    shader_dir = sapien.render.get_camera_shader_dir()
    try:
        env = gym.make("PickCube-v1", num_envs=1, obs_mode="state", sim_backend="physx_cpu",
                       render_backend="sapien_cpu")
        env.reset(seed=0)
        env.close()
        # the state the check has to cope with (else this test would test nothing)
        assert Path(sapien.render.get_camera_shader_dir()).name == "minimal"
        report = check_alignment(bundle, samples=1, image_size=SIZE, min_iou=0.8, out_dir=tmp_path, progress=False)
    finally:
        sapien.render.set_camera_shader_dir(shader_dir)
    s = report.summary()
    for body in (ROBOT, names.CUBE, names.PLATE):
        assert s[body]["judged"] == 1 and s[body]["min_iou"] >= 0.9, (body, s[body])
        assert s[body]["max_centroid_offset_px"] < 2.0, (body, s[body])
    assert s[names.HAND_LINK]["judged"] == 1 and s[names.HAND_LINK]["min_iou"] >= 0.8, s[names.HAND_LINK]
    # the mesh colour is read right too (not clipped to black and white): shaded, with the red cube
    panel = iio.imread(tmp_path / "00_3rd_view_camera_panel.png")
    mesh = panel[:, SIZE[1] + 2:2 * SIZE[1] + 2].astype(int)
    assert len(np.unique(mesh)) > 50
    red = (mesh[..., 0] > mesh[..., 1] + 60) & (mesh[..., 0] > mesh[..., 2] + 60)
    assert red.sum() > 50
