"""A batch-aware time limit: `truncated` is a bool tensor [B] from each env's own elapsed_steps."""
from __future__ import annotations

import gymnasium as gym
import torch


class BatchTimeLimit(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """truncated[i] = elapsed_steps[i] >= max_episode_steps, env by env (correct across partial resets).

    Registered on the spec as an additional wrapper. gymnasium's own TimeLimit (added by
    ``gym.make(..., max_episode_steps=T)`` or the spec) counts all envs together and returns a Python
    bool: when one is found directly inside, it is removed and its limit taken over.
    """

    def __init__(self, env: gym.Env, max_episode_steps: int | None = None):
        gym.utils.RecordConstructorArgs.__init__(self, max_episode_steps=max_episode_steps)
        inner = env
        parent = None
        while isinstance(inner, gym.Wrapper):
            if isinstance(inner, gym.wrappers.TimeLimit):
                max_episode_steps = inner._max_episode_steps
                if parent is None:
                    env = inner.env
                else:
                    parent.env = inner.env
                break
            parent, inner = inner, inner.env
        super().__init__(env)
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.max_episode_steps = max_episode_steps

    # gymnasium >= 1.0 wrappers forward no attributes: what batched-env code reads, from the env itself
    @property
    def num_envs(self) -> int:
        return self.env.unwrapped.num_envs

    @property
    def single_action_space(self) -> gym.Space:
        return self.env.unwrapped.single_action_space

    @property
    def single_observation_space(self) -> gym.Space:
        return self.env.unwrapped.single_observation_space

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.max_episode_steps is not None:
            truncated = (self.env.unwrapped.elapsed_steps >= self.max_episode_steps) | torch.as_tensor(truncated)
        return obs, reward, terminated, torch.as_tensor(truncated).to(torch.bool), info
