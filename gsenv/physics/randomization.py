"""Physics, observation and timing randomisation: the ranges (`PhysicsRandomization`), and their per-env draws.

Every range is (low, high), drawn uniformly per env at each reset of that env from a torch.Generator
seeded by the env's reset seed (or its episode id, when one is given; salted apart from the visual
draws of gsenv.scene.randomization): the same seed or episode id gives the same draw, whatever the other
envs do and however the envs are split over physics workers. The defaults change nothing; with
``physics_randomization=None`` (the default) nothing of this runs.

| key | unit, allowed values | what it does |
|---|---|---|
| object_mass | factor, (0, 10] | each task object's mass (and inertia) times this, drawn per object |
| object_friction | factor, (0, 10] | each object's static and dynamic friction times this, per object |
| arm_stiffness | factor, (0, 10] | each arm joint's PD stiffness times this, drawn per joint |
| arm_damping | factor, (0, 10] | each arm joint's PD damping times this, drawn per joint |
| qpos_noise_std | radians, [0, 0.1] | std of the Gaussian noise on the observed arm joint positions (new each step) |
| action_latency | control steps, integers in [0, 10] | the action applied at step t is the one given at t - k |

Where each acts:
- mass, friction and PD gains are set in the physics (gsenv.sim.dynamics, per single-env CPU-PhysX
  instance at its reset: ``sim_backend="physx_cpu"`` only); the values are drawn here and sent with
  the reset, so they do not depend on the worker split.
- qpos noise is on the observation only (obs "agent"/"qpos", the flat state, RLinf's extracted states): the
  simulation, the scripted expert's inputs, rewards and ``env.unwrapped.agent.robot.get_qpos()`` keep the
  true joint positions. The 2 finger joints are not noised (the gripper reports its width separately). The
  noise of env b at step t is a pure function of (b's draw, t, joint): counter-based, batched.
- latency runs in the env's process, a ring of the last k_max + 1 actions per env [B, k_max + 1, A]. In
  an episode's first k steps the envs apply the *hold action*: the command that keeps every target
  where the reset put it (zero arm delta in the delta control modes, the reset joint positions in
  pd_joint_pos; the gripper at its reset opening). An env rebuilt after a physics worker failed keeps its
  draw (the pool resets it with the same values) and starts its latency ring afresh.

``physics_randomization="default"`` (`PhysicsRandomization.default()`): the ranges of `DEFAULT_RANGES`,
each with its reason in `DEFAULT_REASONS`:

| key | default | reason (short; DEFAULT_REASONS has each in full) |
|---|---|---|
| object_mass | (0.5, 1.5) | OpenAI et al. 2018 (arXiv 1808.00177): object and link masses x U[0.5, 1.5] |
| object_friction | (0.7, 1.3) | the same recipe: surface friction x U[0.7, 1.3] |
| arm_stiffness | (0.8, 1.25) | the recipe's actuator gain (0.75-1.5), narrowed: the expert held at 72% with it |
| arm_damping | (0.8, 1.25) | the recipe's joint damping (0.3-3), narrowed as stiffness (per-joint gain mismatch) |
| qpos_noise_std | (0.0, 0.001) | 1 mrad ~ 0.9 mm at the FR3's 0.855 m reach, ~9x its 0.1 mm pose repeatability |
| action_latency | (0, 0) | off: the scripted expert (a gain-1 loop at 10 Hz) fails under one step of delay |

With the preset the scripted expert (PutCubeOnPlate, CPU) succeeds in 31 of 32 envs (seeds 0, 1000); with the
recipe's PD ranges 23 of 32, with action_latency (0, 1) 10 of 32 (README: "Domain randomisation").
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gsenv.ranges import DEFAULT_PRESET, checked_range, settings_from_any
from gsenv.sim import names

__all__ = ["DEFAULT_PRESET", "DEFAULT_RANGES", "DEFAULT_REASONS", "PhysicsRandomization", "RandomizedPhysics",
           "physics_draw_seed", "hold_action", "qpos_noise"]

# (lowest, highest, whether the lowest itself is allowed) per range
_BOUNDS = {
    "object_mass": (0.0, 10.0, False), "object_friction": (0.0, 10.0, False),
    "arm_stiffness": (0.0, 10.0, False), "arm_damping": (0.0, 10.0, False),
    "qpos_noise_std": (0.0, 0.1, True), "action_latency": (0, 10, True),
}
_INTEGER = ("action_latency",)
_SIM_KEYS = ("object_mass", "object_friction", "arm_stiffness", "arm_damping")

DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "object_mass": (0.5, 1.5),
    "object_friction": (0.7, 1.3),
    "arm_stiffness": (0.8, 1.25),
    "arm_damping": (0.8, 1.25),
    "qpos_noise_std": (0.0, 0.001),
    "action_latency": (0, 0),
}
DEFAULT_REASONS: dict[str, str] = {
    "object_mass": "OpenAI et al. 2018 (Learning Dexterous In-Hand Manipulation, arXiv 1808.00177) randomise object "
                   "and link masses x U[0.5, 1.5]: the 0.3 kg sim cube stands for 0.15-0.45 kg real objects",
    "object_friction": "the same recipe's surface friction coefficients x U[0.7, 1.3]",
    "arm_stiffness": "the same recipe's actuator force gain (P term) spans 0.75-1.5; drawn per joint over that span "
                     "(damping 0.5-2) the scripted expert succeeded in 23 of 32 envs (the joints' mismatched gains "
                     "bend the hand's path), so narrowed to -20%/+25%: the identification error of a tuned impedance",
    "arm_damping": "the same recipe's joint damping (0.3-3.0), narrowed with stiffness: 0.8-2.0 beside stiffness "
                   "0.75-1.5 still failed 9 of 32 envs (the failures had the highest damping and stiffness); 0.8-1.25 "
                   "keeps each joint's damping ratio within 0.72-1.40 of the nominal",
    "qpos_noise_std": "1 mrad per joint is about 0.9 mm at the FR3's 0.855 m reach, ~9x its +-0.1 mm pose "
                      "repeatability: the calibration and joint-elasticity error of a reading, not the encoder's "
                      "resolution",
    "action_latency": "off in the preset: the scripted expert is a gain-1 loop at 10 Hz (each step commands the "
                      "whole remaining error, up to 5 cm) and one step of delay (100 ms) makes it overshoot and fail "
                      "(10 of 32 envs succeed with (0, 1)); pass action_latency=(0, 1) to train a policy for a real "
                      "cell's inference and command delay (RLinf's InsertDelay delays by whole control steps too)",
}
"""Why each range of the default preset is what it is (README: "Domain randomisation")."""

_PHYSICS_SALT = 0x9E37_79B9  # xor'ed into the visual draw's (folded) seed: the two draws are independent
_MASK32 = 0xFFFF_FFFF


@dataclass(frozen=True)
class PhysicsRandomization:
    """Ranges of physics, observation and timing randomisation, each (low, high); see the module doc for
    units and bounds. The defaults randomise nothing. Pass one (or a dict of some of its keys) as
    ``gym.make(..., physics_randomization=...)``."""

    object_mass: tuple[float, float] = (1.0, 1.0)
    object_friction: tuple[float, float] = (1.0, 1.0)
    arm_stiffness: tuple[float, float] = (1.0, 1.0)
    arm_damping: tuple[float, float] = (1.0, 1.0)
    qpos_noise_std: tuple[float, float] = (0.0, 0.0)
    action_latency: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for name in _BOUNDS:
            value = checked_range("physics_randomization", name, getattr(self, name), _BOUNDS[name],
                                  integer=name in _INTEGER)
            object.__setattr__(self, name, value)

    @property
    def changes_physics(self) -> bool:
        """Whether a draw changes the simulation itself (mass, friction, PD gains: CPU PhysX only)."""
        return any(getattr(self, k) != (1.0, 1.0) for k in _SIM_KEYS)

    @property
    def max_latency(self) -> int:
        return self.action_latency[1]

    @classmethod
    def default(cls) -> PhysicsRandomization:
        """The default preset: DEFAULT_RANGES (reasons in DEFAULT_REASONS)."""
        return cls(**DEFAULT_RANGES)

    @classmethod
    def from_any(cls, value: Any) -> PhysicsRandomization | None:
        """None (off), "default" (the preset), a PhysicsRandomization, or a dict of its keys -> a checked
        PhysicsRandomization (or None); ValueError naming an unknown key (and the nearest known one), and
        for True / False."""
        return settings_from_any(cls, value, "physics_randomization")


def physics_draw_seed(seed: int, episode_id: int | None) -> int:
    """The generator seed of one env's physics draw: the visual draw's seed
    (gsenv.scene.randomization.draw_seed: from its episode id when it has one, else its reset seed; 32 bits)
    salted so the two draws are independent."""
    from gsenv.scene.randomization import draw_seed

    return draw_seed(seed, episode_id) ^ _PHYSICS_SALT


def hold_action(control_mode: str, qpos: Tensor) -> Tensor:
    """float32 [B, A]: the action that keeps every target where a reset put it, from the reset's qpos [B, 9]:
    zero arm deltas (pd_joint_pos: the arm's joint positions) and the gripper command of its opening."""
    b = qpos.shape[0]
    if control_mode == "pd_joint_pos":
        arm = qpos[:, :names.NUM_ARM_JOINTS]
    elif control_mode.startswith("pd_joint"):
        arm = qpos.new_zeros(b, names.NUM_ARM_JOINTS)
    else:  # end-effector delta pose: xyz + axis-angle
        arm = qpos.new_zeros(b, 6)
    lo, hi = names.GRIPPER_TARGET_RANGE
    grip = (2.0 * (qpos[:, names.NUM_ARM_JOINTS].double() - lo) / (hi - lo) - 1.0).clamp(-1.0, 1.0)
    return torch.cat([arm.to(torch.float32), grip[:, None].to(torch.float32)], dim=1)


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (Wellons' lowbias32 family) of int64 values in [0, 2**32), batched; the
    constants stay below 2**31 so no product leaves int64."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _MASK32
    return x ^ (x >> 15)


def qpos_noise(key: Tensor, step: Tensor, num_joints: int) -> Tensor:
    """float32 [B, J] standard normal noise, a pure function of (key [B] int64, step [B], joint): Box-Muller
    on two hashed uniforms per joint. The same key and step give the same noise on every device."""
    j = torch.arange(num_joints, device=key.device, dtype=torch.int64)
    base = _hash32(key[:, None].to(torch.int64) & _MASK32)
    counter = (step[:, None].to(torch.int64) * 64 + j * 2) & _MASK32  # [B, J]
    u1 = (_hash32((base + counter) & _MASK32).to(torch.float64) + 0.5) / 2.0**32
    u2 = (_hash32((base + counter + 1) & _MASK32).to(torch.float64) + 0.5) / 2.0**32
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)).to(torch.float32)


class RandomizedPhysics:
    """The drawn values of B envs and what the env applies from them: the reset options the physics
    takes (mass, friction, PD gains), the action latency ring and the qpos observation noise.

    Args:
        config: the ranges.
        num_envs: B.
        objects: the task objects mass and friction apply to (those with collision shapes), in order.
        control_mode: the arm's control mode (fixes the hold action and the action size A).
        action_dim: A.
        device: where the latency ring and the noise live (the env's device).
    """

    def __init__(self, config: PhysicsRandomization, num_envs: int, objects: Sequence[str], control_mode: str,
                 action_dim: int, device) -> None:
        self.config, self.B, self.device = config, int(num_envs), torch.device(device)
        self.objects, self.control_mode = tuple(objects), control_mode
        B, n_obj, J = self.B, len(self.objects), names.NUM_ARM_JOINTS
        self.values: dict[str, Tensor] = {
            "object_mass": torch.ones(B, n_obj, dtype=torch.float64),
            "object_friction": torch.ones(B, n_obj, dtype=torch.float64),
            "arm_stiffness": torch.ones(B, J, dtype=torch.float64),
            "arm_damping": torch.ones(B, J, dtype=torch.float64),
            "qpos_noise_std": torch.zeros(B, dtype=torch.float64),
            "action_latency": torch.zeros(B, dtype=torch.int64),
            "noise_key": torch.zeros(B, dtype=torch.int64),
        }
        k1 = config.max_latency + 1
        self._ring = torch.zeros(B, k1, int(action_dim), dtype=torch.float32, device=self.device)
        self._t = torch.zeros(B, dtype=torch.int64, device=self.device)  # steps since each env's reset
        self._rows = torch.arange(B, device=self.device)
        self._latency = torch.zeros(B, dtype=torch.int64, device=self.device)
        self._noise_std = torch.zeros(B, 1, dtype=torch.float32, device=self.device)
        self._noise_key = torch.zeros(B, dtype=torch.int64, device=self.device)

    # ------------------------------------------------------------------ draws (at reset)
    def _draw_one(self, seed: int) -> dict[str, Tensor]:
        """One env's values, from its own generator (a fixed order of draws: a range left at its default
        still draws, so turning one on does not change what the others draw)."""
        cfg, n_obj, J = self.config, len(self.objects), names.NUM_ARM_JOINTS
        g = torch.Generator().manual_seed(int(seed))

        def u(rng, *shape):
            lo, hi = rng
            return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

        out = {"object_mass": u(cfg.object_mass, n_obj), "object_friction": u(cfg.object_friction, n_obj),
               "arm_stiffness": u(cfg.arm_stiffness, J), "arm_damping": u(cfg.arm_damping, J),
               "qpos_noise_std": u(cfg.qpos_noise_std)}
        lo, hi = cfg.action_latency
        out["action_latency"] = torch.randint(lo, hi + 1, (), generator=g)
        out["noise_key"] = torch.randint(0, 2**32, (), generator=g, dtype=torch.int64)
        return out

    def redraw(self, env_idx: Sequence[int], seeds: Sequence[int]) -> None:
        """New values for the envs env_idx, env env_idx[i] from its generator seeded seeds[i]
        (physics_draw_seed). Runs at reset, before the physics resets (reset_options gives its options)."""
        draws = [self._draw_one(s) for s in seeds]
        idx = torch.as_tensor(list(env_idx), dtype=torch.long)
        for key, column in self.values.items():
            column[idx] = torch.stack([d[key] for d in draws]).to(column.dtype)
        self._values_to_device(idx)

    def _values_to_device(self, idx: Tensor) -> None:
        """Copy the step path's per-env values (latency, noise std and key) of envs idx to the device."""
        dev_idx = idx.to(self.device)
        self._latency[dev_idx] = self.values["action_latency"][idx].to(self.device)
        self._noise_std[dev_idx, 0] = self.values["qpos_noise_std"][idx].to(self.device, torch.float32)
        self._noise_key[dev_idx] = self.values["noise_key"][idx].to(self.device)

    def reset_option(self, env: int) -> dict | None:
        """The physics' reset option (gsenv.sim.dynamics.OPTION_KEY's value) of env `env`; None when the
        ranges leave the simulation alone."""
        if not self.config.changes_physics:
            return None
        v = self.values
        return {"object_mass": dict(zip(self.objects, v["object_mass"][env].tolist())),
                "object_friction": dict(zip(self.objects, v["object_friction"][env].tolist())),
                "arm_stiffness": v["arm_stiffness"][env].tolist(), "arm_damping": v["arm_damping"][env].tolist()}

    def snapshot(self) -> dict[str, Any]:
        """The current episode's values of every env (CPU copies): object_mass / object_friction {object: [B]}
        factors, arm_stiffness / arm_damping [B, 7] factors, qpos_noise_std [B] rad, action_latency [B] steps."""
        v = {k: self.values[k].clone() for k in ("arm_stiffness", "arm_damping", "qpos_noise_std", "action_latency")}
        for key in ("object_mass", "object_friction"):
            v[key] = {name: self.values[key][:, i].clone() for i, name in enumerate(self.objects)}
        return v

    # ------------------------------------------------------------------ saved and restored (GSEnv.get_state)
    def state(self) -> dict[str, Tensor]:
        """Every env's draws, latency ring and steps since its reset: {key: CPU tensor [B, ...]}."""
        out = {k: v.clone() for k, v in self.values.items()}
        out["ring"] = self._ring.detach().cpu().clone()
        out["steps"] = self._t.detach().cpu().clone()
        return out

    def restore(self, env_idx: Sequence[int], rows: dict[str, Any]) -> None:
        """Envs env_idx take back what state() held for them (rows: {key: [n, ...]} of those envs)."""
        idx = torch.as_tensor(list(env_idx), dtype=torch.long)
        for key, column in self.values.items():
            column[idx] = torch.as_tensor(rows[key]).to(column.dtype)
        dev_idx = idx.to(self.device)
        self._ring[dev_idx] = torch.as_tensor(rows["ring"]).to(self.device, torch.float32)
        self._t[dev_idx] = torch.as_tensor(rows["steps"]).to(self.device)
        self._values_to_device(idx)

    # ------------------------------------------------------------------ latency (every step)
    def restart(self, env_idx: Sequence[int], qpos: Tensor) -> None:
        """Envs env_idx start an episode at qpos [B, 9] (all envs' current joint positions): their rings
        hold the hold action, their step count is 0."""
        if self.config.max_latency == 0 or not len(env_idx):
            return
        idx = torch.as_tensor(list(env_idx), dtype=torch.long, device=self.device)
        hold = hold_action(self.control_mode, qpos[idx].to(self.device, torch.float32))  # [b, A]
        self._ring[idx] = hold[:, None, :]
        self._t[idx] = 0

    def delay(self, action: Tensor) -> Tensor:
        """float32 [B, A]: the actions to apply now, each env's from `action_latency` steps ago (the hold
        action before its episode had that many steps); `action` [B, A] joins the ring."""
        if self.config.max_latency == 0:
            return action
        k1 = self._ring.shape[1]
        self._ring[self._rows, self._t % k1] = action.to(self.device, torch.float32)
        applied = self._ring[self._rows, (self._t - self._latency) % k1].clone()
        self._t += 1
        return applied

    # ------------------------------------------------------------------ observation noise (every observation)
    def noisy_qpos(self, qpos: Tensor, step: Tensor) -> Tensor:
        """qpos [B, 9] with each env's arm joints plus N(0, its qpos_noise_std) noise of (its key, step, joint);
        the fingers as they are. step: [B] each env's elapsed steps."""
        if self.config.qpos_noise_std == (0.0, 0.0):
            return qpos
        J = names.NUM_ARM_JOINTS
        noise = qpos_noise(self._noise_key.to(qpos.device), step, J) * self._noise_std.to(qpos.device)
        out = qpos.clone()
        out[:, :J] = qpos[:, :J] + noise.to(qpos.dtype)
        return out
