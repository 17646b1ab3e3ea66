"""openpi's wire format (gsenv.tools.openpi_wire): our bytes are openpi-client's, byte for byte.

Everywhere: golden bytes made with openpi-client 0.1.2's msgpack_numpy, round trips, refusals.
Where openpi-client is installed (it pins numpy < 2: the RLinf-stack CI venv, scripts/ci_rlinf_stack.sh):
the same bytes from openpi_client.msgpack_numpy for a full-size observation, openpi-client's own
WebsocketClientPolicy against the test server, and gsenv's server policy speaking through it.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from openpi_server import NEVER, OpenpiTestServer, Raw

from gsenv.tools import openpi_wire
from gsenv.tools.openpi_wire import OpenpiError
from gsenv.tools.policies import PolicyError, make_policy, probe_server

# openpi_client.msgpack_numpy.packb (0.1.2) of OBS and ANSWER below
OBS_BYTES = bytes.fromhex(
    "84b16f62736572766174696f6e2f696d61676584c40b5f5f6e6461727261795f5fc3c40464617461c40c000102030405060708090a0b"
    "c4056474797065a37c7531c405736861706593020203b16f62736572766174696f6e2f737461746584c40b5f5f6e6461727261795f5f"
    "c3c40464617461c4080000003f0000a0bfc4056474797065a33c6634c40573686170659102a670726f6d7074a6707574206974a16e83"
    "c40d5f5f6e7067656e657269635f5fc3c4046461746103c4056474797065a33c6938")
ANSWER_BYTES = bytes.fromhex(
    "82a7616374696f6e7384c40b5f5f6e6461727261795f5fc3c40464617461c410000000000000f03f0000000000000040c4056474797065"
    "a33c6638c4057368617065920102ad7365727665725f74696d696e6781a8696e6665725f6d73cb3ff8000000000000")


def _obs():
    return {"observation/image": np.arange(12, dtype=np.uint8).reshape(2, 2, 3),
            "observation/state": np.array([0.5, -1.25], dtype=np.float32), "prompt": "put it", "n": np.int64(3)}


def _answer():
    return {"actions": np.array([[1.0, 2.0]], dtype=np.float64), "server_timing": {"infer_ms": 1.5}}


def _full_obs(rng):
    return {"observation/image": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
            "observation/state": rng.standard_normal(9).astype(np.float32),
            "prompt": "pick up the cube and put it on the plate"}


def test_bytes_are_openpi_clients():
    assert openpi_wire.packb(_obs()) == OBS_BYTES
    assert openpi_wire.packb(_answer()) == ANSWER_BYTES


def test_round_trip_restores_arrays_and_scalars():
    back = openpi_wire.unpackb(OBS_BYTES)
    assert sorted(back) == sorted(_obs())
    for key in ("observation/image", "observation/state"):
        assert back[key].dtype == _obs()[key].dtype and np.array_equal(back[key], _obs()[key])
    assert back["prompt"] == "put it" and back["n"] == 3 and type(back["n"]) is np.int64
    answer = openpi_wire.unpackb(ANSWER_BYTES)
    assert answer["actions"].shape == (1, 2) and answer["server_timing"] == {"infer_ms": 1.5}


def test_object_and_complex_arrays_are_refused():
    for bad in (np.array([object()]), np.array([1j])):
        with pytest.raises(ValueError, match="Unsupported dtype"):
            openpi_wire.packb({"x": bad})


# ----------------------------------------------------------------------------------------- with openpi-client
def test_full_observation_bytes_match_openpi_client():
    msgpack_numpy = pytest.importorskip("openpi_client.msgpack_numpy", reason="openpi-client is not installed here")
    rng = np.random.default_rng(0)
    obs = _full_obs(rng)
    answer = {"actions": rng.standard_normal((10, 32)).astype(np.float32), "server_timing": {"infer_ms": 12.0}}
    for value in (obs, answer, _obs(), _answer()):
        ours = openpi_wire.packb(value)
        assert ours == msgpack_numpy.packb(value) == msgpack_numpy.Packer().pack(value)
        theirs = msgpack_numpy.unpackb(ours)
        mine = openpi_wire.unpackb(ours)
        for key, v in value.items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(theirs[key], v) and np.array_equal(mine[key], v)


def test_openpi_clients_own_client_talks_to_the_test_server():
    wcp = pytest.importorskip("openpi_client.websocket_client_policy", reason="openpi-client is not installed here")
    seen = []

    def infer(obs):
        seen.append(obs)
        return {"actions": np.full((5, 8), float(obs["observation/state"][0]), np.float32)}

    rng = np.random.default_rng(1)
    obs = _full_obs(rng)
    with OpenpiTestServer(infer, metadata={"policy": "pi05_gsenv"}) as server:
        client = wcp.WebsocketClientPolicy(server.uri)
        assert client.get_server_metadata() == {"policy": "pi05_gsenv"}
        answer = client.infer(obs)
        client._ws.close()
    assert answer["actions"].shape == (5, 8) and np.all(answer["actions"] == obs["observation/state"][0])
    assert np.array_equal(seen[0]["observation/image"], obs["observation/image"]) and seen[0]["prompt"] == obs["prompt"]


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory):
    pytest.importorskip("openpi_client.websocket_client_policy", reason="openpi-client is not installed here")
    import gymnasium as gym

    from gsenv.registration import ENV_ID

    env = gym.make(ENV_ID, num_envs=1, image_size=16, scene_density=0.01,
                   asset_root=str(tmp_path_factory.mktemp("assets")))
    yield env
    env.close()


def test_server_policy_speaks_through_openpi_client(tiny_env):
    """Where openpi-client imports, gsenv's server policy uses its WebsocketClientPolicy: answers, the
    wrong-shape error and the timeout (its recv has none of its own) all hold there too."""
    obs, _ = tiny_env.reset(options={"episode_id": [2]})
    state = tiny_env.unwrapped.agent.robot.get_qpos()[0].cpu().numpy()
    with OpenpiTestServer(lambda o: {"actions": np.tile(o["observation/state"][:7], (6, 1))}) as server:
        with make_policy(server.uri, tiny_env, chunk=5) as policy:
            assert policy.client_kind == "openpi_client"
            actions = policy(obs, tiny_env)
    assert actions.shape == (1, 5, 7) and np.array_equal(actions[0].cpu().numpy(), np.tile(state[:7], (5, 1)))
    with OpenpiTestServer(lambda o: {"actions": np.zeros(7, np.float32)}) as server:
        with make_policy(server.uri, tiny_env, chunk=1) as policy, pytest.raises(PolicyError, match=r"shape \[7\]"):
            policy(obs, tiny_env)
    with OpenpiTestServer(lambda o: NEVER) as server:
        with make_policy(server.uri, tiny_env, chunk=1, timeout_s=1.0) as policy:
            with pytest.raises(PolicyError, match=re.escape(f"{server.uri} did not answer the observation of env(s) "
                                                            "[0] within 1 s")):
                policy(obs, tiny_env)


def test_a_greeting_that_is_not_openpi_metadata_names_the_server():
    """A server whose first frame is not msgpack: one error naming it and saying what came (msgpack's
    FormatError has no message of its own)."""
    with OpenpiTestServer(lambda o: {}, metadata=Raw(b"\xc1\xc1")) as server:
        with pytest.raises(OpenpiError, match=re.escape(
                f"the openpi policy server at {server.uri} sent a metadata frame that is not openpi's msgpack "
                "format (FormatError (no message); 2 bytes starting b'\\xc1\\xc1')")):
            openpi_wire.Connection(server.uri, 5.0, use_openpi_client=False)
        # the probe names the server and the frame whichever client reads it (openpi-client's own words
        # where it is installed)
        with pytest.raises(PolicyError, match=re.escape(server.uri) + r".*metadata.*FormatError"):
            probe_server(server.uri, 5.0)


def test_an_answer_whose_tagged_array_does_not_add_up_names_the_server():
    """Valid msgpack, but an ndarray entry of 3 bytes for 2 float32s: not a numpy error, the server named."""
    bad = openpi_wire._msgpack().packb({"actions": {b"__ndarray__": True, b"data": b"abc", b"dtype": "<f4",
                                                    b"shape": [2]}})
    with OpenpiTestServer(lambda o: Raw(bad)) as server:
        conn = openpi_wire.Connection(server.uri, 5.0, use_openpi_client=False)
        try:
            with pytest.raises(OpenpiError, match=re.escape(f"the openpi policy server at {server.uri} sent an answer "
                                                            "that is not openpi's msgpack format (TypeError: ")):
                conn.infer({"prompt": "x"})
        finally:
            conn.close()
