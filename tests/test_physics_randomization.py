"""Physics, observation and timing randomisation (gsenv.physics.randomization, gsenv.sim.dynamics).

Draws: in range, reproducible by seed, the same whatever the batch. Values: they reach PhysX (read
back from a task instance, and the pool's trajectories equal a plain instance given the same values).
Latency: the delayed trajectory is the undelayed one driven by the hold action first. Noise: the
observed qpos only. Off: bit-identical to no argument.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import gsenv
from gsenv.physics.randomization import (
    DEFAULT_RANGES,
    DEFAULT_REASONS,
    PhysicsRandomization,
    RandomizedPhysics,
    hold_action,
    physics_draw_seed,
    qpos_noise,
)
from gsenv.sim import dynamics, names
from gsenv.sim.task import register_physics_task
from gsenv.tasks import get_task

ID = register_physics_task(get_task("PutCubeOnPlate"))
OBJECTS = ("cube", "plate")
STEPS = 12


# ----------------------------------------------------------------------------------------- ranges
@pytest.mark.parametrize("bad, match", [
    ({"object_mas": (0.5, 1.5)}, "did you mean 'object_mass'"),
    ({"object_mass": (0.0, 1.5)}, r"must lie in \(0.0, 10.0\]"),
    ({"arm_damping": (2.0, 1.0)}, "low 2.0 is above high 1.0"),
    ({"qpos_noise_std": (0.0, 0.5)}, r"must lie in \[0.0, 0.1\]"),
    ({"action_latency": (0, 1.5)}, "whole numbers"),
    ({"action_latency": (0, 11)}, r"must lie in \[0, 10\]"),
    ({"object_friction": 1.2}, "must be a \\(low, high\\) pair"),
    ({"arm_stiffness": (1.0, float("nan"))}, "must be a \\(low, high\\) pair"),
    (True, "is not accepted: pass physics_randomization='default'"),
    ("strong", "unknown physics_randomization preset 'strong'"),
    (3, "must be None, a dict"),
])
def test_bad_ranges_raise_one_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        PhysicsRandomization.from_any(bad)


def test_off_default_and_dict():
    assert PhysicsRandomization.from_any(None) is None
    assert PhysicsRandomization() == PhysicsRandomization.from_any({})
    assert not PhysicsRandomization().changes_physics
    cfg = PhysicsRandomization.from_any({"action_latency": (1, 3.0), "qpos_noise_std": (0, 0.01)})
    assert cfg.action_latency == (1, 3) and isinstance(cfg.action_latency[0], int) and not cfg.changes_physics
    preset = PhysicsRandomization.from_any("default")
    assert preset == PhysicsRandomization(**DEFAULT_RANGES) and preset.changes_physics
    assert set(DEFAULT_REASONS) == set(DEFAULT_RANGES) and all(len(r) > 40 for r in DEFAULT_REASONS.values())


def test_gym_make_refuses_bad_ranges_and_gpu_sim_side_ranges_before_anything_starts():
    with pytest.raises(ValueError, match="did you mean 'action_latency'"):
        gym.make(gsenv.registration.ENV_ID, physics_randomization={"action_latenc": (0, 1)})
    with pytest.raises(ValueError, match="sim_backend='physx_cpu'"):
        gym.make(gsenv.registration.ENV_ID, sim_backend="physx_cuda", physics_randomization={"object_mass": (1, 2)})


# ----------------------------------------------------------------------------------------- draws
def _drawn(num_envs, env_idx, seeds, config=None):
    r = RandomizedPhysics(config or PhysicsRandomization.default(), num_envs, OBJECTS, names.DEFAULT_CONTROL_MODE,
                          7, "cpu")
    r.redraw(env_idx, seeds)
    return r


def test_draws_are_in_range_reproducible_and_independent_of_the_batch():
    seeds = [physics_draw_seed(s, None) for s in (11, 12, 13, 14)]
    four = _drawn(4, [0, 1, 2, 3], seeds).snapshot()
    two = _drawn(2, [0, 1], seeds[2:]).snapshot()  # envs 2, 3 alone: the same draws
    for key in ("arm_stiffness", "arm_damping", "qpos_noise_std", "action_latency"):
        assert torch.equal(four[key][2:], two[key]), key
    for key in ("object_mass", "object_friction"):
        for name in OBJECTS:
            assert torch.equal(four[key][name][2:], two[key][name]), key
    ranges = {**DEFAULT_RANGES, "action_latency": (0, 2)}
    many = _drawn(200, range(200), [physics_draw_seed(s, None) for s in range(200)],
                  PhysicsRandomization(**ranges)).snapshot()
    for key, (lo, hi) in ranges.items():
        values = torch.cat(list(many[key].values())) if isinstance(many[key], dict) else many[key].flatten()
        assert lo <= float(values.min()) and float(values.max()) <= hi, key
        if key != "action_latency":  # uniform: 200+ draws come within 5% of the range of both ends
            assert float(values.min()) < lo + 0.05 * (hi - lo) and float(values.max()) > hi - 0.05 * (hi - lo), key
    assert set(many["action_latency"].tolist()) == {0, 1, 2}
    # the episode id, not the seed, decides when given; and it differs from seed == id
    assert torch.equal(_drawn(1, [0], [physics_draw_seed(5, 7)]).values["arm_damping"],
                       _drawn(1, [0], [physics_draw_seed(99, 7)]).values["arm_damping"])
    assert not torch.equal(_drawn(1, [0], [physics_draw_seed(7, None)]).values["arm_damping"],
                           _drawn(1, [0], [physics_draw_seed(0, 7)]).values["arm_damping"])


def test_turning_one_range_on_leaves_the_others_draws():
    seeds = [physics_draw_seed(s, None) for s in (1, 2)]
    a = _drawn(2, [0, 1], seeds, PhysicsRandomization(arm_damping=(0.5, 2.0))).values
    b = _drawn(2, [0, 1], seeds, PhysicsRandomization(arm_damping=(0.5, 2.0), object_mass=(0.5, 1.5))).values
    assert torch.equal(a["arm_damping"], b["arm_damping"]) and not torch.equal(a["object_mass"], b["object_mass"])


def test_qpos_noise_is_a_standard_normal_function_of_key_step_and_joint():
    key = torch.arange(2000, dtype=torch.int64) * 7919
    step = torch.arange(2000) % 100
    z = qpos_noise(key, step, 7)  # [2000, 7]
    assert torch.equal(z, qpos_noise(key, step, 7))
    assert torch.equal(z[5:6], qpos_noise(key[5:6], step[5:6], 7))  # a row does not depend on the others
    assert not torch.equal(z[:, 0], qpos_noise(key, step + 1, 7)[:, 0])
    # 14000 samples of N(0, 1): mean within 5 standard errors (5 / sqrt(14000) = 0.042), std within 0.03
    assert abs(float(z.mean())) < 0.042 and abs(float(z.std()) - 1.0) < 0.03
    corr = np.corrcoef(z[:, 0].numpy(), z[:, 1].numpy())[0, 1]
    assert abs(corr) < 5 / math.sqrt(2000)  # joints independent


def test_the_ring_applies_each_envs_action_from_k_steps_ago_and_holds_before():
    r = RandomizedPhysics(PhysicsRandomization(action_latency=(0, 3)), 3, OBJECTS, names.DEFAULT_CONTROL_MODE, 7,
                          "cpu")
    r.redraw([0, 1, 2], [0, 1, 2])
    r._latency[:] = torch.tensor([0, 1, 3])  # fixed ks for the check
    qpos = torch.tensor(names.FR3_DEFAULT_QPOS).repeat(3, 1)
    r.restart([0, 1, 2], qpos)
    hold = hold_action(names.DEFAULT_CONTROL_MODE, qpos)
    # zero delta, the gripper's command of its reset opening (0.04 m: 1, up to float32 rounding of 0.04)
    assert torch.allclose(hold[0], torch.tensor([0.0] * 6 + [1.0]), rtol=0, atol=1e-6)
    actions = [torch.full((3, 7), float(t + 1)) for t in range(8)]
    applied = [r.delay(a) for a in actions]
    for t in range(8):
        for b, k in enumerate((0, 1, 3)):
            want = hold[b] if t < k else actions[t - k][b]
            assert torch.equal(applied[t][b], want), (t, b)
    r.restart([1], qpos)  # env 1 alone starts over: holds again for its one step
    out = r.delay(torch.full((3, 7), 9.0))
    assert torch.equal(out[1], hold[1]) and torch.equal(out[0], torch.full((7,), 9.0))
    assert torch.equal(out[2], actions[8 - 3][2])
    joint_hold = hold_action("pd_joint_pos", qpos)
    assert torch.equal(joint_hold[:, :7], qpos[:, :7]) and joint_hold.shape == (3, 8)


# ----------------------------------------------------------------------------------------- the simulator
def test_values_reach_physx_and_scale_the_base_not_the_last_episode():
    env = gym.make(ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu", render_backend="none")
    u = env.unwrapped
    try:
        env.reset(seed=0)
        base = dynamics.read_physics_values(u)
        values = {"object_mass": {"cube": 1.5, "plate": 0.5}, "object_friction": {"cube": 0.7, "plate": 1.3},
                  "arm_stiffness": [0.8 + 0.1 * j for j in range(7)], "arm_damping": [2.0] * 7}
        for _ in range(2):  # twice: factors apply to the base values, never compound
            env.reset(seed=1, options={dynamics.OPTION_KEY: values})
            got = dynamics.read_physics_values(u)
            for name in OBJECTS:  # float32 in PhysX: relative 1e-6
                want = base["object_mass"][name] * values["object_mass"][name]
                assert got["object_mass"][name] == pytest.approx(want, rel=1e-6)
                for key in ("object_static_friction", "object_dynamic_friction"):
                    assert got[key][name] == pytest.approx(
                        [f * values["object_friction"][name] for f in base[key][name]], rel=1e-6)
            assert got["arm_stiffness"] == pytest.approx([k * s for k, s in zip(base["arm_stiffness"],
                                                                                values["arm_stiffness"])], rel=1e-6)
            assert got["arm_damping"] == pytest.approx([d * 2.0 for d in base["arm_damping"]], rel=1e-6)
        env.reset(seed=1, options={dynamics.OPTION_KEY: {}})  # every factor 1: the base again
        assert dynamics.read_physics_values(u) == base
        env.reset(seed=1, options={dynamics.OPTION_KEY: values})
        env.reset(seed=1)  # an episode without values: the base again
        assert dynamics.read_physics_values(u) == base
    finally:
        env.close()


def _make(assets, **kw):
    kw.setdefault("num_workers", 1)
    return gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode="state", scene_density=0.02, asset_root=assets,
                    render_backend="torch", device="cpu", **kw)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return str(tmp_path_factory.mktemp("assets"))


def _actions(seed: int, steps: int = STEPS, b: int = 2, close: bool = True) -> list[torch.Tensor]:
    """Open-loop actions: a slow reach forward and down, then (close) closing the gripper, plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        a = np.zeros((b, 7), np.float32)
        a[:, 0], a[:, 2] = 0.01, -0.005  # 12 steps: 12 cm forward, 6 cm down, clear of the table
        a[:, :6] += rng.normal(0.0, 0.005, (b, 6)).astype(np.float32)
        a[:, 6] = 1.0 if t < steps // 2 or not close else -1.0
        out.append(torch.from_numpy(a))
    return out


def _run(env, seed: int, actions, options=None) -> list[torch.Tensor]:
    obs, _ = env.reset(seed=seed, options=options)
    out = [obs.clone()]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs.clone())
    return out


@pytest.mark.slow
def test_off_is_bit_identical_to_no_argument(assets):
    actions = _actions(0)
    plain, none, ones = _make(assets), _make(assets, physics_randomization=None), _make(
        assets, physics_randomization={"object_mass": (1.0, 1.0)})  # on, every factor 1
    try:
        want = _run(plain, 4, actions)
        for env in (none, ones):
            got = _run(env, 4, actions)
            assert all(torch.equal(g, w) for g, w in zip(got, want))
        assert none.unwrapped.physics_randomization_values() is None
    finally:
        for env in (plain, none, ones):
            env.close()


@pytest.mark.slow
def test_the_pool_runs_the_drawn_values_whatever_the_worker_split(assets):
    """GSEnv over 1 or 2 workers: the same draws and trajectories, equal to a plain single-env instance
    reset with the drawn values of that env; and not the unrandomised trajectory (the values act)."""
    cfg = {"object_mass": (0.5, 1.5), "object_friction": (0.7, 1.3), "arm_stiffness": (0.3, 0.5),
           "arm_damping": (0.5, 2.0)}
    actions = _actions(1)
    one, two = _make(assets, physics_randomization=cfg), _make(assets, physics_randomization=cfg, num_workers=2)
    try:
        got = _run(one, 20, actions)
        assert all(torch.equal(g, w) for g, w in zip(_run(two, 20, actions), got))
        v1, v2 = one.unwrapped.physics_randomization_values(), two.unwrapped.physics_randomization_values()
        assert torch.equal(v1["arm_stiffness"], v2["arm_stiffness"])
        assert torch.equal(v1["object_mass"]["cube"], v2["object_mass"]["cube"])
    finally:
        one.close()
        two.close()
    plain = gym.make(ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu", render_backend="none")
    try:
        env = 1  # reset with seed 20 + 1
        option = {"object_mass": {n: float(v1["object_mass"][n][env]) for n in OBJECTS},
                  "object_friction": {n: float(v1["object_friction"][n][env]) for n in OBJECTS},
                  "arm_stiffness": v1["arm_stiffness"][env].tolist(), "arm_damping": v1["arm_damping"][env].tolist()}
        mine = [plain.reset(seed=21, options={dynamics.OPTION_KEY: option})[0][0]]
        mine += [plain.step(a[env:env + 1])[0][0] for a in actions]
        assert all(torch.equal(m, g[env]) for m, g in zip(mine, got))
        unrandomised = [plain.reset(seed=21)[0][0]] + [plain.step(a[env:env + 1])[0][0] for a in actions]
        # a third of the stiffness: the arm lags its targets by centimetres of joint travel, far above float noise
        assert float((unrandomised[-1][:7] - got[-1][env, :7]).abs().max()) > 1e-3
    finally:
        plain.close()


@pytest.mark.slow
def test_latency_k_is_the_undelayed_run_after_k_hold_actions(assets):
    k = 2
    actions = _actions(2)
    late, now = _make(assets, physics_randomization={"action_latency": (k, k)}), _make(assets)
    try:
        delayed = _run(late, 9, actions)
        assert late.unwrapped.physics_randomization_values()["action_latency"].tolist() == [k, k]
        now.reset(seed=9)
        hold = hold_action(names.DEFAULT_CONTROL_MODE, now.unwrapped.agent.robot.get_qpos())
        # exact: the delayed env applies hold, hold, a_0, a_1, ...; the undelayed one given those is the same run
        assert all(torch.equal(d, w) for d, w in zip(delayed, _run(now, 9, [hold] * k + actions[:-k])))
        # approximately the undelayed run shifted by k: k hold steps let the arm settle by ~1e-7 (float32
        # rounding of a resting PD loop); a contact-free run (gripper open, clear of the table) carries that
        # through (measured: <= 2e-6, in joint velocities), a contact would amplify it chaotically
        free = _actions(2, close=False)
        delayed, undelayed = _run(late, 9, free), _run(now, 9, free[:-k])
        shift = max(float((delayed[t + k] - undelayed[t]).abs().max()) for t in range(len(undelayed)))
        assert shift < 1e-5, shift
    finally:
        late.close()
        now.close()


@pytest.mark.slow
def test_qpos_noise_changes_the_observed_qpos_only(assets):
    actions = _actions(3)
    noisy, clean = _make(assets, physics_randomization={"qpos_noise_std": (0.01, 0.01)}), _make(assets)
    try:
        obs_n, obs_c = _run(noisy, 5, actions), _run(clean, 5, actions)
        assert torch.equal(noisy.unwrapped.agent.robot.get_qpos(), clean.unwrapped.agent.robot.get_qpos())  # sim
        diff = torch.stack([n - c for n, c in zip(obs_n, obs_c)])  # [T, B, D]
        assert torch.equal(diff[..., 7:], torch.zeros_like(diff[..., 7:]))  # fingers, qvel, extras untouched
        # 13 x 2 x 7 = 182 samples of N(0, 0.01^2): std within 20% (the std's standard error is 5%)
        assert abs(float(diff[..., :7].std()) - 0.01) < 0.002
        expert_n, expert_c = noisy.unwrapped.get_expert_inputs(), clean.unwrapped.get_expert_inputs()
        assert torch.equal(expert_n["tcp_pose"], expert_c["tcp_pose"])  # the expert reads the true state
    finally:
        noisy.close()
        clean.close()


@pytest.mark.slow
def test_an_env_rebuilt_after_a_killed_worker_keeps_its_draw_and_restarts_its_latency_ring(assets):
    import os
    import signal

    cfg = {"arm_stiffness": (0.3, 0.5), "object_mass": (0.5, 1.5), "action_latency": (1, 1)}
    env = _make(assets, physics_randomization=cfg, num_workers=2, physics_timeout_s=10)
    plain = gym.make(ID, num_envs=1, obs_mode="state", sim_backend="physx_cpu", render_backend="none")
    actions = _actions(5, steps=4)
    try:
        env.reset(seed=30)
        before = env.unwrapped.physics_randomization_values()
        env.step(actions[0])
        os.kill(env.unwrapped._physics.pool.processes[1].pid, signal.SIGKILL)  # env 1's worker
        obs, *_, info = env.step(actions[1])
        assert info["physics_restarted"].tolist() == [False, True]
        after = env.unwrapped.physics_randomization_values()
        assert torch.equal(before["arm_stiffness"], after["arm_stiffness"])  # the draw is kept
        got = [obs[1].clone()] + [env.step(a)[0][1].clone() for a in actions[2:]]
        # env 1 again: its new seed, its kept values, and the hold action first (its ring started afresh)
        option = {"object_mass": {n: float(before["object_mass"][n][1]) for n in OBJECTS},
                  "arm_stiffness": before["arm_stiffness"][1].tolist()}
        first, _ = plain.reset(seed=int(env.unwrapped.seed[1]), options={dynamics.OPTION_KEY: option})
        hold = hold_action(names.DEFAULT_CONTROL_MODE, plain.unwrapped.agent.robot.get_qpos())
        mine = [first[0]] + [plain.step(a)[0][0] for a in [hold, actions[2][1:2]]]
        assert all(torch.equal(m, g) for m, g in zip(mine, got))
    finally:
        env.close()
        plain.close()
