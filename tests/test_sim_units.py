"""Pure parts of gsenv.sim (no physics): names, robot description, spawn sampling, rotations, rewards."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
import torch

from gsenv.geometry import matrix_to_rotvec, quat_to_rotmat
from gsenv.sim import names
from gsenv.sim.initial_state import SpawnConfig, episode_generator, sample_batch, sample_one
from gsenv.sim.objects import ObjectSpec, default_cube_spec, default_plate_spec
from gsenv.sim.rewards import DENSE_REWARD_MAX, dense_reward, dense_reward_terms
from gsenv.sim.robot_description import default_fr3_urdf


def test_names_are_consistent():
    assert names.CUBE_EDGE == pytest.approx(0.04)
    assert names.OBJECT_NAMES == ("cube", "plate")
    assert len(names.JOINT_NAMES) == names.NUM_JOINTS == 9
    assert len(names.FR3_DEFAULT_QPOS) == 9
    assert set(names.ROBOT_VISUAL_LINK_NAMES) <= set(names.ROBOT_LINK_NAMES)
    assert names.TCP_LINK in names.ROBOT_LINK_NAMES and names.ROBOT_ROOT_LINK == "fr3_link0"
    assert 0.16 <= names.PLATE_DIAMETER <= 0.20
    for (lo, hi), q in zip(names.FR3_JOINT_LIMITS, names.FR3_DEFAULT_QPOS):
        assert lo < q < hi  # the default configuration is inside the FR3 limits


def test_generated_urdf_has_canonical_names_and_fr3_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path))
    path = default_fr3_urdf()
    assert path.is_file() and path.with_suffix(".srdf").is_file()
    assert str(path).startswith(str(tmp_path))
    root = ET.parse(path).getroot()
    links = {n.get("name") for n in root.iter("link")}
    assert links == set(names.ROBOT_LINK_NAMES)
    joints = {j.get("name"): j for j in root.iter("joint")}
    for jname, (lo, hi) in zip(names.ARM_JOINT_NAMES, names.FR3_JOINT_LIMITS):
        lim = joints[jname].find("limit")
        assert float(lim.get("lower")) == lo and float(lim.get("upper")) == hi
    for mesh in root.iter("mesh"):
        assert mesh.get("filename").startswith("/")
    assert default_fr3_urdf() == path  # cached, same content -> same file


def test_spawn_sampling_ranges_and_no_overlap():
    cfg = SpawnConfig()
    s = sample_batch([torch.Generator().manual_seed(i) for i in range(400)], cfg)
    assert s.shape == (400, 13)
    noise, cube, plate = s[:, :7], s[:, 7:9], s[:, 10:12]
    assert cube[:, 0].min() >= 0.30 and cube[:, 0].max() <= 0.50
    assert cube[:, 0].min() < 0.32 and cube[:, 0].max() > 0.48  # the whole range is used
    assert cube[:, 1].min() >= 0.15 and cube[:, 1].max() <= 0.25
    assert plate[:, 0].min() >= 0.40 and plate[:, 0].max() <= 0.50
    assert torch.all(plate[:, 1] == 0)
    assert torch.all(s[:, 9] == 0) and torch.all(s[:, 12] == 0)  # no yaw by default
    assert noise.std().item() == pytest.approx(0.02, rel=0.1)
    gap = torch.linalg.norm(cube - plate, dim=1)
    assert torch.all(gap >= cfg.cube_radius + cfg.plate_radius + cfg.min_gap)


def test_spawn_yaw_and_overlap_rejection():
    yawed = sample_batch([torch.Generator().manual_seed(i) for i in range(50)], SpawnConfig(randomize_yaw=True))
    assert yawed[:, 9].abs().max() > 1.0 and yawed[:, 12].abs().max() > 1.0
    assert yawed[:, 9].abs().max() <= math.pi
    # overlapping regions: every accepted sample must still be apart
    cfg = SpawnConfig(cube_center=(0.45, 0.05), cube_half_range=(0.1, 0.15))
    s = sample_batch([torch.Generator().manual_seed(i) for i in range(100)], cfg)
    assert torch.all(torch.linalg.norm(s[:, 7:9] - s[:, 10:12], dim=1) >= cfg.cube_radius + cfg.plate_radius)
    impossible = SpawnConfig(cube_center=(0.45, 0.0), cube_half_range=(0.0, 0.0), plate_half_range=(0.0, 0.0))
    with pytest.raises(ValueError, match="overlap"):
        sample_one(torch.Generator().manual_seed(0), impossible)


def test_episode_table_is_fixed_and_distinct():
    cfg = SpawnConfig()
    a = sample_one(episode_generator(7), cfg)
    torch.manual_seed(123)  # the global RNG must not matter
    b = sample_one(episode_generator(7), cfg)
    c = sample_one(episode_generator(8), cfg)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_rotations_roundtrip():
    # 0.3 rad about z
    q = torch.tensor([[math.cos(0.15), 0.0, 0.0, math.sin(0.15)]])
    m = quat_to_rotmat(q)
    assert torch.allclose(m[0], torch.tensor([[math.cos(0.3), -math.sin(0.3), 0], [math.sin(0.3), math.cos(0.3), 0],
                                              [0, 0, 1.0]]), atol=1e-6)
    assert torch.allclose(matrix_to_rotvec(m), torch.tensor([[0, 0, 0.3]]), atol=1e-5)
    assert torch.equal(matrix_to_rotvec(torch.eye(3)[None]), torch.zeros(1, 3))


def test_dense_reward_stages():
    z3 = torch.zeros(3, 3)
    tcp = torch.tensor([[0.0, 0, 0.3], [0.0, 0, 0.02], [0.45, 0, 0.1]])
    cube = torch.tensor([[0.0, 0, 0.02], [0.0, 0, 0.02], [0.45, 0, 0.1]])
    plate = torch.tensor([[0.45, 0, 0.01]] * 3)
    grasped = torch.tensor([False, False, True])
    on_plate = torch.tensor([False, False, False])
    t = dense_reward_terms(tcp, cube, plate, z3, grasped, on_plate)
    r = dense_reward(t, torch.zeros(3, dtype=torch.bool))
    assert r[0] < r[1] < r[2]  # reaching then grasping-and-carrying pay more
    assert t["reach"][1] == 1 and t["grasp"][2] == 1 and t["carry"][2] == pytest.approx(1.0)
    vel = torch.tensor([[0.0, 0, 0], [0.0, 0, 0], [0.0, 0.2, 0]])  # the last cube still slides
    placed = dense_reward_terms(tcp, cube, plate, vel, torch.zeros(3, dtype=torch.bool),
                                torch.ones(3, dtype=torch.bool))
    assert placed["release"][0] == 1 and placed["release"][2] < 0.5 and torch.all(placed["place"] == 1)
    success = dense_reward(placed, torch.tensor([True, False, False]))
    assert success[0] == DENSE_REWARD_MAX and success[2] < DENSE_REWARD_MAX - 0.5
    assert torch.all(success <= DENSE_REWARD_MAX)


def test_object_spec_validation():
    assert default_cube_spec().mass == names.CUBE_MASS == 0.3
    assert default_plate_spec().footprint_radius == names.PLATE_RADIUS
    with pytest.raises(ValueError, match="kind"):
        ObjectSpec(kind="sphere", mass=1.0, rest_height=0.1)
    with pytest.raises(ValueError, match="mass"):
        ObjectSpec(kind="box", mass=0.0, rest_height=0.1)
    with pytest.raises(ValueError, match="mesh_path"):
        ObjectSpec(kind="mesh", mass=0.3, rest_height=0.1, mesh_path="/nonexistent.obj")
