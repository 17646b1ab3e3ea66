"""Bad inputs to GSEnv fail where they enter, with one clear message, before any physics worker is
touched; the env stays usable. No env leaves workers behind when it is dropped or fails to build."""
from __future__ import annotations

import gc
import os

import gymnasium as gym
import pytest
import torch

import gsenv
from gsenv.tools.bench.proc import alive, descendants

ID = gsenv.registration.ENV_ID


def _descendants() -> set[int]:
    """Live (non-zombie) processes below this one."""
    return {p for p in descendants(os.getpid()) if alive(p)}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return str(tmp_path_factory.mktemp("assets"))


def make(assets, **kw):
    kw = {"num_envs": 2, "obs_mode": "state", "scene_density": 0.02, "asset_root": assets, "num_workers": 1, **kw}
    return gym.make(ID, **kw)


@pytest.fixture(scope="module")
def env(assets):
    e = make(assets)
    yield e
    e.close()


@pytest.mark.parametrize("seed, options, err, match", [
    (2**32 - 1, None, ValueError, r"2\*\*32"),                       # env 1 would get 2**32
    ([0, -1], None, ValueError, r"2\*\*32"),
    (0, {"episode_id": [128, 0]}, ValueError, "total_num_trials=128"),
    (0, {"episode_id": [1.5, 0]}, TypeError, "integers"),
    (0, {"env_idx": [1, 1]}, ValueError, "more than once"),
    (0, {"episode": [1, 2]}, ValueError, "unknown reset option"),
])
def test_bad_reset_arguments_leave_the_env_usable(env, seed, options, err, match):
    with pytest.raises(err, match=match):
        env.reset(seed=seed, options=options)
    obs, _ = env.reset(seed=3)
    obs2, *_ = env.step(torch.zeros(2, 7))
    assert obs.shape == obs2.shape == (2, obs.shape[1])


def test_wrappers_forward_the_batched_spaces(env):
    assert env.single_action_space.shape == (7,)
    assert env.num_envs == 2
    assert env.single_observation_space.shape == env.observation_space.shape[1:]


def test_direct_gsenv_truncates_at_its_episode_length(assets):
    e = gsenv.GSEnv(num_envs=1, obs_mode="state", scene_density=0.02, asset_root=assets, max_episode_steps=2)
    try:
        e.reset(seed=0)
        truncated = [bool(e.step(torch.zeros(1, 7))[3][0]) for _ in range(3)]
    finally:
        e.close()
    assert truncated == [False, True, True]


@pytest.mark.parametrize("kwargs, err, match", [
    ({"image_size": "64"}, ValueError, "image_size must be"),
    ({"image_size": (48.5, 64)}, ValueError, "image_size must be"),
    ({"control_mode": "pd_ee_pose"}, ValueError, "control_mode must be one of"),
    ({"reward_mode": "success"}, ValueError, "reward_mode must be one of"),
    ({"randomise_yaw": True}, TypeError, r"unknown keyword argument\(s\) \['randomise_yaw'\]"),
    ({"num_envs": 100_000}, ValueError, "GSENV_NO_MEMORY_LIMIT"),
    ({"num_workers": 0}, ValueError, "num_workers must be in"),
    ({"num_workers": 100_000}, ValueError, "num_workers must be in"),
    ({"cameras": "3rd_view_camera"}, ValueError,
     r"cameras must be a list of camera names, not a str: "
     r"pass \['3rd_view_camera'\]"),
])
def test_bad_construction_arguments_fail_before_any_worker_starts(assets, kwargs, err, match):
    before = _descendants()
    with pytest.raises(err, match=match) as info:
        make(assets, **kwargs)
    assert len(str(info.value)) < 600, "one clear message, not a dump of every keyword"
    assert _descendants() - before == set()


def test_dropped_and_failed_envs_leave_no_workers(assets):
    gc.collect()
    before = _descendants()
    e = None
    for _ in range(4):
        e = make(assets)  # rebinding drops the previous env: its workers must end now, not at a full GC
        assert e.unwrapped.sim_backend == "physx_cpu"
    alive = _descendants() - before
    assert 1 <= len(alive) <= 2, f"one env's worker (+ at most one worker server) should be alive: {alive}"
    e = None
    with pytest.raises((ValueError, AssertionError), match="max_episode_steps|positive"):
        make(assets, max_episode_steps=0)  # gym.make fails after GSEnv is built
    # no worker is left; a preloaded worker server may stay for later envs
    assert len(_descendants() - before) <= len(alive) - 1
