"""Observation modes, their construction from batched physics outputs + images, and their spaces (from
the task's declared record, gsenv.sim.record)."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gsenv.geometry import CV_TO_GL
from gsenv.physics.outputs import PhysicsOutputs
from gsenv.sim.record import Field, TaskRecord

OBS_MODES = ("state", "state_dict", "rgb", "rgb+depth", "rgb+state", "none")


def parse_obs_mode(obs_mode: str) -> tuple[bool, bool, bool]:
    """-> (needs images, needs depth, adds the flat state to an image observation)."""
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
    return obs_mode.startswith("rgb"), obs_mode == "rgb+depth", obs_mode == "rgb+state"


def sensor_params(names: list[str], Ks: torch.Tensor, viewmats: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """ManiSkill's sensor_param layout per camera from Ks [B, C, 3, 3] and viewmats [B, C, 4, 4]."""
    cam2world_gl = torch.linalg.inv(viewmats) @ CV_TO_GL.to(viewmats)
    return {name: {"extrinsic_cv": viewmats[:, c, :3, :].contiguous(),
                   "cam2world_gl": cam2world_gl[:, c].contiguous(),
                   "intrinsic_cv": Ks[:, c].contiguous()} for c, name in enumerate(names)}


def flat_state(state: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
    """float32 [B, D]: the state dict's entries side by side in its order, as ManiSkill's obs_mode "state"
    flattens them (a [B] entry is one column; bools become 0.0 / 1.0)."""
    leaves = [v[:, None] if v.ndim == 1 else v for leaves in state.values() for v in leaves.values()]
    return torch.hstack(leaves).float()


def build_obs(obs_mode: str, outputs: PhysicsOutputs, camera_names: list[str] | None = None,
              rgb: torch.Tensor | None = None, depth: torch.Tensor | None = None,
              params: dict | None = None) -> Any:
    """The observation for obs_mode.

    rgb: uint8 [B, C, H, W, 3]; depth: float32 [B, C, H, W] (metres); params: sensor_params(...).
    Image modes give ManiSkill's layout: agent, extra, sensor_param, sensor_data[cam]["rgb"] [B, H, W, 3]
    (+ "depth" float32 [B, H, W, 1]); "rgb+state" adds the flat "state" [B, D].
    """
    if obs_mode == "none":
        return {}
    if obs_mode == "state":
        return flat_state(outputs.state)
    nested = {group: dict(leaves) for group, leaves in outputs.state.items()}
    if obs_mode == "state_dict":
        return nested
    sensor_data = {}
    for c, name in enumerate(camera_names or []):
        sensor_data[name] = {"rgb": rgb[:, c]}
        if depth is not None:
            sensor_data[name]["depth"] = depth[:, c, ..., None]
    obs = {**nested, "sensor_param": params or {}, "sensor_data": sensor_data}
    if obs_mode == "rgb+state":
        obs["state"] = flat_state(outputs.state)
    return obs


def _box(shape: tuple[int, ...], dtype: str) -> gym.spaces.Box:
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return gym.spaces.Box(0, 255, shape, dt)
    if dt == np.bool_:
        return gym.spaces.Box(0, 1, shape, dt)
    if np.issubdtype(dt, np.integer):
        return gym.spaces.Box(np.iinfo(dt).min, np.iinfo(dt).max, shape, dt)
    return gym.spaces.Box(-np.inf, np.inf, shape, dt)


def _state_size(fields: tuple[Field, ...]) -> int:
    return sum(int(np.prod(f.shape, dtype=np.int64)) for f in fields)


def observation_space(obs_mode: str, record: TaskRecord, camera_names: list[str], height: int, width: int
                      ) -> gym.Space:
    """The space of ONE env's observation in obs_mode (what build_obs gives, its leading dim dropped),
    from the task's declared state entries and the cameras (images [height, width])."""
    if obs_mode == "none":
        return gym.spaces.Dict({})
    flat = _box((_state_size(record.state),), "float32")
    if obs_mode == "state":
        return flat
    nested: dict[str, dict[str, gym.Space]] = {}
    for f in record.state:
        group, name = f.name.split("/", 1)
        nested.setdefault(group, {})[name] = _box(f.shape, f.dtype)
    spaces: dict[str, gym.Space] = {group: gym.spaces.Dict(leaves) for group, leaves in nested.items()}
    if obs_mode == "state_dict":
        return gym.spaces.Dict(spaces)
    _, wants_depth, wants_state = parse_obs_mode(obs_mode)
    params = {"extrinsic_cv": _box((3, 4), "float32"), "cam2world_gl": _box((4, 4), "float32"),
              "intrinsic_cv": _box((3, 3), "float32")}
    images = {"rgb": _box((height, width, 3), "uint8")}
    if wants_depth:
        images["depth"] = _box((height, width, 1), "float32")
    spaces["sensor_param"] = gym.spaces.Dict({name: gym.spaces.Dict(params) for name in camera_names})
    spaces["sensor_data"] = gym.spaces.Dict({name: gym.spaces.Dict(images) for name in camera_names})
    if wants_state:
        spaces["state"] = flat
    return gym.spaces.Dict(spaces)
