"""What moves the robot in the viewer: a driver is called as ``driver(obs, env)`` and returns actions
[B, A] or an action chunk [B, T, A] (a torch tensor or numpy array, floating: checked by
gsenv.sim.inputs.checked_action_chunk) that the viewer runs open-loop, one step at a time;
an optional ``driver.reset(env_idx)`` hears about envs that were just reset (the same interface as
``gsenv.tools.policies`` policies).

Here: the scripted expert, and end-effector teleoperation towards a target pose (the viewer's
transform gizmo) with a gripper toggle.
"""
from __future__ import annotations

import numpy as np
import torch

from gsenv.geometry import matrix_to_rotvec, quat_normalize, quat_to_rotmat
from gsenv.sim import names
from gsenv.sim.expert import CLOSE, OPEN

EE_ACTION_DIM = 7  # [dx, dy, dz, drx, dry, drz, grip]: the end-effector delta control modes


def expert_driver(obs, env) -> torch.Tensor:
    """The env's task's scripted expert: float32 [B, 1, 7]."""
    return env.unwrapped.expert_action()[:, None]


class TeleopDriver:
    """Moves the TCP of every env towards one target pose (the viewer's gizmo), with a gripper toggle.

    target_position: [3] metres, world (= robot base) frame; target_wxyz: [4]. Each call returns the
    clipped delta from the current TCP pose: [B, 1, 7] within max_step metres and max_rot radians per axis.
    """

    def __init__(self, max_step: float = 0.05, max_rot: float = 0.1):
        self.max_step, self.max_rot = max_step, max_rot
        self.target_position = np.zeros(3)
        self.target_wxyz = np.array([1.0, 0.0, 0.0, 0.0])
        self.gripper_open = True

    def set_target(self, position, wxyz) -> None:
        self.target_position = np.asarray(position, dtype=np.float64).reshape(3)
        self.target_wxyz = np.asarray(wxyz, dtype=np.float64).reshape(4)

    def __call__(self, obs, env) -> torch.Tensor:
        tcp = env.unwrapped.get_body_poses()[names.TCP_LINK].detach().cpu().to(torch.float32)  # [B, 7]
        B = tcp.shape[0]
        p = torch.as_tensor(self.target_position, dtype=torch.float32)
        q = quat_normalize(torch.as_tensor(self.target_wxyz, dtype=torch.float32))
        dpos = (p[None] - tcp[:, :3]).clamp(-self.max_step, self.max_step)
        # rotation that takes the TCP's orientation to the target's, in the base frame
        R_err = quat_to_rotmat(q)[None] @ quat_to_rotmat(quat_normalize(tcp[:, 3:])).transpose(1, 2)
        drot = matrix_to_rotvec(R_err).clamp(-self.max_rot, self.max_rot)
        grip = torch.full((B, 1), OPEN if self.gripper_open else CLOSE)
        return torch.cat([dpos, drot, grip], dim=1)[:, None]
