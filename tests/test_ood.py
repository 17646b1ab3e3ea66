"""The generalisation suite (gsenv.tasks.ood, issue 27): its rows and ids, the object sets, and each variant's
change, visible (a drawn value, a body pose, an image statistic) and seeded (the same episode id, the same
episode). Initial states are pure functions of a generator, checked directly; the env tests run real CPU PhysX
and tiny torch renders."""
from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from gsenv.sim.initial_state import episode_generator
from gsenv.tasks import env_ids, get_task
from gsenv.tasks.base import instruction_for
from gsenv.tasks.ood import CATEGORIES, SUITE, texture, whole_scene
from gsenv.tasks.put_on_receptacle import (
    EE_POSE_OFFSET,
    GRASPABLES,
    PARK_X,
    RECEPTACLES,
    TRAIN_INSTRUCTIONS,
)

BY_NAME = {v.name.removeprefix("PutCubeOnPlate"): v for v in SUITE}
EPISODES = 48  # episode ids drawn per check of the initial states (pure functions: cheap)


def _draw(variant: str, episode_id: int, obj_set: str = "test") -> dict[str, torch.Tensor]:
    """Episode ``episode_id``'s initial state of a suite task, as its env draws it."""
    import dataclasses

    task = get_task(f"PutCubeOnPlate{variant}")
    spawn = dataclasses.replace(task.spawn_config(task.object_specs()), obj_set=obj_set)
    return task.sample_initial_state(episode_generator(episode_id), spawn)


def _on_table(state: dict, pool) -> list[str]:
    return [n for n in pool if float(state[n][0]) < PARK_X / 2]


def _named(state: dict) -> tuple[str, str]:
    return (list(GRASPABLES)[int(state["goal"].argmax())], list(RECEPTACLES)[int(state["goal_receptacle"].argmax())])


# ----------------------------------------------------------------------------------------- the rows
def test_the_suite_is_the_in_distribution_row_then_13_variants_in_the_protocols_order():
    assert [v.category for v in SUITE] == ["in-distribution"] + ["vision"] * 5 + ["semantic"] * 5 + ["execution"] * 3
    assert set(v.category for v in SUITE) == set(CATEGORIES)
    assert list(BY_NAME) == ["Main", "VisionImage", "VisionTexture03", "VisionTexture05", "VisionWhole03",
                             "VisionWhole05", "UnseenObjects", "UnseenReceptacles", "Instruct", "MultiObject",
                             "MultiReceptacle", "Position", "EEPose", "PositionChangeTo"]
    assert SUITE[0].make_kwargs == {"obj_set": "train"}
    assert all(v.make_kwargs["obj_set"] == "test" for v in SUITE[1:])
    for v in SUITE:
        gsenv_id, rlinf_id = env_ids(v.name)
        assert v.env_id == gsenv_id and v.rlinf_env_id == rlinf_id == f"GSEnv-{v.name}-v0"
        for env_id in (gsenv_id, rlinf_id):  # both forms registered, the vision ones with their randomisation
            spec = gym.registry[env_id]
            assert spec.kwargs["task"] == v.name and spec.entry_point == "gsenv.env:GSEnv"
            assert spec.kwargs.get("domain_randomization") == v.make_kwargs.get("domain_randomization")
        assert get_task(v.name).name == v.name and v.change
    assert BY_NAME["VisionTexture05"].make_kwargs["domain_randomization"] == texture(0.5)
    assert texture(0.5) == {"object_color": (-0.5, 0.5)}
    assert whole_scene(0.3)["light"] == pytest.approx((0.7, 1.3))
    assert whole_scene(0.3)["tint"] == pytest.approx((0.85, 1.15))


def test_the_pools_agree_with_the_simulators_geometry_and_the_splits_are_disjoint():
    from gsenv.sim.objects import POOL_GRASPABLES, POOL_RECEPTACLES, embedded_object_specs

    assert list(POOL_GRASPABLES) == list(GRASPABLES) and list(POOL_RECEPTACLES) == list(RECEPTACLES)
    for name, (split, _, half) in GRASPABLES.items():
        s, spec = POOL_GRASPABLES[name]
        assert s == split and spec.rest_height == pytest.approx(half, abs=1e-12), name
    for name, (split, _, place_radius, top) in RECEPTACLES.items():
        s, spec = POOL_RECEPTACLES[name]
        assert s == split and spec.top_height == pytest.approx(top, abs=1e-12), name
        inner = (spec.radius if spec.kind == "dish" else spec.half_size[0]) - spec.rim_thickness
        assert place_radius <= inner - 0.01, name  # the object's centre inside the rim
    for pool in (GRASPABLES, RECEPTACLES):
        train = {n for n, v in pool.items() if v[0] == "train"}
        test = {n for n, v in pool.items() if v[0] == "test"}
        assert train and test and not train & test and train | test == set(pool)
    assert set(GRASPABLES) | set(RECEPTACLES) <= set(embedded_object_specs())  # the embedded scene draws them


# ----------------------------------------------------------------------------------------- initial states
def test_obj_set_picks_the_split_of_the_held_out_pools():
    split = lambda pool, names: {pool[n][0] for n in names}  # noqa: E731
    seen = {s: set() for s in ("train", "test", "all")}
    for k in range(EPISODES):
        for obj_set in seen:
            state = _draw("Main", k, obj_set)
            g, r = _on_table(state, GRASPABLES), _on_table(state, RECEPTACLES)
            assert len(g) == len(r) == 1 and _named(state) == (g[0], r[0])
            seen[obj_set] |= split(GRASPABLES, g) | split(RECEPTACLES, r)
        g, r = _named(_draw("UnseenObjects", k))
        assert GRASPABLES[g][0] == "test" and RECEPTACLES[r][0] == "train"
        g, r = _named(_draw("UnseenReceptacles", k))
        assert GRASPABLES[g][0] == "train" and RECEPTACLES[r][0] == "test"
        for other in ("VisionImage", "Instruct", "Position", "EEPose", "PositionChangeTo"):  # objects not varied
            g, r = _named(_draw(other, k))
            assert GRASPABLES[g][0] == RECEPTACLES[r][0] == "train", other
    assert seen == {"train": {"train"}, "test": {"test"}, "all": {"train", "test"}}


def test_initial_states_are_fixed_by_the_episode_id():
    for variant in BY_NAME:
        a, b, c = _draw(variant, 7), _draw(variant, 7), _draw(variant, 8)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), variant
        assert any(not torch.equal(a[k], c[k]) for k in a), variant


def test_several_objects_and_several_receptacles_one_of_them_named():
    counts, named_far = set(), 0
    for k in range(EPISODES):
        state = _draw("MultiObject", k)
        g = _on_table(state, GRASPABLES)
        counts.add(len(g))
        assert _named(state)[0] in g and all(GRASPABLES[n][0] == "test" for n in g)
        xy = torch.stack([state[n][:2] for n in g])
        assert torch.pdist(xy).min() >= 0.10 - 1e-9  # the spawn's gap between objects
        state = _draw("MultiReceptacle", k)
        r = _on_table(state, RECEPTACLES)
        assert len(r) == 2 and _named(state)[1] in r and len(_on_table(state, GRASPABLES)) == 1
        assert sorted(float(state[n][1]) < -0.1 for n in r) == [False, True]  # one in each region
        named_far += float(state[_named(state)[1]][1]) < -0.1
    assert counts == {2, 3}
    assert 0 < named_far < EPISODES  # the named receptacle is sometimes the far one, sometimes not


def test_execution_variants_change_the_start_and_the_target():
    for k in range(EPISODES):
        main = _draw("Main", k, "train")
        g = _named(main)[0]
        assert float(main[g][1]) >= 0.15  # in distribution: the object starts at y 0.15..0.25
        pos = _draw("Position", k)
        x, y = (float(v) for v in pos[_named(pos)[0]][:2])  # beyond the receptacle: (0.58, 0.14) +- 4 cm
        assert 0.54 - 1e-9 <= x <= 0.62 + 1e-9 and 0.10 - 1e-9 <= y <= 0.18 + 1e-9, (x, y)
        assert main["qpos_noise"].abs().max() < 0.15  # N(0, 0.02 rad)
        offset = _draw("EEPose", k)["qpos_noise"]
        for j, (lo, hi) in enumerate(EE_POSE_OFFSET):  # the offset, within 5 sigma of the 0.02 rad noise
            assert lo - 0.1 <= abs(float(offset[j])) <= hi + 0.1, (k, j)
        moved = _draw("PositionChangeTo", k)
        assert 5 <= int(moved["move_step"]) <= 20
        assert torch.allclose(moved["move_to"][:2].double(), torch.tensor([0.70, -0.12], dtype=torch.float64),
                              atol=0.01 + 1e-9)  # FAR_RECEPTACLE_CENTER +- FAR_RECEPTACLE_HALF_RANGE
        assert "move_step" not in main


def test_instruct_uses_only_new_phrasings_filled_with_the_named_objects():
    main, instruct = get_task("PutCubeOnPlateMain"), get_task("PutCubeOnPlateInstruct")
    assert main.instructions == TRAIN_INSTRUCTIONS and not set(instruct.instructions) & set(TRAIN_INSTRUCTIONS)
    state = {"extra": {"goal": torch.eye(len(GRASPABLES))[[7]], "goal_receptacle": torch.eye(len(RECEPTACLES))[[3]]}}
    said = {instruction_for(instruct, None, k, state, 0) for k in range(32)}
    assert len(said) == len(instruct.instructions) and all("purple cylinder" in s and "tray" in s for s in said)
    assert instruction_for(instruct, None, 5, state, 0) == instruction_for(instruct, None, 5, state, 0)


def test_obj_set_errors_name_the_values_and_the_tasks_that_have_them():
    with pytest.raises(ValueError, match=r"obj_set must be one of \('train', 'test', 'all'\)"):
        gym.make("GSEnv/PutCubeOnPlateMain-v0", obj_set="val")
    from gsenv.sim.task import register_physics_task

    env_id = register_physics_task(get_task("PutCubeOnPlate"))
    with pytest.raises(ValueError, match="task PutCubeOnPlate has no object sets"):
        gym.make(env_id, obj_set="test")


# ----------------------------------------------------------------------------------------- in the env
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return str(tmp_path_factory.mktemp("assets"))


def _make(variant: str, assets, n=2, obs_mode="state_dict", **kw):
    v = BY_NAME[variant]
    return gym.make(v.env_id, num_envs=n, obs_mode=obs_mode, scene_density=0.02, asset_root=assets,
                    num_workers=1, sim_backend="physx_cpu", render_backend="torch", device="cpu",
                    **{**v.make_kwargs, **kw})


@pytest.mark.slow
def test_the_target_moves_once_at_its_step_and_success_follows_it(assets):
    env = _make("PositionChangeTo", assets)
    try:
        runs = []
        for _ in range(2):  # the same episode ids twice: the same jump
            obs, _ = env.reset(seed=0, options={"episode_id": [3, 4]})
            track = []
            for _ in range(35):
                track.append(obs["extra"]["receptacle_pose"][:, :2].clone())
                obs, *_ = env.step(torch.zeros(2, 7))
            runs.append(torch.stack(track, dim=1))  # [B, T, 2]
        assert torch.equal(runs[0], runs[1])
        track = runs[0]
        for i, k in enumerate((3, 4)):
            drawn = _draw("PositionChangeTo", k)
            step = int(drawn["move_step"])
            jumps = (track[i, 1:] - track[i, :-1]).norm(dim=-1) > 0.05
            # it moves before action move_step + 1 (move_step steps done), seen in the observation after that step
            assert jumps.nonzero().flatten().tolist() == [step]
            assert torch.allclose(track[i, step + 1], drawn["move_to"].float(), atol=1e-5)  # where the draw says
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["UnseenReceptacles", "MultiObject", "Position", "EEPose", "PositionChangeTo"])
def test_the_expert_solves_a_few_episodes(variant, assets):
    """Two episodes of the variants whose physics differ most from Main's (a bowl or tray, distractors, another
    start, another arm pose, a moving target); README's table has all 14 rows over 64 episodes each."""
    env = _make(variant, assets)
    try:
        u = env.unwrapped
        _, info = env.reset(seed=0, options={"episode_id": [10, 11]})
        success, best = torch.zeros(2, dtype=torch.bool), info["progress"].clone()
        for _ in range(100):
            _, _, terminated, _, info = env.step(u.expert_action())
            success |= terminated
            best = torch.maximum(best, info["progress"])
            if success.all():
                break
        assert success.all() and (best == 1).all()
    finally:
        env.close()


def _rgb(obs):
    return obs["sensor_data"]["3rd_view_camera"]["rgb"].float()


@pytest.mark.slow
def test_vision_variants_change_the_image_and_are_seeded(assets):
    kw = dict(obs_mode="rgb", image_size=(24, 32))
    reset = dict(seed=0, options={"episode_id": [2, 3]})
    env = _make("Main", assets, **kw)
    try:
        plain = _rgb(env.reset(**reset)[0])
    finally:
        env.close()
    for variant, key in (("VisionImage", "backdrop_index"), ("VisionTexture03", "object_color"),
                         ("VisionTexture05", "object_color"), ("VisionWhole03", "light"),
                         ("VisionWhole05", "hue")):
        env = _make(variant, assets, **kw)
        try:
            u = env.unwrapped
            first, values = _rgb(env.reset(**reset)[0]), u.domain_randomization_values()
            again, values_again = _rgb(env.reset(**reset)[0]), u.domain_randomization_values()
            assert torch.equal(first, again), variant  # the same episode ids: the same images
            changed = (first - plain).abs().amax(dim=-1) > 8  # [B, H, W] pixels changed by more than 8 of 255
            # VisionImage: the wall and floor (over a fifth of the picture) give way to the background image
            share = float(changed.float().mean())
            assert share > (0.2 if variant == "VisionImage" else 0.05), (variant, share)
            flat = lambda v: torch.stack(list(v.values()), dim=1) if isinstance(v, dict) else v  # noqa: E731
            drawn = flat(values[key])
            assert torch.equal(drawn, flat(values_again[key])), variant
            assert not torch.equal(drawn[0], drawn[1]), variant  # per env: episodes 2 and 3 draw differently
            if key == "object_color":
                s = 0.3 if variant.endswith("03") else 0.5
                assert drawn.abs().max() <= s and drawn.abs().max() > s / 4
        finally:
            env.close()


def test_background_heights_keep_the_table_top_and_refuse_bad_ranges():
    from gsenv.scene.resolve import resolve_scene
    from gsenv.scene.task_fit import background_within_heights

    bundle = resolve_scene("default", density=0.02)
    kept = background_within_heights(bundle, (-0.03, 0.03))
    z_all, z = bundle.background_in_sim().means[:, 2], kept.background_in_sim().means[:, 2]
    assert z.abs().max() <= 0.03 and 0 < len(z) < len(z_all)
    assert len(z) == int(((z_all >= -0.03) & (z_all <= 0.03)).sum())  # exactly those, nothing else dropped
    assert kept.objects.keys() == bundle.objects.keys()  # bodies untouched
    for bad in [(0.03, -0.03), (0.0, float("nan")), 0.03, (True, 1.0), ("a", 1)]:
        with pytest.raises(ValueError, match="background_heights"):
            background_within_heights(bundle, bad)
