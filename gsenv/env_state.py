"""The layout of a GSEnv's saved state (``GSEnv.get_state`` / ``set_state``) and its checks.

A state is one dict, every tensor on the CPU with the batch first ([B, ...]):

    header              {"format", "gsenv_version", "task", "num_envs", "layout"}: what it fits
                        (layout: a fingerprint of the keys, shapes and dtypes below) and, under
                        "seed_rng", the env-wide generator that draws seeds for reset(seed=None)
    seed                int64 [B] each env's reset seed (GSEnv.seed)
    instruction         list of B str, each env's language instruction
    sim/<key>           each env's simulation state (gsenv.sim.sim_state: bodies, joints, drive and
                        controller targets, sleep, elapsed_steps, episode_seed, episode_id, generator)
    outputs/<key>       what each env reported last (the task record's carried fields: reward,
                        elapsed_steps, info/..., pose/..., state/...): the observation it gave
    randomization/<key> each env's domain-randomisation draws (only with domain_randomization)
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

FORMAT = "gsenv-env-state-1"
SIM, OUTPUTS, LOOK, PHYSICS = "sim/", "outputs/", "randomization/", "physics_randomization/"
_PLAIN = ("header", "seed", "instruction")

Layout = dict[str, tuple[tuple[int, ...], str]]
"""{key: (per-env shape, dtype name)} of a state's tensors."""


def tensor_layout(sim: Layout, carried: Layout, look: Mapping[str, torch.Tensor] | None,
                  physics: Mapping[str, torch.Tensor] | None = None) -> Layout:
    """Every [B, ...] tensor key of the state with its per-env shape and dtype (``seed`` included).
    sim: the physics' state layout; carried: the record's carried fields; look: the visual randomisation's
    values [B, ...] (None: off); physics: the physics randomisation's state [B, ...] (None: off)."""
    out: Layout = {"seed": ((), "int64")}
    out.update({SIM + k: (tuple(s), d) for k, (s, d) in sim.items()})
    out.update({OUTPUTS + k: (tuple(s), d) for k, (s, d) in carried.items()})
    for prefix, values in ((LOOK, look), (PHYSICS, physics)):
        for k, v in (values or {}).items():
            out[prefix + k] = (tuple(v.shape[1:]), str(v.dtype).removeprefix("torch."))
    return out


def fingerprint(layout: Layout) -> str:
    """A short hash of the keys, shapes and dtypes: two envs take each other's states when it matches."""
    text = ";".join(f"{k}:{list(s)}:{d}" for k, (s, d) in sorted(layout.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def header(task: str, num_envs: int, layout: Layout, seed_rng: dict) -> dict[str, Any]:
    from gsenv import __version__

    return {"format": FORMAT, "gsenv_version": __version__, "task": task, "num_envs": int(num_envs),
            "layout": fingerprint(layout), "seed_rng": seed_rng}


def check(state: Any, task: str, num_envs: int, layout: Layout) -> None:
    """ValueError, saying what is wrong and what to do, unless ``state`` is a state of an env like this
    one (task, B, layout) with every key of the right shape and dtype."""
    what = "GSEnv.set_state expects a dict that GSEnv.get_state returned"
    if not isinstance(state, Mapping):
        raise ValueError(f"{what}, got {type(state).__name__}")
    head = state.get("header")
    if not isinstance(head, Mapping) or head.get("format") != FORMAT:
        raise ValueError(f"{what} (its 'header' says format {FORMAT!r}); this one has "
                         f"{'no header' if not isinstance(head, Mapping) else repr(head.get('format'))}")
    if head.get("task") != task:
        raise ValueError(f"this state is of task {head.get('task')!r}, this env runs {task!r}: restore it in an env "
                         "of its task")
    if head.get("num_envs") != num_envs:
        raise ValueError(f"this state holds {head.get('num_envs')} envs, this env has num_envs={num_envs}: restore "
                         "it in an env with as many (or restore some envs of it with env_idx in one that size)")
    rng = head.get("seed_rng")
    if not isinstance(rng, Mapping) or rng.get("bit_generator") != "PCG64":
        raise ValueError("state['header']['seed_rng'] must be the numpy PCG64 generator state get_state saved, "
                         f"got {rng!r:.80}")
    want = set(_PLAIN) | set(layout)
    missing, extra = sorted(want - set(state)), sorted(set(state) - want)
    if head.get("layout") != fingerprint(layout) or missing or extra:
        parts = [f"the state lacks {missing[:6]}"] * bool(missing) + [f"this env has no {extra[:6]}"] * bool(extra)
        detail = "; ".join(parts)
        raise ValueError(f"this state's layout does not match this env's ({detail or 'other shapes or dtypes'}): "
                         "it was saved from an env with another scene's objects, control_mode, observation record, "
                         f"domain_randomization or gsenv version ({head.get('gsenv_version')}); restore it in an env "
                         "made with the same settings")
    for key, (shape, dtype) in layout.items():
        v = state[key]
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != (num_envs, *shape) or \
                str(v.dtype).removeprefix("torch.") != dtype:
            got = (f"{type(v).__name__}" if not isinstance(v, torch.Tensor)
                   else f"{list(v.shape)} {str(v.dtype).removeprefix('torch.')}")
            raise ValueError(f"state[{key!r}] must be a tensor [{num_envs}, {', '.join(map(str, shape))}] "
                             f"{dtype}, got {got}")
    inst = state["instruction"]
    if not isinstance(inst, (list, tuple)) or len(inst) != num_envs or not all(isinstance(s, str) for s in inst):
        raise ValueError(f"state['instruction'] must be a list of {num_envs} str")


def rows(state: Mapping[str, Any], prefix: str, env_idx: np.ndarray) -> dict[str, np.ndarray]:
    """{key without prefix: numpy [n, ...]} of the envs env_idx."""
    idx = torch.as_tensor(env_idx, dtype=torch.long)
    return {k[len(prefix):]: v[idx].numpy() for k, v in state.items() if k.startswith(prefix)}
