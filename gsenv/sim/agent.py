"""The Franka FR3 agent (ManiSkill uid ``my_franka``, alias ``fr3``) and its controllers.

Kinematics and links are ManiSkill's bundled Panda description renamed to the canonical FR3 names
(:mod:`gsenv.sim.robot_description`); a scene bundle may supply another URDF with the same names
(:func:`make_agent_class`). PD gains as the research code: stiffness 1e3, damping 1e2, force
limit 100 for arm and gripper; finger friction 2.0.

Control modes and their 7- or 8-D actions ([B, A], physical units, never normalised except the
gripper):

- ``pd_ee_target_delta_pose`` (default) / ``pd_ee_delta_pose``: [dx, dy, dz, drx, dry, drz, grip];
  translation in metres in the robot-base frame, rotation delta as XYZ Euler angles (rad) applied
  in the base frame about the TCP; the ``target`` variant accumulates onto the previous target
  pose instead of the measured one. Bounds +-0.1 m / +-0.1 rad (clipped by the task).
  ManiSkill 3.0.1's normalised EE mode flips rotation signs, so it is not used.
- ``pd_joint_pos``: 7 absolute arm joint targets (rad) + grip.
- ``pd_joint_delta_pos`` / ``pd_joint_target_delta_pos``: 7 joint deltas (rad, +-0.1) + grip.
- grip in [-1, 1] maps linearly to both finger targets in [-0.01, 0.04] m (1 = open).
"""
from __future__ import annotations

from copy import deepcopy

import numpy as np
import sapien
import torch
from mani_skill.agents.base_agent import Keyframe
from mani_skill.agents.controllers import (
    PDEEPoseControllerConfig,
    PDJointPosControllerConfig,
    PDJointPosMimicControllerConfig,
)
from mani_skill.agents.registration import register_agent
from mani_skill.agents.robots.panda.panda import Panda
from mani_skill.utils import sapien_utils

from gsenv.sim import names

EE_POS_BOUND = 0.1  # m
EE_ROT_BOUND = 0.1  # rad
JOINT_DELTA_BOUND = 0.1  # rad


class MyFranka(Panda):
    """Franka FR3 on a fixed base at the world origin.

    Attributes set after construction: ``tcp`` (link ``fr3_hand_tcp``), ``finger1_link`` /
    ``finger2_link`` (left / right finger), ``robot`` (ManiSkill Articulation, qpos [B, 9]).
    ``balance_passive_force`` True compensates gravity (ManiSkill disables gravity on the robot's
    links); the research code had it off, so its arm sagged.
    """

    uid = names.ROBOT_UID
    urdf_path: str | None = None  # None -> the generated FR3-named Panda (resolved in __init__)
    balance_passive_force: bool = True
    urdf_config = dict(
        _materials=dict(
            gripper=dict(
                static_friction=names.FINGER_FRICTION,
                dynamic_friction=names.FINGER_FRICTION,
                restitution=0.0,
            )
        ),
        link={
            finger: dict(material="gripper", patch_radius=0.1, min_patch_radius=0.1)
            for finger in names.FINGER_LINKS
        },
    )
    keyframes = dict(
        rest=Keyframe(qpos=np.array(names.FR3_DEFAULT_QPOS), pose=sapien.Pose()),
    )
    arm_joint_names = list(names.ARM_JOINT_NAMES)
    gripper_joint_names = list(names.FINGER_JOINT_NAMES)
    ee_link_name = names.TCP_LINK

    def __init__(self, *args, **kwargs):
        if self.urdf_path is None:
            from gsenv.sim.robot_description import default_fr3_urdf

            self.urdf_path = str(default_fr3_urdf())
        super().__init__(*args, **kwargs)

    @property
    def _controller_configs(self):
        common = dict(
            stiffness=self.arm_stiffness,
            damping=self.arm_damping,
            force_limit=self.arm_force_limit,
        )
        ee_delta_pose = PDEEPoseControllerConfig(
            joint_names=self.arm_joint_names,
            pos_lower=-EE_POS_BOUND,
            pos_upper=EE_POS_BOUND,
            rot_lower=-EE_ROT_BOUND,
            rot_upper=EE_ROT_BOUND,
            ee_link=self.ee_link_name,
            urdf_path=self.urdf_path,
            frame="root_translation:root_aligned_body_rotation",
            normalize_action=False,  # physical units; the task clips to the bounds
            **common,
        )
        ee_target_delta_pose = deepcopy(ee_delta_pose)
        ee_target_delta_pose.use_target = True
        joint_pos = PDJointPosControllerConfig(
            self.arm_joint_names, lower=None, upper=None, normalize_action=False, **common
        )
        joint_delta_pos = PDJointPosControllerConfig(
            self.arm_joint_names,
            lower=-JOINT_DELTA_BOUND,
            upper=JOINT_DELTA_BOUND,
            use_delta=True,
            normalize_action=False,
            **common,
        )
        joint_target_delta_pos = deepcopy(joint_delta_pos)
        joint_target_delta_pos.use_target = True
        lo, hi = names.GRIPPER_TARGET_RANGE
        gripper = PDJointPosMimicControllerConfig(
            self.gripper_joint_names,
            lower=lo,
            upper=hi,
            stiffness=self.gripper_stiffness,
            damping=self.gripper_damping,
            force_limit=self.gripper_force_limit,
            normalize_action=True,  # [-1, 1] -> [lo, hi], clipped
            mimic={self.gripper_joint_names[1]: {"joint": self.gripper_joint_names[0]}},
        )
        arms = dict(
            pd_ee_target_delta_pose=ee_target_delta_pose,
            pd_ee_delta_pose=ee_delta_pose,
            pd_joint_pos=joint_pos,
            pd_joint_delta_pos=joint_delta_pos,
            pd_joint_target_delta_pos=joint_target_delta_pos,
        )
        return {
            mode: dict(
                arm=arm,
                gripper=deepcopy(gripper),
                balance_passive_force=self.balance_passive_force,
            )
            for mode, arm in arms.items()
        }

    def _after_loading_articulation(self):
        missing = [n for n in (*names.ROBOT_VISUAL_LINK_NAMES, names.TCP_LINK) if n not in self.robot.links_map]
        missing_joints = [n for n in names.JOINT_NAMES if n not in self.robot.joints_map]
        if missing or missing_joints:
            raise ValueError(
                f"robot description {self.urdf_path} lacks the canonical links {missing} / joints "
                f"{missing_joints}; a robot URDF for gsenv must use the names of gsenv.sim.names "
                "(ROBOT_LINK_NAMES, JOINT_NAMES)"
            )

    def _after_init(self):
        links = self.robot.get_links()
        self.finger1_link = sapien_utils.get_obj_by_name(links, names.LEFT_FINGER_LINK)
        self.finger2_link = sapien_utils.get_obj_by_name(links, names.RIGHT_FINGER_LINK)
        self.finger1pad_link = sapien_utils.get_obj_by_name(links, "fr3_leftfinger_pad")
        self.finger2pad_link = sapien_utils.get_obj_by_name(links, "fr3_rightfinger_pad")
        self.tcp = sapien_utils.get_obj_by_name(links, self.ee_link_name)

    def is_grasping(self, object, min_force: float = 0.5, max_angle: float = 85):
        """Panda's test (both fingers push on ``object`` with >= min_force N within max_angle of their
        closing directions), answered early on CPU PhysX when a finger does not touch the object.

        A finger without a contact pair with the object has zero contact force, which fails
        ``force >= min_force > 0`` whatever the angle, so the answer is False; otherwise Panda's own
        computation runs. Same results, without its pose/matrix/angle maths on the (usual) steps
        where nothing is held.
        """
        if not self.scene.gpu_sim_enabled and min_force > 0:
            target = object._bodies[0].entity
            fingers = [self.finger1_link._bodies[0].entity, self.finger2_link._bodies[0].entity]
            touching = [False, False]
            for contact in self.scene.px.get_contacts():
                a, b = contact.bodies[0].entity, contact.bodies[1].entity
                other = b if a == target else a if b == target else None
                if other is None:
                    continue
                for k, finger in enumerate(fingers):
                    if other == finger:
                        touching[k] = True
            if not all(touching):
                return torch.zeros(self.scene.num_envs, dtype=torch.bool, device=self.scene.device)
        return super().is_grasping(object, min_force=min_force, max_angle=max_angle)


@register_agent()
class MyFrankaFR3Alias(MyFranka):
    """The same agent under the alias uid ``fr3``."""

    uid = names.ROBOT_UID_ALIAS


register_agent()(MyFranka)


def make_agent_class(
    urdf_path: str | None = None, balance_passive_force: bool = True
) -> type[MyFranka]:
    """A MyFranka subclass bound to a robot URDF (None: the generated FR3) and gravity compensation.

    The URDF must use the canonical link and joint names of :mod:`gsenv.sim.names`.
    """
    if urdf_path is None and balance_passive_force:
        return MyFranka
    attrs = dict(balance_passive_force=bool(balance_passive_force))
    if urdf_path is not None:
        attrs["urdf_path"] = str(urdf_path)
    return type("MyFrankaConfigured", (MyFranka,), attrs)
