"""The embedded scene's objects and the task family on real CPU PhysX: every object's gaussians are
sampled from its simulator geometry in its colour, each task's scripted expert solves a few fixed
episodes, and PutColorCubeOnPlate rewards only the cube its instruction names."""
from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch

from gsenv.sim import names
from gsenv.tasks import get_task

DENSITY = 0.02
EPISODE_IDS = [0, 1, 2]  # _make's default B = 3


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


def _make(name, assets, n=3, obs_mode="state_dict", **kw):
    return gym.make(f"GSEnv/{name}-v0", num_envs=n, obs_mode=obs_mode, scene_density=DENSITY,
                    asset_root=str(assets), num_workers=2, sim_backend="physx_cpu", **kw)


def _run(env, ids, inputs=None, steps=100):
    """The expert (or the task's expert on ``inputs(obs)``) on fixed episodes -> (success [B], best progress
    [B], first obs, first info, last obs)."""
    u = env.unwrapped
    obs, info = env.reset(seed=0, options={"episode_id": ids})
    first = (obs, info)
    success = torch.zeros(len(ids), dtype=torch.bool)
    best = info["progress"].clone()
    for _ in range(steps):
        action = u.expert_action() if inputs is None else u.task.expert_action(**inputs(obs))
        obs, _, terminated, _, info = env.step(action)
        success |= terminated
        best = torch.maximum(best, info["progress"])
        if success.all():
            break
    return success, best, *first, obs


@pytest.mark.slow
def test_the_embedded_scene_draws_each_object_from_its_simulator_geometry():
    from gsenv.scene_build.default import build_default_bundle, load_recipe
    from gsenv.sim.objects import embedded_object_specs
    from gsenv.splat.sh import SH_C0

    bundle = build_default_bundle(DENSITY)
    specs = embedded_object_specs()
    assert list(bundle.objects) == list(load_recipe()["objects"]) == list(specs)
    for name, spec in specs.items():
        g = bundle.objects[name].gaussians
        p = g.means.double()
        tol = 1e-6  # gaussian centres lie on the surface (float32 of metre-scale numbers)
        if spec.kind in ("box", "tray"):  # within its box; a cube's on its faces
            assert (p.abs() <= torch.tensor(spec.half_size, dtype=torch.float64) + tol).all(), name
            if spec.kind == "box":
                assert (p.abs().max(dim=1).values >= min(spec.half_size) - tol).all(), name
        else:  # dish, marker, cylinder: within the cylinder of its radius (a dish's rim segments' corners reach
            # radius / cos(pi / segments): they are tangent to the circle) and height
            r = spec.radius / math.cos(math.pi / spec.rim_segments) if spec.kind == "dish" else spec.radius
            assert (torch.linalg.norm(p[:, :2], dim=1) <= r + tol).all(), name
            assert (p[:, 2].abs() <= spec.height / 2 + tol).all(), name
        rgb = SH_C0 * g.sh[:, 0, :].double() + 0.5
        # face colours are stored as uint8: within 1/255 of the spec's colour
        assert torch.allclose(rgb, torch.tensor(spec.color[:3], dtype=torch.float64).expand_as(rgb), atol=1 / 255)
    assert specs[names.TARGET].kind == "marker" and specs[names.CUBE].color == specs["red_cube"].color


@pytest.mark.slow
@pytest.mark.parametrize("name", ["PutColorCubeOnPlate", "PutCubeInBowl", "StackCube", "PushCube"])
def test_each_new_task_is_solved_by_its_expert(name, assets):
    env = _make(name, assets, reward_mode="normalized_dense")
    u, task = env.unwrapped, get_task(name)
    try:
        assert set(u.scene.objects) == set(task.objects)  # the scene draws what the physics simulates
        success, best, obs, info, _ = _run(env, EPISODE_IDS)
        assert success.all(), success
        assert torch.equal(best, torch.ones(len(EPISODE_IDS)))  # every stage reached
        assert not info["success"].any() and (info["progress"] < 1).all()
        assert all(text.startswith(tuple(p.split("{")[0] for p in task.instructions))
                   for text in info["language_instruction"])
        _, reward, *_ = env.step(u.expert_action())
        assert (reward <= 1).all()
    finally:
        env.close()


@pytest.mark.slow
def test_put_color_cube_on_plate_rewards_only_the_named_cube(assets):
    from gsenv.tasks.put_color_cube_on_plate import COLORS, CUBES, PARK_X, goal_index, other_cube_inputs

    task = get_task("PutColorCubeOnPlate")
    env = _make("PutColorCubeOnPlate", assets)
    try:
        # the instruction names the cube the state's one-hot names, in one of the task's phrasings
        obs, info = env.reset(seed=11)
        goal = goal_index(obs)
        for i, text in enumerate(info["language_instruction"]):
            assert text in {p.format(color=COLORS[int(goal[i])]) for p in task.instructions}
            present = [k for k, c in enumerate(CUBES) if obs["extra"][f"{c}_pose"][i, 0] < PARK_X / 2]
            assert 2 <= len(present) <= 4 and int(goal[i]) in present
            assert torch.equal(obs["extra"]["goal_pose"][i], obs["extra"][f"{CUBES[int(goal[i])]}_pose"][i])
        # fixed episodes: the same draw whatever the seed
        obs2, info2 = env.reset(seed=99, options={"episode_id": [5, 6, 7]})
        obs3, info3 = env.reset(seed=3, options={"episode_id": [5, 6, 7]})
        assert info2["language_instruction"] == info3["language_instruction"]
        assert torch.equal(obs2["extra"]["goal"], obs3["extra"]["goal"])
        # a partial reset draws the reset env's cubes and goal anew and leaves the others' as they were
        obs4, info4 = env.reset(options={"env_idx": [1], "episode_id": [9]})
        obs5, info5 = env.reset(options={"episode_id": [5, 9, 7]})
        assert not torch.equal(obs5["extra"]["goal_pose"][1], obs3["extra"]["goal_pose"][1])
        assert torch.equal(obs4["extra"]["goal"], obs5["extra"]["goal"])
        assert torch.equal(obs4["extra"]["goal_pose"], obs5["extra"]["goal_pose"])
        assert info4["language_instruction"] == info5["language_instruction"]
        # an expert that puts another cube on the plate: never a success, though it places a cube there
        success, best, *_, last = _run(env, EPISODE_IDS, other_cube_inputs)
        assert not success.any() and (best < 1).all()
        plate = last["extra"]["plate_pose"][:, :2]
        others = torch.stack([last["extra"][f"{c}_pose"][:, :2] for c in CUBES], dim=1)
        on_plate = torch.linalg.norm(others - plate[:, None], dim=-1) < 0.07  # [B, 4]
        assert on_plate.any(dim=1).all() and not on_plate[torch.arange(3), goal_index(last)].any()
    finally:
        env.close()


@pytest.mark.slow
def test_push_cube_slides_the_cube_over_a_marker_it_does_not_touch(assets):
    from gsenv.tasks.push_cube import ON_TABLE_Z

    env = _make("PushCube", assets, n=2)
    u = env.unwrapped
    try:
        obs, _ = env.reset(seed=0, options={"episode_id": [3, 4]})
        marker = obs["extra"]["target_pose"].clone()
        success = torch.zeros(2, dtype=torch.bool)
        for _ in range(60):
            obs, _, terminated, _, _ = env.step(u.expert_action())
            assert not obs["extra"]["is_grasped"].any()  # pushed, never held
            assert torch.equal(obs["extra"]["target_pose"], marker)  # the marker is not moved by anything
            success |= terminated
            # success: the cube's centre over the disc, on the table (not lifted)
            d = torch.linalg.norm(obs["extra"]["cube_to_target_pos"][:, :2], dim=1)
            assert torch.equal(terminated, (d < names.TARGET_RADIUS) & (obs["extra"]["cube_pose"][:, 2] < ON_TABLE_Z))
        assert success.all()
        # the expert pushes on to the disc's centre and stops; the cube rests on the table across the 2 mm disc:
        # nothing collides with the marker (the cube's centre stays half an edge above the table, not raised
        # by the disc's thickness; 1 mm: contact offset)
        assert (torch.linalg.norm(obs["extra"]["cube_to_target_pos"][:, :2], dim=1) < 0.02).all()
        assert ((obs["extra"]["cube_pose"][:, 2] - names.CUBE_HALF_SIZE).abs() < 1e-3).all()
    finally:
        env.close()


@pytest.mark.slow
def test_stack_cube_success_means_on_top_released_and_still(assets):
    from gsenv.tasks.stack_cube import ON_TOP_DZ, ON_TOP_DZ_TOL, ON_TOP_XY

    env = _make("StackCube", assets, n=2)
    u = env.unwrapped
    try:
        env.reset(seed=0, options={"episode_id": [5, 6]})
        success = torch.zeros(2, dtype=torch.bool)
        for _ in range(100):
            obs, _, terminated, _, info = env.step(u.expert_action())
            off = -obs["extra"]["cube_to_base_pos"]
            on_top = (torch.linalg.norm(off[:, :2], dim=1) <= ON_TOP_XY) & (
                (off[:, 2] - ON_TOP_DZ).abs() <= ON_TOP_DZ_TOL)
            assert not (terminated & ~(on_top & ~obs["extra"]["is_grasped"])).any()
            success |= terminated
            if success.all():
                break
        assert success.all() and info["cube_static"].all()
    finally:
        env.close()
