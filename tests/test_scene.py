"""Scene bundles: the format and its errors, the default scene builder and cache, the RLinf-layout adapter."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gsenv.scene.bundle import CameraSpec
from gsenv.scene.format import MANIFEST, SceneError, load_bundle, write_bundle
from gsenv.scene_build.default import (
    build_default_bundle,
    default_bundle_dir,
    ensure_default_bundle,
    load_recipe,
    sapien_camera_to_opencv,
)
from gsenv.sim import names

LIGHT = 0.02  # density of the light default scene the tests build


@pytest.fixture(scope="module")
def light_bundle_dir(tmp_path_factory) -> Path:
    return ensure_default_bundle(tmp_path_factory.mktemp("assets"), density=LIGHT, progress=False)


def test_default_bundle_contents(light_bundle_dir):
    bundle = load_bundle(light_bundle_dir, known_links=names.ROBOT_LINK_NAMES)
    assert set(bundle.links) == set(names.ROBOT_VISUAL_LINK_NAMES)
    recipe = load_recipe()
    assert list(bundle.objects) == list(recipe["objects"]) and {names.CUBE, names.PLATE} <= set(bundle.objects)
    expected_bg = sum(max(1, round(p["gaussians"] * LIGHT)) for p in recipe["background"].values())
    assert bundle.num_background_gaussians == expected_bg
    # the cube's gaussians lie on the simulator's 4 cm cube surface, in the cube's frame
    cube = bundle.objects[names.CUBE].gaussians.means
    assert torch.allclose(cube.abs().max(dim=1).values, torch.full((len(cube),), names.CUBE_HALF_SIZE), atol=1e-6)
    # the plate's gaussians lie on the simulator's dish: floor disc + a ring of rim boxes whose outer
    # corners reach R / cos(pi / segments)
    plate = bundle.objects[names.PLATE].gaussians.means
    r = plate[:, :2].norm(dim=1)
    assert r.max() <= names.PLATE_RADIUS / np.cos(np.pi / names.PLATE_RIM_SEGMENTS) + 1e-6
    assert r.max() > names.PLATE_RADIUS - 0.002
    assert plate[:, 2].abs().max() <= names.PLATE_HEIGHT / 2 + 1e-6
    cam = bundle.camera("3rd_view_camera")
    assert (cam.width, cam.height) == (640, 480) and cam.K[0, 0] == pytest.approx(604.152161)
    assert bundle.instructions == [names.LANGUAGE_INSTRUCTION]


def test_full_recipe_is_sized_like_a_real_scan():
    recipe = load_recipe()
    bodies = recipe["robot"]["gaussians"] + sum(o["gaussians"] for o in recipe["objects"].values())
    background = sum(p["gaussians"] for p in recipe["background"].values())
    assert bodies >= 100_000 and background >= 300_000


def test_build_is_deterministic_and_cached(tmp_path, light_bundle_dir):
    a = build_default_bundle(density=0.005)
    b = build_default_bundle(density=0.005)
    for link in a.links:
        assert torch.equal(a.links[link].means, b.links[link].means)
    path = ensure_default_bundle(light_bundle_dir.parents[1], density=LIGHT, progress=False)
    assert path == light_bundle_dir  # reused, same key
    stamp = (path / MANIFEST).stat().st_mtime_ns
    assert (ensure_default_bundle(light_bundle_dir.parents[1], density=LIGHT, progress=False)
            / MANIFEST).stat().st_mtime_ns == stamp
    # another density (or recipe / builder version) is another key
    assert default_bundle_dir(tmp_path, 0.5) != default_bundle_dir(tmp_path, LIGHT)


def test_killed_build_leaves_nothing_that_looks_complete(tmp_path):
    code = ("import sys; from gsenv.scene_build.default import ensure_default_bundle; "
            f"ensure_default_bundle({str(tmp_path)!r}, density=0.3, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    final = default_bundle_dir(tmp_path, 0.3)
    deadline = time.monotonic() + 120
    # wait until the build is under way (its temporary directory exists), then kill it
    while time.monotonic() < deadline and not list(final.parent.glob(".*building*")) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (final / MANIFEST).exists() and not final.exists()
    # the next call builds it properly
    assert (ensure_default_bundle(tmp_path, density=0.3, progress=False) / MANIFEST).is_file()


def test_write_load_round_trip(tmp_path, light_bundle_dir):
    bundle = load_bundle(light_bundle_dir, known_links=names.ROBOT_LINK_NAMES)
    out = write_bundle(bundle, tmp_path / "copy")
    again = load_bundle(out, known_links=names.ROBOT_LINK_NAMES)
    assert torch.equal(again.links["fr3_hand"].sh, bundle.links["fr3_hand"].sh)
    assert np.array_equal(again.cameras[0].pose, bundle.cameras[0].pose)


def test_camera_scaling_and_sapien_conversion():
    K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    cam = CameraSpec("c", 640, 480, K, np.eye(4)).at_resolution(224, 224)
    assert cam.K[0, 0] == pytest.approx(600 * 224 / 640) and cam.K[1, 2] == pytest.approx(240 * 224 / 480)
    # a SAPIEN camera looking along +x: the OpenCV camera's z (forward) is world +x, its y (down) is world -z
    T = sapien_camera_to_opencv(np.eye(4))
    assert np.allclose(T[:3, 2], [1, 0, 0]) and np.allclose(T[:3, 1], [0, 0, -1]) and np.allclose(T[:3, 0], [0, -1, 0])


# ----------------------------------------------------------------------------- broken bundles
def _copy(src: Path, dst: Path) -> tuple[Path, dict]:
    shutil.copytree(src, dst)
    return dst, json.loads((dst / MANIFEST).read_text())


def _save(root: Path, doc: dict) -> None:
    (root / MANIFEST).write_text(json.dumps(doc))


def test_missing_file(tmp_path, light_bundle_dir):
    root, _ = _copy(light_bundle_dir, tmp_path / "b")
    (root / "robot" / "fr3_link3.ply").unlink()
    with pytest.raises(SceneError, match=r"robot\.links\.fr3_link3: file 'robot/fr3_link3\.ply' not found"):
        load_bundle(root, known_links=names.ROBOT_LINK_NAMES)


def test_bad_json(tmp_path, light_bundle_dir):
    root, _ = _copy(light_bundle_dir, tmp_path / "b")
    (root / MANIFEST).write_text("{ not json")
    with pytest.raises(SceneError, match="not valid JSON"):
        load_bundle(root)


def test_unknown_link_and_bad_camera_are_all_reported(tmp_path, light_bundle_dir):
    root, doc = _copy(light_bundle_dir, tmp_path / "b")
    doc["robot"]["links"]["fr3_link42"] = doc["robot"]["links"]["fr3_link1"]
    doc["cameras"][0]["K"][0][0] = 0.0
    _save(root, doc)
    with pytest.raises(SceneError) as err:
        load_bundle(root, known_links=names.ROBOT_LINK_NAMES)
    assert len(err.value.problems) == 2
    assert "robot.links.fr3_link42: unknown link" in str(err.value)
    assert "cameras[0].K: focal lengths must be > 0" in str(err.value)


def test_corrupt_ply_is_named(tmp_path, light_bundle_dir):
    root, _ = _copy(light_bundle_dir, tmp_path / "b")
    (root / "objects" / "cube.ply").write_bytes(b"garbage")
    with pytest.raises(SceneError, match=r"objects\.cube\.ply: .*cube\.ply"):
        load_bundle(root)


def test_not_a_bundle(tmp_path):
    with pytest.raises(SceneError, match="scene.json not found"):
        load_bundle(tmp_path)


# ----------------------------------------------------------------------------- the real-layout adapter
from mini_dataset import OFFSET, make_mini_dataset  # noqa: E402  (tests/ is on sys.path under pytest)

from gsenv.scene_build.rlinf_dataset import RLinfLayout, default_joint_config, link_world_transforms, load_rlinf_dataset  # noqa: E402


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return make_mini_dataset(tmp_path_factory.mktemp("rlinf") / "gsenv-assets-v0")


def test_adapter_puts_link_gaussians_in_link_frames(mini):
    bundle = load_rlinf_dataset(mini.root)
    assert set(bundle.links) == set(names.ROBOT_VISUAL_LINK_NAMES)
    fk = link_world_transforms(bundle.robot_urdf, default_joint_config())
    for link, local in bundle.links.items():
        assert torch.allclose(local.means, mini.truth[link].means, atol=1e-5), link
        # re-posed at the default configuration they land back on the file's world positions (+ offset)
        T = torch.as_tensor(fk[link], dtype=torch.float32)
        reposed = local.transform(T[:3, :3], T[:3, 3]).means
        from gsenv.splat.ply import load_ply

        stored = load_ply(mini.root / f"robot/my_franka/parts/{link}_3dgs_abs.ply").means
        assert torch.allclose(reposed, stored + torch.as_tensor(OFFSET, dtype=torch.float32), atol=1e-5), link
    # view-dependent colour follows the link: the file's world-frame SH differ from the link-frame ones
    # (link4 is rotated at the default configuration) and the adapter rotates them back
    from gsenv.splat.ply import load_ply

    world_sh = load_ply(mini.root / "robot/my_franka/parts/fr3_link4_3dgs_abs.ply").sh
    assert not torch.allclose(world_sh[:, 1:], mini.truth["fr3_link4"].sh[:, 1:], atol=1e-2)
    assert torch.allclose(bundle.links["fr3_link4"].sh, mini.truth["fr3_link4"].sh, atol=1e-5)


def test_adapter_objects_background_camera(mini):
    bundle = load_rlinf_dataset(mini.root)
    plate = bundle.objects["plate"]
    # centred, shifted by the research code's plate offset, centres scaled by [0.96, 1, 0.96]
    assert torch.allclose(plate.gaussians.means.mean(0), torch.tensor([-0.005 * 0.96, -0.005, 0.0]), atol=1e-6)
    assert plate.collision["type"] == "mesh" and Path(plate.collision["path"]).is_file()
    assert torch.allclose(bundle.objects["cube"].gaussians.means.mean(0), torch.zeros(3), atol=1e-6)
    assert len(bundle.background) == 80 and bundle.backdrop_image.name == "green_background.jpg"
    assert bundle.camera("3rd_view_camera").width == 640


def test_adapter_conventions_are_parameters(mini):
    moved = load_rlinf_dataset(mini.root, RLinfLayout(robot_ply_offset=(0.0, 0.0, 0.0)))
    base = load_rlinf_dataset(mini.root)
    delta = (moved.links["fr3_link0"].means - base.links["fr3_link0"].means).mean(0)
    assert torch.allclose(delta, torch.tensor([0.0, 0.0, -0.02]), atol=1e-5)  # link0 frame = world frame


def test_adapter_reports_every_missing_file(tmp_path, mini):
    root = tmp_path / "broken"
    shutil.copytree(mini.root, root)
    (root / "robot/my_franka/parts/fr3_leftfinger_3dgs_abs.ply").unlink()
    (root / "object/table/table_abs.ply").unlink()
    with pytest.raises(SceneError) as err:
        load_rlinf_dataset(root)
    assert err.value.problems == ["robot/my_franka/parts/fr3_leftfinger_3dgs_abs.ply: file not found",
                                  "object/table/table_abs.ply: file not found"]


def test_adapter_bundle_round_trips_through_the_format(tmp_path, mini):
    bundle = load_rlinf_dataset(mini.root)
    out = write_bundle(bundle, tmp_path / "as-bundle")
    again = load_bundle(out)
    assert again.robot_urdf is not None and again.robot_urdf.is_file()
    assert again.objects["plate"].collision["type"] == "mesh"
    assert torch.equal(again.links["fr3_hand"].means, bundle.links["fr3_hand"].means)


@pytest.mark.slow
def test_build_default_command(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "gsenv.tools.cli", "assets", "build-default", "--density", "0.005",
           "--root", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "built in" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "up to date" in second.stdout
    assert (default_bundle_dir(tmp_path, 0.005) / MANIFEST).is_file()
    bad = subprocess.run(cmd[:-4] + ["--density", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--density must be > 0" in bad.stderr


# ----------------------------------------------------------------------------- bundles checked for the task
def _xarm7_urdf() -> Path:
    """A real URDF of another robot (UFactory xArm7, joints joint1..joint7), shipped by ManiSkill."""
    from mani_skill import PACKAGE_ASSET_DIR

    return Path(PACKAGE_ASSET_DIR) / "robots" / "xarm7" / "xarm7.urdf"


def _make_env(root, assets):
    import gymnasium as gym

    import gsenv

    return gym.make(gsenv.registration.ENV_ID, num_envs=1, scene=str(root), image_size=(32, 32), device="cpu",
                    asset_root=str(assets), num_workers=1)


def test_a_bundle_without_the_plate_is_refused_where_the_env_loads_it(tmp_path, light_bundle_dir):
    """Before: the env loaded it, the plate invisible in every image while the physics had it."""
    import psutil

    from gsenv.scene.resolve import resolve_scene

    root, doc = _copy(light_bundle_dir, tmp_path / "b")
    doc["objects"] = {"cube": doc["objects"]["cube"]}  # the plate (and the other tasks' objects) left out
    _save(root, doc)
    assert set(load_bundle(root).objects) == {names.CUBE}  # the format alone reads it (tools inspect it)
    with pytest.raises(SceneError) as err:
        resolve_scene(root)
    assert err.value.problems == [
        "objects.plate: missing: task PutCubeOnPlate simulates it, so the bundle must draw it (add its PLY under "
        "scene.json's \"objects\"; the bundle has cube)"]
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(SceneError, match=r"objects\.plate: missing: task PutCubeOnPlate"):
        _make_env(root, tmp_path / "assets")
    # refused in this process, before any physics worker was started
    assert {p.pid for p in psutil.Process().children(recursive=True)} == children


def test_a_body_without_gaussians_and_a_bad_camera_of_an_in_memory_bundle_are_refused(light_bundle_dir):
    import dataclasses

    from gsenv.scene.resolve import resolve_scene

    bundle = load_bundle(light_bundle_dir)
    empty = bundle.links[names.HAND_LINK].subset(torch.zeros(0, dtype=torch.long))
    cam = dataclasses.replace(bundle.cameras[0], K=np.zeros((3, 3)))
    broken = dataclasses.replace(bundle, links={**bundle.links, names.HAND_LINK: empty}, cameras=[cam])
    with pytest.raises(SceneError) as err:
        resolve_scene(broken)
    text = str(err.value)
    assert "robot.links.fr3_hand: has no gaussians: task PutCubeOnPlate draws it" in text, text
    assert "cameras[0].K: focal lengths must be > 0, got fx=0.0, fy=0.0" in text, text
    assert resolve_scene(bundle) is bundle  # a complete bundle passes unchanged


def test_a_bundle_with_another_robots_urdf_is_refused_naming_the_joints(tmp_path, light_bundle_dir):
    """The xArm7's URDF with PLYs named after its links: the format is satisfied, the task is not.
    Before: gym.make failed in a physics worker with a traceback."""
    from gsenv.scene.resolve import resolve_scene

    root, doc = _copy(light_bundle_dir, tmp_path / "b")
    shutil.copy(_xarm7_urdf(), root / "robot" / "xarm7.urdf")
    plys = list(doc["robot"]["links"].values())
    doc["robot"]["urdf"] = "robot/xarm7.urdf"
    doc["robot"]["links"] = {f"link{i}": plys[i] for i in range(1, 8)}
    doc["link_cameras"] = []
    _save(root, doc)
    load_bundle(root)  # consistent in itself
    with pytest.raises(SceneError) as err:
        resolve_scene(root)
    text = str(err.value)
    want = ("robot.urdf: robot/xarm7.urdf lacks the joints task PutCubeOnPlate drives: fr3_joint1, fr3_joint2, "
            "fr3_joint3, fr3_joint4, fr3_joint5, fr3_joint6, fr3_joint7, fr3_finger_joint1, fr3_finger_joint2 "
            "(its movable joints: joint1, joint2, joint3, joint4, joint5, joint6, joint7)")
    assert want in text, text
    assert ("robot.links: fr3_link0, fr3_link1, fr3_link2, fr3_link3, fr3_link4, fr3_link5, fr3_link6, fr3_link7, "
            "fr3_hand, fr3_leftfinger, fr3_rightfinger missing: task PutCubeOnPlate simulates them") in text, text
    with pytest.raises(SceneError, match="lacks the joints task PutCubeOnPlate drives"):
        _make_env(root, tmp_path / "assets")


def test_cameras_are_checked_where_scene_json_is_read(tmp_path, light_bundle_dir):
    root, doc = _copy(light_bundle_dir, tmp_path / "b")
    good = doc["cameras"][0]
    zero = {**good, "name": "zero", "K": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}
    off = {**good, "name": "off", "K": [[600, 0, -320], [0, 600, 900], [0, 0, 1]]}
    sheared = {**good, "name": "sheared", "cam_to_base": [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}
    doc["cameras"] = [good, zero, off, sheared]
    _save(root, doc)
    with pytest.raises(SceneError) as err:
        load_bundle(root)
    assert err.value.problems == [
        "cameras[1].K: focal lengths must be > 0, got fx=0.0, fy=0.0",
        "cameras[1].K: must be a pinhole matrix [[fx,s,cx],[0,fy,cy],[0,0,1]]",
        "cameras[2].K: principal point (-320.0, 900.0) must lie inside the 640x480 image",
        "cameras[3].cam_to_base[:3,:3]: must be a rotation matrix (orthonormal, determinant +1)",
    ]


def test_file_paths_stay_inside_the_bundle_unless_allowed(tmp_path, light_bundle_dir, monkeypatch):
    from gsenv.scene.format import ALLOW_OUTSIDE_ENV
    from gsenv.scene.resolve import resolve_scene

    root, doc = _copy(light_bundle_dir, tmp_path / "b")
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(root / "objects" / "cube.ply", shared / "cube.ply")
    shutil.copy(root / "background.ply", shared / "background.ply")
    doc["objects"]["cube"]["ply"] = "../shared/cube.ply"
    doc["background"]["ply"] = str(shared / "background.ply")
    _save(root, doc)
    with pytest.raises(SceneError) as err:
        load_bundle(root)
    resolved = root.resolve()
    assert err.value.problems == [
        f"objects.cube.ply: '../shared/cube.ply' is {(shared / 'cube.ply').resolve()}, outside the bundle "
        f"{resolved}; a bundle's files must lie inside its folder (copy the file in, or allow shared files with "
        f"allow_outside_paths=True or {ALLOW_OUTSIDE_ENV}=1)",
        f"background.ply: {str(shared / 'background.ply')!r} is {(shared / 'background.ply').resolve()}, outside "
        f"the bundle {resolved}; a bundle's files must lie inside its folder (copy the file in, or allow shared "
        f"files with allow_outside_paths=True or {ALLOW_OUTSIDE_ENV}=1)"]
    # a file that does not exist outside is refused for where it is, not for being absent
    doc["robot"]["urdf"] = "/etc/x.urdf"
    _save(root, doc)
    with pytest.raises(SceneError, match=r"robot\.urdf: '/etc/x\.urdf' is /etc/x\.urdf, outside the bundle"):
        load_bundle(root)
    del doc["robot"]["urdf"]
    _save(root, doc)
    allowed = load_bundle(root, allow_outside_paths=True)
    original = load_bundle(light_bundle_dir).objects["cube"].gaussians
    assert torch.equal(allowed.objects["cube"].gaussians.means, original.means)
    assert len(resolve_scene(root, allow_outside_paths=True).background) == len(allowed.background)
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")  # the route for gym.make(scene=...)
    assert len(load_bundle(root).background) == len(allowed.background)
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "yes")
    with pytest.raises(ValueError, match=f"{ALLOW_OUTSIDE_ENV}='yes': set it to 1"):
        load_bundle(root)
