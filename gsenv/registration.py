"""Registers gsenv's environment ids with gymnasium, by string entry point (no heavy imports)."""
from __future__ import annotations

# (env id, entry point, default kwargs); filled in as the environment lands.
ENV_SPECS: list[tuple[str, str, dict]] = []


def register_envs() -> None:
    """Register every id in ENV_SPECS once; safe to call repeatedly."""
    import gymnasium

    for env_id, entry_point, kwargs in ENV_SPECS:
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))
