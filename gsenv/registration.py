"""Registers gsenv's environment ids with gymnasium, by string entry point (no heavy imports)."""
from __future__ import annotations

ENV_ID = "GSEnv/PutCubeOnPlate-v0"
RLINF_ENV_ID = "GSEnv-PutCubeOnPlate-v0"
"""The id RLinf's GSEnv config uses ("gsenv:GSEnv-PutCubeOnPlate-v0")."""


def register_envs() -> None:
    """Register both ids once; safe to call repeatedly."""
    import gymnasium
    from gymnasium.envs.registration import WrapperSpec

    from gsenv.sim.names import EPISODE_STEPS

    for env_id in (ENV_ID, RLINF_ENV_ID):
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="gsenv.env:GSEnv",
            max_episode_steps=EPISODE_STEPS,
            # the passive checker expects numpy single-env data; ours is batched torch
            disable_env_checker=True,
            additional_wrappers=(WrapperSpec("BatchTimeLimit", "gsenv.wrappers.time_limit:BatchTimeLimit",
                                             {"max_episode_steps": EPISODE_STEPS}),),
        )
