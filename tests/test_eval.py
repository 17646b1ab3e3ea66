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
from openpi_server import NEVER, OpenpiTestServer

import gsenv
from gsenv.registration import ENV_ID
from gsenv.tools import eval as gseval
from gsenv.tools.policies import PolicyError, make_policy

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


def test_wrong_shape_answer_is_a_clear_error(env):
    obs, _ = env.reset(options={"episode_id": [0, 1]})
    with OpenpiTestServer(lambda o: {"actions": np.zeros((1, 5), np.float32)}) as server:
        policy = make_policy(server.uri, env, chunk=1, timeout_s=60)
        with pytest.raises(PolicyError, match=re.escape(f"at {server.uri} answered env ") + r"\d with actions of shape "
                           r"\[1, 5\]; expected \{\"actions\": numeric array \[>= 1, >= 7\]\}"):
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
