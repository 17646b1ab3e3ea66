"""gym.make's time limit handed to the env: truncated[i] = elapsed_steps[i] >= max_episode_steps."""
from __future__ import annotations

import gymnasium as gym


class BatchTimeLimit(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Sets the env's own per-env time limit (``GSEnv.max_episode_steps``: truncated[i] once
    elapsed_steps[i] reaches it, correct across partial resets), which stays the one limit.

    Registered on the spec as an additional wrapper. gymnasium's own TimeLimit (added by
    ``gym.make(..., max_episode_steps=T)`` or the spec) counts all envs together and returns a Python
    bool: when one is found directly inside, it is removed and its limit taken over. An env that
    already has a limit keeps the smaller of the two. Steps pass through unchanged.
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
        base = self.env.unwrapped
        if max_episode_steps is not None:
            own = base.max_episode_steps
            base.max_episode_steps = max_episode_steps if own is None else min(own, max_episode_steps)

    @property
    def max_episode_steps(self) -> int | None:
        """The env's limit (None: none)."""
        return self.env.unwrapped.max_episode_steps

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

