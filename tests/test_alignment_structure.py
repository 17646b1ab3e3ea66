"""Structural check (every body there, frames consistent) on the miniature real-layout dataset and
the default scene, and the `gsenv scene check` command line."""
from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest
import torch
from mini_dataset import make_mini_dataset

from gsenv.alignment.structure import check_structure
from gsenv.scene_build.default import load_default_bundle
from gsenv.scene_build.rlinf_dataset import load_rlinf_dataset
from gsenv.sim import names
from gsenv.tools.cli import build_parser, main


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return make_mini_dataset(tmp_path_factory.mktemp("mini") / "gsenv-assets-v0")


@pytest.fixture(scope="module")
def mini_bundle(mini):
    return load_rlinf_dataset(mini.root)


def test_miniature_dataset_passes_the_structural_check(mini_bundle):
    rep = check_structure(mini_bundle)
    assert rep.passed, rep.problems
    checked = {b.body for b in rep.bodies}
    assert checked == set(names.ROBOT_VISUAL_LINK_NAMES) | set(names.OBJECT_NAMES)
    assert all(b.ok and b.distance_outside is not None for b in rep.bodies)
    # the hand, at the default configuration, is seen by the calibrated camera, in front of it
    cam = rep.cameras["3rd_view_camera"]
    assert cam["hand_depth"] > 0.2 and 0 <= cam["hand_pixel"][0] < 640 and 0 <= cam["hand_pixel"][1] < 480


def test_default_scene_passes_the_structural_check(tmp_path):
    rep = check_structure(load_default_bundle(tmp_path, density=0.02, progress=False))
    assert rep.passed, rep.problems
    assert all(b.distance_outside == 0.0 for b in rep.bodies)  # sampled on the meshes themselves


def test_link_gaussians_left_in_world_coordinates_are_caught(mini_bundle):
    from gsenv.scene_build.rlinf_dataset import default_joint_config, link_world_transforms
    from gsenv.sim.robot_description import default_fr3_urdf

    fk = link_world_transforms(default_fr3_urdf(), default_joint_config())
    link = "fr3_link6"
    g = mini_bundle.links[link]
    T = torch.as_tensor(fk[link], dtype=g.dtype)
    world = g.transform(T[:3, :3], T[:3, 3])  # as if the adapter forgot to undo the forward kinematics
    rep = check_structure(dataclasses.replace(mini_bundle, links={**mini_bundle.links, link: world}))
    assert not rep.passed
    assert [p for p in rep.problems if p.startswith(link)], rep.problems
    assert [b.body for b in rep.bodies if not b.ok] == [link]


def test_missing_bodies_and_an_opengl_camera_are_caught(mini_bundle):
    links = {k: v for k, v in mini_bundle.links.items() if k != names.HAND_LINK}
    objects = {k: v for k, v in mini_bundle.objects.items() if k != names.CUBE}
    cam = mini_bundle.cameras[0]
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV <-> OpenGL axes
    gl = dataclasses.replace(cam, pose=cam.pose @ flip)
    rep = check_structure(dataclasses.replace(mini_bundle, links=links, objects=objects, cameras=[gl]))
    text = "\n".join(rep.problems)
    assert "robot link 'fr3_hand' has no gaussians" in text
    assert "object 'cube' has no gaussians" in text
    assert "behind the camera" in text and "OpenCV" in text


# ----------------------------------------------------------------------------------------- CLI
def _check_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    scene = parser._subparsers._group_actions[0].choices["scene"]
    return scene._subparsers._group_actions[0].choices["check"]


def test_help_documents_every_option():
    p = _check_parser()
    text = p.format_help()
    options = [a for a in p._actions if a.option_strings and a.dest != "help"]
    assert {o for a in options for o in a.option_strings} >= {
        "--samples", "--image-size", "--out", "--min-iou", "--min-pixels", "--camera", "--seed", "--density",
        "--render-backend", "--mesh-renderer", "--structure-only", "--no-images"}
    for a in options + [a for a in p._actions if not a.option_strings]:
        assert a.help and len(a.help) > 15, a
        assert any(o in text for o in a.option_strings) if a.option_strings else a.metavar in text
    assert "report.json" in text and "Exit status" in text  # what it writes and returns


def test_cli_structure_only_on_the_miniature_dataset(mini, tmp_path, capsys):
    rc = main(["scene", "check", str(mini.root), "--structure-only", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "structure OK" in out and "fr3_rightfinger" in out
    data = json.loads((tmp_path / "structure.json").read_text())
    assert data["passed"] and len(data["bodies"]) == len(names.ROBOT_VISUAL_LINK_NAMES) + 2


def test_cli_bad_input_exits_2_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        main(["scene", "check", "--image-size", "224x", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "HEIGHTxWIDTH" in capsys.readouterr().err
    assert main(["scene", "check", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "nowhere" in err and "scene.json" in err


@pytest.mark.slow
def test_cli_full_check_on_the_default_scene(tmp_path, monkeypatch, capsys):
    import imageio.v3 as iio

    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path / "assets"))
    out = tmp_path / "out"
    # at 120x160 the 4 cm cube covers about 100 pixels: states are sampled with every object showing
    # --min-pixels of itself, so ask for 40 (the default 200 suits calibrated-size images)
    rc = main(["scene", "check", "--samples", "1", "--image-size", "120x160", "--density", "0.3", "--min-pixels", "40",
               "--min-iou", "0.7", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "robot" in text and "aligned:" in text
    data = json.loads((out / "report.json").read_text())
    assert data["passed"] and data["structure"]["passed"] and data["image_size"] == [120, 160]  # height, width
    panel = iio.imread(out / "00_3rd_view_camera_panel.png")
    assert panel.shape == (120, 4 * 160 + 6, 3)  # HxW: 120 rows, four 160-pixel-wide images
    # a bar no splat render can reach: non-zero exit, the failing bodies named on stderr
    rc = main(["scene", "check", "--samples", "1", "--image-size", "120x160", "--density", "0.3", "--min-pixels", "40",
               "--min-iou", "0.999", "--no-images", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "robot is misaligned" in err
