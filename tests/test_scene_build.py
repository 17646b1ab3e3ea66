"""`gsenv scene build` against ground truth: a synthetic capture composed from the embedded default
scene at a known joint configuration and object poses, moved into an arbitrary frame by a random
similarity, with 5% floaters. The builder must recover the similarity, put each gaussian in its
body, and write a bundle that passes the checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from gsenv.capture.build import build_scene, in_body_frame, write_scene
from gsenv.capture.inputs import CaptureError
from gsenv.capture.segmentation import FLOATER
from gsenv.scene.bundle import Similarity
from gsenv.scene_build.rlinf_dataset import link_world_transforms
from gsenv.sim import names
from gsenv.splat.gaussians import Gaussians

DENSITY = 0.2
QPOS = np.array(names.FR3_DEFAULT_QPOS) + np.array([0.3, -0.2, 0.1, 0.3, -0.2, 0.2, 0.4, -0.01, -0.01])
OBJECT_POSES = {names.CUBE: ((0.40, 0.22), 0.5), names.PLATE: ((0.47, -0.03), 0.2)}  # (x, y), yaw


def _pose(xy, z, yaw) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("z", yaw).as_matrix()
    T[:3, 3] = [xy[0], xy[1], z]
    return T


def _moved(g: Gaussians, T: np.ndarray) -> Gaussians:
    return g.to(dtype=torch.float64).transform(torch.as_tensor(T[:3, :3]), torch.as_tensor(T[:3, 3]))


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """The synthetic capture: (splat gaussians, true labels [N] (body index, -1 background, -2 floater),
    body names, true similarity splat -> base, object meshes, hints, pairs, the original bundle)."""
    import trimesh

    from gsenv.scene_build.default import build_default_bundle, object_meshes
    from gsenv.sim.objects import default_cube_spec, default_plate_spec
    from gsenv.sim.robot_description import default_fr3_urdf

    tmp = tmp_path_factory.mktemp("capture")
    original = build_default_bundle(DENSITY)
    urdf = default_fr3_urdf()
    cfg = dict(zip(names.JOINT_NAMES, QPOS))
    fk = link_world_transforms(urdf, cfg)
    parts, bodies, poses = [], [], {}
    for link, g in sorted(original.links.items()):
        parts.append(_moved(g, fk[link]))
        bodies.append(link)
    meshes = {}
    for obj, spec in ((names.CUBE, default_cube_spec()), (names.PLATE, default_plate_spec())):
        xy, yaw = OBJECT_POSES[obj]
        poses[obj] = _pose(xy, spec.rest_height, yaw)
        parts.append(_moved(original.objects[obj].gaussians, poses[obj]))
        bodies.append(obj)
        path = tmp / f"{obj}.obj"
        mesh = trimesh.util.concatenate(object_meshes(spec))
        mesh.export(path)
        meshes[obj] = (path, trimesh.load(path, force="mesh"))
    labels = [np.full(len(g), i) for i, g in enumerate(parts)] + [np.full(len(original.background), -1)]
    world = Gaussians.concat(parts + [original.background.to(dtype=torch.float64)])
    rng = np.random.default_rng(7)
    scale = float(rng.uniform(0.3, 3.0))
    R = Rotation.random(random_state=11).as_matrix()
    t = rng.normal(0, 3, 3)
    truth = Similarity(scale, R, t)  # splat -> base
    inv = Similarity(1 / scale, R.T, -R.T @ t / scale)
    splat = inv.apply_to(world)
    n_f = int(round(0.05 * len(splat) / 0.95))  # floaters: 5% of the capture
    lo, hi = splat.means.min(0).values.numpy(), splat.means.max(0).values.numpy()
    floaters = Gaussians(torch.as_tensor(rng.uniform(lo, hi, (n_f, 3))),
                         torch.nn.functional.normalize(torch.as_tensor(rng.normal(size=(n_f, 4))), dim=1),
                         torch.as_tensor(np.log(rng.uniform(0.003, 0.03, (n_f, 3)) / scale)),
                         torch.as_tensor(rng.normal(0, 2, n_f)), torch.as_tensor(rng.normal(size=(n_f, 1, 3))))
    splat = Gaussians.concat([splat, floaters])
    labels = np.concatenate(labels + [np.full(n_f, -2)])
    perm = rng.permutation(len(splat))
    splat = splat.subset(torch.as_tensor(perm)).to(dtype=torch.float32)
    labels = labels[perm]
    # point pairs as a person picks them: link origins and table corners, ~5 mm off
    robot_pts = np.array([fk[k][:3, 3] for k in ("fr3_link0", "fr3_link3", "fr3_link5", "fr3_hand")]
                         + [[0.9, 0.8, 0.0], [0.9, -0.8, 0.0]])
    picked = inv.apply(robot_pts + rng.normal(0, 0.005, robot_pts.shape))
    hints = {obj: inv.apply((poses[obj][:3, 3] + rng.normal(0, 0.01, 3))[None])[0] for obj in poses}
    return dict(splat=splat, labels=labels, bodies=bodies, truth=truth, meshes=meshes, hints=hints,
                pairs=(picked, robot_pts), original=original, urdf=urdf, cfg=cfg, fk=fk, poses=poses, tmp=tmp)


@pytest.fixture(scope="module")
def built(capture):
    c = capture
    return build_scene(c["splat"], c["urdf"], c["cfg"], c["meshes"], *c["pairs"], c["hints"], c["original"].cameras,
                       eps2d=c["original"].eps2d, progress=False)


@pytest.mark.slow
def test_the_similarity_is_recovered(capture, built):
    _, report, _ = built
    truth, got = capture["truth"], report.similarity
    angle = np.degrees(Rotation.from_matrix(got.rotation @ truth.rotation.T).magnitude())
    assert angle <= 0.1, angle
    x = capture["splat"].means.double().numpy()[capture["labels"] >= 0]  # over the robot and the objects
    err = np.linalg.norm(got.apply(x) - truth.apply(x), axis=1).max()
    assert err <= 0.001, f"{err * 1000:.3f} mm"
    assert abs(got.scale / truth.scale - 1) < 1e-3
    assert max(report.pair_residuals_mm) < 25  # the picked points were ~5 mm off; they stay about that


def test_each_body_gets_its_gaussians(capture, built):
    _, report, seg = built
    labels, bodies = capture["labels"], capture["bodies"]
    assert sorted(seg.names) == sorted(bodies)
    for i, body in enumerate(bodies):
        truth, got = labels == i, seg.mask(body)
        recall = (truth & got).sum() / truth.sum()
        wrong = (got & ~truth).sum() / truth.sum()
        assert recall >= 0.99, (body, recall)
        assert wrong <= 0.005, (body, wrong)
    # most floaters are dropped, almost no background is
    assert (seg.labels[labels == -2] == FLOATER).mean() > 0.8
    assert (seg.labels[labels == -1] == FLOATER).mean() < 0.01
    assert report.counts[names.HAND_LINK] == int(seg.mask(names.HAND_LINK).sum())
    assert 0 <= report.ambiguous_share < 0.05


def test_bodies_are_in_their_own_frames(capture, built):
    from scipy.spatial import cKDTree

    from gsenv.capture.surfaces import point_triangle_distance

    bundle, report, _ = built
    # each link's gaussians sit where the original bundle's do, in the link frame
    for body in (names.HAND_LINK, "fr3_link3", "fr3_link7"):
        got = bundle.links[body].means.double().numpy()
        ref = capture["original"].links[body].means.double().numpy()
        d, _ = cKDTree(ref).query(got)
        assert np.median(d) < 1e-5 and np.quantile(d, 0.99) < 1e-3, (body, np.median(d))
    # each object's on its mesh's surface in the object frame (the cube is symmetric: any quarter turn
    # is the same cube), and it was located where it stood
    for obj, T in capture["poses"].items():
        tris = np.asarray(capture["meshes"][obj][1].triangles)
        got = bundle.objects[obj].gaussians.means.double().numpy()[::5]
        d = np.array([point_triangle_distance(p[None], tris).min() for p in got])
        assert np.quantile(d, 0.99) < 1e-4, (obj, np.quantile(d, 0.99))
        assert np.linalg.norm(np.asarray(report.objects[obj]["pose"])[:3, 3] - T[:3, 3]) < 0.001, obj


def test_sh_follows_the_body():
    """A body's view-dependent colour, re-expressed in its frame, is what the capture shows from the
    same camera: SH evaluated with the view direction taken into the body frame (as the renderer)."""
    from gsenv.splat.sh import eval_sh

    g = torch.Generator().manual_seed(0)
    n = 50
    splat = Gaussians(torch.randn(n, 3, generator=g, dtype=torch.float64),
                      torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=torch.float64), dim=1),
                      torch.full((n, 3), -4.0, dtype=torch.float64), torch.zeros(n, dtype=torch.float64),
                      torch.randn(n, 16, 3, generator=g, dtype=torch.float64))
    sim = Similarity(1.7, Rotation.random(random_state=1).as_matrix(), np.array([0.3, -0.2, 0.5]))
    pose = np.eye(4)
    pose[:3, :3] = Rotation.random(random_state=2).as_matrix()
    pose[:3, 3] = [0.4, 0.1, 0.3]
    body = in_body_frame(splat, sim, pose).to(dtype=torch.float64)
    cam_base = np.array([1.5, -0.5, 1.0])
    # in the capture: direction from the camera (mapped into the splat frame) to each gaussian
    cam_splat = sim.rotation.T @ (cam_base - sim.translation) / sim.scale
    want = eval_sh(splat.sh, splat.means - torch.as_tensor(cam_splat))
    cam_body = pose[:3, :3].T @ (cam_base - pose[:3, 3])
    got = eval_sh(body.sh.double(), body.means - torch.as_tensor(cam_body))
    assert torch.allclose(got, want, atol=1e-4)
    # and the means land where the similarity puts them
    world = body.means.double() @ torch.as_tensor(pose[:3, :3]).T + torch.as_tensor(pose[:3, 3])
    assert torch.allclose(world, torch.as_tensor(sim.apply(splat.means.numpy())), atol=1e-5)


def test_no_point_pairs_asks_for_them(capture):
    c = capture
    with pytest.raises(CaptureError, match="point pairs.*--points"):
        build_scene(c["splat"], c["urdf"], c["cfg"], c["meshes"], None, None, c["hints"], [], progress=False)
    with pytest.raises(CaptureError, match="give a point on it"):
        build_scene(c["splat"], c["urdf"], c["cfg"], c["meshes"], *c["pairs"], {}, [], progress=False)


@pytest.mark.slow
def test_the_written_bundle_passes_the_checks_like_the_original(capture, built, tmp_path):
    from gsenv.alignment.check import ROBOT, check_alignment
    from gsenv.alignment.structure import check_structure
    from gsenv.scene.resolve import resolve_scene

    bundle, report, _ = built
    out = write_scene(bundle, report, tmp_path / "cell")
    loaded = resolve_scene(out)
    assert loaded.robot_urdf.parent == (out / "robot").resolve()
    assert loaded.splat_to_sim.scale == pytest.approx(report.similarity.scale)
    structure = check_structure(loaded)
    assert structure.passed, structure.problems
    kw = dict(samples=1, image_size=(160, 160), min_pixels=50, min_iou=0.7, seed=3, progress=False,
              cameras=[loaded.cameras[0].name])
    # the original with the same object meshes as collision geometry (not the simulator's builtin
    # box and dish), so that both checks sample the same states
    import dataclasses

    original = capture["original"]
    reference = dataclasses.replace(original, objects={
        k: dataclasses.replace(o, collision={"type": "mesh", "path": str(capture["meshes"][k][0])})
        for k, o in original.objects.items() if k in capture["meshes"]})  # the capture's objects
    got_report, want_report = check_alignment(loaded, **kw), check_alignment(reference, **kw)
    assert [s.to_json() for s in got_report.states] == [s.to_json() for s in want_report.states]
    got, want = got_report.summary(), want_report.summary()
    for body in [ROBOT, names.HAND_LINK, names.CUBE, names.PLATE]:
        assert got[body]["pooled_iou"] is not None, body
        assert abs(got[body]["pooled_iou"] - want[body]["pooled_iou"]) <= 0.02, (body, dict(got[body]), want[body])
        assert got[body]["verdict"] == want[body]["verdict"], (body, got[body], want[body])
    with pytest.raises(CaptureError, match="not empty"):
        write_scene(bundle, report, out)


@pytest.mark.slow
def test_an_rlinf_layout_dataset_merged_into_one_ply_splits_into_its_links(capture, tmp_path, capsys):
    """The dataset's per-link PLYs (world coordinates minus its offset) merged with its table into
    one PLY: every link gets its own gaussians back, in the link frame. The dataset brings no object
    gaussians: `gsenv scene build` refuses it before building (exit 2, the objects named, nothing
    written); the library builds the robot alone when told the bundle is for no task."""
    import json

    from mini_dataset import OFFSET, make_mini_dataset

    from gsenv.scene.format import load_bundle
    from gsenv.scene_build.default import recipe_camera
    from gsenv.scene_build.rlinf_dataset import RLinfLayout, default_joint_config, load_rlinf_dataset
    from gsenv.splat.ply import load_ply, save_ply

    mini = make_mini_dataset(tmp_path / "ds")
    layout = RLinfLayout()
    urdf = mini.root / layout.urdf
    fk = link_world_transforms(urdf, default_joint_config())
    shift = np.eye(4)
    shift[:3, 3] = -OFFSET
    parts = []
    for link, stem in layout.link_files.items():  # surface gaussians as the real files have
        g = _moved(capture["original"].links[link], shift @ fk[link]).to(dtype=torch.float32)
        save_ply(g, mini.root / layout.parts_dir / f"{stem}.ply")
        parts.append(g)
    merged = tmp_path / "merged.ply"
    save_ply(Gaussians.concat(parts + [load_ply(mini.root / layout.table)]), merged)
    dataset = load_rlinf_dataset(mini.root)
    robot_pts = np.array([fk[k][:3, 3] for k in ("fr3_link0", "fr3_link3", "fr3_link5", "fr3_hand")])
    points = tmp_path / "points.json"
    points.write_text(json.dumps({"pairs": [{"splat": (p - OFFSET).tolist(), "robot": p.tolist()} for p in robot_pts]}))
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps(recipe_camera().to_json()))
    q = ",".join(str(v) for v in default_joint_config().values())
    out = tmp_path / "cell"
    rc, text = _cli(["--splat", str(merged), "--urdf", str(urdf), "--qpos", q, "--points", str(points),
                     "--camera", str(camera), "--out", str(out)], capsys, both=True)
    assert rc == 2, text
    assert "missing: --object cube=MESH, --object plate=MESH" in text and not out.exists(), text
    from gsenv.capture.inputs import read_points

    src, dst, _ = read_points(points)
    bundle, report, _ = build_scene(load_ply(merged), urdf, default_joint_config(), {}, src, dst, {},
                                    [recipe_camera()], progress=False, needs=None)
    text = report.format()
    assert "frame: scale 1" in text and "ICP residual" in text and "ambiguous" in text, text
    bundle = load_bundle(write_scene(bundle, report, out))
    assert bundle.splat_to_sim.scale == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(bundle.splat_to_sim.translation, OFFSET, atol=1e-5)
    for link in layout.link_files:
        want = dataset.links[link].means.double()
        got = bundle.links[link].means.double()
        assert 0.99 * len(want) <= len(got) <= 1.005 * len(want), (link, len(got), len(want))
        near = torch.cdist(got, want).min(1).values  # each built gaussian is one of the link's file's
        assert (near < 1e-4).float().mean() >= 0.995, link
    # for the task, the same build is refused before anything is written: no objects
    with pytest.raises(CaptureError, match="no mesh of cube, plate, which task PutCubeOnPlate simulates"):
        build_scene(load_ply(merged), urdf, default_joint_config(), {}, src, dst, {}, [recipe_camera()],
                    progress=False)


def _cli(args, capsys, both=False):
    from gsenv.tools.cli import main

    rc = main(["scene", "build", *args])
    text = capsys.readouterr()
    return rc, (text.out + text.err if both else text.err)


def test_malformed_inputs_give_one_clear_message(capture, tmp_path, capsys):
    import json

    from gsenv.splat.ply import save_ply

    good_ply = tmp_path / "cell.ply"
    save_ply(capture["splat"].subset(slice(0, 100)), good_ply)
    urdf = str(capture["urdf"])
    q = ",".join(str(v) for v in QPOS)
    out = str(tmp_path / "out")
    # a PLY without the 3DGS fields
    import trimesh

    bare = tmp_path / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(20, 3))).export(bare)
    rc, err = _cli(["--splat", str(bare), "--urdf", urdf, "--qpos", q, "--out", out], capsys)
    assert rc == 2 and "missing vertex fields" in err and err.count("error:") == 1, err
    # a URDF whose meshes are missing
    broken = tmp_path / "robot.urdf"
    broken.write_text('<robot name="r"><link name="a"><visual><geometry><mesh filename="meshes/a.stl"/></geometry>'
                      '</visual></link></robot>')
    rc, err = _cli(["--splat", str(good_ply), "--urdf", str(broken), "--qpos", q, "--out", out], capsys)
    assert rc == 2 and "mesh file(s) it names are missing" in err and "a.stl" in err, err
    # a Q of the wrong length
    rc, err = _cli(["--splat", str(good_ply), "--urdf", urdf, "--qpos", "0,0,0", "--out", out], capsys)
    assert rc == 2 and "--qpos has 3 value(s)" in err and "9 movable joints" in err and "fr3_joint1" in err, err
    # an unknown object, too few point pairs, no camera
    rc, err = _cli(["--splat", str(good_ply), "--urdf", urdf, "--qpos", q, "--object", "mug=x.obj", "--out", out],
                   capsys)
    assert rc == 2 and "the task's objects are cube, plate" in err, err
    objs = [a for name, (path, _) in capture["meshes"].items() for a in ("--object", f"{name}={path}")]
    rc, err = _cli(["--splat", str(good_ply), "--urdf", urdf, "--qpos", q, *objs[:2], "--out", out], capsys)
    assert rc == 2 and "task PutCubeOnPlate simulates cube, plate" in err and "missing: --object plate=MESH" in err
    pts = tmp_path / "points.json"
    pts.write_text(json.dumps({"pairs": [{"splat": [0, 0, 0], "robot": [0, 0, 0]}]}))
    rc, err = _cli(["--splat", str(good_ply), "--urdf", urdf, "--qpos", q, *objs, "--points", str(pts), "--out", out],
                   capsys)
    assert rc == 2 and "at least 3" in err, err
    rc, err = _cli(["--splat", str(good_ply), "--urdf", urdf, "--qpos", q, *objs, "--out", out], capsys)
    assert rc == 2 and "--camera" in err, err
    assert not (tmp_path / "out").exists()


def test_what_the_task_needs_is_checked_before_the_build(capture, tmp_path, capsys):
    """Before: another robot's URDF ran the whole build, wrote an unusable bundle and failed with a
    generic ValueError (exit 1); a camera with all-zero intrinsics was caught after the bundle was
    written (exit 1). Now both are bad inputs (exit 2), refused before anything is built or written."""
    import json

    from mani_skill import PACKAGE_ASSET_DIR

    from gsenv.splat.ply import save_ply

    good_ply = tmp_path / "cell.ply"
    save_ply(capture["splat"], good_ply)
    objs = [a for name, (path, _) in capture["meshes"].items() for a in ("--object", f"{name}={path}")]
    pts = tmp_path / "points.json"
    pts.write_text(json.dumps({"pairs": [{"splat": s.tolist(), "robot": r.tolist()} for s, r in zip(*capture["pairs"])],
                               "objects": {k: v.tolist() for k, v in capture["hints"].items()}}))
    good_cam = capture["original"].cameras[0].to_json()
    cam = tmp_path / "cam.json"
    cam.write_text(json.dumps(good_cam))
    q = ",".join(str(v) for v in QPOS)
    out = tmp_path / "out"
    # another robot: UFactory's xArm7 as ManiSkill ships it (meshes beside it), one position per joint
    xarm = Path(PACKAGE_ASSET_DIR) / "robots" / "xarm7" / "xarm7.urdf"
    rc, err = _cli(["--splat", str(good_ply), "--urdf", str(xarm), "--qpos", "0,0,0,0,0,0,0", *objs, "--points",
                    str(pts), "--camera", str(cam), "--out", str(out)], capsys)
    assert rc == 2 and err.count("error:") == 1, err
    assert ("xarm7.urdf lacks the joints task PutCubeOnPlate drives: fr3_joint1, fr3_joint2, fr3_joint3, "
            "fr3_joint4, fr3_joint5, fr3_joint6, fr3_joint7, fr3_finger_joint1, fr3_finger_joint2 (its movable "
            "joints: joint1, joint2, joint3, joint4, joint5, joint6, joint7)") in err, err
    assert not out.exists()
    # a camera with all-zero intrinsics, one with its principal point outside the image
    cam.write_text(json.dumps({**good_cam, "K": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}))
    rc, err = _cli(["--splat", str(good_ply), "--urdf", str(capture["urdf"]), "--qpos", q, *objs, "--points",
                    str(pts), "--camera", str(cam), "--out", str(out)], capsys)
    assert rc == 2 and f"--camera {cam}: cameras[0].K: focal lengths must be > 0, got fx=0.0, fy=0.0" in err, err
    assert not out.exists()
    cam.write_text(json.dumps({"cameras": [good_cam, {**good_cam, "name": "b", "width": 100}]}))
    rc, err = _cli(["--splat", str(good_ply), "--urdf", str(capture["urdf"]), "--qpos", q, *objs, "--points",
                    str(pts), "--camera", str(cam), "--out", str(out)], capsys)
    assert rc == 2 and "cameras[1].K: principal point" in err and "must lie inside the 100x480 image" in err, err
    assert not out.exists()
