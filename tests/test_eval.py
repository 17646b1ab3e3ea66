"""`gsenv eval` and the policy specs: the real command (real physics workers, splat images on a tiny
scene), the expert served by a real openpi-format websocket server on 127.0.0.1, and the errors of
bad servers and bad policies."""
from __future__ import annotations

import heapq
import json
import os
import re
import socket
import subprocess
import sys

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from openpi_server import NEVER, OpenpiTestServer, Raw

import gsenv
from gsenv.registration import ENV_ID
from gsenv.tools import eval as gseval
from gsenv.tools.policies import Policy, PolicyError, make_policy

H = W = 32
ENVS, EPISODES = 2, 8
DENSITY = 0.01


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


@pytest.fixture(scope="module")
def expert_run(tmp_path_factory, assets):
    """`gsenv eval --policy expert --episodes 8 --num-envs 2` as a user runs it."""
    out = tmp_path_factory.mktemp("eval") / "out"
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "eval", "--policy", "expert",
                           "--episodes", str(EPISODES), "--num-envs", str(ENVS), "--image-size", f"{H}x{W}",
                           "--scene-density", str(DENSITY), "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "GSENV_ASSETS": str(assets)},
                          timeout=600)
    return proc, out


@pytest.fixture(scope="module")
def env(assets):
    env = gym.make(ENV_ID, num_envs=ENVS, image_size=(H, W), scene_density=DENSITY, asset_root=str(assets))
    yield env
    env.close()


def _gsenv(*args, assets, extra_path: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`gsenv ARGS` in a fresh interpreter (extra_path: a folder put first on its PYTHONPATH)."""
    env = {**os.environ, "GSENV_ASSETS": str(assets)}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "gsenv.tools.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _expert_server_infer(env):
    """The expert behind a server: finds the env whose current image and state are the observation's
    (the client sends nothing else) and answers that env's expert action as a chunk [1, 7]."""
    base = env.unwrapped

    def infer(obs):
        assert sorted(obs) == ["observation/image", "observation/state", "prompt"]
        frames, qpos = base.render().cpu().numpy(), base.agent.robot.get_qpos().cpu().numpy()
        rows = [i for i in range(base.num_envs) if np.array_equal(frames[i], obs["observation/image"])
                and np.array_equal(qpos[i], obs["observation/state"])]
        assert len(rows) == 1, f"the observation matches envs {rows}"
        action = gsenv.scripted_expert_action(**base.get_expert_inputs())[rows[0]]
        return {"actions": action[None].cpu().numpy()}

    return infer


def _partial_reset_steps(lengths, num_envs):
    """Batched steps of running episodes of these lengths, in order, each starting on the env that
    is free first (the lower env index on a tie), as soon as it is free."""
    free = [(0, e) for e in range(num_envs)]
    end = 0
    for length in lengths:
        t, e = heapq.heappop(free)
        heapq.heappush(free, (t + length, e))
        end = max(end, t + length)
    return end


# ----------------------------------------------------------------------------------------- the command
@pytest.mark.slow
def test_expert_eval_reports_success_and_videos_agree(expert_run):
    proc, out = expert_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / gseval.REPORT_NAME).read_text())
    episodes = report["episodes"]
    assert [e["episode_id"] for e in episodes] == list(range(EPISODES))
    successes = sum(e["success"] for e in episodes)
    assert successes >= 0.9 * EPISODES
    assert report["successes"] == successes and report["success_rate"] == successes / EPISODES
    assert report["wilson_95"] == pytest.approx(list(gseval.wilson_interval(successes, EPISODES)))
    assert report["mean_length"] == pytest.approx(np.mean([e["length"] for e in episodes]))
    assert report["num_envs"] == ENVS and report["chunk"] == 1 and report["image_size"] == [H, W]
    # partial resets: each env starts the next pending id the step its episode ends, no env waits
    assert report["steps"] == _partial_reset_steps([e["length"] for e in episodes], ENVS)
    assert f"success rate: {successes}/{EPISODES}" in proc.stdout
    # one video per episode, named by its outcome; frames = the reset frame + one per step
    outcome = {e["episode_id"]: "success" if e["success"] else "failure" for e in episodes}
    names = sorted(p.name for p in out.iterdir() if p.name != gseval.REPORT_NAME)
    mp4 = names and names[0].endswith(".mp4")
    suffix = ".mp4" if mp4 else ""
    assert names == [f"episode_{i:04d}_{outcome[i]}{suffix}" for i in range(EPISODES)]
    for e in episodes:
        assert e["video"] == f"episode_{e['episode_id']:04d}_{outcome[e['episode_id']]}{suffix}"
        path = out / e["video"]
        frames = iio.imread(path) if mp4 else np.stack([iio.imread(p) for p in sorted(path.iterdir())])
        assert frames.shape == (e["length"] + 1, H, W, 3)
        assert not np.array_equal(frames[0], frames[-1])  # the arm moved the cube


def test_wilson_interval_known_values():
    assert gseval.wilson_interval(8, 8) == pytest.approx((0.6756, 1.0), abs=1e-4)
    assert gseval.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert gseval.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_bad_options_are_clear_errors():
    with pytest.raises(gseval.EvalError, match="--episodes 3 disagrees with the 2 ids"):
        gseval.checked_episode_ids(3, [4, 5])
    with pytest.raises(gseval.EvalError, match="distinct"):
        gseval.checked_episode_ids(None, [4, 4])
    with pytest.raises(gseval.EvalError, match="give --episodes N"):
        gseval.checked_episode_ids(None, None)
    assert gseval.checked_episode_ids(None, [7, 3]) == [7, 3]


# ----------------------------------------------------------------------------------------- an openpi server
@pytest.mark.slow
def test_served_expert_gives_the_same_episodes(env, expert_run):
    """The expert behind a real websocket server in openpi's format, the client sending only openpi's
    observation: the same success (and length) per episode as the expert run in-process."""
    proc, out = expert_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = json.loads((out / gseval.REPORT_NAME).read_text())["episodes"]
    with OpenpiTestServer(_expert_server_infer(env)) as server:
        with make_policy(server.uri, env, chunk=1, timeout_s=60) as policy:
            assert policy.client_kind in ("gsenv", "openpi_client") and policy.metadata["action_horizon"] == 1
            result = gseval.evaluate(env, policy, range(EPISODES), video=False, progress=False)
        assert server.connections == ENVS  # one connection per env
        assert server.requests == sum(e.length for e in result.episodes)  # closed loop: one request a step
    assert [(e.episode_id, e.success) for e in result.episodes] == [(e["episode_id"], e["success"]) for e in expected]
    assert [e.length for e in result.episodes] == [e["length"] for e in expected]
    assert result.steps == _partial_reset_steps([e.length for e in result.episodes], ENVS)


def test_server_request_and_chunk(env):
    """What the client sends per env, and an answer [10, 8] cut to chunk 5 x the env's 7 dims."""
    seen = []
    table = np.arange(80, dtype=np.float64).reshape(10, 8) * 1e-3

    def infer(obs):
        seen.append(obs)
        return {"actions": table + obs["observation/image"].mean()}  # float64 [10, 8], per env

    obs, _ = env.reset(options={"episode_id": [3, 4]})
    base = env.unwrapped
    frames, qpos = base.render().cpu().numpy(), base.agent.robot.get_qpos().cpu().numpy()
    assert not np.array_equal(frames[0], frames[1])
    with OpenpiTestServer(infer) as server, make_policy(server.uri, env, chunk=5, timeout_s=60) as policy:
        actions = policy(obs, env)
        only_one = policy(obs, env, env_idx=[1])
    assert actions.shape == (ENVS, 5, 7) and actions.dtype == torch.float32 and actions.device == base.device
    for i in range(ENVS):
        want = (table + frames[i].mean())[:5, :7].astype(np.float32)
        assert np.array_equal(actions[i].cpu().numpy(), want)
    assert torch.equal(only_one[0], actions[1]) and len(seen) == ENVS + 1
    assert np.array_equal(seen[-1]["observation/image"], frames[1])  # env_idx=[1] asks about env 1 only
    for o in seen[:ENVS]:
        i = [k for k in range(ENVS) if np.array_equal(o["observation/image"], frames[k])]
        assert len(i) == 1
        assert o["observation/image"].dtype == np.uint8 and o["observation/image"].shape == (H, W, 3)
        assert o["observation/state"].dtype == np.float32 and o["observation/state"].shape == (9,)
        assert np.array_equal(o["observation/state"], qpos[i[0]])
        assert o["prompt"] == base.get_language_instruction()[i[0]]
    assert {i for o in seen[:ENVS] for i in range(ENVS) if np.array_equal(o["observation/image"], frames[i])} == {0, 1}


@pytest.mark.slow
def test_a_wrist_camera_goes_to_the_server_under_its_own_key(assets):
    """An env with the wrist camera listed FIRST: the server still gets the third-person render as
    observation/image and the wrist render as observation/wrist_image (openpi's LIBERO-style keys),
    each equal to that camera's image in the env's observation; nothing else is sent."""
    env = gym.make(ENV_ID, num_envs=ENVS, image_size=(H, W), scene_density=DENSITY, asset_root=str(assets),
                   cameras=["wrist_camera", "3rd_view_camera"])
    seen = []

    def infer(obs):
        seen.append(obs)
        return {"actions": np.zeros((1, 7), np.float32)}

    try:
        obs, _ = env.reset(options={"episode_id": [3, 4]})
        third = obs["sensor_data"]["3rd_view_camera"]["rgb"].cpu().numpy()
        wrist = obs["sensor_data"]["wrist_camera"]["rgb"].cpu().numpy()
        assert not np.array_equal(third, wrist)  # a swap of the two would be seen
        with OpenpiTestServer(infer) as server, make_policy(server.uri, env, chunk=1, timeout_s=60) as policy:
            assert policy.cameras == {"observation/image": "3rd_view_camera",
                                      "observation/wrist_image": "wrist_camera"}
            policy(obs, env)
    finally:
        env.close()
    assert len(seen) == ENVS
    rows = []
    for o in seen:
        assert sorted(o) == ["observation/image", "observation/state", "observation/wrist_image", "prompt"]
        i = [k for k in range(ENVS) if np.array_equal(o["observation/image"], third[k])]
        assert len(i) == 1, f"observation/image is the third-person render of envs {i}"
        assert np.array_equal(o["observation/wrist_image"], wrist[i[0]])
        assert o["observation/wrist_image"].dtype == np.uint8 and o["observation/wrist_image"].shape == (H, W, 3)
        rows.append(i[0])
    assert sorted(rows) == list(range(ENVS))


@pytest.mark.slow
def test_a_wrist_only_env_is_refused_for_a_server_before_any_episode(tmp_path, assets):
    """Only a wrist camera: it is never sent as the third-person image; make_policy refuses, the
    command exits 2 (a bad --camera), before any request."""
    env = gym.make(ENV_ID, num_envs=1, image_size=(H, W), scene_density=DENSITY, asset_root=str(assets),
                   cameras=["wrist_camera"])
    with OpenpiTestServer(lambda o: {"actions": np.zeros((1, 7), np.float32)}) as server:
        try:
            with pytest.raises(PolicyError, match=r"reads the third-person image as 'observation/image', but the "
                                                  r"env's cameras \['wrist_camera'\] are all on robot links"):
                make_policy(server.uri, env, chunk=1, timeout_s=60)
        finally:
            env.close()
        proc = _gsenv("eval", "--policy", server.uri, "--episodes", 1, "--image-size", f"{H}x{W}", "--scene-density",
                      DENSITY, "--camera", "wrist_camera", "--no-video", "--out", tmp_path / "out", assets=assets)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "gsenv eval: error: an openpi policy server reads the third-person image" in proc.stderr
        assert server.requests == 0


def test_an_unknown_camera_is_bad_input(tmp_path, assets):
    proc = _gsenv("eval", "--policy", "expert", "--episodes", 1, "--image-size", f"{H}x{W}", "--scene-density",
                  DENSITY, "--camera", "no_such_camera", "--no-video", "--out", tmp_path / "out", assets=assets)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "gsenv eval: error: --camera ['no_such_camera']: " in proc.stderr and "no_such_camera" in proc.stderr


def test_wrong_shape_answer_is_a_clear_error(env):
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    with OpenpiTestServer(lambda o: {"actions": np.zeros((1, 5), np.float32)}) as server:
        policy = make_policy(server.uri, env, chunk=1, timeout_s=60)
        with pytest.raises(PolicyError, match=re.escape(f"at {server.uri} answered env ") + r"\d with actions of shape "
                           r"\[1, 5\]; expected \{\"actions\": float array \[>= 1, >= 7\]\}"):
            policy(obs, env)
        with pytest.raises(PolicyError, match="is closed"):  # a late answer must not pass for the next one
            policy(obs, env)
    with OpenpiTestServer(lambda o: {"action": np.zeros((5, 7))}) as server:
        with make_policy(server.uri, env, chunk=5) as policy, pytest.raises(PolicyError, match="answered env 0 with "
                                                                            r"\['action', 'server_timing'\]"):
            policy(obs, env, env_idx=[0])
    with OpenpiTestServer(lambda o: {"actions": np.zeros((3, 7))}) as server:
        with make_policy(server.uri, env, chunk=5) as policy, pytest.raises(PolicyError, match=r"\[3, 7\].*>= 5"):
            policy(obs, env)


def test_silent_server_times_out_naming_it(env):
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    with OpenpiTestServer(lambda o: NEVER) as server:
        policy = make_policy(server.uri, env, chunk=1, timeout_s=1.0)
        with pytest.raises(PolicyError, match=re.escape(f"the openpi policy server at {server.uri} did not answer "
                                                        "the observation of env(s) [0, 1] within 1 s")):
            policy(obs, env)
        policy.close()


def test_failing_server_sends_its_traceback(env):
    obs, _ = env.reset(options={"episode_id": [0, 1]})

    def infer(o):
        raise ValueError("the model is not loaded")

    with OpenpiTestServer(infer) as server, make_policy(server.uri, env, chunk=1) as policy:
        with pytest.raises(PolicyError, match=f"at {re.escape(server.uri)} failed:(.|\n)*ValueError: the model is not"):
            policy(obs, env)


def test_nothing_listening_is_a_clear_error(env):
    uri = f"ws://127.0.0.1:{_free_port()}"
    with pytest.raises(PolicyError, match=re.escape(f"nothing listens at {uri} (connection refused)")):
        make_policy(uri, env, timeout_s=5)


def test_eval_command_names_a_dead_server(tmp_path, assets):
    """The command's own error line and exit status (the server is checked before any episode runs)."""
    port = _free_port()
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "eval", "--policy", f"ws://127.0.0.1:{port}",
                           "--episodes", "1", "--image-size", "16", "--scene-density", str(DENSITY),
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env={**os.environ, "GSENV_ASSETS": str(assets)}, timeout=600)
    assert proc.returncode == 1
    assert f"gsenv eval: error: nothing listens at ws://127.0.0.1:{port}" in proc.stderr


# ----------------------------------------------------------------------------------------- other specs
def test_callable_policy_shapes(env, tmp_path, monkeypatch):
    (tmp_path / "my_policies.py").write_text(
        "import numpy as np\n"
        "def chunk3(obs, env):\n"
        "    return np.tile(np.arange(3, dtype=np.float64)[None, :, None] * 0.01, (env.unwrapped.num_envs, 1, 7))\n"
        "def flat(obs, env):\n"
        "    return np.zeros((env.unwrapped.num_envs, 7), np.float32)\n"
        "def wrong(obs, env):\n"
        "    return np.zeros((env.unwrapped.num_envs, 6), np.float32)\n"
        "ANSWER = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    actions = make_policy("my_policies:chunk3", env, chunk=2)(obs, env)
    assert actions.shape == (ENVS, 2, 7) and actions.dtype == torch.float32
    assert torch.allclose(actions[:, :, 0], torch.tensor([[0.0, 0.01]] * ENVS))
    assert make_policy("my_policies:flat", env)(obs, env, env_idx=[1]).shape == (1, 1, 7)
    with pytest.raises(PolicyError, match=re.escape("returned actions of shape [2, 6]; expected [B, A] = [2, 7] or "
                                                    "[B, T, A] = [2, T, 7]")):
        make_policy("my_policies:wrong", env)(obs, env)
    with pytest.raises(PolicyError, match="is not callable"):
        make_policy("my_policies:ANSWER", env)
    with pytest.raises(PolicyError, match="has no attribute 'nope'"):
        make_policy("my_policies:nope", env)
    with pytest.raises(PolicyError, match="cannot import module 'no_such_module_h14'"):
        make_policy("no_such_module_h14:act", env)
    with pytest.raises(PolicyError, match="unknown policy spec 'expertt'"):
        make_policy("expertt", env)


def test_expert_policy_is_the_scripted_expert(env):
    obs, _ = env.reset(options={"episode_id": [5, 6]})
    actions = make_policy("expert", env, chunk=5)(obs, env)
    want = gsenv.scripted_expert_action(**env.unwrapped.get_expert_inputs())
    assert actions.shape == (ENVS, 1, 7) and torch.equal(actions[:, 0], want)


# ----------------------------------------------------------------------------------------- outputs true or marked
STOPPING_POLICIES = """\
import numpy as np

calls = 0


def exit_on_third_call(obs, env):
    global calls
    calls += 1
    if calls == 3:
        raise SystemExit(0)
    return np.zeros((env.unwrapped.num_envs, 7), np.float32)
"""


@pytest.mark.slow
def test_a_run_stopped_midway_exits_1_with_a_partial_report_and_the_earlier_run_moved_aside(tmp_path, assets):
    """A callable that raises SystemExit(0) in episode 1 (of 2): exit 1, not 0; report.json says the run
    is partial and why, and holds episode 0; an earlier run's report and videos in --out are moved
    into previous-run-<time>/, unchanged, so the folder holds only this run's files."""
    (tmp_path / "stopping_policies.py").write_text(STOPPING_POLICIES)
    out = tmp_path / "out"
    out.mkdir()
    earlier = {gseval.REPORT_NAME: '{"complete": true, "successes": 2, "num_episodes": 2}\n',
               "episode_0000_success.mp4": "earlier video 0", "episode_0001_success.mp4": "earlier video 1"}
    for name, text in earlier.items():
        (out / name).write_text(text)
    proc = _gsenv("eval", "--policy", "stopping_policies:exit_on_third_call", "--episodes", 2, "--max-steps", 2,
                  "--chunk", 1, "--image-size", 16, "--scene-density", DENSITY, "--out", out, assets=assets,
                  extra_path=str(tmp_path))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "raised SystemExit(0)" in proc.stderr and str(out / gseval.REPORT_NAME) in proc.stderr
    report = json.loads((out / gseval.REPORT_NAME).read_text())
    assert report["complete"] is False and "SystemExit(0)" in report["incomplete_reason"]
    assert report["episodes_planned"] == 2 and report["episodes_not_finished"] == [1]
    (episode,) = report["episodes"]
    assert (episode["episode_id"], episode["success"], episode["length"]) == (0, False, 2)
    (moved,) = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("previous-run-")]
    assert report["previous_run_moved_to"] == moved.name
    assert {p.name: p.read_text() for p in moved.iterdir()} == earlier
    suffix = ".mp4" if episode["video"].endswith(".mp4") else ""
    assert episode["video"] == f"episode_0000_failure{suffix}"
    assert report["unfinished_videos"] == [f"episode_0001_unfinished{suffix}"]
    assert sorted(p.name for p in out.iterdir()) == sorted([gseval.REPORT_NAME, episode["video"], moved.name,
                                                            *report["unfinished_videos"]])


class _InterruptedPolicy(Policy):
    """Zero actions; Ctrl-C (KeyboardInterrupt) on its `at`-th call."""

    spec, chunk = "interrupted-test-policy", 1

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self, obs, env, env_idx=None):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return torch.zeros(len(env_idx), 1, 7)


def test_an_interrupted_evaluation_leaves_a_report_that_says_so(assets, tmp_path):
    """The report is written as episodes end: after Ctrl-C it holds the episodes that ended and says
    the run was interrupted; the interrupt still reaches the caller."""
    env = gym.make(ENV_ID, num_envs=1, image_size=16, scene_density=DENSITY, asset_root=str(assets),
                   max_episode_steps=2)
    try:
        with pytest.raises(KeyboardInterrupt):  # episode 0 ends after calls 1, 2; Ctrl-C in episode 1
            gseval.evaluate(env, _InterruptedPolicy(at=3), range(3), out_dir=tmp_path, video=False, progress=False)
    finally:
        env.close()
    report = json.loads((tmp_path / gseval.REPORT_NAME).read_text())
    assert report["complete"] is False and report["incomplete_reason"].startswith("interrupted")
    assert [(e["episode_id"], e["length"]) for e in report["episodes"]] == [(0, 2)]
    assert report["episodes_planned"] == 3 and report["episodes_not_finished"] == [1, 2]
    assert report["num_episodes"] == 1 and report["unfinished_videos"] == []


@pytest.mark.parametrize("ro", ["chmod", "proc"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_episode(tmp_path, assets, ro):
    """Exit 2 naming the folder, before the env is made (with --no-video too: the report needs it).
    A folder without write permission (not for root, whom permissions do not stop), and /proc/self,
    where no one can make a file."""
    if ro == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root writes into a folder without write permission")
        out = tmp_path / "read-only"
        out.mkdir()
        out.chmod(0o555)
    else:
        out = "/proc/self"
    proc = _gsenv("eval", "--policy", "expert", "--episodes", 1, "--no-video", "--image-size", 16,
                  "--scene-density", DENSITY, "--out", out, assets=assets)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"gsenv eval: error: cannot write into the output directory {out} (" in proc.stderr
    assert "building the default scene" not in proc.stderr and "gsenv eval:" in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "-1"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_bad_input(tmp_path, assets, timeout):
    proc = _gsenv("eval", "--policy", "expert", "--episodes", 1, "--timeout", timeout, "--out", tmp_path / "out",
                  assets=assets)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"gsenv eval: error: --timeout must be a finite number of seconds > 0, got {float(timeout)}" in proc.stderr
    with pytest.raises(PolicyError, match="timeout_s must be a finite number of seconds > 0"):
        make_policy("expert", None, timeout_s=float(timeout))


def test_integer_actions_from_a_server_are_refused_as_a_callables_are(env):
    """One check of a policy's actions whatever the source: a server's int64 actions are refused with
    the message a callable's get (not converted to floats silently)."""
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    with OpenpiTestServer(lambda o: {"actions": np.ones((5, 7), np.int64)}) as server:
        with make_policy(server.uri, env, chunk=5) as policy:
            with pytest.raises(PolicyError, match=re.escape(f"the openpi policy server at {server.uri} (env ") +
                               r"\d\) returned actions of dtype int64; expected a floating dtype"):
                policy(obs, env)
    with pytest.raises(PolicyError, match=r"^the policy 'ints' returned actions of dtype torch.int64; expected a "
                                          r"floating dtype"):  # a Policy of one's own: evaluate checks it too
        gseval.evaluate(env, _ReturnsInts(), [0], video=False, progress=False)


class _ReturnsInts(Policy):
    spec, chunk = "ints", 1

    def __call__(self, obs, env, env_idx=None):
        return torch.ones(len(env_idx), 1, 7, dtype=torch.int64)


def test_garbage_from_a_server_is_an_error_naming_it(env):
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    with OpenpiTestServer(lambda o: Raw(b"\xc1 no msgpack")) as server:
        with make_policy(server.uri, env, chunk=1) as policy:
            with pytest.raises(PolicyError, match=re.escape(
                    f"the openpi policy server at {server.uri} sent an answer that is not openpi's msgpack format "
                    "(FormatError (no message); 12 bytes starting b'\\xc1 no msgpack')")):
                policy(obs, env)
