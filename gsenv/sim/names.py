"""Canonical physical names and dimensions of the PutCubeOnPlate scene, in ONE place.

Everything that keys data by a body (the renderer's gaussians, scene bundles' per-link PLYs, the
body-pose dict returned by :func:`gsenv.sim.poses.body_poses`) uses these strings. The simulator's
own link names ARE these names: the robot description is loaded with its links renamed to the
``fr3_`` prefix (the research code's FR3 URDF already uses it), so no translation table exists.

Frames (all right-handed, metres, quaternions w-first):
- world = robot base frame: origin at the base of ``fr3_link0``, x forward, y left, z up;
  the table is the plane z = 0.
- each robot link: the link frame of the URDF (SAPIEN link pose).
- cube: origin at the cube's centre, axes along its edges.
- plate: origin at the centre of the plate's bounding box (half its height above the table when it
  rests on it), z along the plate's axis of symmetry.
"""
from __future__ import annotations

__all__ = ["ROBOT_UID", "ROBOT_UID_ALIAS", "ROBOT_LINK_PREFIX", "ARM_LINK_NAMES", "ROBOT_ROOT_LINK", "HAND_LINK",
           "TCP_LINK", "LEFT_FINGER_LINK", "RIGHT_FINGER_LINK", "FINGER_LINKS", "ROBOT_VISUAL_LINK_NAMES",
           "ROBOT_LINK_NAMES", "ARM_JOINT_NAMES", "FINGER_JOINT_NAMES", "JOINT_NAMES", "NUM_ARM_JOINTS",
           "NUM_JOINTS", "ROBOT_ROOT", "FR3_DEFAULT_QPOS", "FR3_JOINT_LIMITS", "FR3_JOINT_VELOCITY_LIMITS",
           "FINGER_LIMITS", "GRIPPER_TARGET_RANGE", "CUBE", "PLATE", "OBJECT_NAMES", "CUBE_EDGE", "CUBE_HALF_SIZE",
           "CUBE_MASS", "PLATE_DIAMETER", "PLATE_RADIUS", "PLATE_HEIGHT", "PLATE_BASE_THICKNESS",
           "PLATE_RIM_THICKNESS", "PLATE_RIM_SEGMENTS", "PLATE_MASS", "OBJECT_STATIC_FRICTION",
           "OBJECT_DYNAMIC_FRICTION", "OBJECT_RESTITUTION", "FINGER_FRICTION", "LANGUAGE_INSTRUCTION",
           "EPISODE_STEPS", "DEFAULT_TOTAL_NUM_TRIALS", "CONTROL_MODES", "DEFAULT_CONTROL_MODE", "REWARD_MODES",
           "SIM_FREQ", "CONTROL_FREQ", "CUBE_SPAWN_CENTER", "CUBE_SPAWN_HALF_RANGE", "PLATE_SPAWN_CENTER",
           "PLATE_SPAWN_HALF_RANGE", "COLOR_CUBES", "BOWL", "BOWL_RADIUS", "BOWL_HEIGHT",
           "TARGET", "TARGET_RADIUS", "TARGET_THICKNESS"]

# --------------------------------------------------------------------------------------------- #
# Robot (Franka FR3; ManiSkill's bundled Panda description has the same kinematic chain)
# --------------------------------------------------------------------------------------------- #
ROBOT_UID = "my_franka"
"""ManiSkill agent uid (the research code's uid, so configs that name it keep working)."""
ROBOT_UID_ALIAS = "fr3"

ROBOT_LINK_PREFIX = "fr3_"

ARM_LINK_NAMES: tuple[str, ...] = tuple(f"fr3_link{i}" for i in range(8))  # fr3_link0..fr3_link7
ROBOT_ROOT_LINK = "fr3_link0"
HAND_LINK = "fr3_hand"
TCP_LINK = "fr3_hand_tcp"
LEFT_FINGER_LINK = "fr3_leftfinger"
RIGHT_FINGER_LINK = "fr3_rightfinger"
FINGER_LINKS: tuple[str, str] = (LEFT_FINGER_LINK, RIGHT_FINGER_LINK)

ROBOT_VISUAL_LINK_NAMES: tuple[str, ...] = (*ARM_LINK_NAMES, HAND_LINK, *FINGER_LINKS)
"""Links that have geometry (what a scene bundle carries one gaussian PLY for), in chain order."""

ROBOT_LINK_NAMES: tuple[str, ...] = (
    *ARM_LINK_NAMES,
    "fr3_link8",
    HAND_LINK,
    TCP_LINK,
    "fr3_leftfinger_pad",
    "fr3_rightfinger_pad",
    *FINGER_LINKS,
)
"""Every link of the robot articulation (geometry-less frames included)."""

ARM_JOINT_NAMES: tuple[str, ...] = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES: tuple[str, str] = ("fr3_finger_joint1", "fr3_finger_joint2")
JOINT_NAMES: tuple[str, ...] = (*ARM_JOINT_NAMES, *FINGER_JOINT_NAMES)
"""Active joints in qpos order: 7 arm joints then the two fingers -> qpos is [B, 9]."""
NUM_ARM_JOINTS = 7
NUM_JOINTS = 9

ROBOT_ROOT = "robot_root"
"""Key of the robot's root (base) pose in the body-pose dict (equal to ``fr3_link0``'s pose)."""

FR3_DEFAULT_QPOS: tuple[float, ...] = (
    0.0, 0.259358403, 0.0, -2.28914773, 0.0, 2.51473323, 0.785539902, 0.04, 0.04,
)
"""FR3 "default cfg" of the research code: 7 arm joints (rad) + 2 finger joints (m, open)."""

FR3_JOINT_LIMITS: tuple[tuple[float, float], ...] = (
    (-2.7437, 2.7437),
    (-1.7837, 1.7837),
    (-2.9007, 2.9007),
    (-3.0421, -0.1518),
    (-2.8065, 2.8065),
    (0.5445, 4.5169),
    (-3.0159, 3.0159),
)
"""FR3 arm joint position limits (rad), from Franka's FR3 datasheet / franka_description."""
FR3_JOINT_VELOCITY_LIMITS: tuple[float, ...] = (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)
FINGER_LIMITS: tuple[float, float] = (0.0, 0.04)
"""Finger joint travel (m per finger)."""

GRIPPER_TARGET_RANGE: tuple[float, float] = (-0.01, 0.04)
"""Gripper action [-1, 1] maps linearly to this finger target (m); -0.01 squeezes thin objects."""

# --------------------------------------------------------------------------------------------- #
# Objects
# --------------------------------------------------------------------------------------------- #
CUBE = "cube"
PLATE = "plate"
OBJECT_NAMES: tuple[str, str] = (CUBE, PLATE)

CUBE_EDGE = 0.04
"""Cube edge length (m)."""
CUBE_HALF_SIZE = CUBE_EDGE / 2
CUBE_MASS = 0.3  # kg

PLATE_DIAMETER = 0.18
"""Outer diameter of the plate (a shallow dish), m."""
PLATE_RADIUS = PLATE_DIAMETER / 2
PLATE_HEIGHT = 0.02
"""Total height of the dish from its underside to the rim top, m."""
PLATE_BASE_THICKNESS = 0.006
"""Thickness of the dish's flat floor, m (the cube rests at this height above the plate's underside)."""
PLATE_RIM_THICKNESS = 0.008
"""Radial thickness of the rim wall, m."""
PLATE_RIM_SEGMENTS = 16
"""The rim is a ring of this many box segments (convex pieces) in the default primitive plate."""
PLATE_MASS = 0.3  # kg

COLOR_CUBES: dict[str, tuple[float, float, float]] = {
    "red_cube": (0.85, 0.15, 0.1),
    "green_cube": (0.15, 0.65, 0.2),
    "blue_cube": (0.12, 0.3, 0.85),
    "yellow_cube": (0.95, 0.8, 0.1),
}
"""The embedded scene's coloured cubes (the cube's size and mass): name -> RGB. The red one looks like the cube."""
BOWL = "bowl"
BOWL_RADIUS = 0.08
"""Outer radius of the bowl (a deep dish: the plate's build, taller), m."""
BOWL_HEIGHT = 0.04
"""Total height of the bowl from its underside to the rim top, m."""
TARGET = "target"
TARGET_RADIUS = 0.05
"""Radius of the flat target marker (a disc on the table, seen but not collided), m."""
TARGET_THICKNESS = 0.002

OBJECT_STATIC_FRICTION = 1.0
OBJECT_DYNAMIC_FRICTION = 1.0
OBJECT_RESTITUTION = 0.0
FINGER_FRICTION = 2.0

# --------------------------------------------------------------------------------------------- #
# Task
# --------------------------------------------------------------------------------------------- #
LANGUAGE_INSTRUCTION = "pick up the cube and put it on the plate"
EPISODE_STEPS = 100
"""Steps per episode (max_episode_steps of every registered id)."""
DEFAULT_TOTAL_NUM_TRIALS = 128
"""Size of the fixed initial-state table that options["episode_id"] indexes."""
CONTROL_MODES: tuple[str, ...] = (
    "pd_ee_target_delta_pose",
    "pd_ee_delta_pose",
    "pd_joint_pos",
    "pd_joint_delta_pos",
    "pd_joint_target_delta_pos",
)
"""The FR3 agent's controllers (gsenv.sim.agent builds them)."""
DEFAULT_CONTROL_MODE = CONTROL_MODES[0]
REWARD_MODES: tuple[str, ...] = ("sparse", "dense", "normalized_dense", "none")
SIM_FREQ = 500
CONTROL_FREQ = 10

CUBE_SPAWN_CENTER: tuple[float, float] = (0.40, 0.20)
CUBE_SPAWN_HALF_RANGE: tuple[float, float] = (0.10, 0.05)
PLATE_SPAWN_CENTER: tuple[float, float] = (0.45, 0.00)
PLATE_SPAWN_HALF_RANGE: tuple[float, float] = (0.05, 0.00)
