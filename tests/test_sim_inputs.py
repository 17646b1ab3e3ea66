"""The input checks every batched-env entry point uses (gsenv.sim.inputs): one clear error per mistake."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from gsenv.sim import inputs, names


def test_seeds_derived_and_given():
    assert inputs.checked_seeds(None, np.arange(3)) is None
    assert inputs.checked_seeds(5, np.array([0, 2])).tolist() == [5, 7]
    assert inputs.checked_seeds([9, 2**32 - 1], np.arange(2)).tolist() == [9, 2**32 - 1]
    assert inputs.checked_seeds(torch.tensor([4]), np.arange(1)).tolist() == [4]


@pytest.mark.parametrize("seed, offsets, err, match", [
    (2**32 - 1, [0, 1], ValueError, r"\[0, 2\*\*32\).*4294967296"),  # env 1 would get 2**32
    ([3, -1], [0, 1], ValueError, r"\[0, 2\*\*32\)"),
    (-1, [0], ValueError, r"\[0, 2\*\*32\)"),
    ([1.5], [0], TypeError, "int"),
    ([1, 2, 3], [0, 1], ValueError, "one int per reset env"),
])
def test_bad_seeds(seed, offsets, err, match):
    with pytest.raises(err, match=match):
        inputs.checked_seeds(seed, np.array(offsets))


def test_env_indices():
    assert inputs.checked_env_indices(None, 3).tolist() == [0, 1, 2]
    assert inputs.checked_env_indices(torch.tensor([True, False, True]), 3).tolist() == [0, 2]
    assert inputs.checked_env_indices([2], 3).tolist() == [2]
    with pytest.raises(ValueError, match=r"envs \[1\] more than once"):
        inputs.checked_env_indices([1, 0, 1], 3)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        inputs.checked_env_indices([3], 3)


def test_episode_ids_never_truncated():
    assert inputs.checked_episode_ids(np.array([3, 0]), 2, 128) == [3, 0]
    with pytest.raises(TypeError, match="integers"):
        inputs.checked_episode_ids([1.5], 1, 128)
    with pytest.raises(ValueError, match="total_num_trials=128"):
        inputs.checked_episode_ids([128], 1, 128)


def test_reset_options():
    assert inputs.checked_reset_options(None) == {}
    opts = {"env_idx": [0], "episode_id": [1]}
    assert inputs.checked_reset_options(opts) == opts and inputs.checked_reset_options(opts) is not opts
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['episode'\]"):
        inputs.checked_reset_options({"episode": [1]})


def test_task_kwargs():
    ok = {"control_mode": "pd_joint_pos", "reward_mode": "dense", "randomize_yaw": True}
    assert inputs.checked_task_kwargs(ok) == ok
    with pytest.raises(TypeError, match=r"unknown keyword argument\(s\) \['randomise_yaw'\] \('randomise_yaw': "
                                        r"did you mean 'randomize_yaw'\?\)"):
        inputs.checked_task_kwargs({"control_mode": names.DEFAULT_CONTROL_MODE, "randomise_yaw": True})
    with pytest.raises(ValueError, match="control_mode must be one of"):
        inputs.checked_task_kwargs({"control_mode": "pd_ee_pose"})
    with pytest.raises(ValueError, match="reward_mode must be one of"):
        inputs.checked_task_kwargs({"control_mode": names.DEFAULT_CONTROL_MODE, "reward_mode": "sparse_success"})


def test_the_keyword_and_mode_lists_match_the_real_task():
    """The lists are held here without importing ManiSkill; they must not drift from the code."""
    from mani_skill.envs.sapien_env import BaseEnv

    from gsenv.sim.task import TaskEnv

    own = {p for p in inspect.signature(TaskEnv.__init__).parameters if p not in ("self", "args", "kwargs")}
    base = set(inspect.signature(BaseEnv.__init__).parameters)
    assert own <= set(inputs.TASK_KEYWORDS)
    assert set(inputs.TASK_KEYWORDS) <= own | base
    assert set(TaskEnv.SUPPORTED_REWARD_MODES) == set(names.REWARD_MODES)


def test_actions():
    a = inputs.checked_actions(np.zeros((2, 7), np.float64), 2, 7)
    assert a.dtype == torch.float32 and a.shape == (2, 7)
    assert inputs.checked_actions([0.0] * 7, 1, 7).shape == (1, 7)  # one unbatched action when B = 1
    with pytest.raises(ValueError, match=r"shape \[2, 8\].*got \[2, 7\]"):
        inputs.checked_actions(torch.zeros(2, 7), 2, 8)
    with pytest.raises(ValueError, match="NaN"):
        inputs.checked_actions(torch.full((1, 7), float("inf")), 1, 7)
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        inputs.checked_actions("forward", 1, 7)


def test_action_chunks():
    one = inputs.checked_action_chunk(np.zeros((2, 7), np.float64), 2, 7, "the policy")
    assert one.dtype == torch.float32 and one.shape == (2, 1, 7)  # one step: a chunk of 1
    assert inputs.checked_action_chunk(torch.ones(2, 5, 7, dtype=torch.float16), 2, 7).shape == (2, 5, 7)
    expected = r"expected \[B, A\] = \[2, 7\] or \[B, T, A\] = \[2, T, 7\]"
    for bad in (torch.zeros(2, 6), torch.zeros(3, 7), torch.zeros(2, 0, 7), torch.zeros(2, 1, 1, 7)):
        with pytest.raises(ValueError, match=rf"^the policy returned actions of shape \[.*\]; {expected}"):
            inputs.checked_action_chunk(bad, 2, 7, "the policy")
    with pytest.raises(TypeError, match="dtype torch.int64; expected a floating dtype"):
        inputs.checked_action_chunk(torch.zeros(2, 7, dtype=torch.int64), 2, 7)  # not silently converted
    with pytest.raises(TypeError, match="^the server returned actions of dtype int32; expected a floating dtype"):
        inputs.checked_action_chunk(np.zeros((2, 7), np.int32), 2, 7, "the server")
    # what comes off a wire: big-endian, read-only; the values kept exactly
    wire = np.frombuffer(np.arange(14, dtype=">f8").tobytes(), dtype=">f8").reshape(2, 7)
    assert torch.equal(inputs.checked_action_chunk(wire, 2, 7)[:, 0], torch.arange(14.0).reshape(2, 7))
    with pytest.raises(ValueError, match="NaN or infinity"):
        inputs.checked_action_chunk(torch.full((2, 3, 7), float("nan")), 2, 7)
    with pytest.raises(TypeError, match=r"^the driver returned a list; expected a torch tensor or numpy array"):
        inputs.checked_action_chunk([[0.0] * 7] * 2, 2, 7)
