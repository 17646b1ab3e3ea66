"""Observation modes, their construction from batched physics outputs + images, and their spaces."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gsenv.geometry import CV_TO_GL
from gsenv.physics.outputs import PhysicsOutputs

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
        return outputs.obs
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
        obs["state"] = outputs.obs
    return obs


def space_of(value: Any) -> gym.Space:
    """The space of ONE env's observation (a batched value with its leading dim dropped)."""
    if isinstance(value, dict):
        return gym.spaces.Dict({k: space_of(v) for k, v in value.items()})
    arr = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
    shape = arr.shape[1:]
    if arr.dtype == np.uint8:
        return gym.spaces.Box(0, 255, shape, np.uint8)
    if arr.dtype == np.bool_:
        return gym.spaces.Box(0, 1, shape, np.bool_)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return gym.spaces.Box(info.min, info.max, shape, arr.dtype)
    return gym.spaces.Box(-np.inf, np.inf, shape, arr.dtype)
